"""``puppetry train hrhgan``: inner-mouth hallucination (paper 003, Sec. 4.2; Iizuka et al. 2017, Sec. 3.3).

Losses (Iizuka, Eq. 1-5), with ``C`` the completion network, ``D`` the context discriminator, ``x`` a real
crop, ``M`` its hole and ``C(x, M)`` composited (``M * out + (1 - M) * x``):

- ``L_MSE = mean over pixels of (M * (C(x, M) - x))²`` (Eq. 1);
- ``L_D = -log D(x, M_d) - log(1 - D(C(x, M), M_d))`` (Eq. 2-3; the global part sees the crop, the local
  part the ``S/2`` square on the mouth, the same square for real and completed);
- the completion network minimises ``L_MSE + α · (-log D(C(x, M), M_d))`` (Eq. 5, with the usual
  non-saturating form of ``log(1 - D)``), ``α = 0.0004``.

Stages (Iizuka's three phases at each resolution of 003's hierarchical training):

====================  ======================================================  ==================
stage                 trains                                                  loss
====================  ======================================================  ==================
``mse128``            completion network (Iizuka's layers)                    ``L_MSE``
``discriminator128``  discriminators                                          ``L_D``
``joint128``          both                                                    ``L_MSE + α GAN``
``grow256``           the new input / output layers only                      ``L_MSE``
``discriminator256``  discriminators (their new input layers and the rest)    ``L_D``
``finetune256``       everything                                              ``L_MSE + α GAN``
====================  ======================================================  ==================

``grow256`` trains only the new layers because 003 keeps "the intermediate layers the same" while the
new ones are random: gradients from random layers would first undo the trained trunk. The trunk stays
in training mode (its BatchNorm statistics adapt to the new input layers' features; its weights do not
change). Then the whole network is fine-tuned (003: "finally, the whole network is fine tuned"). The
discriminators grow the same way and are trained alone once before the joint fine-tuning, as in
Iizuka's phase 2, so the completion network never meets an untrained discriminator.

``128`` and ``256`` name the architectures; their sides are ``model.base_size`` and twice that.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from puppetry.training.distributed import wrap_ddp
from puppetry.training.freezing import frozen
from puppetry.training.recipe import Recipe, Stage
from puppetry.methods.wggan.completion import CompletionNetwork, ContextDiscriminator, crop_patches, weights_payload
from puppetry.methods.wggan.completion_config import HrhGanConfig, HrhGanOptimizer
from puppetry.methods.wggan.mouth_samples import MouthBatch, MouthSampler

logger = logging.getLogger(__name__)

SAMPLES = 4
STAGES = ("mse128", "discriminator128", "joint128", "grow256", "discriminator256", "finetune256")
EXPORT_NAME = "hrhgan.pt"


def masked_mse(completed: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Iizuka's Eq. 1: mean over all pixels and channels of ``(M * (C(x) - x))²`` (``B x 3 x S x S`` inputs)."""
    return ((mask * (completed - target)) ** 2).mean()


