"""Where the dlib model files of the ``face_recognition_models`` package are, without importing it.

The package's ``__init__`` needs ``pkg_resources`` (setuptools), which fresh environments no longer
carry, so the files are found from the package's location on ``sys.path`` instead.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from puppetry.errors import WeightsError

SHAPE_PREDICTOR_68 = "shape_predictor_68_face_landmarks.dat"
FACE_RECOGNITION = "dlib_face_recognition_resnet_model_v1.dat"


def dlib_model_path(name: str) -> Path:
    """Path of one file of ``face_recognition_models/models``.

    Raises:
        WeightsError: the package or the file is missing (one line saying how to install it).
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError("the face_recognition_models package is not installed; "
                           "run: pip install face_recognition_models dlib-bin")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not path.is_file():
        raise WeightsError(f"{name} is missing from {path.parent}; reinstall face_recognition_models")
    return path
