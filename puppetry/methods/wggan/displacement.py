"""Displacement maps, the condition of wg-GAN (003, Sec. 4.1 "Displacement map generation", Fig. 4).

A displacement map tells the refinement network how every pixel of the warped face moved away from the
rest pose. It is built from landmarks only:

1. **Offsets.** The 68 iBUG points (:data:`puppetry.face.topology.IBUG68`) of the warped face and of its
   rest pose, each in its *own* rectified crop (:func:`puppetry.methods.wggan.face_crop.rectify`), so that rigid
   head motion (position, size, in-plane roll) is removed and only the expression is left. The offset of a
   point is ``warped - rest`` in crop-size units (``68 x 2``; a point moving by a tenth of the crop is 0.1).
2. **Normalisation per semantic part.** Brows move far less than lips, so each part's offsets are divided
   by that part's standard deviation over the training set (:class:`PartStatistics`, fitted once and saved
   with the weights); normalised offsets then have unit spread in every part ("the normalized values follow
   a normal distribution").
3. **Interpolation.** The normalised offsets are interpolated linearly over a Delaunay triangulation of the
   warped face's 68 crop points plus fixed zero-offset points on the crop border, into a per-pixel map
   ``2 x S x S`` float32 (channel 0: x, channel 1: y). A pixel at a landmark carries that landmark's
   normalised offset; the crop border carries zero.

Pixel centres are at integer crop coordinates (as :func:`rectify` places them). Everything here is numpy:
one ``find_simplex`` over the pixel grid and barycentric weights, no loop over pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from scipy.spatial import Delaunay

from puppetry.face import topology as T
from puppetry.methods.wggan.face_crop import rectify

NUM_POINTS = 68

# Semantic parts of the 68-point layout (iBUG order, see topology.IBUG68). The lips are split: the inner
# lips open and close far more than the outer contour moves.
PARTS: dict[str, np.ndarray] = {
    "jaw": np.arange(0, 17),
    "brows": np.arange(17, 27),
    "nose": np.arange(27, 36),
    "eyes": np.arange(36, 48),
    "outer_lips": np.arange(48, 60),
    "inner_lips": np.arange(60, 68),
}
PART_NAMES: tuple[str, ...] = tuple(PARTS)
PART_OF = np.empty(NUM_POINTS, np.int64)
"""``68``: the index into :data:`PART_NAMES` of every point."""
for _i, _ids in enumerate(PARTS.values()):
    PART_OF[_ids] = _i

BORDER_PER_SIDE = 8          # zero-offset points per crop side (corners included once)
STD_FLOOR = 1e-4             # a part that never moved (crop-size units) is not divided by ~0


@dataclass(frozen=True)
class PartStatistics:
    """Per-part spread of landmark offsets over a training set (003, Sec. 4.1: "the standard variance is
    computed among all training images").

    Attributes:
        std: one standard deviation per part of :data:`PART_NAMES`, in crop-size units; the spread of all
            x and y offsets of the part's points over every training pair (pooled, about their mean).
        count: how many offset sets (training pairs) it was fitted on (0: not fitted, unit scales).
        parts: the part names, in the order of ``std``.
    """

    std: tuple[float, ...] = (1.0,) * len(PARTS)
    count: int = 0
    parts: tuple[str, ...] = field(default=PART_NAMES)

    def __post_init__(self) -> None:
        if tuple(self.parts) != PART_NAMES:
            raise ValueError(f"part statistics are for parts {list(self.parts)}, expected {list(PART_NAMES)}")
        if len(self.std) != len(PART_NAMES) or not all(np.isfinite(s) and s > 0 for s in self.std):
            raise ValueError(f"part statistics need {len(PART_NAMES)} positive finite std values, got {self.std}")

    @classmethod
    def fit(cls, offsets: np.ndarray, floor: float = STD_FLOOR) -> PartStatistics:
        """Fit on many offset sets.

        Args:
            offsets: ``N x 68 x 2`` offsets (:func:`landmark_offsets`), crop-size units.
            floor: smallest std kept (a part that did not move keeps its offsets about as they are).
        """
        offsets = np.asarray(offsets, np.float64).reshape(-1, NUM_POINTS, 2)
        if len(offsets) == 0:
            raise ValueError("cannot fit part statistics on no offsets")
        std = tuple(max(float(offsets[:, ids].std()), floor) for ids in PARTS.values())
        return cls(std=std, count=len(offsets))

    @property
    def point_scale(self) -> np.ndarray:
        """``68``: the std each point's offset is divided by."""
        return np.asarray(self.std, np.float64)[PART_OF]

    def normalize(self, offsets: np.ndarray) -> np.ndarray:
        """``... x 68 x 2`` offsets divided by their part's std (float32)."""
        return (np.asarray(offsets, np.float64) / self.point_scale[:, None]).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a weights file."""
        return {"parts": list(self.parts), "std": [float(s) for s in self.std], "count": int(self.count)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PartStatistics:
        """Inverse of :meth:`to_dict` (``ValueError`` if it is not such a mapping)."""
        if not isinstance(data, dict) or "std" not in data:
            raise ValueError("part statistics must be a mapping with 'std'")
        return cls(std=tuple(float(s) for s in data["std"]), count=int(data.get("count", 0)),
                   parts=tuple(data.get("parts", PART_NAMES)))


def crop_points(landmarks: np.ndarray, size: int) -> np.ndarray:
    """The 68 iBUG points of a face in its own rectified crop, ``68 x 2`` crop pixels.

    Args:
        landmarks: ``478 x 3`` Face Mesh landmarks in image pixels.
        size: crop side S.
    """
    landmarks = np.asarray(landmarks, np.float64)
    return rectify(landmarks, size).points(T.to_ibug68(landmarks))


def landmark_offsets(rest: np.ndarray, warped: np.ndarray) -> np.ndarray:
    """Offsets of the warped face's 68 points from the rest pose, each in its own rectified crop.

    Args:
        rest, warped: ``478 x 3`` landmarks, each in its own image's pixels.
    Returns:
        ``68 x 2`` float64, crop-size units (independent of the crop side).
    """
    size = 256                                           # any side: offsets are divided by it
    return (crop_points(warped, size) - crop_points(rest, size)) / size


def border_points(size: int) -> np.ndarray:
    """Fixed points on the crop's outer edge (``-0.5`` and ``S - 0.5``), ``4 (n - 1) x 2``, symmetric."""
    t = np.linspace(-0.5, size - 0.5, BORDER_PER_SIDE)
    lo, hi = np.full_like(t, -0.5), np.full_like(t, size - 0.5)
    edges = np.concatenate([np.stack([t, lo], 1), np.stack([t, hi], 1), np.stack([lo, t], 1)[1:-1],
                            np.stack([hi, t], 1)[1:-1]])
    return edges


def interpolate_offsets(points: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Piecewise-linear interpolation of per-point values over the crop (003, Fig. 4 right).

    The triangulation is the Delaunay triangulation of ``points`` plus :func:`border_points` (value 0).

    Args:
        points: ``N x 2`` crop pixels (they may lie outside the crop).
        values: ``N x C`` values at the points.
        size: crop side S.
    Returns:
        ``C x S x S`` float32; a pixel centre on a point carries exactly that point's value.
    """
    points = np.asarray(points, np.float64)
    values = np.asarray(values, np.float64)
    border = border_points(size)
    nodes = np.concatenate([points, border])
    node_values = np.concatenate([values, np.zeros((len(border), values.shape[1]))])
    tri = Delaunay(nodes)
    simplices = tri.simplices
    # Per triangle the affine function through its corners, value = a x + b y + c (T x 3 x C), in closed
    # form (no LAPACK call: batched tiny solves are slow with a threaded BLAS on a busy machine).
    p, v = nodes[simplices], node_values[simplices]                    # T x 3 x 2, T x 3 x C
    e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    dv1, dv2 = v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    ok = np.abs(det) > 1e-9
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)[:, None]
    ga = (e2[:, 1:2] * dv1 - e1[:, 1:2] * dv2) * inv                   # d value / dx, T x C
    gb = (e1[:, 0:1] * dv2 - e2[:, 0:1] * dv1) * inv                   # d value / dy
    gc = np.where(ok[:, None], v[:, 0] - p[:, 0, 0:1] * ga - p[:, 0, 1:2] * gb, v.mean(1))   # collapsed: mean
    coef = np.stack([ga, gb, gc], 1)
    coef = np.concatenate([coef, np.zeros((1, 3, values.shape[1]))])    # last row: outside every triangle
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    simplex = tri.find_simplex(np.stack([xs.ravel(), ys.ravel()], 1)).reshape(size, size)
    c = coef[np.where(simplex >= 0, simplex, len(simplices))]          # S x S x 3 x C
    out = c[:, :, 0] * xs[..., None] + c[:, :, 1] * ys[..., None] + c[:, :, 2]
    return np.ascontiguousarray(out.transpose(2, 0, 1), dtype=np.float32)


def displacement_map(rest: np.ndarray, warped: np.ndarray, statistics: PartStatistics, size: int) -> np.ndarray:
    """The displacement map of a warped face (003, Sec. 4.1).

    Args:
        rest: ``478 x 3`` landmarks of the rest pose (the unwarped portrait), its own image's pixels.
        warped: ``478 x 3`` landmarks of the warped face, its own image's pixels.
        statistics: the per-part spreads the offsets are normalised by.
        size: crop side S; the map lies in the warped face's rectified crop.
    Returns:
        ``2 x S x S`` float32 normalised offsets (channel 0: x, 1: y); all zero when ``warped == rest``.
    """
    offsets = statistics.normalize(landmark_offsets(rest, warped))
    return interpolate_offsets(crop_points(warped, size), offsets, size)


def mirror_map(displacement: np.ndarray) -> np.ndarray:
    """The map of the horizontally mirrored crop: columns reversed, x offsets negated (``... x 2 x S x S``)."""
    out = np.array(displacement[..., ::-1], dtype=np.float32, copy=True)
    out[..., 0, :, :] *= -1
    return out


def visualize_map(displacement: np.ndarray, full_scale: float = 2.0) -> np.ndarray:
    """A displacement map as colour (hue: direction, brightness: length, black: none), ``S x S x 3`` uint8.

    Args:
        displacement: ``2 x S x S`` normalised offsets.
        full_scale: the length drawn at full brightness (in part standard deviations).
    """
    dx, dy = np.asarray(displacement[0], np.float32), np.asarray(displacement[1], np.float32)
    length, angle = cv2.cartToPolar(dx, dy, angleInDegrees=True)
    hsv = np.stack([angle / 2, np.full_like(dx, 255), np.clip(length / full_scale, 0, 1) * 255], -1)
    return cv2.cvtColor(hsv.round().astype(np.uint8), cv2.COLOR_HSV2RGB)