def hole_mse(completed: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error per hole pixel and channel (for logs: independent of the hole's size)."""
    return ((mask * (completed - target)) ** 2).sum() / (3 * mask.sum()).clamp_min(1.0)


def resolution_of(stage: Stage | str) -> int:
    name = stage if isinstance(stage, str) else stage.name
    return 256 if name.endswith("256") else 128


def make_optimizer(params: list[nn.Parameter], settings: HrhGanOptimizer) -> torch.optim.Optimizer:
    if settings.name == "adadelta":
        return torch.optim.Adadelta(params, lr=settings.lr, rho=settings.rho)
    return torch.optim.Adam(params, lr=settings.lr, betas=tuple(settings.betas))


class HrhGanRecipe(Recipe):
    """The recipe; see the module docstring."""

    name = "hrhgan"
    config_class = HrhGanConfig

    def __init__(self, config: HrhGanConfig, data: Path, trainer):
        super().__init__(config, data, trainer)
        m = config.model
        self.sampler = MouthSampler(data, config.data)
        torch.manual_seed(config.train.seed)                   # identical initial weights on every process
        self.nets = nn.ModuleDict({"C": CompletionNetwork(m.width), "D": ContextDiscriminator(m.base_size, m.width)})
        self.nets.to(trainer.device)
        self.ddp: dict[str, nn.Module] = {}

    # ------------------------------------------------------------------------------------------ stages
    def stages(self) -> list[Stage]:
        return [Stage(name, int(getattr(self.config.schedule, name))) for name in STAGES]

    def modules(self) -> dict[str, nn.Module]:
        return dict(self.nets.items())

    def size(self, stage: Stage | str) -> int:
        """Crop side of a stage."""
        return self.side(resolution_of(stage))

    def side(self, resolution: int) -> int:
        """Crop side of an architecture (128: ``model.base_size``, 256: twice that)."""
        return self.config.model.base_size * (2 if resolution == 256 else 1)

    def _set_resolution(self, resolution: int) -> None:
        self.nets["C"].resolution = resolution
        self.nets["D"].resolution = resolution

    def _trained(self, stage: Stage) -> dict[str, list[nn.Module]]:
        """The modules each optimiser trains in ``stage`` (only the ends of the stage's resolution)."""
        c, d = self.nets["C"], self.nets["D"]
        r = resolution_of(stage)
        head, tail = c.ends(r)
        whole_c = [head, c.trunk, tail]
        whole_d = [*d.heads(r), d.global_d.body, d.global_d.fc, d.local_d.body, d.local_d.fc, d.out]
        kind = stage.name.rstrip("0123456789")
        if kind == "mse":
            return {"C": whole_c}
        if kind == "grow":
            return {"C": [head, tail]}
        if kind == "discriminator":
            return {"D": whole_d}
        return {"C": whole_c, "D": whole_d}

    def start_stage(self, stage: Stage) -> dict[str, torch.optim.Optimizer]:
        self._set_resolution(resolution_of(stage))
        self.nets.train()
        self.nets.requires_grad_(False)
        self.ddp, optimizers = {}, {}
        for name, parts in self._trained(stage).items():
            for part in parts:
                part.requires_grad_(True)
            # DDP sees exactly the parameters this stage trains, all of which take part in the loss.
            self.ddp[name] = wrap_ddp(self.nets[name], self.trainer.ctx)
            optimizers[name] = make_optimizer([p for part in parts for p in part.parameters()], self.config.optimizer)
        return optimizers

    # -------------------------------------------------------------------------------------------- steps
    def _discriminate(self, d: nn.Module, real: torch.Tensor, fake: torch.Tensor, batch: MouthBatch) -> torch.Tensor:
        """``2B x 1`` logits of real then completed crops in one call (one BatchNorm statistic for both)."""
        images = torch.cat([real, fake])
        corners = torch.cat([batch.corner, batch.corner])
        return d(images, crop_patches(images, corners, batch.side)).float()

    def train_step(self, stage: Stage, step: int, rng: np.random.Generator) -> dict[str, float]:
        settings = self.config.train
        batch = self.sampler.batch(rng, settings.batch_size, self.size(stage), self.trainer.device)
        x, mask = batch.image, batch.mask
        trained = self._trained(stage)
        n, d = self.nets, self.ddp
        logs: dict[str, float] = {}
        if "C" in trained:
            with self.trainer.autocast():
                completed = d["C"](x, mask).float()
        else:
            with torch.no_grad(), self.trainer.autocast():
                completed = n["C"](x, mask).float()
        logs["mse_hole"] = hole_mse(completed.detach(), x, mask).item()
        b = x.shape[0]

        if "D" in trained:
            with self.trainer.autocast():
                logits = self._discriminate(d["D"], x, completed.detach(), batch)
                target = torch.cat([torch.ones(b, 1), torch.zeros(b, 1)]).to(logits.device)
                loss_d = F.binary_cross_entropy_with_logits(logits, target)                # Eq. 2-3
            self.trainer.optimize(loss_d, "D")
            logs["d_loss"] = loss_d.item()
            logs["d_real"] = torch.sigmoid(logits[:b]).mean().item()
            logs["d_fake"] = torch.sigmoid(logits[b:]).mean().item()

        if "C" in trained:
            with self.trainer.autocast():
                mse = masked_mse(completed, x, mask)                                       # Eq. 1
                loss_c = mse
                if "D" in trained:
                    with frozen(n["D"]):
                        fake_logits = self._discriminate(n["D"], x, completed, batch)[b:]
                    adv = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
                    loss_c = mse + self.config.loss.alpha * adv                           # Eq. 5
                    logs["g_adv"] = adv.item()
            self.trainer.optimize(loss_c, "C")
            logs["mse"] = mse.item()
        return logs

    # --------------------------------------------------------------------------------- samples, export
    def sample_batch(self, stage: Stage | str) -> MouthBatch:
        """The fixed, unaugmented samples shown in TensorBoard (the same frames at every stage)."""
        frames = self.sampler.draw(np.random.default_rng(self.config.train.seed + 7), SAMPLES)
        return self.sampler.load(frames, self.size(stage), self.trainer.device)

    def samples(self, stage: Stage) -> dict[str, np.ndarray]:
        """Rows of (input with the hole | completed | ground truth), at the stage's side."""
        batch = self.sample_batch(stage)
        c = self.nets["C"]
        c.eval()
        try:
            with torch.no_grad():
                completed = c(batch.image, batch.mask)
        finally:
            c.train()
        return {"completion": sample_strip(batch.image, batch.mask, completed)}

    def export(self, run_dir: Path) -> Path:
        """``RUN/hrhgan.pt``: the completion network at the last trained resolution, its config and side."""
        from puppetry.training.checkpoint import save_checkpoint

        s = self.config.schedule
        grown = any(getattr(s, name) > 0 for name in STAGES if name.endswith("256"))
        resolution = 256 if grown else 128
        network = self.nets["C"]
        network.resolution = resolution
        path = Path(run_dir) / EXPORT_NAME
        side = self.side(resolution)
        save_checkpoint(path, weights_payload(network, self.config.model, side, self.config.temporal))
        logger.info("wrote %s (%d x %d crops)", path, side, side)
        return path


def sample_strip(image: torch.Tensor, mask: torch.Tensor, completed: torch.Tensor) -> np.ndarray:
    """``B`` rows of [input with the hole (green) | completed | ground truth], ``B·S x 3·S x 3`` uint8.

    Args:
        image, completed: ``B x 3 x S x S`` in [0, 1].
        mask: ``B x 1 x S x S``.
    """
    green = torch.tensor([0.0, 1.0, 0.0], device=image.device)[None, :, None, None]
    holed = image * (1 - mask) + green * mask
    rows = torch.cat([holed, completed, image], 3)                                  # B x 3 x S x 3S
    strip = rows.permute(0, 2, 3, 1).reshape(-1, rows.shape[-1], 3)
    out = (strip.clamp(0, 1) * 255 + 0.5).byte().cpu().numpy()
    side = image.shape[-1]
    if side < 128:                                  # small test crops: enlarge for viewing
        k = 128 // side
        out = cv2.resize(out, (out.shape[1] * k, out.shape[0] * k), interpolation=cv2.INTER_NEAREST)
    return out
