"""How torn a warp is: jumps in its sampling map around the face's outline.

A backward warp reads output pixel ``(x, y)`` from source position ``(map_x, map_y)``. Where the map is
continuous, neighbouring output pixels read neighbouring source pixels: the step between them is the
map's local compression, about 1 px, and under 1.2 px for a head turned 35 degrees (a flat card turned
by ``a`` compresses by ``1 / cos a``). A step of more than ``threshold`` (3 px) means the map either
jumps (a seam where two unrelated parts of the source meet: the sawtooth, the doubled hair edge) or
crushes a wide strip of the source into a few pixels; both read as a tear.

:func:`contour_tearing` counts such steps in a band around the target face outline, where the face
meets the hair, the ears and the background, and so leaves the nose's true occlusion of the far cheek
out of the count.

A map can also stay continuous and still notch the outline: when one outline point moves several
pixels more than its neighbours, the skin, hair and background around it follow as a bump or a notch
(the temple and jaw of a small face turned away, s4 with d11). :func:`outline_kinks` measures that
from the control points: how sharply the outline's motion bends from one point to the next.
"""

from __future__ import annotations

import cv2
import numpy as np


def map_steps(map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """``H x W`` largest source-coordinate step (pixels) from each pixel to its right and lower neighbour."""
    step = np.zeros(map_x.shape, np.float32)
    sx = np.hypot(np.diff(map_x, axis=1), np.diff(map_y, axis=1))
    sy = np.hypot(np.diff(map_x, axis=0), np.diff(map_y, axis=0))
    step[:, :-1] = sx
    step[:-1, :] = np.maximum(step[:-1, :], sy)
    return step


def outline_band(outline: np.ndarray, shape: tuple[int, int], width: float) -> np.ndarray:
    """``H x W`` bool band of half-width ``width`` pixels around a closed ``K x 2`` polygon."""
    edge = np.zeros(shape, np.uint8)
    cv2.polylines(edge, [np.round(outline * 16).astype(np.int32)], True, 1, 1, cv2.LINE_8, 4)
    distance = cv2.distanceTransform(1 - edge, cv2.DIST_L2, 3)
    return distance <= width


def contour_tearing(map_x: np.ndarray, map_y: np.ndarray, outline: np.ndarray, band: float = 0.12,
                    threshold: float = 3.0) -> float:
    """Share of the pixels near the face outline where the sampling map tears (see module docstring).

    Args:
        map_x, map_y: ``H x W`` sampling map of a region (source pixels).
        outline: ``K x 2`` target face outline in the region's pixels.
        band: half-width of the band, as a share of the outline's width.
        threshold: the step (source pixels per output pixel) above which a pixel counts as torn.
    Returns:
        Torn pixels over band pixels, 0 (none) to 1.
    """
    width = max(float(np.ptp(outline[:, 0])), 1.0) * band
    mask = outline_band(outline, map_x.shape, width)
    if not mask.any():
        return 0.0
    return float((map_steps(map_x, map_y)[mask] > threshold).mean())


def outline_kinks(rest: np.ndarray, moved: np.ndarray) -> float:
    """Largest kink in the motion of a closed outline, as a share of its width.

    With ``u_i`` the motion of outline point ``i`` (``moved - rest``), the kink at ``i`` is
    ``|u_(i-1) - 2 u_i + u_(i+1)|``: 0 for a shift, nearly 0 for any affine motion (a turn or a zoom bends
    it only by the outline's own curvature: about 0.002 for 36 points moved by a 10 % linear change),
    and twice the depth of the notch when one point moves differently from both its neighbours. The
    face's own 3D motion on the driving videos stays under 0.031 (README, "The warp engine").

    Args:
        rest, moved: ``K x 2`` outline points in order (source pixels), at rest and moved.
    """
    u = np.asarray(moved, np.float64) - rest
    bend = np.linalg.norm(np.roll(u, 1, 0) - 2 * u + np.roll(u, -1, 0), axis=1)
    return float(bend.max() / max(float(np.ptp(rest[:, 0])), 1.0))
