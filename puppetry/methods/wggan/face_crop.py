"""The rectified face crop that wg-GAN and hrh-GAN work in (003, Sec. 4.1: "we rectify the face").

A face is cut out of its image by one similarity transform: the head's in-plane roll is removed, the
face is scaled to a fixed size and centred. In the crop the face oval spans about 70 % of the side and
the eyes lie on a horizontal line, whatever the face's size, position and tilt in the image.

The transform comes from the rigid landmarks (:func:`puppetry.face.pose.decompose`): their centre, their
3D RMS radius (``scale``, unchanged by yaw and expression) and the roll of the head rotation. Measured on
the frontal portraits of ``shared/data`` (s1, s2, s5, s7, s42), the face oval spans x in [-1.15, 1.15]
and y in [-0.72, 2.05] of ``scale`` around the rigid centre after de-rolling; :data:`CROP_SIDE` and
:data:`CROP_DROP` frame that with room for an open jaw and some yaw.

Functions here are single-face and numpy/OpenCV; networks see the crops as ``B x C x S x S`` tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from puppetry.face import topology as T
from puppetry.face.crop import apply_affine
from puppetry.face.pose import decompose

CROP_SIDE = 3.4      # crop side, in units of the face's rigid scale
CROP_DROP = 0.68     # crop centre below the rigid centre, same units

# The face region the refinement network may change: the face oval plus the brows (which sit inside it).
FACE_OUTLINE = T.FACE_OVAL


@dataclass(frozen=True)
class FaceCrop:
    """A rectified crop: ``matrix`` maps image pixels to ``size x size`` crop pixels (``2 x 3``)."""

    matrix: np.ndarray
    size: int

    @property
    def inverse(self) -> np.ndarray:
        """``2 x 3`` map from crop pixels back to image pixels."""
        return cv2.invertAffineTransform(self.matrix)

    def points(self, points: np.ndarray) -> np.ndarray:
        """Image points ``N x 2`` (or ``N x 3``, depth dropped) in crop pixels, ``N x 2``."""
        return apply_affine(points, self.matrix)

    def cut(self, image: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        """The crop of ``image`` (``H x W x C`` or ``H x W``); outside the image the border repeats."""
        return cv2.warpAffine(image, self.matrix, (self.size, self.size), flags=interpolation,
                              borderMode=cv2.BORDER_REPLICATE)


def rectify(landmarks: np.ndarray, size: int) -> FaceCrop:
    """The rectified crop of one face.

    Args:
        landmarks: ``478 x 3`` Face Mesh landmarks in image pixels.
        size: crop side in pixels.
    """
    pose = decompose(np.asarray(landmarks, dtype=np.float64))
    roll = np.arctan2(pose.rotation[1, 0], pose.rotation[0, 0])
    c, s = np.cos(roll), np.sin(roll)
    k = size / (CROP_SIDE * float(pose.scale))
    # Image -> crop: rotate by -roll about the face centre, scale by k, put the centre at the crop's.
    a = k * np.array([[c, s], [-s, c]])
    down = np.array([-s, c]) * CROP_DROP * float(pose.scale)        # the face's "down" in the image
    centre = pose.center[:2] + down
    t = np.array([size / 2 - 0.5, size / 2 - 0.5]) - a @ centre
    return FaceCrop(np.concatenate([a, t[:, None]], 1), size)


def _fill(shape: tuple[int, int], polygon: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(polygon * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
    return mask


def face_mask(points: np.ndarray, size: int) -> np.ndarray:
    """``size x size`` float32 mask (1 inside) of the face oval, from crop-pixel landmarks ``478 x 2``."""
    hull = cv2.convexHull(np.asarray(points, np.float32)[FACE_OUTLINE][:, None])[:, 0]
    return _fill((size, size), hull.astype(np.float64)).astype(np.float32) / 255.0


def inner_mouth_mask(points: np.ndarray, size: int, grow: float = 0.0) -> np.ndarray:
    """``size x size`` float32 mask of the opening between the lips (1 inside), from crop-pixel landmarks.

    Args:
        points: ``478 x 2`` landmarks in crop pixels.
        size: crop side.
        grow: dilate by this share of the mouth width (covers the lips' inner edge).
    """
    xy = np.asarray(points, np.float64)[:, :2]
    mask = _fill((size, size), xy[T.INNER_MOUTH])
    if grow > 0:
        width = float(np.linalg.norm(xy[T.MOUTH_CORNERS[0]] - xy[T.MOUTH_CORNERS[1]]))
        r = max(1, int(round(grow * width)))
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    return mask.astype(np.float32) / 255.0


def mouth_box(points: np.ndarray, size: int, side: int) -> tuple[int, int]:
    """Top-left corner ``(x, y)`` of the ``side x side`` square centred on the mouth, inside the crop.

    The local discriminator of hrh-GAN looks at this square (Iizuka et al. 2017, Sec. 3.2).
    """
    xy = np.asarray(points, np.float64)[:, :2][T.INNER_MOUTH].mean(0)
    x = int(np.clip(round(xy[0] - side / 2), 0, size - side))
    y = int(np.clip(round(xy[1] - side / 2), 0, size - side))
    return x, y


def paste(image: np.ndarray, crop: np.ndarray, face: FaceCrop, mask: np.ndarray, feather: float = 0.04) -> np.ndarray:
    """Blend a crop back into its image inside ``mask`` (softened by ``feather`` of the side); in place.

    Args:
        image: ``H x W x 3`` uint8, changed in place and returned.
        crop: ``S x S x 3`` uint8 crop (the face's new pixels).
        face: the crop's transform.
        mask: ``S x S`` float32 in [0, 1], where the crop replaces the image.
    """
    h, w = image.shape[:2]
    r = max(1, int(round(feather * face.size)))
    soft = cv2.GaussianBlur(cv2.erode(mask, np.ones((r, r), np.uint8)), (2 * r + 1, 2 * r + 1), 0)
    inv = face.inverse
    corners = np.array([[0, 0], [face.size, 0], [0, face.size], [face.size, face.size]], np.float64)
    img_corners = corners @ inv[:, :2].T + inv[:, 2]
    x0, y0 = np.maximum(np.floor(img_corners.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(img_corners.max(0)).astype(int) + 1, [w, h])
    if x1 <= x0 or y1 <= y0:
        return image
    # Warp into the image's bounding box only, never the whole image.
    shift = np.array([[1, 0, -x0], [0, 1, -y0]], np.float64)
    m = np.concatenate([inv[:, :2], inv[:, 2:] + shift[:, 2:]], 1)
    size = (int(x1 - x0), int(y1 - y0))
    pixels = cv2.warpAffine(crop, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(soft, m, size, flags=cv2.INTER_LINEAR, borderValue=0)[..., None]
    region = image[y0:y1, x0:x1].astype(np.float32)
    image[y0:y1, x0:x1] = np.clip(region + alpha * (pixels.astype(np.float32) - region) + 0.5, 0, 255).astype(np.uint8)
    return image
