"""Sample strips of PuppeteerGAN training: what the sketching and coloring networks make of fixed pairs.

Each row is one pair ``(clip, i, j)`` of held-out frames:

- ``sketch``: ``M_i`` | ``L_j`` (the driving landmarks) | ``M~_j`` with ``L~_j`` drawn over it (white) | the
  true ``M_j`` with ``L_j`` (white);
- ``color``: ``I_i`` | ``M~_j`` (the sketch) | ``G_C(I_i, M_i, M~_j)`` (the whole method) | ``G_C(I_i, M_i,
  M_j)`` (the coloring network alone, on the true segmentation) | ``I_j`` (the truth).

Label maps are drawn in :data:`puppetry.face.parsing.PALETTE` colours.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from puppetry.face.parsing import PALETTE
from puppetry.methods.puppeteergan.config import PuppeteerGanConfig
from puppetry.methods.puppeteergan.data import VideoPairs


def _labels_rgb(labels: torch.Tensor, size: int) -> np.ndarray:
    """``B x s x s`` long -> ``B x size x size x 3`` uint8 palette colours."""
    up = F.interpolate(labels[:, None].float(), size=(size, size), mode="nearest")[:, 0].long()
    return PALETTE[up.cpu().numpy()]


def _draw_points(images: np.ndarray, points: torch.Tensor, color: tuple[int, int, int]) -> np.ndarray:
    """Mark ``B x P x 2`` normalised points as 2 x 2 squares on ``B x S x S x 3`` images (a copy)."""
    out = images.copy()
    b, s = out.shape[0], out.shape[1]
    px = np.clip(((points.detach().cpu().numpy() + 1.0) * s / 2.0).astype(np.int64), 0, s - 2)
    rows = np.repeat(np.arange(b), px.shape[1])
    x, y = px[..., 0].ravel(), px[..., 1].ravel()
    for dy in (0, 1):
        for dx in (0, 1):
            out[rows, y + dy, x + dx] = color
    return out


def _rgb(images: torch.Tensor) -> np.ndarray:
    return (images.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def _strip(columns: list[np.ndarray]) -> np.ndarray:
    """Columns of ``B x S x S x 3`` -> one ``B*S x C*S x 3`` image."""
    return np.concatenate([np.concatenate(list(col), 0) for col in columns], 1)


def sketch_strip(sketch, pairs: VideoPairs, chosen: list[tuple[int, int, int]], config: PuppeteerGanConfig,
                 device: torch.device) -> np.ndarray:
    """The ``sketch`` strip (see the module docstring), at the color size or 128 px, whichever is larger."""
    from puppetry.methods.puppeteergan.sketching import one_hot

    k = config.sketch_model.mask_size
    side = max(config.color_model.size, 128)
    b = pairs.color_batch(np.random.default_rng(0), len(chosen), k, device, pairs=chosen)
    points, logits = sketch(b.points_t, one_hot(b.labels_s))
    white = (255, 255, 255)
    blank = np.full((len(chosen), side, side, 3), 40, np.uint8)
    return _strip([_labels_rgb(b.labels_s, side), _draw_points(blank, b.points_t, white),
                   _draw_points(_labels_rgb(logits.argmax(1), side), points, white),
                   _draw_points(_labels_rgb(b.labels_t, side), b.points_t, white)])


def color_strip(sketch, color, pairs: VideoPairs, chosen: list[tuple[int, int, int]], config: PuppeteerGanConfig,
                device: torch.device) -> np.ndarray:
    """The ``color`` strip (see the module docstring)."""
    from puppetry.methods.puppeteergan.sketching import one_hot

    size, k = config.color_model.size, config.sketch_model.mask_size
    small = pairs.color_batch(np.random.default_rng(0), len(chosen), k, device, pairs=chosen)
    b = pairs.color_batch(np.random.default_rng(0), len(chosen), size, device, pairs=chosen)
    points, logits = sketch(b.points_t, one_hot(small.labels_s))
    sketched = F.interpolate(logits.argmax(1)[:, None].float(), size=(size, size), mode="nearest")[:, 0].long()
    mask_s = one_hot(b.labels_s)
    whole = color(b.image_s, mask_s, one_hot(sketched), b.points_s, points)
    alone = color(b.image_s, mask_s, one_hot(b.labels_t), b.points_s, b.points_t)
    return _strip([_rgb(b.image_s), _labels_rgb(sketched, size), _rgb(whole), _rgb(alone), _rgb(b.image_t)])
