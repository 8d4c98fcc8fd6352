"""``puppetry train fdgan``: the extractor-translator ``T`` of FD-GAN with its patch discriminator ``D`` and
identity classifier ``C`` (paper 002, Sec. 3.2, Eq. 10-12). One stage, ``fdgan``; per step, on pairs
``x_T``, ``x'_T`` of one clip with conditions ``l_T``, ``l'_T`` and identity ``k``::

    y = T(x_T, l_T, l'_T)
    D step:  L_D = E[(D(x_T) - 1)^2 + (D(y) + 1)^2]                                           Eq. 10
    C step:  L_C = E[-log P(k | C(x_T))] + E[-log(1 - P(k | C(y)))]                           Eq. 11
    T step:  L_T = lambda_rec E[||y - x'_T||^2] + lambda_D E[D(y)^2] + lambda_C E[-log P(k | C(y))]   Eq. 12

``D`` and ``C`` are patch networks; their losses are averaged over patches. ``C`` classifies the identities of
the training clips (``puppetry prepare --identity``: each clip, each video or each folder is one). Logged per
step: ``rec`` (the mean squared error, images in [-1, 1]), ``gan``, ``cls`` (T's terms), ``loss_d``, ``loss_c``,
``c_acc`` (share of real patches ``C`` names right). Samples: see :func:`sample_strip`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from puppetry.data.dataset import open_dataset, split_clips
from puppetry.errors import PuppetryError
from puppetry.methods.fdgan.conditions import preview
from puppetry.methods.fdgan.config import WEIGHTS_FORMAT, FDGanConfig
from puppetry.methods.fdgan.data import FDBatch, FramePairs, to_images
from puppetry.methods.fdgan.networks import PatchNetwork, build_fdgan
from puppetry.training.config import to_dict
from puppetry.training.distributed import unwrap, wrap_ddp
from puppetry.training.freezing import evaluation, frozen
from puppetry.training.recipe import Recipe, Stage

logger = logging.getLogger(__name__)

SAMPLE_PAIRS = 4


def log_not_class(logits: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``log(1 - P(k | logits))`` per patch, computed stably: ``B x K x h x w`` logits, ``B`` labels -> ``B x h x w``."""
    is_k = F.one_hot(k, logits.shape[1]).bool()[:, :, None, None].expand_as(logits)
    return torch.logsumexp(logits.masked_fill(is_k, float("-inf")), 1) - torch.logsumexp(logits, 1)


