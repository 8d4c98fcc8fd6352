"""Rotation-aligned square face crops for LivePortrait (paper 001, Sec. 3.4) and their paste-back.

The released LivePortrait networks were trained on square crops whose geometry comes from facial
landmarks; this module reproduces that geometry from MediaPipe Face Mesh landmarks.

Geometry, with ``e`` the midpoint of the two eye centres and ``m`` the midpoint of the mouth corners:

* face "down" axis ``u_y = (m - e) / |m - e|`` and face "right" axis ``u_x = (u_y[1], -u_y[0])``;
  the in-plane tilt is ``angle = atan2(u_x[1], u_x[0])`` (image axes, y down, so a positive angle
  is a clockwise tilt on screen). With ``rotate=False`` the axes are the image axes and the angle 0.
* the landmark subset ``P`` is expressed in the face frame, ``q = R p`` with ``R = [u_x; u_y]``; its
  bounding box ``[lo, hi]`` gives the side ``size = scale * max(hi - lo)`` (a square) and the centre
  ``c = R^T ((lo + hi) / 2 + size * (vx_ratio, vy_ratio))``: a negative ``vy_ratio`` moves the crop
  up along the face, leaving room for forehead and hair.
* image pixel ``p`` maps to crop pixel ``u = (S / size) R (p - c) + (S - 1) / 2`` for an ``S x S``
  crop, i.e. the rotated square of side ``size`` centred on ``c`` covers exactly the crop's pixels
  (half-pixel convention, so ``cut(img, 512)`` shrunk 2x with area averaging equals ``cut(img, 256)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from puppetry.face.crop import apply_affine, paste_back as _paste_back_affine
from puppetry.face.topology import IBUG68, LEFT_EYE_CORNERS, MOUTH_CORNERS, RIGHT_EYE_CORNERS

# Eye centres: both corners plus the middle of the upper and lower lid of each eye (stands in for the
# reference's mean of four points around each eye, which it prefers to a single pupil point).
RIGHT_EYE_RING = np.array([*RIGHT_EYE_CORNERS, 159, 145])
LEFT_EYE_RING = np.array([*LEFT_EYE_CORNERS, 386, 374])
# The reference measures the face on InsightFace's 106 points (ear-to-ear jaw contour, brows, eyes,
# nose, lips; nothing above the brows). The 68-point iBUG view of the mesh spans the same region,
# whereas the whole mesh would add the forehead and make the crop ~15 % larger.
EXTENT_POINTS = IBUG68


@dataclass(frozen=True)
class AlignedCrop:
    """A rotated square in image pixels: centre ``(cx, cy)``, side ``size``, face tilt ``angle`` (rad)."""

    cx: float
    cy: float
    size: float
    angle: float = 0.0

    def matrix(self, out_size: int) -> np.ndarray:
        """``2 x 3`` float64 map from image pixels to the pixels of an upright ``out_size`` crop."""
        k = out_size / self.size
        c, s = math.cos(self.angle), math.sin(self.angle)
        a = k * np.array([[c, s], [-s, c]])
        t = (out_size - 1) / 2 - a @ np.array([self.cx, self.cy])
        return np.hstack([a, t[:, None]])

    def inverse(self, out_size: int) -> np.ndarray:
        """``2 x 3`` float64 map from the pixels of an ``out_size`` crop back to image pixels."""
        return cv2.invertAffineTransform(self.matrix(out_size))

    def corners(self) -> np.ndarray:
        """``4 x 2`` image-pixel corners of the footprint: top-left, top-right, bottom-right, bottom-left."""
        uv = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]) * self.size
        c, s = math.cos(self.angle), math.sin(self.angle)
        return uv @ np.array([[c, s], [-s, c]]) + [self.cx, self.cy]

    def cut(self, image: np.ndarray, out_size: int) -> np.ndarray:
        """Resample the crop from ``image`` (``H x W [x C]``) as ``out_size x out_size [x C]``.

        Parts outside the image repeat its border. When the crop shrinks the image by 2x or more it is
        first warped at an integer multiple of ``out_size`` and then area-averaged (``cv2.warpAffine``
        treats ``INTER_AREA`` as bilinear, which would alias).
        """
        factor = int(self.size // out_size)
        if factor < 2:
            return cv2.warpAffine(image, self.matrix(out_size), (out_size, out_size),
                                  flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        big = factor * out_size
        crop = cv2.warpAffine(image, self.matrix(big), (big, big), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        return cv2.resize(crop, (out_size, out_size), interpolation=cv2.INTER_AREA)

    def landmarks_in_crop(self, points: np.ndarray, out_size: int) -> np.ndarray:
        """Map ``N x 2`` (or ``N x 3``, z ignored) image-pixel points to ``N x 2`` crop pixels."""
        return apply_affine(points, self.matrix(out_size))


def _axes(landmarks: np.ndarray, rotate: bool) -> np.ndarray:
    """``2 x 2`` matrix whose rows are the face's right and down axes in image coordinates."""
    if not rotate:
        return np.eye(2)
    eyes = (landmarks[RIGHT_EYE_RING].mean(0) + landmarks[LEFT_EYE_RING].mean(0)) / 2
    down = landmarks[MOUTH_CORNERS].mean(0) - eyes
    n = float(np.hypot(*down))
    uy = down / n if n > 1e-3 else np.array([0.0, 1.0])
    return np.array([[uy[1], -uy[0]], uy])


