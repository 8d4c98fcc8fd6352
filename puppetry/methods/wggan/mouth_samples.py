"""hrh-GAN's training samples: real face crops with their inner mouth as the hole (paper 003, Sec. 4.2).

A sample is one frame of a prepared dataset (``puppetry prepare``), cut with the rectified face crop of
:func:`puppetry.methods.wggan.face_crop.rectify` at the stage's side, with:

- the hole: the opening between the lips from the frame's Face Mesh landmarks
  (:func:`~puppetry.methods.wggan.face_crop.inner_mouth_mask`, grown by ``data.hole_grow`` of the mouth width);
  003: "the mask of the 'hidden' inner mouth region is computed with the detected landmarks";
- the local discriminator's square of half the side centred on the mouth (:func:`~.face_crop.mouth_box`);
- augmentation by random crops and flips (003: "we also use flipping and random cropping"): a random
  window of the rectified crop (zoom and shift of up to ``data.random_crop``) resampled to the side.

Which frames: a closed mouth leaves a hole of a few pixels, so frames whose lip-open ratio
(:func:`puppetry.face.pose.lip_open_ratio`) is below ``data.min_lip_open`` are never drawn and the others
are drawn with probability proportional to it (open mouths, which show teeth and tongue, more often).
A clip is drawn uniformly, then a frame in it; a clip without an open mouth is redrawn. Landmarks are
read per clip when first drawn and kept in a small cache; frames are decoded one at a time.
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
from puppetry.face.crop import apply_affine
from puppetry.face.pose import lip_open_ratio
from puppetry.methods.wggan.completion_config import HrhGanData
from puppetry.methods.wggan.face_crop import inner_mouth_mask, mouth_box, rectify

logger = logging.getLogger(__name__)

_CACHE = 256            # clips whose landmarks and frame weights stay in memory
_REDRAWS = 64           # clip draws before giving up on finding an open mouth


@dataclass
class MouthBatch:
    """A batch on one device.

    Attributes:
        image: ``B x 3 x S x S`` ground-truth crops, RGB in [0, 1].
        mask: ``B x 1 x S x S`` the hole, 1 inside.
        corner: ``B x 2`` long, ``(x, y)`` of the local discriminator's ``S/2 x S/2`` square.
    """

    image: torch.Tensor
    mask: torch.Tensor
    corner: torch.Tensor

    @property
    def side(self) -> int:
        """The local square's side."""
        return self.image.shape[-1] // 2


class MouthSampler:
    """Draws and loads hrh-GAN samples from a prepared dataset.

    Args:
        root: the prepared dataset.
        settings: the ``data:`` section.

    Raises:
        PuppetryError: the dataset has no frames, or no clip with an open mouth.
    """

    def __init__(self, root: str | Path, settings: HrhGanData):
        self.ds = open_dataset(root)
        if not self.ds.has_frames:
            raise PuppetryError(f"dataset '{root}' was prepared with --landmarks-only; hrh-GAN trains on frames")
        self.settings = settings
        self.clips = [c for c in self.ds.clips if c.num_frames >= settings.min_frames]
        if not self.clips:
            raise PuppetryError(f"dataset '{root}' has no clip of {settings.min_frames} frames or more")
        self._cache: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._closed: set[int] = set()
        logger.info("hrh-GAN data: %d clips, %d frames", len(self.clips), sum(c.num_frames for c in self.clips))

    def _clip(self, clip: int) -> tuple[np.ndarray, np.ndarray]:
        """The clip's landmarks ``T x 478 x 3`` and frame probabilities ``T`` (zero for closed mouths)."""
        if clip in self._cache:
            self._cache.move_to_end(clip)
            return self._cache[clip]
        lm = self.ds.landmarks(self.clips[clip].id)["landmarks478"].astype(np.float64)
        ratio = lip_open_ratio(lm[..., :2])
        weight = np.where(ratio >= self.settings.min_lip_open, np.maximum(ratio, 1e-6), 0.0)
        total = weight.sum()
        item = (lm, weight / total if total > 0 else weight)
        self._cache[clip] = item
        if len(self._cache) > _CACHE:
            self._cache.popitem(last=False)
        return item

    def draw(self, rng: np.random.Generator, batch: int) -> list[tuple[int, int]]:
        """``batch`` frames ``(clip, t)`` with open mouths."""
        out = []
        while len(out) < batch:
            for _ in range(_REDRAWS):
                clip = int(rng.integers(0, len(self.clips)))
                if clip in self._closed:
                    continue
                _, p = self._clip(clip)
                if p.sum() > 0:
                    out.append((clip, int(rng.choice(len(p), p=p))))
                    break
                self._closed.add(clip)
            else:
                if len(self._closed) == len(self.clips):
                    raise PuppetryError(f"no frame of '{self.ds.root}' has a lip-open ratio of "
                                        f"{self.settings.min_lip_open} or more; lower data.min_lip_open")
        return out

    def sample(self, clip: int, t: int, size: int, rng: np.random.Generator | None = None
               ) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        """One sample: ``size x size x 3`` uint8 crop, ``size x size`` float32 hole and the local square's corner.

        With ``rng`` the crop is augmented (random window, random flip); without, it is the plain
        rectified crop that inference cuts.
        """
        lm, _ = self._clip(clip)
        frame = self.ds.frame(self.clips[clip].id, t)
        points = lm[t]
        s = self.settings
        flip = False
        matrix = rectify(points, size).matrix
        if rng is not None and s.random_crop > 0:
            # A random window of the rectified crop resampled to the side: zoom log-uniform in
            # [1 / (1 + r), 1 + r] about the centre and shift up to r / 2 of the side, neutral on average
            # so that training faces keep the scale and place inference crops give them.
            r = s.random_crop
            zoom = float(np.exp(rng.uniform(-np.log1p(r), np.log1p(r))))
            shift = rng.uniform(-r / 2, r / 2, 2) * size
            centre = (size - 1) / 2
            offset = zoom * (matrix[:, 2:] - centre) + centre + shift[:, None]
            matrix = np.concatenate([zoom * matrix[:, :2], offset], 1)
        if rng is not None and s.flip:
            flip = bool(rng.integers(0, 2))
        crop = cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        xy = apply_affine(points, matrix)
        hole = inner_mouth_mask(xy, size, s.hole_grow)
        x, y = mouth_box(xy, size, size // 2)
        if flip:
            crop, hole = crop[:, ::-1], hole[:, ::-1]
            x = size - size // 2 - x
        return np.ascontiguousarray(crop), np.ascontiguousarray(hole), (x, y)

    def load(self, frames: list[tuple[int, int]], size: int, device: torch.device,
             rng: np.random.Generator | None = None) -> MouthBatch:
        """Cut and stack ``frames`` at ``size`` (augmented when ``rng`` is given)."""
        crops, holes, corners = zip(*(self.sample(c, t, size, rng) for c, t in frames))
        image = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().div_(255.0)
        mask = torch.from_numpy(np.stack(holes))[:, None]
        return MouthBatch(image.contiguous().to(device), mask.to(device),
                          torch.tensor(corners, dtype=torch.long, device=device))

    def batch(self, rng: np.random.Generator, batch: int, size: int, device: torch.device) -> MouthBatch:
        """Draw and load ``batch`` augmented samples at ``size``."""
        return self.load(self.draw(rng, batch), size, device, rng)
