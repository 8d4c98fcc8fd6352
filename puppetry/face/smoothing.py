"""One Euro filter (Casiez et al., CHI 2012) for landmark tracks.

A low-pass filter whose cutoff rises with speed: still landmarks are held steady (no jitter) while
fast motion (a blink, an opening mouth) passes with little lag. Works element-wise on arrays of any
shape, one call per frame, so it serves offline videos and live streams alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from puppetry.face import topology as T
from puppetry.face.pose import FacePose, decompose


@dataclass(frozen=True)
class OneEuroConfig:
    """Cutoffs in Hz; ``beta`` in 1 / (units per second) of the filtered signal."""

    min_cutoff: float = 1.5
    beta: float = 3.0
    d_cutoff: float = 1.0


class OneEuroFilter:
    """Stateful element-wise One Euro filter.

    Args:
        fps: sampling rate of the frames that will be passed.
        config: cutoffs; the defaults suit landmarks measured in face sizes.
    """

    def __init__(self, fps: float, config: OneEuroConfig | None = None):
        self.dt = 1.0 / max(float(fps), 1e-3)
        self.config = config or OneEuroConfig()
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None

    def _alpha(self, cutoff: np.ndarray | float) -> np.ndarray | float:
        tau = 1.0 / (2.0 * np.pi * cutoff)
        return 1.0 / (1.0 + tau / self.dt)

    def reset(self) -> None:
        """Forget the past (call when tracking was lost)."""
        self._x = None
        self._dx = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Filter one sample (any shape, same shape every call) and return the smoothed value."""
        x = np.asarray(x, dtype=np.float64)
        if self._x is None:
            self._x, self._dx = x.copy(), np.zeros_like(x)
            return x.copy()
        c = self.config
        dx = (x - self._x) / self.dt
        a_d = self._alpha(c.d_cutoff)
        self._dx = self._dx + a_d * (dx - self._dx)
        a = self._alpha(c.min_cutoff + c.beta * np.abs(self._dx))
        self._x = self._x + a * (x - self._x)
        return self._x.copy()


FEATURE_SMOOTHING = OneEuroConfig(min_cutoff=4.0, beta=20.0)
"""One Euro settings of the lids, irises and lips in the pose-free face frame (:class:`FaceMotionFilter`):
quicker than the head's, so a blink or a syllable is not flattened (measured on shared/data's driving
videos: the default settings there cost 0.02-0.12 of the lip- and eye-open correlation with the raw
landmarks, these 0.00-0.03)."""


class FaceMotionFilter:
    """One Euro smoothing of a tracked face, split the way motion transfer reads it.

    The landmarks are decomposed (:func:`puppetry.face.pose.decompose`) into head rotation, size and
    centre, which are smoothed with ``pose`` settings (the centre and size in units of the first face
    size), and the pose-free expression, whose lids, irises and lips are smoothed with the quicker
    ``features`` settings and the rest with ``pose``. Filtering in the face frame keeps a fast head turn
    from speeding up (or a slow one from lagging) the mouth and eyes, whose motion is small against the
    head's.

    Args:
        fps: frame rate of the frames that will be passed.
        pose: settings of the head and of the face's other points.
        features: settings of the lids, irises and lips (``puppetry.face.topology`` EYES and LIPS).

    Attributes:
        pose: the last smoothed face as a :class:`~puppetry.face.pose.FacePose`; it composes exactly to
            the landmarks returned, so a caller need not decompose them again.
    """

    def __init__(self, fps: float, pose: OneEuroConfig | None = None,
                 features: OneEuroConfig = FEATURE_SMOOTHING):
        self._features = np.union1d(T.EYES, T.LIPS)
        self._others = np.setdiff1d(np.arange(T.NUM_LANDMARKS), self._features)
        self._head = OneEuroFilter(fps, pose)
        self._expression = OneEuroFilter(fps, pose)
        self._feature = OneEuroFilter(fps, features)
        self._unit: float | None = None
        self.pose: FacePose | None = None

    def reset(self) -> None:
        """Forget the past (call when tracking was lost)."""
        self.pose = None
        for f in (self._head, self._expression, self._feature):
            f.reset()
        self._unit = None

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Smooth one face, ``478 x 3`` pixels; returns the smoothed ``478 x 3`` landmarks."""
        pose = decompose(points)
        if self._unit is None:
            self._unit = float(pose.scale)
        head = self._head(np.concatenate([pose.rotation.ravel(), pose.center / self._unit, [pose.scale / self._unit]]))
        u, _, vt = np.linalg.svd(head[:9].reshape(3, 3))
        rotation = u @ vt                                   # the nearest rotation to the filtered matrix
        expression = np.empty_like(pose.expression)
        expression[self._others] = self._expression(pose.expression[self._others])
        expression[self._features] = self._feature(pose.expression[self._features])
        self.pose = FacePose(expression, rotation, head[12] * self._unit, head[9:12] * self._unit)
        return self.pose.compose()
