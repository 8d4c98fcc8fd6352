"""Turn driving frames into face motion, one frame at a time (offline videos and live streams).

The tracker runs Face Mesh in video mode, smooths the face with One Euro filters in the face's own
frame (:class:`~puppetry.face.smoothing.FaceMotionFilter`: the head pose, and quicker filters for the
lids and lips), and holds the last good face when the face is lost, counting those frames.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from puppetry.face.landmarks import DetectorConfig, FaceMeshDetector
from puppetry.face.pose import FacePose, decompose
from puppetry.face.smoothing import FaceMotionFilter, OneEuroConfig

logger = logging.getLogger(__name__)


@dataclass
class TrackedFace:
    """Driving face of one frame: smoothed landmarks (``478 x 3`` driving pixels) and their pose."""

    landmarks: np.ndarray
    pose: FacePose
    found: bool


class MotionTracker:
    """Stateful per-frame driving-face tracker.

    Args:
        fps: driving frame rate (for the smoothing filter).
        smoothing: One Euro settings, or None for raw landmarks.
        mode: "video" tracks across frames; "image" detects every frame afresh.
    """

    def __init__(self, fps: float, smoothing: OneEuroConfig | None = OneEuroConfig(), mode: str = "video"):
        self.detector = FaceMeshDetector(mode, DetectorConfig(max_faces=1))
        self.filter = FaceMotionFilter(fps, smoothing) if smoothing is not None else None
        self._last: TrackedFace | None = None
        self.lost = 0
        self.frames = 0

    def __call__(self, rgb: np.ndarray) -> TrackedFace | None:
        """Track one ``H x W x 3`` RGB frame; returns None only before the first face is ever found."""
        self.frames += 1
        faces = self.detector.detect(rgb)
        if not faces:
            self.lost += 1
            if self._last is None:
                return None
            return TrackedFace(self._last.landmarks, self._last.pose, found=False)
        points = faces[0].astype(np.float64)
        if self.filter is not None:
            points = self.filter(points)
            pose = self.filter.pose
        else:
            pose = decompose(points)
        face = TrackedFace(points.astype(np.float32), pose, found=True)
        self._last = face
        return face

    def close(self) -> None:
        self.detector.close()

    def __enter__(self) -> "MotionTracker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
