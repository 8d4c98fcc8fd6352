"""How the driving body (neck, shoulders, chest) moves under the face, for engines that move it too.

Face landmarks say nothing about the shoulders. This module tracks the driving frame's region under
the chin with pyramidal Lucas-Kanade optical flow from the reference frame (no drift: every frame is
matched against the reference; corners that match badly are dropped), and reports the median displacement
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
        pad: the analysed window reaches this many face widths beyond the region (room for motion).
        max_side: the window is analysed at most this many pixels on its longer side.
        points: most corners tracked.
        window, levels: Lucas-Kanade window side (analysed pixels) and pyramid levels.
        min_points: fewer surviving corners than this hold the last motion.
        max_error: Lucas-Kanade's match error (mean absolute grey difference over its window) above which a
            corner is dropped.
        smoothing: One Euro settings of the motion (face widths), or None.
    """

    width: float = 3.2
    top: float = 0.15
    bottom: float = 1.5
    min_height: float = 0.15
    pad: float = 0.4
    max_side: int = 128
    points: int = 24
    window: int = 11
    levels: int = 2
    min_points: int = 6
    max_error: float = 12.0
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
        self._ref: np.ndarray | None = None             # the reference window, grey, analysed size
        self._points: np.ndarray | None = None          # corners in the analysed window, N x 1 x 2
        self._window = (0, 0, 0, 0)                     # the frame's part analysed, pixels
        self._unit = 1.0
        self._scale = 1.0
        self._last = np.zeros(2)
        self._filter: OneEuroFilter | None = None

    @property
    def tracking(self) -> bool:
        """Whether the reference frame had a body region with enough corners to track."""
        return self._points is not None

    def _gray(self, rgb: np.ndarray) -> np.ndarray | None:
        """The analysed window of an ``H x W x 3`` frame, grey (None: a frame too small for it)."""
        x0, y0, x1, y1 = self._window
        if rgb.shape[0] < y1 or rgb.shape[1] < x1:
            return None
        gray = cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
        if self._scale != 1.0:
            gray = cv2.resize(gray, None, fx=self._scale, fy=self._scale, interpolation=cv2.INTER_LINEAR)
        return gray

    def reset(self, rgb: np.ndarray, landmarks: np.ndarray) -> None:
        """Take ``rgb`` as the reference frame."""
        cfg = self.config
        self._last = np.zeros(2)
        self._filter = OneEuroFilter(self.fps, cfg.smoothing) if cfg.smoothing is not None else None
        self._points = None
        self._unit = max(float(np.ptp(np.asarray(landmarks)[T.FACE_OVAL, 0])), 1.0)
        box = body_region(landmarks, rgb.shape[:2], cfg)
        if box is None:
            return
        pad = int(cfg.pad * self._unit)
        h, w = rgb.shape[:2]
        self._window = (max(box[0] - pad, 0), max(box[1] - pad, 0), min(box[2] + pad, w), min(box[3] + pad, h))
        wx0, wy0, wx1, wy1 = self._window
        self._scale = min(1.0, cfg.max_side / max(wx1 - wx0, wy1 - wy0))
        self._ref = self._gray(rgb)
        mask = np.zeros_like(self._ref)
        x0, y0, x1, y1 = (round((v - o) * self._scale) for v, o in zip(box, (wx0, wy0, wx0, wy0)))
        mask[y0:y1, x0:x1] = 255
        points = cv2.goodFeaturesToTrack(self._ref, cfg.points, 0.01, 3, mask=mask)
        if points is not None and len(points) >= cfg.min_points:
            self._points = points.astype(np.float32)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """The body's displacement since the reference frame, ``2`` (x, y) in reference face widths."""
        if self._points is None:
            return np.zeros(2)
        cfg = self.config
        gray = self._gray(rgb)
        if gray is None or gray.shape != self._ref.shape:
            return self._last.copy()
        lk = {"winSize": (cfg.window, cfg.window), "maxLevel": cfg.levels}
        moved, ok, error = cv2.calcOpticalFlowPyrLK(self._ref, gray, self._points, None, **lk)
        good = (ok[:, 0] == 1) & (error[:, 0] < cfg.max_error)
        if good.sum() >= cfg.min_points:
            shift = np.median((moved - self._points)[good, 0], axis=0) / self._scale / self._unit
            self._last = self._filter(shift) if self._filter is not None else shift
        return self._last.copy()
