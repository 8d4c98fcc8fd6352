"""Training pairs for LivePortrait from a prepared dataset (``puppetry prepare``).

A pair is a source and a driving frame of one clip (Stage I: same identity, face vid2vid's
self-reenactment) or, for Stage II's stitching, a driving frame of another identity (paper 001,
Sec. 3.3: "cross-id rather than same-id motion"). A one-frame clip (a still image) gives a pair of the
same frame twice, which is the paper's mixed image-video training. Frames and label maps are decoded on
demand; landmarks and pose are read per clip and cached.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from puppetry.data.dataset import open_dataset
from puppetry.errors import PuppetryError
from puppetry.methods.liveportrait.training.conditions import landmark_conditions
from puppetry.methods.liveportrait.training.config import DataSettings
from puppetry.methods.liveportrait.training.regions import normalize_landmarks

logger = logging.getLogger(__name__)

_CACHE = 512          # clips whose landmarks stay in memory

Frame = tuple[int, int]          # (clip index, frame index)


@dataclass
class PairBatch:
    """A batch of (source, driving) pairs on one device; images RGB float in [0, 1].

    Attributes:
        source, driving: ``B x 3 x N x N`` at the networks' input size.
        source_out, target: the same frames ``B x 3 x 2N x 2N`` at G's output size.
        lm_source, lm_driving: ``B x 478 x 2`` normalised landmarks.
        pose_source, pose_driving: ``B x 3`` (yaw, pitch, roll) in degrees (``landmarks.npz`` ``pose``).
        eyes_source, lip_source: ``B x 2`` and ``B x 1`` eyes- and lip-open conditions (same for driving).
        labels_source: ``B x S x S`` label maps of the source frames, or None (not stored / not asked for).
    """

    source: torch.Tensor
    driving: torch.Tensor
    source_out: torch.Tensor
    target: torch.Tensor
    lm_source: torch.Tensor
    lm_driving: torch.Tensor
    pose_source: torch.Tensor
    pose_driving: torch.Tensor
    eyes_source: torch.Tensor
    lip_source: torch.Tensor
    eyes_driving: torch.Tensor
    lip_driving: torch.Tensor
    labels_source: torch.Tensor | None = None

    @property
    def size(self) -> int:
        return self.source.shape[0]


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    if image.shape[0] == size:
        return image
    interp = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_CUBIC
    return cv2.resize(image, (size, size), interpolation=interp)


def _tensor(images: list[np.ndarray], device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.stack(images).astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous().to(device)


class PairSampler:
    """Draws and loads pairs.

    Args:
        root: the prepared dataset.
        settings: the ``data:`` section.
        input_size, output_size: sides of the network inputs and of G's output.
        seed: fixes the pairs of ``settings.fixed_pairs``.

    Raises:
        PuppetryError: the dataset has no frames (``--landmarks-only``) or no usable clip.
    """

    def __init__(self, root: str | Path, settings: DataSettings, input_size: int, output_size: int, seed: int = 0):
        self.ds = open_dataset(root)
        if not self.ds.has_frames:
            raise PuppetryError(f"dataset '{root}' was prepared with --landmarks-only; LivePortrait trains on frames")
        self.settings = settings
        self.clips = [c for c in self.ds.clips if c.num_frames >= settings.min_frames]
        if not self.clips:
            raise PuppetryError(f"dataset '{root}' has no clip of {settings.min_frames} frames or more")
        self.input_size, self.output_size = input_size, output_size
        self.has_masks = self.ds.meta(self.clips[0].id).get("masks_offset") is not None
        identities = sorted({c.identity for c in self.clips})
        self.identity = np.array([identities.index(c.identity) for c in self.clips])
        self.lengths = np.array([c.num_frames for c in self.clips])
        self._cache: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        if self.ds.size < output_size:
            logger.warning("dataset frames are %d pixels but G outputs %d: targets are upscaled", self.ds.size,
                           output_size)
        self.fixed: list[tuple[Frame, Frame]] | None = None
        if settings.fixed_pairs:
            fixed_rng = np.random.default_rng(seed)
            self.fixed = self.draw(fixed_rng, settings.fixed_pairs, cross=False)
        logger.info("LivePortrait data: %d clips, %d identities, %d frames%s", len(self.clips), len(identities),
                    int(self.lengths.sum()), ", label maps" if self.has_masks else ", no label maps")

    # ------------------------------------------------------------------------------------------ drawing
    def _frame_pair(self, rng: np.random.Generator, clip: int) -> tuple[int, int]:
        n = int(self.lengths[clip])
        gap = self.settings.max_frame_gap
        t_s = int(rng.integers(0, n))
        if gap:
            t_d = int(np.clip(t_s + rng.integers(-gap, gap + 1), 0, n - 1))
        else:
            t_d = int(rng.integers(0, n))
        return t_s, t_d

    def draw(self, rng: np.random.Generator, batch: int, cross: bool) -> list[tuple[Frame, Frame]]:
        """``batch`` pairs ((clip, t) source, (clip, t) driving); ``cross``: driving of another identity."""
        if self.fixed is not None:
            return [self.fixed[i] for i in rng.integers(0, len(self.fixed), batch)]
        pairs = []
        for clip in rng.integers(0, len(self.clips), batch):
            t_s, t_d = self._frame_pair(rng, int(clip))
            d_clip = int(clip)
            if cross:
                others = np.flatnonzero(self.identity != self.identity[clip])
                d_clip = int(rng.choice(others)) if len(others) else int(clip)
                if d_clip != clip:
                    t_d = int(rng.integers(0, self.lengths[d_clip]))
            pairs.append(((int(clip), t_s), (d_clip, t_d)))
        return pairs

    # ------------------------------------------------------------------------------------------ loading
    def _landmarks(self, clip: int) -> tuple[np.ndarray, np.ndarray]:
        if clip in self._cache:
            self._cache.move_to_end(clip)
            return self._cache[clip]
        arrays = self.ds.landmarks(self.clips[clip].id)
        item = (arrays["landmarks478"][..., :2].astype(np.float32), arrays["pose"].astype(np.float32))
        self._cache[clip] = item
        if len(self._cache) > _CACHE:
            self._cache.popitem(last=False)
        return item

    def load(self, pairs: list[tuple[Frame, Frame]], device: torch.device, labels: bool = False) -> PairBatch:
        """Decode the pairs' frames (and the sources' label maps when ``labels`` and stored)."""
        out: dict[str, list] = {k: [] for k in ("src_in", "drv_in", "src_out", "drv_out", "lm_s", "lm_d", "pose_s",
                                                "pose_d", "lab")}
        for (cs, ts), (cd, td) in pairs:
            for clip, t, tag in ((cs, ts, "s"), (cd, td, "d")):
                frame = self.ds.frame(self.clips[clip].id, t)
                lm, pose = self._landmarks(clip)
                out["src_in" if tag == "s" else "drv_in"].append(_resize(frame, self.input_size))
                out["src_out" if tag == "s" else "drv_out"].append(_resize(frame, self.output_size))
                out[f"lm_{tag}"].append(lm[t])
                out[f"pose_{tag}"].append(pose[t])
            if labels and self.has_masks:
                out["lab"].append(self.ds.mask(self.clips[cs].id, ts))
        lm_s, lm_d = np.stack(out["lm_s"]), np.stack(out["lm_d"])
        eyes_s, lip_s = landmark_conditions(lm_s)
        eyes_d, lip_d = landmark_conditions(lm_d)
        f32 = lambda a: torch.as_tensor(a, dtype=torch.float32, device=device)  # noqa: E731
        size = self.ds.size
        return PairBatch(
            source=_tensor(out["src_in"], device), driving=_tensor(out["drv_in"], device),
            source_out=_tensor(out["src_out"], device), target=_tensor(out["drv_out"], device),
            lm_source=normalize_landmarks(f32(lm_s), size), lm_driving=normalize_landmarks(f32(lm_d), size),
            pose_source=f32(np.stack(out["pose_s"])), pose_driving=f32(np.stack(out["pose_d"])),
            eyes_source=f32(eyes_s), lip_source=f32(lip_s), eyes_driving=f32(eyes_d), lip_driving=f32(lip_d),
            labels_source=torch.as_tensor(np.stack(out["lab"]), device=device).long() if out["lab"] else None)

    def batch(self, rng: np.random.Generator, batch: int, device: torch.device, cross: bool = False,
              labels: bool = False) -> PairBatch:
        """Draw and load ``batch`` pairs."""
        return self.load(self.draw(rng, batch, cross), device, labels)
