"""Training windows of speech and the mouth motion it came with, from a prepared dataset's clips.

A clip trains when it has a soundtrack with speech in it and a mouth that moves (see
:class:`~puppetry.methods.audio2motion.config.SpeechData`); every skipped clip is logged with its reason.
A window is ``data.window`` seconds of one clip: the log-mel rows of its audio (with the model's reach of
context on both sides, played at a random gain over random noise) and the targets of the frames inside.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from puppetry.data.dataset import open_dataset
from puppetry.media.audio import Audio, log_mel
from puppetry.methods.audio2motion.config import SpeechData
from puppetry.methods.audio2motion.features import SPEECH_MEL, frame_rows, loudness_db, normalise_gain
from puppetry.methods.audio2motion.targets import MouthTargets, mouth_targets

logger = logging.getLogger(__name__)


@dataclass
class SpeechClip:
    """One usable clip: its id, identity, frame rate, gain-normalised audio (sample 0 at frame 0) and targets."""

    id: str
    identity: str
    fps: float
    audio: Audio
    targets: MouthTargets

    @property
    def num_frames(self) -> int:
        return len(self.targets.lips)


def load_speech_clips(root: str | Path, config: SpeechData) -> list[SpeechClip]:
    """Every clip of the dataset at ``root`` that has speech and a moving mouth (others logged and skipped)."""
    ds = open_dataset(root)
    clips = []
    for info in ds.clips:
        audio = ds.audio(info.id)
        meta = ds.meta(info.id)
        fps = float(meta["fps"])                       # the clip's own rate (the video's over --every)
        reason = None
        if audio is None:
            reason = "no soundtrack"
        elif info.num_frames / fps < config.min_seconds:
            reason = f"shorter than {config.min_seconds:g} s"
        else:
            level = loudness_db(audio, fps, info.num_frames)
            targets = mouth_targets(ds.landmarks(info.id)["landmarks478"])
            if np.quantile(level, 0.9) < config.silence_db:
                reason = f"silent soundtrack (loudest tenth {np.quantile(level, 0.9):.0f} dBFS)"
            elif targets.lips.std() < config.min_lip_motion:
                reason = f"the mouth hardly moves (lip-open std {targets.lips.std():.3f})"
        if reason:
            logger.info("audio2motion: not using clip %s: %s", info.id, reason)
            continue
        clips.append(SpeechClip(info.id, info.identity, fps, normalise_gain(audio), targets))
    return clips


def split_speakers(clips: list[SpeechClip], holdout: list[str]) -> tuple[list[SpeechClip], list[SpeechClip]]:
    """Training and held-out clips: a clip is held out when its identity contains one of ``holdout``."""
    held = [c for c in clips if any(h and h in c.identity for h in holdout)]
    return [c for c in clips if c not in held], held


def feature_statistics(clips: list[SpeechClip]) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and deviation of the clips' log-mel rows (``n_mels`` each)."""
    rows = np.concatenate([log_mel(c.audio, SPEECH_MEL) for c in clips])
    return rows.mean(0).astype(np.float32), np.maximum(rows.std(0), 1e-3).astype(np.float32)


@dataclass
class WindowBatch:
    """``B`` windows: ``mel`` B x K x n_mels, ``rows`` B x F int64 (each frame's mel row), ``lips`` B x F,
    ``shape`` B x F x P x 2 and ``mask`` B x F (False past a short clip's end)."""

    mel: np.ndarray
    rows: np.ndarray
    lips: np.ndarray
    shape: np.ndarray
    mask: np.ndarray


def draw_windows(rng: np.random.Generator, clips: list[SpeechClip], batch: int, config: SpeechData,
                 reach: int) -> WindowBatch:
    """``batch`` random windows (clips drawn in proportion to their length); ``reach`` mel rows of context
    are added at both ends."""
    lengths = np.array([c.num_frames for c in clips], np.float64)
    picks = rng.choice(len(clips), batch, p=lengths / lengths.sum())
    max_fps = max(c.fps for c in clips)
    most = int(np.ceil(config.window * max_fps))
    pad = reach * SPEECH_MEL.hop
    num_rows = int(round((config.window + 2 * pad) / SPEECH_MEL.hop)) + 1
    mel = np.zeros((batch, num_rows, SPEECH_MEL.n_mels), np.float32)
    rows = np.zeros((batch, most), np.int64)
    lips = np.zeros((batch, most), np.float32)
    points = clips[0].targets.shape.shape[1]
    shape = np.zeros((batch, most, points, 2), np.float32)
    mask = np.zeros((batch, most), bool)
    for b, k in enumerate(picks):
        clip = clips[k]
        n = min(int(config.window * clip.fps), clip.num_frames)
        start = int(rng.integers(0, clip.num_frames - n + 1))
        samples = clip.audio.segment(start / clip.fps - pad, config.window + 2 * pad)
        samples = samples * 10.0 ** (rng.uniform(-config.gain_db, config.gain_db) / 20.0)
        samples = samples + rng.standard_normal(len(samples)).astype(np.float32) * (
            10.0 ** (rng.uniform(-100.0, config.noise_db) / 20.0))
        m = log_mel(Audio(np.clip(samples, -1, 1).astype(np.float32), clip.audio.rate), SPEECH_MEL)
        m = m + np.linspace(-0.5, 0.5, m.shape[1], dtype=np.float32) * np.float32(       # dB -> natural log power
            rng.uniform(-config.tilt_db, config.tilt_db) * np.log(10.0) / 10.0)
        for _ in range(config.band_masks):
            width, low = int(rng.integers(0, 9)), int(rng.integers(0, m.shape[1]))
            m[:, low:low + width] = m.mean()
        mel[b, :min(len(m), num_rows)] = m[:num_rows]
        rows[b, :n] = frame_rows(n, clip.fps, num_rows) + reach
        lips[b, :n] = clip.targets.lips[start:start + n]
        shape[b, :n] = clip.targets.shape[start:start + n]
        mask[b, :n] = True
    rows = np.clip(rows, 0, num_rows - 1)
    return WindowBatch(mel, rows, lips, shape, mask)
