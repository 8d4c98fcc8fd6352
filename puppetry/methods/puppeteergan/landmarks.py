"""Landmarks as PuppeteerGAN reads them: the iBUG-68 view of Face Mesh, in a crop's normalised coordinates.

A crop of side ``S`` maps pixel coordinate ``p`` (Face Mesh's: pixel ``i`` spans ``[i, i + 1)``) to
``2 p / S - 1``, so the crop spans ``[-1, 1]`` on both axes, the convention of ``F.grid_sample`` with
``align_corners=False``. The same normalised points serve every resolution (sketch masks at 64 px,
coloring images at 256 or 512 px).
"""

from __future__ import annotations

import numpy as np

from puppetry.face.topology import IBUG68


def normalize(landmarks: np.ndarray, size: float) -> np.ndarray:
    """``... x 478 x D`` (or ``... x 68 x D``) crop-pixel landmarks -> ``... x 68 x 2`` float32 in [-1, 1]."""
    points = np.asarray(landmarks)
    if points.shape[-2] != 68:
        points = points[..., IBUG68, :]
    return (points[..., :2] * (2.0 / size) - 1.0).astype(np.float32)


def denormalize(points: np.ndarray, size: float) -> np.ndarray:
    """Inverse of :func:`normalize`: ``... x 68 x 2`` normalised -> crop pixels of a side-``size`` crop."""
    return (np.asarray(points, np.float64) + 1.0) * (size / 2.0)
