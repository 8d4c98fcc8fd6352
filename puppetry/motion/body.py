"""How the driving body (neck, shoulders, chest) moves under the face, for engines that move it too.

Face landmarks say nothing about the shoulders. This module tracks the driving frame's region under
the chin with pyramidal Lucas-Kanade optical flow from the reference frame (no drift: every frame is
matched against the reference, with a forward-backward check), and reports the median displacement
in units of the reference face's width, so that a source of any size can take the same motion.

The region is ``BodyConfig.width`` face widths wide, centred under the face, from ``top`` to
``bottom`` face heights under the chin, clipped to the frame; talking-head crops that end at the chin
have no region and report no motion.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from puppetry.face import topology as T
from puppetry.face.smoothing import OneEuroConfig, OneEuroFilter


@dataclass(frozen=True)
class BodyConfig:
    """Where and how the driving body is tracked.

    Attributes:
        width: region width in face widths, centred under the face.
        top, bottom: region top and bottom in face heights under the chin.
        min_height: a region lower than this share of the face height is no region.
        max_side: frames are analysed at most this many pixels on their longer side.
        points: most corners tracked.
        min_points: fewer surviving corners than this hold the last motion.
        max_error: forward-backward error in analysed pixels above which a corner is dropped.
        smoothing: One Euro settings of the motion (face widths), or None.
    """

    width: float = 3.2
    top: float = 0.15
    bottom: float = 1.5
    min_height: float = 0.15
    max_side: int = 320
    points: int = 60
    min_points: int = 6
    max_error: float = 0.8
    smoothing: OneEuroConfig | None = OneEuroConfig(min_cutoff=1.0, beta=1.0)


def body_region(landmarks: np.ndarray, shape: tuple[int, int], config: BodyConfig = BodyConfig()
                ) -> tuple[int, int, int, int] | None:
    """The box ``(x0, y0, x1, y1)`` under a face (``478 x 2+`` landmarks) in a frame of ``shape``
    ``(H, W)``, or None when too little of it is in the frame."""
    oval = np.asarray(landmarks)[T.FACE_OVAL, :2]
    w, h = float(np.ptp(oval[:, 0])), float(np.ptp(oval[:, 1]))
    cx, chin = float(oval[:, 0].mean()), float(oval[:, 1].max())
    H, W = shape
    x0, x1 = int(max(cx - config.width / 2 * w, 0)), int(min(cx + config.width / 2 * w, W))
    y0, y1 = int(min(max(chin + config.top * h, 0), H)), int(min(chin + config.bottom * h, H))
    if y1 - y0 < config.min_height * h or x1 - x0 < w:
        return None
    return x0, y0, x1, y1


class BodyMotion:
    """Tracks one driving video's body against its reference frame.

    Call :meth:`reset` with the reference frame, then :meth:`__call__` with each frame; both take the
    ``H x W x 3`` RGB frame and its ``478 x 2+`` face landmarks.
    """

    def __init__(self, fps: float = 30.0, config: BodyConfig = BodyConfig()):
        self.config = config
        self.fps = fps
        self._ref: np.ndarray | None = None
        self._points: np.ndarray | None = None
        self._unit = 1.0
        self._scale = 1.0
        self._last = np.zeros(2)
        self._filter: OneEuroFilter | None = None

    @property
    def tracking(self) -> bool:
        """Whether the reference frame had a body region with enough corners to track."""
        return self._points is not None

    def _gray(self, rgb: np.ndarray) -> np.ndarray:
        gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
        if self._scale != 1.0:
            gray = cv2.resize(gray, None, fx=self._scale, fy=self._scale, interpolation=cv2.INTER_AREA)
        return gray

    def reset(self, rgb: np.ndarray, landmarks: np.ndarray) -> None:
        """Take ``rgb`` as the reference frame."""
        cfg = self.config
        self._last = np.zeros(2)
        self._filter = OneEuroFilter(self.fps, cfg.smoothing) if cfg.smoothing is not None else None
        self._points = None
        self._scale = min(1.0, cfg.max_side / max(rgb.shape[:2]))
        self._unit = max(float(np.ptp(np.asarray(landmarks)[T.FACE_OVAL, 0])), 1.0)
        box = body_region(landmarks, rgb.shape[:2], cfg)
        if box is None:
            return
        self._ref = self._gray(rgb)
        mask = np.zeros_like(self._ref)
        x0, y0, x1, y1 = (round(v * self._scale) for v in box)
        mask[y0:y1, x0:x1] = 255
        points = cv2.goodFeaturesToTrack(self._ref, cfg.points, 0.01, 4, mask=mask)
        if points is not None and len(points) >= cfg.min_points:
            self._points = points.astype(np.float32)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """The body's displacement since the reference frame, ``2`` (x, y) in reference face widths."""
        if self._points is None:
            return np.zeros(2)
        cfg = self.config
        gray = self._gray(rgb)
        if gray.shape != self._ref.shape:
            return self._last.copy()
        lk = {"winSize": (21, 21), "maxLevel": 3}
        moved, ok, _ = cv2.calcOpticalFlowPyrLK(self._ref, gray, self._points, None, **lk)
        back, ok_back, _ = cv2.calcOpticalFlowPyrLK(gray, self._ref, moved, None, **lk)
        good = (ok[:, 0] == 1) & (ok_back[:, 0] == 1) & \
            (np.linalg.norm((back - self._points)[:, 0], axis=-1) < cfg.max_error)
        if good.sum() >= cfg.min_points:
            shift = np.median((moved - self._points)[good, 0], axis=0) / self._scale / self._unit
            self._last = self._filter(shift) if self._filter is not None else shift
        return self._last.copy()
