"""Face Mesh landmarks (MediaPipe, 478 points with iris) for images and video.

MediaPipe 0.10.21 carries its models inside the wheel, so nothing is downloaded. Landmarks come back
in pixels of the image that was given: ``x`` and ``y`` in pixels, ``z`` in the same pixel scale as ``x``
(MediaPipe's relative depth, larger is farther from the camera).
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from puppetry.face.native_output import QUIET_FRAMES, silenced
from puppetry.face.topology import NUM_LANDMARKS

os.environ.setdefault("GLOG_minloglevel", "2")      # MediaPipe's C++ logging: warnings and up only
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

logger = logging.getLogger(__name__)

# A NormalizedLandmarkList in protobuf wire format as Face Mesh sends it: per point a length-delimited
# field 1 (tag 0x0a, 15 bytes) holding x, y and z as fixed32 floats (tags 0x0d, 0x15, 0x1d).
_WIRE_POINT = np.dtype([("tag", "u1"), ("size", "u1"), ("x_tag", "u1"), ("x", "<f4"), ("y_tag", "u1"),
                        ("y", "<f4"), ("z_tag", "u1"), ("z", "<f4")])
_WIRE_TAGS = {"tag": 0x0A, "size": 15, "x_tag": 0x0D, "y_tag": 0x15, "z_tag": 0x1D}


def landmark_array(landmarks) -> np.ndarray:
    """``N x 3`` float32 ``x, y, z`` of a MediaPipe ``NormalizedLandmarkList``.

    Read from the message's bytes in one go (a tenth of the time of reading 3 N attributes); a message laid
    out otherwise (visibility or presence set, a coordinate missing) is read point by point.
    """
    raw = landmarks.SerializeToString()
    if len(raw) == len(landmarks.landmark) * _WIRE_POINT.itemsize:
        points = np.frombuffer(raw, _WIRE_POINT)
        if all((points[field] == value).all() for field, value in _WIRE_TAGS.items()):
            return np.stack([points["x"], points["y"], points["z"]], axis=1)
    return np.array([(p.x, p.y, p.z) for p in landmarks.landmark], dtype=np.float32)


@dataclass(frozen=True)
class DetectorConfig:
    """Settings of :class:`FaceMeshDetector`.

    Attributes:
        max_faces: most faces returned per image.
        min_detection_confidence: face detector threshold.
        min_tracking_confidence: video mode only; below it the face is searched for again.
        analysis_max_side: images larger than this are shrunk before detection (landmarks are
            scaled back to the full image), which keeps huge photos fast and small in memory.
    """

    max_faces: int = 1
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    analysis_max_side: int = 1280


class FaceMeshDetector:
    """Detects every face in an image and returns its 478 Face Mesh landmarks in pixels.

    ``mode="image"`` treats each call independently (source portraits); ``mode="video"`` tracks the
    face from frame to frame, which is several times faster and steadier (driving videos).
    """

    def __init__(self, mode: Literal["image", "video"] = "image", config: DetectorConfig | None = None):
        self.mode = mode
        self.config = config or DetectorConfig()
        with silenced():                      # MediaPipe's native log lines (see native_output)
            import mediapipe as mp  # heavy import, done only when a detector is built

            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=(mode == "image"),
                max_num_faces=self.config.max_faces,
                refine_landmarks=True,
                min_detection_confidence=self.config.min_detection_confidence,
                min_tracking_confidence=self.config.min_tracking_confidence,
            )
            # The graph starts its calculators (and they log) on the first frame or, without one, whenever
            # its threads get to it, after this block: start it now on a blank frame, while silenced.
            self._mesh.process(np.zeros((32, 32, 3), np.uint8))
        self._quiet_frames = QUIET_FRAMES

    def detect(self, rgb: np.ndarray) -> list[np.ndarray]:
        """Find faces.

        Args:
            rgb: ``H x W x 3`` uint8 RGB image.
        Returns:
            One ``478 x 3`` float32 array per face (pixels), largest face first.
        """
        h, w = rgb.shape[:2]
        factor = min(1.0, self.config.analysis_max_side / max(h, w))
        small = rgb
        if factor < 1.0:
            small = cv2.resize(rgb, (max(1, round(w * factor)), max(1, round(h * factor))),
                               interpolation=cv2.INTER_AREA)
        # The graph logs natively on its first frames too, and its landmark model starts only with the
        # first face found: stay silenced until a few frames with a face have run.
        with silenced() if self._quiet_frames else contextlib.nullcontext():
            result = self._mesh.process(np.ascontiguousarray(small))
        if result.multi_face_landmarks:
            self._quiet_frames = max(self._quiet_frames - 1, 0)
        if not result.multi_face_landmarks:
            return []
        sh, sw = small.shape[:2]
        faces = []
        for face in result.multi_face_landmarks:
            pts = landmark_array(face)
            if len(pts) != NUM_LANDMARKS:
                continue
            pts *= np.array([sw, sh, sw], dtype=np.float32)
            faces.append(pts / factor)
        faces.sort(key=lambda p: -float(np.ptp(p[:, 0]) * np.ptp(p[:, 1])))
        return faces

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> "FaceMeshDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
