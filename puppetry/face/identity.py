"""Face identity embeddings: dlib's 128-d face-recognition ResNet, for CSIM and AED.

The network and its 68-point shape predictor (which aligns the face chip the network expects) are the
files the ``face_recognition_models`` package ships (found by :mod:`puppetry.face.dlib_models`; nothing
is downloaded). Two photos of one person are typically within 0.6 of each other (L2), which is dlib's
"same person" threshold (99.38 % on LFW).

The face box given to the shape predictor comes from our MediaPipe landmarks when the caller has them
(a square around the 68 iBUG-layout points, shifted up to match dlib's detector boxes), so that
paintings and turned heads that dlib's HOG detector misses are still embedded; without landmarks,
dlib's HOG detector finds the face.
"""

from __future__ import annotations

import logging

import numpy as np

from puppetry.errors import WeightsError
from puppetry.face.dlib_models import FACE_RECOGNITION, SHAPE_PREDICTOR_68, dlib_model_path
from puppetry.face.topology import IBUG68

logger = logging.getLogger(__name__)

EMBEDDING_DIM = 128
SAME_PERSON_DISTANCE = 0.6
BOX_SHIFT_UP = 0.1
"""dlib's detector boxes sit about this fraction of their side higher than the 68 points' bounding box."""


class FaceIdentity:
    """Embeds faces with dlib's face-recognition network.

    Raises:
        WeightsError: dlib or the model files are missing (one line).
    """

    def __init__(self):
        try:
            import dlib
        except ImportError:
            raise WeightsError("dlib is not installed; run: pip install dlib-bin") from None
        self._dlib = dlib
        self._shape = dlib.shape_predictor(str(dlib_model_path(SHAPE_PREDICTOR_68)))
        self._net = dlib.face_recognition_model_v1(str(dlib_model_path(FACE_RECOGNITION)))
        self._detector = None

    def _box(self, rgb: np.ndarray, landmarks: np.ndarray | None):
        if landmarks is not None:
            pts = np.asarray(landmarks)[IBUG68, :2]
            lo, hi = pts.min(0), pts.max(0)
            side = float((hi - lo).max())
            cx, cy = (lo + hi) / 2.0
            cy -= BOX_SHIFT_UP * side
            h = side / 2.0
            return self._dlib.rectangle(int(round(cx - h)), int(round(cy - h)), int(round(cx + h)),
                                        int(round(cy + h)))
        if self._detector is None:
            self._detector = self._dlib.get_frontal_face_detector()
        boxes = list(self._detector(rgb, 1))
        if not boxes:
            return None
        return max(boxes, key=lambda r: r.area())

    def embed(self, rgb: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray | None:
        """128-d embedding of the (largest) face.

        Args:
            rgb: ``H x W x 3`` uint8 RGB image.
            landmarks: the face's ``478 x 3`` MediaPipe landmarks in pixels, or None to detect with dlib.
        Returns:
            ``128`` float64 vector (unit-free, about unit length), or None when no face is found.
        """
        box = self._box(rgb, landmarks)
        if box is None:
            return None
        image = np.ascontiguousarray(rgb, dtype=np.uint8)
        shape = self._shape(image, box)
        return np.asarray(self._net.compute_face_descriptor(image, shape), dtype=np.float64)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of embeddings ``... x 128`` (broadcast); 1 for the same direction (CSIM)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def embedding_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance of embeddings ``... x 128`` (broadcast); 0 for identical (AED)."""
    return np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64), axis=-1)


__all__ = ["FaceIdentity", "cosine_similarity", "embedding_distance", "EMBEDDING_DIM", "SAME_PERSON_DISTANCE"]
