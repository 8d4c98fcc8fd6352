"""``puppetry train liveportrait``: LivePortrait's two training stages (paper 001, Sec. 3.2-3.3).

- ``stage1`` trains the base model F, M, W, G (with D_global, D_face, D_lip; :mod:`.stage1`);
- ``stage2`` freezes them and trains S, R_eyes, R_lip (:mod:`.stage2`).

A small eyes/lip-open regressor C trains alongside in both stages (on real frames) and serves Stage II's
condition terms. At the end the networks are written in the release's layout to ``RUN/liveportrait``
(:mod:`.export`). Every trained module is called once per update through its DDP wrapper; frozen
modules are called unwrapped.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from puppetry.methods.liveportrait.training.arcface import IResNet, load_arcface
from puppetry.methods.liveportrait.training.conditions import ConditionRegressor, condition_crops, predict_conditions, \
    regressor_loss
from puppetry.methods.liveportrait.training.config import LivePortraitTrainConfig
from puppetry.methods.liveportrait.training.data import PairBatch, PairSampler
from puppetry.methods.liveportrait.training.discriminator import MultiScaleDiscriminator
from puppetry.methods.liveportrait.training.export import FOLDER, export_release
from puppetry.methods.liveportrait.training.networks import build_generator, load_release_weights
from puppetry.training.freezing import evaluation
from puppetry.methods.liveportrait.training.stage1 import DISCRIMINATORS, generate, region_sizes, stage1_step
from puppetry.methods.liveportrait.training.stage2 import sample_columns, stage2_step
from puppetry.nn.vgg import PerceptualLoss, load_vgg19
from puppetry.training.distributed import wrap_ddp
from puppetry.training.recipe import Recipe, Stage

logger = logging.getLogger(__name__)

SAMPLE_PAIRS = 4
BASE = ("F", "M", "W", "G")
RETARGETING = ("S", "R_eyes", "R_lip")


class LivePortraitRecipe(Recipe):
    """The recipe; see the module docstring."""

    name = "liveportrait"
    config_class = LivePortraitTrainConfig

    def __init__(self, config: LivePortraitTrainConfig, data: Path, trainer):
        super().__init__(config, data, trainer)
        m, lc = config.model, config.losses
        self.sampler = PairSampler(data, config.data, m.input_size, m.output_size, config.train.seed)
        self.region_sizes = region_sizes(m.output_size, lc.face_crop, lc.lip_crop)
        torch.manual_seed(config.train.seed)                    # identical initial weights on every process
        nets = build_generator(m)
        for key, size in zip(DISCRIMINATORS, self.region_sizes):
            nets[key] = MultiScaleDiscriminator(size, m.disc_scales, m.disc_block_expansion, m.disc_max_features,
                                                m.disc_num_blocks, key)
        nets["C"] = ConditionRegressor(m.condition_channels)
        if config.init.checkpoint_dir:
            load_release_weights(nets, m, config.init.checkpoint_dir)
        self.nets = nn.ModuleDict(nets).to(trainer.device)
        self.perceptual = self._perceptual()
        self.arcface = self._arcface()
        self.ddp: dict[str, nn.Module] = {}

    def _warn(self, message: str) -> None:
        if self.trainer.ctx.is_main:
            logger.warning(message)

    def _perceptual(self) -> PerceptualLoss | None:
        lc = self.config.losses
        if not lc.perceptual:
            return None
        if lc.vgg19_weights is None:
            self._warn("losses.vgg19_weights is not set: the cascaded perceptual loss is off (the paper trains with "
                       "it; give torchvision-layout VGG19 weights, puppetry never downloads them)")
            return None
        vgg = load_vgg19(lc.vgg19_weights).to(self.trainer.device)
        return PerceptualLoss(vgg, lc.perceptual_layers, lc.perceptual_scales)

    def _arcface(self) -> IResNet | None:
        lc = self.config.losses
        if not lc.face_id:
            return None
        if lc.arcface_weights is None:
            self._warn("losses.arcface_weights is not set: the face-id loss is off (give insightface ArcFace "
                       "IResNet weights; puppetry never downloads them)")
            return None
        return load_arcface(lc.arcface_weights).to(self.trainer.device)

    # ------------------------------------------------------------------------------------------ stages
    def stages(self) -> list[Stage]:
        return [Stage("stage1", self.config.stage1.steps), Stage("stage2", self.config.stage2.steps)]

    def modules(self) -> dict[str, nn.Module]:
        return dict(self.nets.items())

    def start_stage(self, stage: Stage) -> dict[str, torch.optim.Optimizer]:
        n = self.nets
        if stage.name == "stage1":
            trained = {"gen": list(BASE), "D": list(DISCRIMINATORS), "C": ["C"]}
            settings = self.config.stage1
            n.train()
        else:
            trained = {"retarget": list(RETARGETING), "C": ["C"]}
            settings = self.config.stage2
            n.train()
            for name in BASE:                       # frozen: batch norms use their running statistics
                n[name].eval()
        n.requires_grad_(False)
        self.ddp = {}
        optimizers = {}
        for opt_name, names in trained.items():
            params = []
            for name in names:
                n[name].requires_grad_(True)
                self.ddp[name] = wrap_ddp(n[name], self.trainer.ctx)
                params += list(n[name].parameters())
            optimizers[opt_name] = torch.optim.Adam(params, lr=settings.lr, betas=tuple(settings.betas))
        return optimizers

    def train_step(self, stage: Stage, step: int, rng: np.random.Generator) -> dict[str, float]:
        if stage.name == "stage1":
            return stage1_step(self, rng)
        return stage2_step(self, rng)

    def train_regressor(self, b: PairBatch) -> float:
        """One update of the condition regressor C on the batch's real source and driving frames."""
        crops = condition_crops(torch.cat([b.source_out, b.target]), torch.cat([b.lm_source, b.lm_driving]))
        with self.trainer.autocast():
            eyes, lip = predict_conditions(self.ddp["C"], crops)
        loss = regressor_loss(eyes, lip, torch.cat([b.eyes_source, b.eyes_driving]),
                              torch.cat([b.lip_source, b.lip_driving]))
        self.trainer.optimize(loss, "C")
        return loss.item()

    # ---------------------------------------------------------------------------------- samples, export
    def samples(self, stage: Stage) -> dict[str, np.ndarray]:
        """Rows of fixed pairs. Stage I: source | driving | generated. Stage II: source | driving (another
        person) | generated | with stitching | eyes closed (R_eyes, c_d 0) | lips open (R_lip, c_d at the
        top of its range)."""
        rng = np.random.default_rng(self.config.train.seed + 7)
        cross = stage.name == "stage2"
        b = self.sampler.load(self.sampler.draw(rng, SAMPLE_PAIRS, cross), self.trainer.device)
        with torch.no_grad(), evaluation(self.nets):
            if stage.name == "stage1":
                columns = [b.source_out, b.target, generate(self, b.source, b.driving, self.nets)[0]]
            else:
                columns = sample_columns(self, b)
        strip = torch.cat([torch.cat(list(col.clamp(0, 1)), 1) for col in columns], 2)      # 3 x rows*H x cols*W
        return {"source_driving_generated": (strip * 255).round().byte().permute(1, 2, 0).cpu().numpy()}

    def export(self, run_dir: Path) -> Path:
        """The release-layout files in ``RUN/liveportrait`` (see :mod:`.export`)."""
        return export_release(self.modules(), self.config.model, Path(run_dir) / FOLDER)
