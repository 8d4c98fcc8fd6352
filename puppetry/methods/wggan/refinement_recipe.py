"""``puppetry train wggan``: the face refinement GAN of paper 003, Sec. 4.1 (Eq. 1-3).

One stage, ``wggan``. Every step makes ``critic_steps`` critic updates and one refiner update, each on a
fresh batch of training pairs (:mod:`puppetry.methods.wggan.samples`):

- critic (maximises Eq. 2): ``L_D = E[D(x_r~, M~)] - E[D(x_g~, M)]`` (+ ``λ`` times the gradient penalty of
  Gulrajani et al. in ``gp`` mode; weights clipped after the update in ``clip`` mode), where the refined
  images ``x_r~`` (with their maps ``M~``) are half current, half from the history
  (:class:`~puppetry.methods.wggan.history.ImageHistory`, Shrivastava et al. 2017);
- refiner (minimises Eq. 3): ``L_R = α ||R(x_w, M) - x_g||_1 - E[D(R(x_w, M), M)]``, the L1 a per-image sum
  over the face mask (see :mod:`puppetry.methods.wggan.refinement_config`).

Real images for the critic are ``mask * x_g + (1 - mask) * x_w`` (``x_g~``), the image ``R`` should produce,
so real and refined images differ only where ``R`` may change pixels. No L1-only warm-up: the L1 term
dominates the refiner's first updates anyway (its sum is in the thousands while the critic is untrained).

The part statistics of the displacement maps are fitted on the training pairs before training (from
landmarks alone) and exported with the refiner to ``RUN/wggan.pt``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from puppetry.data.dataset import open_dataset, split_clips
from puppetry.errors import PuppetryError
from puppetry.training.config import to_dict
from puppetry.training.distributed import unwrap, wrap_ddp
from puppetry.training.freezing import evaluation, frozen
from puppetry.training.recipe import Recipe, Stage
from puppetry.methods.wggan.displacement import visualize_map
from puppetry.methods.wggan.history import ImageHistory
from puppetry.methods.wggan.refinement import build_networks
from puppetry.methods.wggan.refinement_config import WEIGHTS_FORMAT, WgGanConfig
from puppetry.methods.wggan.samples import RefinementBatch, RefinementSamples, fit_statistics

logger = logging.getLogger(__name__)

STAGE = "wggan"
SAMPLE_PAIRS = 4


def masked_l1_sum(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. 1: per-image sum of ``mask * |output - target|`` over channels and pixels, averaged over the batch."""
    return (mask * (output - target).abs()).sum((1, 2, 3)).mean()


