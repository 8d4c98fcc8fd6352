"""dlib's 68-point landmarks (iBUG 300-W layout) on faces that are already located.

dlib's shape predictor refines a face rectangle into 68 points. It was trained on the rectangles of
dlib's HOG face detector, so the rectangle handed to it should look like one of those; instead of
running that detector (slow, frontal faces only), :func:`dlib_box_from_landmarks` derives it from the
Face Mesh landmarks we already have. The mapping was measured on 39 faces of ``shared/data`` (portraits
and driving frames) where both were found: the HOG box has the size of the iBUG-68 points' bounding box
(x 1.05, y 1.04) and sits 7 % of its height higher.

dlib returns whole pixels, so the points are quantised to 1 px of the image they were computed on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from puppetry.face.topology import IBUG68

# Measured HOG-box / iBUG-68-box relation (see module docstring).
_BOX_WIDTH = 1.05
_BOX_HEIGHT = 1.04
_BOX_SHIFT_Y = -0.074


@dataclass(frozen=True)
class Dlib68Config:
    """Settings of :class:`Dlib68`.

    Attributes:
        model_path: dlib ``shape_predictor_68_face_landmarks.dat``; default: the copy shipped in the
            ``face_recognition_models`` package (found without importing it).
    """

    model_path: str | os.PathLike | None = None


def dlib_box_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """Rectangles like dlib's HOG detector's, from Face Mesh landmarks.

    Args:
        landmarks: ``... x 478 x D`` Face Mesh landmarks (pixels, D >= 2).
    Returns:
        ``... x 4`` float boxes ``(x0, y0, x1, y1)`` in the same pixels.
    """
    pts = np.asarray(landmarks)[..., IBUG68, :2]
    lo, hi = pts.min(-2), pts.max(-2)
    center = (lo + hi) / 2
    half = (hi - lo) / 2 * np.array([_BOX_WIDTH, _BOX_HEIGHT])
    center = center + np.stack([np.zeros_like(center[..., 1]), _BOX_SHIFT_Y * (hi - lo)[..., 1]], -1)
    return np.concatenate([center - half, center + half], -1)


class Dlib68:
    """dlib's 68-point shape predictor; build once per process (loading takes about 0.5 s, 100 MB).

    Raises:
        WeightsError: the predictor file is missing (one line saying how to install it).
    """

    def __init__(self, config: Dlib68Config | None = None) -> None:
        import dlib  # heavy import, done only when a predictor is built

        from puppetry.face.dlib_models import SHAPE_PREDICTOR_68, dlib_model_path

        self.config = config or Dlib68Config()
        path = self.config.model_path or dlib_model_path(SHAPE_PREDICTOR_68)
        self._dlib = dlib
        self._predictor = dlib.shape_predictor(str(path))

    def predict(self, rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """68 points of each face box.

        Args:
            rgb: ``H x W x 3`` uint8 RGB image (or ``H x W`` grey).
            boxes: ``N x 4`` (or ``4``) face rectangles ``(x0, y0, x1, y1)`` in pixels, e.g. from
                :func:`dlib_box_from_landmarks`.
        Returns:
            ``N x 68 x 2`` (or ``68 x 2``) float32 points in pixels, iBUG order (jaw 0-16, brows
            17-26, nose 27-35, eyes 36-47, lips 48-67).
        """
        image = np.ascontiguousarray(rgb, dtype=np.uint8)
        boxes = np.asarray(boxes, dtype=np.float64)
        single = boxes.ndim == 1
        rounded = np.round(boxes.reshape(-1, 4)).astype(np.int64)
        shapes = [self._predictor(image, self._dlib.rectangle(int(x0), int(y0), int(x1) - 1, int(y1) - 1))
                  for x0, y0, x1, y1 in rounded]
        out = np.array([[(p.x, p.y) for p in shape.parts()] for shape in shapes], dtype=np.float32)
        out = out.reshape(len(shapes), 68, 2)
        return out[0] if single else out
