"""``puppetry train puppeteergan``: both networks of PuppeteerGAN (paper 000, Sec. 3.2-3.3), one stage each.

Stage ``sketch`` (Eq. 1-5). Per step, on a batch of groups ``[L_i^s, L_j^s, L_i'^v, M_i^s, M_j^s]``:

    D_I step:  logistic loss, real pair (E_L(L_i^s), E_L(L_j^s)), fake pair (E_L(L_i'^v), E_L(L_j^s))   Eq. 4
    G step:    (L~_j, M~_j) = G_R(E_L(L_j^s), E_M(M_i^s))                                           Eq. 1
               L_ld(L~_j, L_j^s) + lambda1 L_seg(M~_j, M_j^s) + lambda2 L_idt(E_L fools D_I)          Eq. 2-5

Stage ``color`` (Eq. 6-7). Per step, on a batch of video pairs ``[I_i, I_j, L_i, L_j, M_i, M_j]`` and, when
``data.stills`` is given, stills under geometry dropout (``data.still_share`` of the batch):

    I~_j = G_C(I_i, M_i, M_j, L_i, L_j)        U-Net with SPADE (conditioned on M_j) and WASIC (Eq. 6)
    D_C step:  least squares on the multi-scale PatchGAN, real I_j, fake I~_j (both with M_j)
    G_C step:  L1 + gamma1 L_perc + gamma2 L_GAN + gamma3 L_feat                                  Eq. 7

The coloring network trains on the true target segmentation ``M_j`` (the paper: "we directly utilize the
segmentation mask M_j extracted from I_j"), so the two stages are independent; at test time it reads the
sketching network's ``M~_j``. Without VGG weights (``color_losses.vgg_weights``) the perceptual term is left
out and the log says so.

Logged per step: ``sketch``: ``loss_ld``, ``loss_seg``, ``loss_idt`` (E_L's side), ``loss_di`` (D_I's),
``di_acc`` (share of pairs D_I gets right), ``seg_acc`` (pixels whose label is right); ``color``: ``l1``,
``perceptual``, ``gan``, ``feature``, ``loss_d``, ``mu_*`` (each WASIC's blend weight).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from puppetry.data.dataset import open_dataset, split_clips
from puppetry.errors import PuppetryError
from puppetry.face.parsing import MASK_LABELS
from puppetry.methods.puppeteergan.coloring import build_coloring
from puppetry.methods.puppeteergan.config import WEIGHTS_FORMAT, PuppeteerGanConfig
from puppetry.methods.puppeteergan.data import ColorBatch, StillImages, VideoPairs, concat
from puppetry.methods.puppeteergan.discriminator import MultiScaleDiscriminator, feature_matching_loss, gan_loss
from puppetry.methods.puppeteergan.dropout import geometry_dropout
from puppetry.methods.puppeteergan.samples import color_strip, sketch_strip
from puppetry.methods.puppeteergan.wasic import WASIC
from puppetry.methods.puppeteergan.sketching import (build_sketching, identity_loss_discriminator,
                                                      identity_loss_encoder, landmark_loss, one_hot,
                                                      segmentation_loss)
from puppetry.nn.vgg import PerceptualLoss, load_vgg19
from puppetry.training.config import to_dict
from puppetry.training.distributed import unwrap, wrap_ddp
from puppetry.training.freezing import evaluation, frozen
from puppetry.training.recipe import Recipe, Stage

logger = logging.getLogger(__name__)

SAMPLE_PAIRS = 4


class PuppeteerGanRecipe(Recipe):
    """The recipe; see the module docstring."""

    name = "puppeteergan"
    config_class = PuppeteerGanConfig

    def __init__(self, config: PuppeteerGanConfig, data: Path, trainer):
        super().__init__(config, data, trainer)
        cfg = config
        num_clips = len(open_dataset(data).clips)
        train, held = split_clips(num_clips, cfg.data.holdout, cfg.train.seed)
        everyone = list(range(num_clips))
        self.pairs = VideoPairs(data, train, cfg.data.min_gap, cfg.data.flip, others=train)
        self.held = None
        if held:
            try:
                self.held = VideoPairs(data, held, cfg.data.min_gap, flip=False, others=everyone)
            except PuppetryError as exc:
                logger.warning("held-out clips give no pairs (%s); samples show training pairs", exc)
        self.stills = StillImages(cfg.data.stills) if cfg.data.stills else None
        logger.info("PuppeteerGAN data: %d training clips, %d held out%s", len(self.pairs.clips), len(held),
                    f", {len(self.stills)} stills" if self.stills else "")
        torch.manual_seed(cfg.train.seed)
        self.nets = nn.ModuleDict({"sketch": build_sketching(cfg.sketch_model),
                                   "color": build_coloring(cfg.color_model),
                                   "disc": MultiScaleDiscriminator(cfg.color_model, len(MASK_LABELS))})
        self.nets.to(trainer.device)
        self.perceptual = None
        if cfg.color_losses.vgg_weights:
            self.perceptual = PerceptualLoss(load_vgg19(cfg.color_losses.vgg_weights),
                                             cfg.color_losses.layer_weights, (1.0,)).to(trainer.device)
        elif cfg.color.steps and cfg.color_losses.perceptual_weight:
            logger.warning("color_losses.vgg_weights is not set: the coloring network trains without the "
                           "perceptual term of Eq. 7 (give torchvision VGG19 weights to train with it)")
        self.generator = torch.Generator()
        self.ddp: dict[str, nn.Module] = {}

    # ------------------------------------------------------------------------------------------ stages
    def stages(self) -> list[Stage]:
        return [Stage("sketch", self.config.sketch.steps), Stage("color", self.config.color.steps)]

    def modules(self) -> dict[str, nn.Module]:
        return dict(self.nets.items())

    def start_stage(self, stage: Stage) -> dict[str, torch.optim.Optimizer]:
        ctx = self.trainer.ctx
        if stage.name == "sketch":
            o, net = self.config.sketch, self.nets["sketch"].train()
            self.ddp = {"sketch": wrap_ddp(net, ctx)}
            generator = [p for k in ("el", "em", "gr") for p in getattr(net, k).parameters()]
            return {"G": torch.optim.Adam(generator, lr=o.lr, betas=tuple(o.betas)),
                    "D": torch.optim.Adam(net.di.parameters(), lr=o.lr_disc, betas=tuple(o.betas))}
        o = self.config.color
        self.nets["sketch"].eval().requires_grad_(False)
        self.ddp = {k: wrap_ddp(self.nets[k].train(), ctx) for k in ("color", "disc")}
        return {"C": torch.optim.Adam(self.nets["color"].parameters(), lr=o.lr, betas=tuple(o.betas)),
                "DC": torch.optim.Adam(self.nets["disc"].parameters(), lr=o.lr_disc, betas=tuple(o.betas))}

    def train_step(self, stage: Stage, step: int, rng: np.random.Generator) -> dict[str, float]:
        if stage.name == "sketch":
            return self._sketch_step(rng)
        return self._color_step(rng)

    # ---------------------------------------------------------------------------------------- sketching
    def _sketch_step(self, rng: np.random.Generator) -> dict[str, float]:
        cfg, net = self.config, self.nets["sketch"]
        b = self.pairs.sketch_batch(rng, cfg.train.batch_size, cfg.sketch_model.mask_size, self.trainer.device)
        with self.trainer.autocast():
            f_i, f_j, f_v = net.el(b.points_i), net.el(b.points_j), net.el(b.points_other)
            loss_di = identity_loss_discriminator(net.di, f_i, f_j, f_v, f_j)               # Eq. 4, D_I's side
        self.trainer.optimize(loss_di, "D")
        with torch.no_grad():
            real = net.di(f_i.detach(), f_j.detach())
            fake = net.di(f_v.detach(), f_j.detach())
            di_acc = 0.5 * ((real > 0).float().mean() + (fake < 0).float().mean())
        w = cfg.sketch_losses
        with self.trainer.autocast():
            points, logits = net.gr(f_j, net.em(one_hot(b.labels_i)))                         # Eq. 1
            loss_ld = landmark_loss(points.float(), b.points_j)                               # Eq. 2
            loss_seg = segmentation_loss(logits.float(), b.labels_j)                          # Eq. 3
            with frozen(net.di):
                loss_idt = identity_loss_encoder(net.di, f_v, f_j)                            # Eq. 4, E_L's side
            total = w.landmark_weight * loss_ld + w.seg_weight * loss_seg + w.identity_weight * loss_idt
        self.trainer.optimize(total, "G")                                                     # Eq. 5
        seg_acc = (logits.detach().argmax(1) == b.labels_j).float().mean()
        return {"loss_ld": loss_ld.item(), "loss_seg": loss_seg.item(), "loss_idt": loss_idt.item(),
                "loss_di": loss_di.item(), "di_acc": di_acc.item(), "seg_acc": seg_acc.item()}

    # ----------------------------------------------------------------------------------------- coloring
    def _color_batch(self, rng: np.random.Generator) -> tuple[ColorBatch, int]:
        """Video pairs, then stills under geometry dropout (their count is returned)."""
        cfg, dev = self.config, self.trainer.device
        size, total = cfg.color_model.size, cfg.train.batch_size
        n_still = int(round(total * cfg.data.still_share)) if self.stills is not None else 0
        n_video = total - n_still
        parts = []
        if n_video:
            parts.append(self.pairs.color_batch(rng, n_video, size, dev))
        if n_still:
            parts.append(self.stills.color_batch(rng, n_still, size, self.pairs.canonical, dev, cfg.data.flip))
        batch = parts[0] if len(parts) == 1 else concat(*parts)
        return batch, n_still

    def _color_step(self, rng: np.random.Generator) -> dict[str, float]:
        cfg, n, d = self.config, self.nets, self.ddp
        self.generator.manual_seed(int(rng.integers(2 ** 62)))
        b, n_still = self._color_batch(rng)
        mask_s, mask_t = one_hot(b.labels_s), one_hot(b.labels_t)
        image_s = b.image_s
        if n_still:                                           # geometry dropout on the stills' sources
            k = b.image_s.shape[0] - n_still
            dropped_image, dropped_mask, _ = geometry_dropout(image_s[k:], mask_s[k:], cfg.dropout, self.generator)
            image_s = torch.cat([image_s[:k], dropped_image])
            mask_s = torch.cat([mask_s[:k], dropped_mask])
        with self.trainer.autocast():
            fake = d["color"](image_s, mask_s, mask_t, b.points_s, b.points_t).float()
            scores = d["disc"](torch.cat([b.image_t, fake.detach()]), torch.cat([mask_t, mask_t]))
        half = b.image_t.shape[0]
        real_out = [[f[:half] for f in scale] for scale in scores]
        fake_out = [[f[half:] for f in scale] for scale in scores]
        loss_d = 0.5 * (gan_loss(real_out, True) + gan_loss(fake_out, False))
        self.trainer.optimize(loss_d, "DC")
        w = cfg.color_losses
        with self.trainer.autocast():
            with frozen(n["disc"]):
                fake_scores = n["disc"](fake, mask_t)
            real_feats = [[f.detach() for f in scale] for scale in real_out]
            l1 = (fake - b.image_t).abs().mean()
            adv = gan_loss(fake_scores, True)
            feat = feature_matching_loss(fake_scores, real_feats)
            perc = self.perceptual(fake, b.image_t) if self.perceptual is not None else fake.new_zeros(())
            total = w.l1_weight * l1 + w.perceptual_weight * perc + w.gan_weight * adv + w.feature_weight * feat
        self.trainer.optimize(total, "C")                                                       # Eq. 7
        out = {"l1": l1.item(), "perceptual": float(perc), "gan": adv.item(), "feature": feat.item(),
               "loss_d": loss_d.item()}
        for i, skip in enumerate(m for m in unwrap(n["color"]).modules() if isinstance(m, WASIC)):
            out[f"mu_{i}"] = float(skip.mu.detach())
        return out

    # ---------------------------------------------------------------------------------- samples, export
    def _sample_source(self) -> VideoPairs:
        return self.held or self.pairs

    def samples(self, stage: Stage) -> dict[str, np.ndarray]:
        """Fixed pairs (held-out clips when there are some); see :mod:`puppetry.methods.puppeteergan.samples`."""
        pairs = self._sample_source()
        chosen = pairs.draw(np.random.default_rng(self.config.train.seed + 7), SAMPLE_PAIRS)
        with torch.no_grad(), evaluation(*self.nets.values()):
            out = {"sketch": sketch_strip(self.nets["sketch"], pairs, chosen, self.config, self.trainer.device)}
            if stage.name == "color":
                out["color"] = color_strip(self.nets["sketch"], self.nets["color"], pairs, chosen, self.config,
                                           self.trainer.device)
        return out

    def export(self, run_dir: Path) -> Path:
        """``RUN/puppeteergan.pt`` (format tag, both model configs, the sketching network without ``D_I``,
        the coloring network) and the sample strips and loss curves as PNGs beside it."""
        from puppetry.training.checkpoint import save_checkpoint
        from puppetry.training.curves import write_run_images

        run_dir = Path(run_dir)
        path = run_dir / "puppeteergan.pt"
        sketch = {k: v for k, v in unwrap(self.nets["sketch"]).state_dict().items() if not k.startswith("di.")}
        save_checkpoint(path, {"format": WEIGHTS_FORMAT, "version": 1,
                               "sketch_model": to_dict(self.config.sketch_model),
                               "color_model": to_dict(self.config.color_model),
                               "canonical": self.pairs.canonical.tolist(),
                               "sketch": sketch, "color": unwrap(self.nets["color"]).state_dict()})
        write_run_images(run_dir, self.samples(self.stages()[-1]))
        logger.info("wrote %s", path)
        return path

