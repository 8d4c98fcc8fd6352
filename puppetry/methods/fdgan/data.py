"""FD-GAN's training pairs (paper 002, Sec. 3.2): two frames ``x_T``, ``x'_T`` of one clip of a dataset made by
``puppetry prepare``, their conditions ``l_T``, ``l'_T`` and the clip's identity ``k`` (for the classifier).

Images are ``B x 3 x S x S`` floats in [-1, 1] (supplementary Sec. 7); conditions ``B x C x S x S``
(:mod:`puppetry.methods.fdgan.conditions`: landmark images drawn from the stored 478 landmarks, or the
stored label maps); identities ``B`` long, indices into :attr:`FramePairs.identities`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from puppetry.data.dataset import draw_frame_pair, open_dataset, pair_clips
from puppetry.methods.fdgan.conditions import flip_condition, label_image, landmark_image


@dataclass
class FDBatch:
    """``image_s``/``image_t``: ``x_T``/``x'_T``; ``cond_s``/``cond_t``: ``l_T``/``l'_T``; ``identity``: ``k``."""

    image_s: torch.Tensor
    image_t: torch.Tensor
    cond_s: torch.Tensor
    cond_t: torch.Tensor
    identity: torch.Tensor


def _resize(rgb: np.ndarray, size: int, nearest: bool = False) -> np.ndarray:
    if rgb.shape[0] == size and rgb.shape[1] == size:
        return rgb
    interp = cv2.INTER_NEAREST if nearest else (cv2.INTER_AREA if rgb.shape[0] > size else cv2.INTER_LINEAR)
    return cv2.resize(rgb, (size, size), interpolation=interp)


def to_tensor(images: list[np.ndarray], device: torch.device | str = "cpu") -> torch.Tensor:
    """``H x W x 3`` uint8 RGB images -> ``B x 3 x H x W`` float in [-1, 1]."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0).to(device)


def to_images(tensor: torch.Tensor) -> np.ndarray:
    """``B x 3 x H x W`` in [-1, 1] -> ``B x H x W x 3`` uint8 RGB."""
    return ((tensor.detach().float().clamp(-1, 1) + 1) * 127.5 + 0.5).byte().permute(0, 2, 3, 1).cpu().numpy()


class FramePairs:
    """Frame pairs of the clips ``clips`` of a prepared dataset.

    Raises:
        PuppetryError: the dataset has no frames (``--landmarks-only``) or no clip with two frames
            ``min_gap`` apart.
    """

    def __init__(self, root: str | Path, clips: list[int] | None = None, min_gap: int = 1, flip: bool = True,
                 identities: list[str] | None = None):
        self.ds = open_dataset(root)
        self.clips = pair_clips(self.ds, clips, min_gap, "FD-GAN")
        self.min_gap = int(min_gap)
        self.flip = flip
        self.points = {c: self.ds.landmarks(self.ds.clips[c].id)["landmarks478"] for c in self.clips}
        self.identities = identities or sorted({self.ds.clips[c].identity for c in self.clips})
        self.label = {c: self.identities.index(self.ds.clips[c].identity) if self.ds.clips[c].identity in
                      self.identities else -1 for c in self.clips}

    def _pair(self, rng: np.random.Generator) -> tuple[int, int, int]:
        return draw_frame_pair(rng, self.ds, self.clips, self.min_gap)

    def draw(self, rng: np.random.Generator, count: int) -> list[tuple[int, int, int]]:
        """``count`` ``(clip, i, j)`` pairs."""
        return [self._pair(rng) for _ in range(count)]

    def condition(self, c: int, t: int, size: int, kind: str) -> np.ndarray:
        """The ``C x size x size`` condition of frame ``t`` of clip ``c``."""
        if kind == "labels":
            return label_image(_resize(self.ds.mask(self.ds.clips[c].id, t), size, nearest=True))
        return landmark_image(self.points[c][t] * (size / self.ds.size), size)

    def batch(self, rng: np.random.Generator, batch: int, size: int, kind: str,
              device: torch.device | str = "cpu", pairs: list[tuple[int, int, int]] | None = None) -> FDBatch:
        """``batch`` random pairs (or the fixed, unflipped ``pairs``) at side ``size`` with ``kind`` conditions."""
        chosen = pairs if pairs is not None else self.draw(rng, batch)
        rows: dict[str, list] = {k: [] for k in ("is", "it", "cs", "ct", "k")}
        for c, i, j in chosen:
            clip = self.ds.clips[c]
            img_s = _resize(self.ds.frame(clip.id, i), size)
            img_t = _resize(self.ds.frame(clip.id, j), size)
            cs, ct = self.condition(c, i, size, kind), self.condition(c, j, size, kind)
            if pairs is None and self.flip and rng.random() < 0.5:
                img_s, img_t = img_s[:, ::-1], img_t[:, ::-1]
                cs, ct = flip_condition(cs, kind), flip_condition(ct, kind)
            for k, v in zip(("is", "it", "cs", "ct"), (img_s, img_t, cs, ct)):
                rows[k].append(np.ascontiguousarray(v))
            rows["k"].append(self.label[c])
        dev = torch.device(device)
        return FDBatch(to_tensor(rows["is"], dev), to_tensor(rows["it"], dev),
                       torch.from_numpy(np.stack(rows["cs"])).to(dev), torch.from_numpy(np.stack(rows["ct"])).to(dev),
                       torch.tensor(rows["k"], dtype=torch.long, device=dev))
