"""``puppetry train perturbed-masks``: image animation with perturbed masks (paper 004, Sec. 3.2).

One stage. Each step draws a batch of (source, driving) frame pairs of one clip each and runs the
training path (Eq. 5-7):

    m_s = m(D(s)),  m_a = m(D(A(d)))                       the masks (A: colour augmentation)
    c   = l(D(s), m_s, m_a)                                 Eq. 6, l reads the unperturbed mask
    f   = h(s, U(m_s), U(m_a), c)                           Eq. 7, h's inputs detached
    m_d = r(D(s), m_s, P_train(m_a))                        Eq. 5, inputs detached

    L = 100 L1(m_d, m_a) + 10 (L_rec(c, d) + L_rec(f, d))   Eq. 8-9

with the gradient routing the paper states: ``L_mask`` updates ``r`` only (from the epoch
``optim.refine_from_epoch`` on; before it the loss is still logged), the ``f`` term ``h`` only, and the
``c`` term ``l`` and, through both masks, ``m``. Three Adam optimisers (``ml``, ``r``, ``h``) share the
learning rate and its schedule (divided by ``optim.decay`` at each of ``optim.decay_epochs``). ``L_rec``
is the VGG-19 perceptual loss over an image pyramid (layers relu1_1, relu3_1, relu5_1; scales 1, 0.5,
0.25) when ``losses.vgg19_weights`` is given, else an L1 pyramid at the same scales (logged as a
warning: not the paper's loss).

Logged per step: ``loss_mask``, ``loss_coarse``, ``loss_final`` (the weighted terms before the weights),
``l1_final`` (mean absolute error of ``f`` to ``d``, the paper's L1 metric on the training pair) and
``mask_mean`` (the share of the frame the source mask covers: near 0 or 1 means a degenerate mask).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from puppetry.data.dataset import split_clips
from puppetry.data.whole_frames import open_frame_clips
from puppetry.errors import PuppetryError
from puppetry.methods.perturbed_masks.config import WEIGHTS_FORMAT, PerturbedMasksConfig
from puppetry.methods.perturbed_masks.data import FramePairs
from puppetry.methods.perturbed_masks.networks import build_model
from puppetry.methods.perturbed_masks.perturbations import augment, perturb_train
from puppetry.nn.vgg import PerceptualLoss, load_vgg19
from puppetry.training.config import to_dict
from puppetry.training.distributed import unwrap, wrap_ddp
from puppetry.training.freezing import evaluation
from puppetry.training.recipe import Recipe, Stage

logger = logging.getLogger(__name__)

STAGE = "perturbed-masks"
SAMPLE_PAIRS = 4


class L1Pyramid(nn.Module):
    """``sum_scale mean |a - b|`` over an image pyramid: the stand-in for the perceptual loss when no
    VGG-19 weights are given (not the paper's loss)."""

    def __init__(self, scales: tuple[float, ...]):
        super().__init__()
        self.scales = tuple(scales)

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        total = fake.new_zeros(())
        for scale in self.scales:
            a, b = fake, real.detach()
            if scale != 1:
                side = max(int(fake.shape[-1] * scale), 1)
                a = F.interpolate(a, size=(side, side), mode="bilinear", align_corners=False, antialias=True)
                b = F.interpolate(b, size=(side, side), mode="bilinear", align_corners=False, antialias=True)
            total = total + (a - b).abs().mean()
        return total


def reconstruction_loss(config: PerturbedMasksConfig) -> nn.Module:
    """The paper's multi-scale VGG-19 loss (Eq. 9), or the L1 pyramid without VGG weights."""
    losses = config.losses
    if losses.vgg19_weights:
        return PerceptualLoss(load_vgg19(losses.vgg19_weights), losses.layer_weights, losses.scales)
    logger.warning("losses.vgg19_weights is not set: the reconstruction loss is an L1 pyramid at scales %s, "
                   "not the paper's VGG-19 perceptual loss (give torchvision VGG19 weights to train as the paper)",
                   list(losses.scales))
    return L1Pyramid(losses.scales)


class PerturbedMasksRecipe(Recipe):
    """The recipe; see the module docstring."""

    name = "perturbed-masks"
    config_class = PerturbedMasksConfig

    def __init__(self, config: PerturbedMasksConfig, data: Path, trainer):
        super().__init__(config, data, trainer)
        frames = open_frame_clips(data, config.model.size, "train", cache_frames=config.data.cache_frames)
        train, held = split_clips(len(frames), config.data.holdout, config.train.seed)
        self.pairs = FramePairs(frames, train, config.data.flip)
        self.held = None
        if held:
            try:
                self.held = FramePairs(frames, held, flip=False)
            except PuppetryError as exc:
                logger.warning("held-out clips give no pairs (%s); samples show training pairs", exc)
        logger.info("perturbed masks data: %d training clips, %d held out, frames %d px",
                    len(self.pairs.clips), len(held), config.model.size)
        torch.manual_seed(config.train.seed)
        self.net = build_model(config.model, config.perturb).to(trainer.device)
        self.loss_rec = reconstruction_loss(config).to(trainer.device)
        self.generator = torch.Generator()
        self.ddp: dict[str, nn.Module] = {}

    def stages(self) -> list[Stage]:
        o = self.config.optim
        return [Stage(STAGE, o.epochs * o.steps_per_epoch)]

    def modules(self) -> dict[str, nn.Module]:
        return {"net": self.net}

    def start_stage(self, stage: Stage) -> dict[str, torch.optim.Optimizer]:
        o, n = self.config.optim, self.net.train()
        self.ddp = {k: wrap_ddp(getattr(n, k), self.trainer.ctx) for k in ("m", "r", "l", "h")}
        groups = {"ml": list(n.m.parameters()) + list(n.l.parameters()), "r": list(n.r.parameters()),
                  "h": list(n.h.parameters())}
        return {k: torch.optim.Adam(v, lr=o.lr, betas=tuple(o.betas)) for k, v in groups.items()}

    def learning_rate(self, step: int) -> float:
        """Adam's rate at ``step``: ``lr`` times ``decay`` for each of ``decay_epochs`` already reached."""
        o = self.config.optim
        epoch = step // o.steps_per_epoch
        return o.lr * o.decay ** sum(epoch >= e for e in o.decay_epochs)

    def train_step(self, stage: Stage, step: int, rng: np.random.Generator) -> dict[str, float]:
        cfg, net, d = self.config, self.net, self.ddp
        for opt in self.trainer.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = self.learning_rate(step)
        self.generator.manual_seed(int(rng.integers(2 ** 62)))
        b = self.pairs.batch(rng, cfg.train.batch_size, self.trainer.device)
        with self.trainer.autocast():
            small = net.down(b.source)
            mask_source = d["m"](small)
            mask_aug = d["m"](net.down(augment(b.driving, cfg.perturb, self.generator)))
            coarse = d["l"](small, mask_source, mask_aug)                                    # Eq. 6
            final = d["h"](b.source, net.up(mask_source).detach(), net.up(mask_aug).detach(), coarse.detach())
            loss_coarse = self.loss_rec(coarse.float(), b.driving)
            loss_final = self.loss_rec(final.float(), b.driving)
        w = cfg.losses
        self.trainer.optimize(w.reconstruction_weight * loss_coarse, "ml")
        self.trainer.optimize(w.reconstruction_weight * loss_final, "h")
        target = mask_aug.detach()
        perturbed = perturb_train(target, cfg.perturb, self.generator)
        refining = step // cfg.optim.steps_per_epoch >= cfg.optim.refine_from_epoch
        with torch.set_grad_enabled(refining), self.trainer.autocast():
            refined = d["r"](small.detach(), mask_source.detach(), perturbed)               # Eq. 5
            loss_mask = (refined.float() - target.float()).abs().mean()                     # Eq. 8
        if refining:
            self.trainer.optimize(w.mask_weight * loss_mask, "r")
        return {"loss_mask": loss_mask.item(), "loss_coarse": loss_coarse.item(), "loss_final": loss_final.item(),
                "l1_final": (final.detach().float() - b.driving).abs().mean().item(),
                "mask_mean": mask_source.detach().float().mean().item(), "lr": self.learning_rate(step)}

    def sample_strip(self, cross: bool = False) -> np.ndarray:
        """Rows of fixed pairs (held-out clips when there are some): source | m_s | driving | m(d) |
        P_test then r: m_d | c | f, the test-time path (Eq. 1-4). ``cross``: each row's driving frame comes
        from the next row's clip (animation by another clip), else from its own clip (reconstruction)."""
        pairs = self.held or self.pairs
        rng = np.random.default_rng(self.config.train.seed + 7)
        chosen = pairs.draw(rng, SAMPLE_PAIRS)
        shift = 1 if cross else 0
        dev = self.trainer.device
        b_src = pairs.tensor([(c, a) for c, a, _ in chosen], dev)
        b_drv = pairs.tensor([chosen[(i + shift) % len(chosen)][0::2] for i in range(len(chosen))], dev)
        with torch.no_grad(), evaluation(self.net):
            out = self.net.animate(b_src, b_drv)
        up = self.net.up
        gray = [up(out[k]).expand(-1, 3, -1, -1) for k in ("mask_source", "mask_raw", "mask_driving")]
        columns = [b_src, gray[0], b_drv, gray[1], gray[2], out["coarse"], out["final"]]
        strip = torch.cat([torch.cat(list(col.clamp(0, 1)), 1) for col in columns], 2)
        return (strip * 255).round().byte().permute(1, 2, 0).cpu().numpy()

    def samples(self, stage: Stage) -> dict[str, np.ndarray]:
        return {"reconstruction": self.sample_strip(False), "cross_clip": self.sample_strip(True)}

    def export(self, run_dir: Path) -> Path:
        """``RUN/perturbed_masks.pt``: format tag, model and perturbation settings, the four networks,
        and the sample strips and loss curves as PNGs beside it."""
        from puppetry.training.checkpoint import save_checkpoint
        from puppetry.training.curves import write_run_images

        run_dir = Path(run_dir)
        path = run_dir / "perturbed_masks.pt"
        save_checkpoint(path, {"format": WEIGHTS_FORMAT, "version": 1, "model": to_dict(self.config.model),
                               "perturb": to_dict(self.config.perturb),
                               "net": unwrap(self.net).state_dict()})
        write_run_images(run_dir, self.samples(self.stages()[0]))
        logger.info("wrote %s", path)
        return path
