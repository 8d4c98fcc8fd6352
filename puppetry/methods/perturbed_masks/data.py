"""Training pairs for perturbed masks: a source and a driving frame of one clip (paper 004, Sec. 3.2).

The clips come from a prepared dataset (``puppetry prepare --whole-frames``, or a face dataset, whose
frames are face crops) or straight from a FOMM-style folder of videos (:mod:`puppetry.data.whole_frames`).
Both frames of a pair are flipped together half of the time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from puppetry.data.whole_frames import FrameClips
from puppetry.errors import PuppetryError


@dataclass
class FramePairBatch:
    """``source``, ``driving``: ``B x 3 x S x S`` RGB float in [0, 1] on one device."""

    source: torch.Tensor
    driving: torch.Tensor


class FramePairs:
    """Draws (source, driving) frame pairs from some clips of a :class:`FrameClips`.

    Args:
        frames: the clips.
        clips: indices of the clips to draw from.
        flip: flip both frames of a pair horizontally half of the time.
    """

    def __init__(self, frames: FrameClips, clips: list[int], flip: bool = True):
        self.frames = frames
        self.clips = [c for c in clips if frames.num_frames(c) >= 2]
        if not self.clips:
            raise PuppetryError("no clip with at least two frames to draw training pairs from")
        self.flip = flip

    def draw(self, rng: np.random.Generator, n: int) -> list[tuple[int, int, int]]:
        """``n`` pairs ``(clip, source frame, driving frame)``, two different frames of one clip."""
        out = []
        for c in rng.choice(self.clips, size=n):
            count = self.frames.num_frames(int(c))
            a, b = rng.choice(count, size=2, replace=False)
            out.append((int(c), int(a), int(b)))
        return out

    def batch(self, rng: np.random.Generator, n: int, device: torch.device | str,
              pairs: list[tuple[int, int, int]] | None = None, augmented: bool = True) -> FramePairBatch:
        """A batch of ``n`` pairs (``pairs`` given: those, unflipped unless ``augmented``)."""
        pairs = pairs if pairs is not None else self.draw(rng, n)
        flips = rng.random(len(pairs)) < 0.5 if (self.flip and augmented) else np.zeros(len(pairs), bool)
        src, drv = [], []
        for (c, a, b), flip in zip(pairs, flips):
            s, d = self.frames.frame(c, a), self.frames.frame(c, b)
            src.append(s[:, ::-1] if flip else s)
            drv.append(d[:, ::-1] if flip else d)
        return FramePairBatch(_tensor(src, device), _tensor(drv, device))

    def tensor(self, frames: list[tuple[int, int]], device: torch.device | str) -> torch.Tensor:
        """``B x 3 x S x S`` of the frames ``(clip, t)``, unflipped."""
        return _tensor([self.frames.frame(c, t) for c, t in frames], device)


def _tensor(images: list[np.ndarray], device: torch.device | str) -> torch.Tensor:
    """``B x 3 x S x S`` float in [0, 1] of ``S x S x 3`` uint8 images."""
    batch = np.ascontiguousarray(np.stack(images))
    return torch.from_numpy(batch).permute(0, 3, 1, 2).float().div(255).to(device)
