"""One Euro filter (Casiez et al., CHI 2012) for landmark tracks.

A low-pass filter whose cutoff rises with speed: still landmarks are held steady (no jitter) while
fast motion (a blink, an opening mouth) passes with little lag. Works element-wise on arrays of any
shape, one call per frame, so it serves offline videos and live streams alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