def align_crop(landmarks: np.ndarray, scale: float = 2.3, vx_ratio: float = 0.0,
               vy_ratio: float = -0.125, rotate: bool = True) -> AlignedCrop:
    """LivePortrait's source crop computed from Face Mesh landmarks (defaults are the reference's).

    MediaPipe points standing in for the reference's 106-point ones:

    * eye centres: mean of corners and mid-lids, 33/133/159/145 (subject's right) and
      263/362/386/374 (left); their midpoint is the top of the tilt axis;
    * mouth centre: mean of the mouth corners 61 and 291, the bottom of the tilt axis;
    * face extent (size and centre): the 68-point iBUG subset (:data:`topology.IBUG68`: jaw from
      234 to 454 through the chin 152, brows, nose, eyes and lips), like the reference's 106 points
      it stops at the brows, so forehead and hair come from ``scale`` and ``vy_ratio``.

    Args:
        landmarks: ``478 x 2`` or ``478 x 3`` Face Mesh landmarks in image pixels.
        scale: side of the crop over the larger side of the face's (rotated) bounding box.
        vx_ratio: shift of the centre along the face's right axis, as a fraction of the side.
        vy_ratio: shift along the face's down axis (negative = up, towards the forehead).
        rotate: remove the face's in-plane tilt; ``False`` gives an axis-aligned crop.
    Returns:
        The crop; ``crop.cut(image, 512)`` is the reference's 512 crop, shrink it to 256 for the networks.
    """
    pts = np.asarray(landmarks, dtype=np.float64)[:, :2]
    r = _axes(pts, rotate)
    q = pts[EXTENT_POINTS] @ r.T
    lo, hi = q.min(0), q.max(0)
    size = max(float((hi - lo).max()) * scale, 2.0)
    centre = r.T @ ((lo + hi) / 2 + size * np.array([vx_ratio, vy_ratio]))
    angle = math.atan2(r[0, 1], r[0, 0])
    return AlignedCrop(float(centre[0]), float(centre[1]), size, angle)


def paste_mask(size: int, margin: float = 0.03, feather: float = 0.1, radius: float = 0.25) -> np.ndarray:
    """Soft ``size x size`` float32 mask for blending a generated crop back into the source image.

    Shape: a centred rounded square. Its value is 1 inside the square inset by ``margin + feather``
    of the side (corner radius ``radius`` of the side); in the ``feather`` band around it the value
    falls to 0 with a smoothstep of the distance, and the outer ``margin`` band is exactly 0, so no
    crop edge can show. With the default crop geometry the plateau (13 %-87 % of the side) holds the
    face, the hair above it and the neck down to ~0.87 of the side.

    The reference ships a 512 PNG that is 1 except for a 16-pixel linear ramp at the border (rounded
    outer corners); ``paste_mask(512, margin=0, feather=16 / 512, radius=0)`` approximates it.
    """
    h = 0.5 - margin - feather
    r = min(max(radius, 0.0), h)
    t = (np.arange(size) + 0.5) / size - 0.5
    qx, qy = np.meshgrid(np.abs(t) - (h - r), np.abs(t) - (h - r))
    dist = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0) - r
    x = np.clip(dist / max(feather, 1e-6), 0.0, 1.0)
    return (1.0 - x * x * (3 - 2 * x)).astype(np.float32)


def paste_back(image: np.ndarray, crop_rgb: np.ndarray, crop: AlignedCrop,
               mask: np.ndarray | None = None) -> np.ndarray:
    """Blend an (edited) crop back into the image it was cut from.

    Args:
        image: ``H x W x 3`` uint8 full image.
        crop_rgb: ``S x S x 3`` uint8 crop made with ``crop`` (any ``S``, e.g. the networks' 512 output).
        crop: the geometry the crop was cut with.
        mask: ``S x S`` float weights in [0, 1]; default :func:`paste_mask`.
    Returns:
        A new ``H x W x 3`` uint8 image. Only the bounding box of the crop's footprint is processed
        (bilinear warp, float blend, rounded); pixels where the mask is 0 are left exactly as they were.
    """
    s = crop_rgb.shape[0]
    mask = paste_mask(s) if mask is None else np.asarray(mask, dtype=np.float32)
    target = int(round(crop.size))
    if 2 * target <= s:  # the face is small in the image: area-average the crop first, no aliasing
        target = max(target, 8)
        crop_rgb = cv2.resize(crop_rgb, (target, target), interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask, (target, target), interpolation=cv2.INTER_AREA)
        s = target
    return _paste_back_affine(image, crop_rgb, crop.matrix(s), mask)
