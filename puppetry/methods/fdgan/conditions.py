"""What FD-GAN reads as a face's layout: a landmark image (reenactment) or a label map (semantic synthesis).

The paper rasterises landmarks "into a landmark image" without saying how; ours (:func:`landmark_image`)
draws the Face Mesh contours as anti-aliased lines, one channel per part, so a location's channel says
which part is there (the dictionary's "which facial part should be here")::

    0 face oval        1 subject's right brow   2 left brow     3 right eye (lids and iris)
    4 left eye         5 nose (bridge, base)    6 outer lips    7 inner lips

Lines are ``max(1, S / 128)`` pixels wide. A horizontal flip of a landmark image is a mirrored face only
once the right and left channels are swapped (:func:`flip_condition`).

A label map (:func:`label_image`) is one channel per label of :data:`puppetry.face.parsing.MASK_LABELS`.
Conditions are ``C x S x S`` float32 arrays in [0, 1] (``B x C x S x S`` for batches).
"""

from __future__ import annotations

import cv2
import numpy as np

from puppetry.face import topology as T
from puppetry.face.parsing import MASK_LABELS, colorize

_SHIFT = 4                                               # fixed-point bits: sub-pixel line ends

_NOSE_BRIDGE = T.IBUG68[[27, 28, 29, 30, 33]]
_NOSE_BASE = T.IBUG68[31:36]
_RIGHT_EYE = np.concatenate([[T.RIGHT_EYE_CORNERS[0]], T.RIGHT_EYE_UPPER, [T.RIGHT_EYE_CORNERS[1]],
                             T.RIGHT_EYE_LOWER[::-1]])
_LEFT_EYE = np.concatenate([[T.LEFT_EYE_CORNERS[1]], T.LEFT_EYE_UPPER[::-1], [T.LEFT_EYE_CORNERS[0]],
                            T.LEFT_EYE_LOWER])

# Per channel: (polyline indices into the 478 points, closed?).
PARTS: tuple[tuple[tuple[np.ndarray, bool], ...], ...] = (
    ((T.FACE_OVAL, True),),
    ((T.RIGHT_BROW, True),),
    ((T.LEFT_BROW, True),),
    ((_RIGHT_EYE, True), (T.RIGHT_IRIS[1:], True)),
    ((_LEFT_EYE, True), (T.LEFT_IRIS[1:], True)),
    ((_NOSE_BRIDGE, False), (_NOSE_BASE, False)),
    ((T.OUTER_MOUTH, True),),
    ((T.INNER_MOUTH, True),),
)
LANDMARK_CHANNELS = len(PARTS)
FLIP_CHANNELS = np.array([0, 2, 1, 4, 3, 5, 6, 7])
"""Channel order after a horizontal flip: the subject's right and left parts trade places."""


def channels(condition: str) -> int:
    """Channels of a condition image: ``landmarks`` or ``labels``."""
    return LANDMARK_CHANNELS if condition == "landmarks" else len(MASK_LABELS)


def landmark_image(points: np.ndarray, size: int) -> np.ndarray:
    """Draw ``478 x 2|3`` Face Mesh landmarks (pixels of a side-``size`` image) as ``8 x size x size``."""
    xy = np.round(np.asarray(points, np.float64)[:, :2] * (1 << _SHIFT)).astype(np.int32)
    width = max(1, size // 128)
    out = np.zeros((LANDMARK_CHANNELS, size, size), np.uint8)
    for c, lines in enumerate(PARTS):
        plane = out[c]
        cv2.polylines(plane, [xy[idx] for idx, closed in lines if closed], True, 255, width, cv2.LINE_AA, _SHIFT)
        cv2.polylines(plane, [xy[idx] for idx, closed in lines if not closed], False, 255, width, cv2.LINE_AA,
                      _SHIFT)
    return out.astype(np.float32) / 255.0


def label_image(labels: np.ndarray) -> np.ndarray:
    """``S x S`` integer label map -> ``K x S x S`` one-hot float32 (``K = len(MASK_LABELS)``)."""
    labels = np.asarray(labels)
    return (labels[None] == np.arange(len(MASK_LABELS))[:, None, None]).astype(np.float32)


def flip_condition(condition: np.ndarray, kind: str) -> np.ndarray:
    """A ``C x S x S`` condition of the horizontally mirrored image (right and left parts swapped)."""
    flipped = condition[..., ::-1]
    if kind == "landmarks":
        flipped = flipped[FLIP_CHANNELS]
    return np.ascontiguousarray(flipped)


def preview(condition: np.ndarray, kind: str = "landmarks") -> np.ndarray:
    """``S x S x 3`` uint8 RGB picture of a ``C x S x S`` condition: label maps in
    :data:`puppetry.face.parsing.PALETTE`'s colours, landmark channels each in a hue of its own."""
    if kind == "labels":
        return colorize(condition.argmax(0))
    c = condition.shape[0]
    hues = (np.arange(c) * 180 // max(c, 1)).astype(np.uint8)
    palette = cv2.cvtColor(np.stack([hues, np.full(c, 200, np.uint8), np.full(c, 255, np.uint8)], 1)[None],
                           cv2.COLOR_HSV2RGB)[0].astype(np.float32)
    rgb = np.einsum("chw,cd->hwd", condition, palette)
    return np.clip(rgb, 0, 255).astype(np.uint8)