def patch_cross_entropy(logits: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``-log P(k | logits)`` averaged over patches and the batch (``B x K x h x w``, ``B``)."""
    return F.cross_entropy(logits, k[:, None, None].expand(-1, *logits.shape[2:]))


def sample_strip(net: nn.Module, groups: list[tuple[FramePairs, list[tuple[int, int, int]]]], config: FDGanConfig,
                 device: torch.device) -> np.ndarray:
    """One row per pair ``(clip, i, j)`` of each group's clips: ``x_T`` | ``l'_T`` | ``T(x_T, l_T, l'_T)`` |
    ``x'_T`` (the truth) | ``T`` with the previous row's ``x_T`` as the source (another person when the rows
    are of clips of several people)."""
    size, kind = config.model.size, config.model.condition
    parts = [pairs.batch(np.random.default_rng(0), len(chosen), size, kind, device, pairs=chosen)
             for pairs, chosen in groups if chosen]
    b = FDBatch(*[torch.cat([getattr(p, k) for p in parts]) for k in
                  ("image_s", "image_t", "cond_s", "cond_t", "identity")])
    dictionaries = net.extractor(b.image_s, b.cond_s)
    own = net.translator(b.cond_t, dictionaries)
    other = net.translator(b.cond_t, [d.roll(1, 0) for d in dictionaries])
    columns = [to_images(b.image_s), np.stack([preview(c, kind) for c in b.cond_t.cpu().numpy()]), to_images(own),
               to_images(b.image_t), to_images(other)]
    return np.concatenate([np.concatenate(list(col), 0) for col in columns], 1)


class FDGanRecipe(Recipe):
    """The recipe; see the module docstring."""

    name = "fdgan"
    config_class = FDGanConfig

    def __init__(self, config: FDGanConfig, data: Path, trainer):
        super().__init__(config, data, trainer)
        cfg = config
        num_clips = len(open_dataset(data).clips)
        train, held = split_clips(num_clips, cfg.data.holdout, cfg.train.seed)
        self.pairs = FramePairs(data, train, cfg.data.min_gap, cfg.data.flip)
        if len(self.pairs.identities) < 2:
            raise PuppetryError(f"'{data}' holds one identity among its training clips; FD-GAN's classifier needs "
                                f"at least two (prepare more videos, or --identity clip)")
        self.held = None
        if held:
            try:
                self.held = FramePairs(data, held, cfg.data.min_gap, flip=False, identities=self.pairs.identities)
            except PuppetryError as exc:
                logger.warning("held-out clips give no pairs (%s); samples show training pairs", exc)
        logger.info("FD-GAN data: %d training clips of %d identities, %d held out", len(self.pairs.clips),
                    len(self.pairs.identities), len(held))
        torch.manual_seed(cfg.train.seed)
        self.nets = nn.ModuleDict({"T": build_fdgan(cfg.model), "D": PatchNetwork(cfg.model, 1),
                                   "C": PatchNetwork(cfg.model, len(self.pairs.identities))})
        self.nets.to(trainer.device)
        self.ddp: dict[str, nn.Module] = {}

    def stages(self) -> list[Stage]:
        return [Stage("fdgan", self.config.optim.steps)]

    def modules(self) -> dict[str, nn.Module]:
        return dict(self.nets.items())

    def start_stage(self, stage: Stage) -> dict[str, torch.optim.Optimizer]:
        o = self.config.optim
        self.ddp = {k: wrap_ddp(self.nets[k].train(), self.trainer.ctx) for k in ("T", "D", "C")}
        return {"T": torch.optim.RMSprop(self.nets["T"].parameters(), lr=o.lr, alpha=o.alpha),
                "D": torch.optim.RMSprop(self.nets["D"].parameters(), lr=o.lr_disc, alpha=o.alpha),
                "C": torch.optim.RMSprop(self.nets["C"].parameters(), lr=o.lr_class, alpha=o.alpha)}

    def train_step(self, stage: Stage, step: int, rng: np.random.Generator) -> dict[str, float]:
        cfg, d, n = self.config, self.ddp, self.nets
        b = self.pairs.batch(rng, cfg.train.batch_size, cfg.model.size, cfg.model.condition, self.trainer.device)
        with self.trainer.autocast():
            fake = d["T"](b.image_s, b.cond_s, b.cond_t).float()
            scores = d["D"](torch.cat([b.image_s, fake.detach()])).float()
        half = b.image_s.shape[0]
        loss_d = ((scores[:half] - 1) ** 2).mean() + ((scores[half:] + 1) ** 2).mean()           # Eq. 10
        self.trainer.optimize(loss_d, "D")
        with self.trainer.autocast():
            logits = d["C"](torch.cat([b.image_s, fake.detach()])).float()
        loss_c = patch_cross_entropy(logits[:half], b.identity) - log_not_class(logits[half:], b.identity).mean()
        self.trainer.optimize(loss_c, "C")                                                        # Eq. 11
        c_acc = (logits[:half].detach().argmax(1) == b.identity[:, None, None]).float().mean()
        w = cfg.losses
        with self.trainer.autocast(), frozen(n["D"]), frozen(n["C"]):
            rec = ((fake - b.image_t) ** 2).mean()
            gan = (n["D"](fake).float() ** 2).mean()
            cls = patch_cross_entropy(n["C"](fake).float(), b.identity)
            total = w.rec_weight * rec + w.gan_weight * gan + w.class_weight * cls
        self.trainer.optimize(total, "T")                                                         # Eq. 12
        return {"rec": rec.item(), "gan": gan.item(), "cls": cls.item(), "loss_d": loss_d.item(),
                "loss_c": loss_c.item(), "c_acc": c_acc.item()}

    def samples(self, stage: Stage) -> dict[str, np.ndarray]:
        """Half the rows from held-out clips (when there are some), the rest from training clips, one clip each."""
        rng = np.random.default_rng(self.config.train.seed + 7)
        held = SAMPLE_PAIRS // 2 if self.held is not None else 0
        groups = []
        for pairs, count in ((self.held, held), (self.pairs, SAMPLE_PAIRS - held)):
            chosen = []
            for i in range(count):
                c = pairs.clips[(i * 5) % len(pairs.clips)]
                n = pairs.ds.clips[c].num_frames
                chosen.append((c, int(rng.integers(n)), int(rng.integers(n))))
            groups.append((pairs, chosen))
        with torch.no_grad(), evaluation(self.nets["T"]):
            return {"fdgan": sample_strip(unwrap(self.nets["T"]), groups, self.config, self.trainer.device)}

    def export(self, run_dir: Path) -> Path:
        """``RUN/fdgan.pt`` (format tag, model config, ``T``'s weights) and the sample strip and loss curves as
        PNGs beside it."""
        from puppetry.training.checkpoint import save_checkpoint
        from puppetry.training.curves import write_run_images

        run_dir = Path(run_dir)
        path = run_dir / "fdgan.pt"
        save_checkpoint(path, {"format": WEIGHTS_FORMAT, "version": 1, "model": to_dict(self.config.model),
                               "identities": self.pairs.identities, "T": unwrap(self.nets["T"]).state_dict()})
        write_run_images(run_dir, self.samples(self.stages()[-1]))
        logger.info("wrote %s", path)
        return path
