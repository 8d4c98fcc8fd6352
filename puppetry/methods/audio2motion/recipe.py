"""``puppetry train audio2motion``: the speech model on a prepared dataset's clips that carry speech.

Per step a batch of windows (:func:`~puppetry.methods.audio2motion.data.draw_windows`) goes through
:class:`~puppetry.methods.audio2motion.networks.SpeechToMouth`; each frame's output row is compared with
its tracked mouth:

    L = w_lip |l - l*|_1 + w_shape |S - S*|_1 + w_vel |Δl - Δl*|_1

with ``l`` lip-open, ``S`` the mouth points' change from rest and ``Δ`` the change from the previous frame
(means over the frames inside each window). At the end, ``RUN/audio2motion.pt`` holds the network, the
training speakers' mean rest face and their blink and sway statistics, and the held-out speakers are
scored against the loudness baseline (``RUN/audio2motion_report.json`` and ``samples_lips.png``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from puppetry.errors import PuppetryError
from puppetry.methods.audio2motion.config import Audio2MotionConfig
from puppetry.methods.audio2motion.data import (SpeechClip, draw_windows, feature_statistics, load_speech_clips,
                                                split_speakers)
from puppetry.methods.audio2motion.evaluation import summarise, sync_scores
from puppetry.methods.audio2motion.features import loudness_db
from puppetry.methods.audio2motion.inference import WEIGHTS_FILE, export_payload, predict_mouth
from puppetry.methods.audio2motion.networks import SpeechToMouth, split_output
from puppetry.methods.audio2motion.targets import motion_statistics
from puppetry.training.config import to_dict
from puppetry.training.distributed import unwrap, wrap_ddp
from puppetry.training.freezing import evaluation
from puppetry.training.recipe import Recipe, Stage

logger = logging.getLogger(__name__)


class Audio2MotionRecipe(Recipe):
    """Trains :class:`SpeechToMouth` (module docstring)."""

    name = "audio2motion"
    config_class = Audio2MotionConfig

    def __init__(self, config: Audio2MotionConfig, data: Path, trainer):
        super().__init__(config, data, trainer)
        clips = load_speech_clips(data, config.data)
        self.train_clips, self.heldout = split_speakers(clips, config.data.holdout)
        if not self.train_clips:
            raise PuppetryError(f"dataset '{data}' has no clip with speech and a moving mouth to train on "
                                "(prepare talking-head videos that have their soundtrack)")
        speakers = sorted({c.identity for c in self.train_clips})
        logger.info("audio2motion data: %d clips of %d speakers (%.0f s) train, %d clips held out",
                    len(self.train_clips), len(speakers),
                    sum(c.num_frames / c.fps for c in self.train_clips), len(self.heldout))
        torch.manual_seed(config.train.seed)            # identical initial weights on every process
        self.net = SpeechToMouth(config.model)
        mean, std = feature_statistics(self.train_clips)
        self.net.mel_mean.copy_(torch.from_numpy(mean))
        self.net.mel_std.copy_(torch.from_numpy(std))
        self.net.to(trainer.device)
        self.nets = nn.ModuleDict({"net": self.net})
        self.ddp: nn.Module = self.net

    def stages(self) -> list[Stage]:
        return [Stage("train", self.config.optim.steps)]

    def modules(self) -> dict[str, nn.Module]:
        return dict(self.nets.items())

    def start_stage(self, stage: Stage) -> dict[str, torch.optim.Optimizer]:
        self.ddp = wrap_ddp(self.net, self.trainer.ctx)
        o = self.config.optim
        return {"net": torch.optim.AdamW(self.net.parameters(), lr=o.lr, weight_decay=o.weight_decay)}

    def train_step(self, stage: Stage, step: int, rng: np.random.Generator) -> dict[str, float]:
        batch = draw_windows(rng, self.train_clips, self.config.train.batch_size, self.config.data, self.net.reach)
        dev = self.trainer.device
        mel, rows = torch.from_numpy(batch.mel).to(dev), torch.from_numpy(batch.rows).to(dev)
        lips_t, shape_t = torch.from_numpy(batch.lips).to(dev), torch.from_numpy(batch.shape).to(dev)
        mask = torch.from_numpy(batch.mask).to(dev).float()
        with self.trainer.autocast():
            out = self.ddp(mel).float()
        out = torch.gather(out, 1, rows[..., None].expand(-1, -1, out.shape[-1]))
        lips, shape = split_output(out)
        frames = mask.sum().clamp(min=1)
        lip = ((lips - lips_t).abs() * mask).sum() / frames
        shp = ((shape - shape_t).abs().mean((-1, -2)) * mask).sum() / frames
        pair = mask[:, 1:] * mask[:, :-1]
        vel = (((lips[:, 1:] - lips[:, :-1]) - (lips_t[:, 1:] - lips_t[:, :-1])).abs() * pair).sum() \
            / pair.sum().clamp(min=1)
        corr = window_correlation(lips, lips_t, mask)
        w = self.config.losses
        loss = w.lip_weight * lip + w.shape_weight * shp + w.velocity_weight * vel + w.correlation_weight * (1 - corr)
        self.trainer.optimize(loss, "net")
        return {"loss": loss.item(), "lip_l1": lip.item(), "shape_l1": shp.item(), "velocity_l1": vel.item(),
                "lip_r": corr.item()}

    # --------------------------------------------------------------------------------- samples, export
    def _predict(self, clip: SpeechClip) -> np.ndarray:
        net = unwrap(self.net)
        with evaluation(net):
            lips, _ = predict_mouth(net, clip.audio, clip.fps, clip.num_frames)
        return lips

    def samples(self, stage: Stage) -> dict[str, np.ndarray]:
        """Lip-open over time for up to three clips (held-out first): real black, predicted red, the
        loudness baseline grey (scaled to the real series' range)."""
        clips = (self.heldout + self.train_clips)[:3]
        return {"lips": np.concatenate([_plot(c, self._predict(c)) for c in clips], 0)}

    def export(self, run_dir: Path) -> Path:
        """``RUN/audio2motion.pt``, the held-out report and the lip-open plots."""
        from puppetry.training.checkpoint import save_checkpoint
        from puppetry.training.curves import write_run_images

        run_dir = Path(run_dir)
        neutral = np.mean([c.targets.rest for c in self.train_clips], 0)
        statistics = motion_statistics([c.targets for c in self.train_clips], [c.fps for c in self.train_clips])
        path = run_dir / WEIGHTS_FILE
        save_checkpoint(path, export_payload(unwrap(self.net), to_dict(self.config.model), neutral, statistics))
        report = self.report()
        (run_dir / "audio2motion_report.json").write_text(json.dumps(report, indent=2))
        write_run_images(run_dir, self.samples(self.stages()[-1]))
        logger.info("wrote %s", path)
        return path

    def report(self) -> dict:
        """Held-out (or, without any, training) clips scored against the loudness baseline."""
        clips, split = (self.heldout, "held-out") if self.heldout else (self.train_clips, "training")
        rows = []
        for clip in clips:
            predicted = self._predict(clip)
            baseline = loudness_db(clip.audio, clip.fps, clip.num_frames)
            rows.append({"clip": clip.id, "identity": clip.identity, "frames": clip.num_frames,
                         "model": sync_scores(predicted, clip.targets.lips),
                         "baseline": sync_scores(baseline, clip.targets.lips)})
        report = {"split": split, "clips": rows,
                  "model": summarise(rows, "model"), "baseline": summarise(rows, "baseline")}
        logger.info("audio2motion on %s clips: lip-open r %.3f (loudness baseline %.3f), mean |offset| %.1f frames "
                    "(baseline %.1f)", split, report["model"]["r"], report["baseline"]["r"],
                    report["model"]["abs_offset"], report["baseline"]["abs_offset"])
        return report


def window_correlation(predicted: torch.Tensor, real: torch.Tensor, mask: torch.Tensor,
                       min_std: float = 0.02) -> torch.Tensor:
    """Mean Pearson correlation of ``B x F`` predicted and real lip-open over each window's frames
    (``mask``), over the windows whose real lip-open deviates by at least ``min_std`` (0 when none does)."""
    frames = mask.sum(1).clamp(min=1)
    centred = [(x - (x * mask).sum(1, keepdim=True) / frames[:, None]) * mask for x in (predicted, real)]
    cov = (centred[0] * centred[1]).sum(1)
    std_p, std_r = (((c * c).sum(1) / frames).sqrt() for c in centred)
    r = cov / frames / (std_p * std_r).clamp(min=1e-6)
    moving = (std_r >= min_std).float()
    return (r * moving).sum() / moving.sum().clamp(min=1)


def _plot(clip: SpeechClip, predicted: np.ndarray, width: int = 640, height: int = 110) -> np.ndarray:
    """One clip's lip-open curves on a white ``height x width x 3`` uint8 strip."""
    canvas = np.full((height, width, 3), 255, np.uint8)
    real = clip.targets.lips
    loud = loudness_db(clip.audio, clip.fps, clip.num_frames)
    loud = (loud - loud.min()) / max(float(np.ptp(loud)), 1e-6) * max(float(np.ptp(real)), 1e-3) + real.min()
    x = np.linspace(0, width - 1, len(real))
    for series, color in ((loud, (170, 170, 170)), (real, (0, 0, 0)), (predicted, (220, 0, 0))):
        y = (height - 8) - np.clip(series, 0, 1) * (height - 24)
        pts = np.stack([x, y], 1).round().astype(np.int32)
        cv2.polylines(canvas, [pts], False, color, 1, cv2.LINE_AA)
    cv2.putText(canvas, clip.identity[:40], (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas
