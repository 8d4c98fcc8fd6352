"""LD-Net's landmark data: normalisation (supplementary Sec. 7) and the per-identity corpus.

Landmarks are normalised so that the square bounding box of all points spans ``[-1, 1]``: the box's
centre goes to 0 and half its longer side to 1. The corpus groups a prepared dataset's frames by
identity (``puppetry prepare`` makes a clip's person its identity unless told otherwise).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from puppetry.errors import PuppetryError

logger = logging.getLogger(__name__)


def normalize(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map landmarks into their square bounding box ``[-1, 1]^2``.

    Args:
        points: ``... x N x 2`` (or ``... x N x 3``; only x, y are used) landmarks in pixels.
    Returns:
        ``(normalized ... x N x 2, center ... x 2, half ...)`` with ``points = normalized * half + center``.
    """
    xy = np.asarray(points, dtype=np.float64)[..., :2]
    lo, hi = xy.min(-2), xy.max(-2)
    center = (lo + hi) / 2
    half = np.maximum((hi - lo).max(-1) / 2, 1e-6)
    return (xy - center[..., None, :]) / half[..., None, None], center, half


def denormalize(normalized: np.ndarray, center: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Inverse of :func:`normalize`: ``... x N x 2`` pixels."""
    return np.asarray(normalized) * np.asarray(half)[..., None, None] + np.asarray(center)[..., None, :]


def select_points(arrays: dict[str, np.ndarray], landmark_set: str) -> np.ndarray:
    """The ``T x N x 2`` landmarks of one clip for a landmark set (``mediapipe478`` or ``dlib68``)."""
    key = {"mediapipe478": "landmarks478", "dlib68": "landmarks68"}[landmark_set]
    if key not in arrays:
        raise PuppetryError(f"the dataset has no {key}; prepare it again with puppetry prepare")
    return np.asarray(arrays[key], dtype=np.float32)[..., :2]


@dataclass
class LandmarkCorpus:
    """Normalised landmarks grouped by identity.

    Attributes:
        identities: identity names, index = class label.
        points: per identity, ``T_i x N x 2`` float32 normalised landmarks (all its clips' frames).
        raw: per identity, ``T_i x N x 3`` landmarks in crop pixels (x, y, z), for building test pairs.
    """

    identities: list[str]
    points: list[np.ndarray]
    raw: list[np.ndarray]

    def subset(self, indices: list[int]) -> "LandmarkCorpus":
        return LandmarkCorpus([self.identities[i] for i in indices], [self.points[i] for i in indices],
                              [self.raw[i] for i in indices])

    @property
    def num_frames(self) -> int:
        return int(sum(len(p) for p in self.points))


def load_corpus(root: str | Path, landmark_set: str, min_frames: int = 16) -> LandmarkCorpus:
    """Read every clip's landmarks from a prepared dataset (landmarks only; frames are never decoded).

    Raises:
        PuppetryError: the dataset has fewer than two usable identities.
    """
    from puppetry.data import open_dataset

    dataset = open_dataset(root)
    by_identity: dict[str, list[np.ndarray]] = {}
    raw_by_identity: dict[str, list[np.ndarray]] = {}
    for clip in dataset.clips:
        arrays = dataset.landmarks(clip.id)
        pts = select_points(arrays, landmark_set)
        ok = np.isfinite(pts).all(axis=(1, 2))
        by_identity.setdefault(clip.identity, []).append(pts[ok])
        raw = np.asarray(arrays["landmarks478"], np.float32) if landmark_set == "mediapipe478" else \
            np.concatenate([pts, np.zeros_like(pts[..., :1])], -1)
        raw_by_identity.setdefault(clip.identity, []).append(raw[ok])
    names, points, raws = [], [], []
    for name in sorted(by_identity):
        pts = np.concatenate(by_identity[name])
        if len(pts) < min_frames:
            logger.info("identity %s skipped: %d frames < %d", name, len(pts), min_frames)
            continue
        names.append(name)
        points.append(normalize(pts)[0].astype(np.float32))
        raws.append(np.concatenate(raw_by_identity[name]))
    if len(names) < 2:
        raise PuppetryError(f"{root} has {len(names)} identity(ies) with at least {min_frames} frames; "
                            "LD-Net needs at least two")
    return LandmarkCorpus(names, points, raws)


def split_identities(corpus: LandmarkCorpus, holdout: int, seed: int) -> tuple[LandmarkCorpus, LandmarkCorpus | None]:
    """Split off ``holdout`` identities (seeded) for evaluation; at least two stay for training."""
    n = len(corpus.identities)
    holdout = min(holdout, max(n - 2, 0))
    order = np.random.default_rng(seed).permutation(n)
    train = sorted(order[:n - holdout].tolist())
    held = sorted(order[n - holdout:].tolist())
    return corpus.subset(train), (corpus.subset(held) if held else None)


def sample_frames(corpus: LandmarkCorpus, identities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random frame of each given identity: ``B x N x 2`` float32 (vectorised over the batch)."""
    counts = np.array([len(corpus.points[i]) for i in identities])
    picks = (rng.random(len(identities)) * counts).astype(np.int64)
    return np.stack([corpus.points[i][t] for i, t in zip(identities, picks)])


def jitter(points: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """Small random rotations and scalings of normalised landmarks ``B x N x 2`` (then re-normalised)."""
    if amount <= 0:
        return points
    b = len(points)
    angle = rng.normal(0, amount, b)
    scale = np.exp(rng.normal(0, amount, b))
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    m = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)          # B x 2 x 2
    return normalize(points @ np.swapaxes(m, -1, -2))[0].astype(np.float32)
