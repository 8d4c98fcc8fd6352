"""Square face crops, their inverse, and feathered paste-back into the full image.

The crop follows LivePortrait's convention (001, Sec. 3.4 pre-processing): a square around the
landmarks' bounding box enlarged by ``scale``, with its centre moved by ``vy_ratio`` of its side
(negative moves it up, toward the hair).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class CropBox:
    """A square in image pixels: centre ``(cx, cy)`` and side ``size``."""

    cx: float
    cy: float
    size: float

    def matrix(self, out_size: int) -> np.ndarray:
        """``2 x 3`` affine map from image pixels to an ``out_size`` crop."""
        k = out_size / self.size
        return np.array([[k, 0.0, out_size / 2 - k * self.cx],
                         [0.0, k, out_size / 2 - k * self.cy]], dtype=np.float64)


def square_crop_box(points: np.ndarray, scale: float = 2.3, vy_ratio: float = -0.125) -> CropBox:
    """Square crop around landmarks.

    Args:
        points: ``N x 2`` (or ``N x 3``) landmark pixels.
        scale: side of the square over the larger side of the landmarks' bounding box.
        vy_ratio: vertical shift of the centre as a fraction of the side (negative = up).
    """
    xy = np.asarray(points)[:, :2]
    lo, hi = xy.min(0), xy.max(0)
    size = float((hi - lo).max() * scale)
    cx, cy = (lo + hi) / 2
    return CropBox(float(cx), float(cy + vy_ratio * size), max(size, 2.0))


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a ``2 x 3`` affine map."""
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def crop_image(image: np.ndarray, box: CropBox, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``box`` out of ``image`` (``H x W x C``) resampled to ``out_size x out_size``.

    Returns:
        The crop and the ``2 x 3`` image-to-crop matrix; parts outside the image repeat its border.
    """
    m = box.matrix(out_size)
    interp = cv2.INTER_AREA if box.size > out_size else cv2.INTER_LINEAR
    crop = cv2.warpAffine(image, m, (out_size, out_size), flags=interp, borderMode=cv2.BORDER_REPLICATE)
    return crop, m


def apply_affine(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``N x 2|3`` points (x, y first) mapped by a ``2 x 3`` affine matrix (e.g. :func:`crop_image`'s image to
    crop): ``N x 2`` float64."""
    xy = np.asarray(points, np.float64)[..., :2]
    return xy @ matrix[:, :2].T + matrix[:, 2]


def feather_mask(size: int, feather: float = 0.1) -> np.ndarray:
    """``size x size`` float32 mask: 1 inside, falling smoothly to 0 over ``feather`` of the side."""
    ramp = max(int(round(size * feather)), 1)
    t = np.clip((np.arange(size) + 0.5) / ramp, 0.0, 1.0)
    edge = np.minimum(t, t[::-1])
    edge = edge * edge * (3 - 2 * edge)  # smoothstep
    return np.minimum.outer(edge, edge).astype(np.float32)


def paste_back(image: np.ndarray, crop: np.ndarray, matrix: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Blend a crop back into the image it came from.

    Args:
        image: ``H x W x 3`` uint8 full image.
        crop: ``S x S x 3`` uint8 crop (possibly edited).
        matrix: the ``2 x 3`` image-to-crop matrix returned by :func:`crop_image`.
        mask: ``S x S`` float weights of the crop; default :func:`feather_mask`.
    Returns:
        A new ``H x W x 3`` uint8 image; only the crop's footprint is touched.
    """
    s = crop.shape[0]
    mask = feather_mask(s) if mask is None else mask.astype(np.float32)
    h, w = image.shape[:2]
    inv = invert_affine(matrix)
    corners = cv2.transform(np.array([[[0, 0], [s, 0], [0, s], [s, s]]], np.float64), inv)[0]
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int), [w, h])
    out = image.copy()
    if x1 <= x0 or y1 <= y0:
        return out
    shift = np.array([[1.0, 0.0, x0], [0.0, 1.0, y0]])   # footprint pixels -> image pixels
    to_crop = matrix @ np.vstack([shift, [0.0, 0.0, 1.0]])
    size = (int(x1 - x0), int(y1 - y0))
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    patch = cv2.warpAffine(crop, to_crop, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask, to_crop, size, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    region = out[y0:y1, x0:x1].astype(np.float32)
    region += alpha[..., None] * (patch.astype(np.float32) - region)
    out[y0:y1, x0:x1] = np.clip(region + 0.5, 0, 255).astype(np.uint8)
    return out