def gradient_penalty(scores: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """Gulrajani et al. 2017: ``E[(||∇_x D(x)||_2 - 1)^2]`` at the interpolates ``inputs`` (``B x C x S x S``)."""
    grad, = torch.autograd.grad(scores.sum(), inputs, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


class WgGanRecipe(Recipe):
    """The recipe; see the module docstring."""

    name = "wggan"
    config_class = WgGanConfig

    def __init__(self, config: WgGanConfig, data: Path, trainer):
        super().__init__(config, data, trainer)
        size = config.model.size
        num_clips = len(open_dataset(data).clips)
        train_clips, held = split_clips(num_clips, config.data.holdout, config.train.seed)
        self.samples_train = RefinementSamples(data, config.data, size, clips=train_clips)
        self.samples_held = None
        if held:
            try:
                self.samples_held = RefinementSamples(data, config.data, size, clips=held)
            except PuppetryError as exc:
                logger.warning("held-out clips give no pairs (%s); samples show training pairs", exc)
        rng = np.random.default_rng(config.train.seed)
        self.statistics = fit_statistics(self.samples_train, config.data.statistics_pairs, rng)
        self.samples_train.set_statistics(self.statistics)
        if self.samples_held is not None:
            self.samples_held.set_statistics(self.statistics)
        logger.info("wg-GAN data: %d training pairs in %d clips, %d held-out clips; part std %s",
                    len(self.samples_train), len(self.samples_train.clips), len(held),
                    " ".join(f"{s:.4f}" for s in self.statistics.std))
        torch.manual_seed(config.train.seed)              # identical initial weights on every process
        refiner, critic = build_networks(config.model)
        t = config.training
        self.nets = nn.ModuleDict({"R": refiner, "D": critic,
                                   "history": ImageHistory(t.history, size, t.history_share)}).to(trainer.device)
        self.ddp: dict[str, nn.Module] = {}

    # ------------------------------------------------------------------------------------------ stages
    def stages(self) -> list[Stage]:
        return [Stage(STAGE, self.config.training.steps)]

    def modules(self) -> dict[str, nn.Module]:
        return dict(self.nets.items())

    def start_stage(self, stage: Stage) -> dict[str, torch.optim.Optimizer]:
        t = self.config.training
        self.ddp = {}
        optimizers = {}
        for name, lr in (("R", t.lr_refiner), ("D", t.lr_critic)):
            module = self.nets[name].train().requires_grad_(True)
            self.ddp[name] = wrap_ddp(module, self.trainer.ctx)
            if t.mode == "gp":
                optimizers[name] = torch.optim.Adam(module.parameters(), lr=lr, betas=tuple(t.betas))
            else:
                optimizers[name] = torch.optim.RMSprop(module.parameters(), lr=t.rmsprop_lr)
        return optimizers

    def _batch(self, rng: np.random.Generator) -> RefinementBatch:
        return self.samples_train.batch(rng, self.config.train.batch_size, self.trainer.device)

    def _critic_step(self, rng: np.random.Generator) -> dict[str, float]:
        t, n, d = self.config.training, self.nets, self.ddp
        b = self._batch(rng)
        with torch.no_grad(), self.trainer.autocast():
            refined = n["R"](b.warped, b.displacement, b.mask).float()
        fake, fake_maps = n["history"].mix(refined, b.displacement, rng)
        real = b.mask * b.target + (1 - b.mask) * b.warped
        images, maps = [real, fake], [b.displacement, fake_maps]
        if t.mode == "gp":
            eps = torch.rand(b.size, 1, 1, 1, device=real.device)
            mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
            images.append(mixed)
            maps.append(eps * b.displacement + (1 - eps) * fake_maps)
        with self.trainer.autocast():
            scores = d["D"](torch.cat(images), torch.cat(maps)).float()      # one call through DDP
        s_real, s_fake = scores[:b.size], scores[b.size:2 * b.size]
        wasserstein = s_real.mean() - s_fake.mean()
        loss = -wasserstein                                                   # Eq. 2, the critic's side
        gp = torch.zeros((), device=real.device)
        if t.mode == "gp":
            gp = gradient_penalty(scores[2 * b.size:], mixed)
            loss = loss + t.gp_weight * gp
        self.trainer.optimize(loss, "D")
        if t.mode == "clip":
            with torch.no_grad():
                for p in n["D"].parameters():
                    p.clamp_(-t.clip, t.clip)
        return {"critic": loss.item(), "wasserstein": wasserstein.item(), "gp": gp.item()}

    def _refiner_step(self, rng: np.random.Generator) -> dict[str, float]:
        t, n, d = self.config.training, self.nets, self.ddp
        b = self._batch(rng)
        with self.trainer.autocast():
            refined = d["R"](b.warped, b.displacement, b.mask).float()
            l1 = masked_l1_sum(refined, b.target, b.mask)                      # Eq. 1
            with frozen(n["D"]):
                adversarial = -n["D"](refined, b.displacement).float().mean()  # Eq. 2, the refiner's side
            loss = t.alpha * l1 + adversarial                                  # Eq. 3
        self.trainer.optimize(loss, "R")
        with torch.no_grad():                  # mean errors per face pixel, of R's output and of its input
            area = 3 * b.mask.sum((1, 2, 3)).clamp_min(1.0)
            l1_pixel = ((b.mask * (refined - b.target).abs()).sum((1, 2, 3)) / area).mean()
            l1_warped = ((b.mask * (b.warped - b.target).abs()).sum((1, 2, 3)) / area).mean()
        return {"loss_R": loss.item(), "l1": l1.item(), "l1_pixel": l1_pixel.item(),
                "l1_pixel_warped": l1_warped.item(), "adversarial": adversarial.item()}

    def train_step(self, stage: Stage, step: int, rng: np.random.Generator) -> dict[str, float]:
        critic: dict[str, list[float]] = {}
        for _ in range(self.config.training.critic_steps):
            for k, v in self._critic_step(rng).items():
                critic.setdefault(k, []).append(v)
        out = {k: float(np.mean(v)) for k, v in critic.items()}
        out.update(self._refiner_step(rng))
        return out

    # ---------------------------------------------------------------------------------- samples, export
    def samples(self, stage: Stage) -> dict[str, np.ndarray]:
        """Rows of fixed pairs (held-out clips when there are some): warped | refined | ground truth |
        displacement map (hue: direction, brightness: length)."""
        source = self.samples_held or self.samples_train
        rng = np.random.default_rng(self.config.train.seed + 7)
        indices = source.draw(rng, SAMPLE_PAIRS)
        b = source.batch(rng, SAMPLE_PAIRS, self.trainer.device, indices=indices, augmented=False)
        with torch.no_grad(), evaluation(self.nets["R"]):
            refined = self.nets["R"](b.warped, b.displacement, b.mask).float().clamp(0, 1)
        maps = np.stack([visualize_map(m) for m in b.displacement.cpu().numpy()])
        maps = torch.from_numpy(maps).permute(0, 3, 1, 2).float().div(255).to(refined.device)
        columns = [b.warped, refined, b.target, maps]
        strip = torch.cat([torch.cat(list(col), 1) for col in columns], 2)          # 3 x rows*S x cols*S
        return {"warped_refined_truth_map": (strip * 255).round().byte().permute(1, 2, 0).cpu().numpy()}

    def export(self, run_dir: Path) -> Path:
        """``RUN/wggan.pt``: format tag, model config, crop size, part statistics and R's weights."""
        from puppetry.training.checkpoint import save_checkpoint

        path = Path(run_dir) / "wggan.pt"
        save_checkpoint(path, {
            "format": WEIGHTS_FORMAT, "version": 1, "model": to_dict(self.config.model),
            "size": int(self.config.model.size), "statistics": self.statistics.to_dict(),
            "train_clips": [self.samples_train.ds.clips[c].id for c in self.samples_train.clips],
            "refiner": unwrap(self.nets["R"]).state_dict(),
        })
        logger.info("wrote %s", path)
        return path
