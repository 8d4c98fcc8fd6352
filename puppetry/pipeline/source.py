"""Load the source portrait: a path or the built-in ``astronaut``, at a capped working size."""

from __future__ import annotations

import logging
import os

import cv2
import numpy as np

from puppetry.engines.base import SourceFaces
from puppetry.errors import MediaError, NoFaceError
from puppetry.face.landmarks import DetectorConfig, FaceMeshDetector
from puppetry.media.image import read_image
from puppetry.media.video import is_frame_folder, is_video_path

logger = logging.getLogger(__name__)

BUILTIN_SOURCES = ("astronaut",)


def load_source_image(spec: str | os.PathLike | np.ndarray, max_size: int = 2048) -> tuple[np.ndarray, str]:
    """Read a source image.

    Args:
        spec: a path, ``"astronaut"`` (scikit-image's public-domain portrait), or an ``H x W x 3``
            uint8 RGB array.
        max_size: larger images are shrunk so that their longer side is this many pixels.
    Returns:
        The ``H x W x 3`` uint8 RGB image and a name for messages.
    """
    if isinstance(spec, np.ndarray):
        image, name = _as_rgb(spec), "<array>"
    elif str(spec) in BUILTIN_SOURCES:
        from skimage import data
        image, name = data.astronaut(), "astronaut (built-in)"
    else:
        path = os.fspath(spec)
        if is_video_path(path) or is_frame_folder(path):
            raise MediaError(f"source '{path}' is a video; the warp engine animates a still portrait "
                             "(give an image, or use a video as --driving)")
        image, name = read_image(path), path
    h, w = image.shape[:2]
    if max(h, w) > max_size:
        k = max_size / max(h, w)
        image = cv2.resize(image, (max(2, round(w * k)), max(2, round(h * k))), interpolation=cv2.INTER_AREA)
        logger.info("source %s is %dx%d; animating it at %dx%d", name, w, h, image.shape[1], image.shape[0])
    return np.ascontiguousarray(image), name


def _as_rgb(array: np.ndarray) -> np.ndarray:
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4) or array.dtype != np.uint8:
        raise MediaError(f"source array must be H x W x 3 uint8 RGB, got {array.shape} {array.dtype}")
    return array[..., :3]


def find_source_faces(image: np.ndarray, name: str, max_faces: int = 8) -> SourceFaces:
    """Detect every face of the source; raises :class:`NoFaceError` naming the source if none."""
    if max_faces < 1:
        raise ValueError("max_faces must be at least 1")
    with FaceMeshDetector("image", DetectorConfig(max_faces=max_faces)) as detector:
        faces = detector.detect(image)
    if not faces:
        raise NoFaceError(f"no face found in source '{name}'; use a portrait where a face is clearly visible")
    logger.info("found %d face(s) in %s", len(faces), name)
    return SourceFaces(image=image, landmarks=faces, name=name)
