"""Built-in procedural motions: per-frame :class:`~puppetry.motion.controls.Controls` sequences.

Each motion is a smooth function of time, so any frame rate and duration works. ``demo`` mixes them
into the motion the default command animates.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from puppetry.errors import MotionError
from puppetry.motion.controls import Controls

DEFAULT_FPS = 25.0


def _pulse(t: np.ndarray, centers: list[float], width: float) -> np.ndarray:
    """Sum of raised-cosine bumps of full width ``width`` seconds, 0..1."""
    out = np.zeros_like(t)
    for c in centers:
        x = np.clip((t - c) / (width / 2), -1, 1)
        out = np.maximum(out, 0.5 * (1 + np.cos(np.pi * x)))
    return out


def _ease(t: np.ndarray, start: float, rise: float, hold: float) -> np.ndarray:
    """0 -> 1 over ``rise`` s from ``start``, held ``hold`` s, back to 0 over ``rise`` s."""
    up = np.clip((t - start) / rise, 0, 1)
    down = np.clip((t - start - rise - hold) / rise, 0, 1)
    s = up - down
    return s * s * (3 - 2 * s)


def _blink_eyes(t: np.ndarray, every: float = 2.0, offset: float = 0.6) -> np.ndarray:
    centers = list(np.arange(offset, t[-1] + 1 if len(t) else 1, every))
    return 1.0 - _pulse(t, centers, 0.3)


def _talk_lips(t: np.ndarray) -> np.ndarray:
    """Syllable-like mouth opening: a 4 Hz carrier with a slower, irregular envelope."""
    syllables = np.abs(np.sin(2 * np.pi * 2.1 * t)) ** 1.5
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 0.37 * t + 1.0) * np.sin(2 * np.pi * 0.23 * t + 0.4)
    return np.clip(0.75 * syllables * envelope, 0, 1)


def blink(t: np.ndarray) -> list[Controls]:
    return [Controls(eyes=float(e)) for e in _blink_eyes(t)]


def smile(t: np.ndarray) -> list[Controls]:
    s = _ease(t, 0.3, 0.6, max(t[-1] - 1.8, 0.2) if len(t) else 0.2)
    return [Controls(smile=float(v)) for v in 0.9 * s]


def nod(t: np.ndarray) -> list[Controls]:
    return [Controls(pitch=float(p)) for p in 12.0 * np.sin(2 * np.pi * 0.8 * t)]


def shake(t: np.ndarray) -> list[Controls]:
    return [Controls(yaw=float(y)) for y in 18.0 * np.sin(2 * np.pi * 0.7 * t)]


def talk(t: np.ndarray) -> list[Controls]:
    lips = _talk_lips(t)
    yaw = 3.0 * np.sin(2 * np.pi * 0.3 * t)
    pitch = 2.0 * np.sin(2 * np.pi * 0.5 * t + 0.7)
    eyes = _blink_eyes(t, every=2.7, offset=1.1)
    return [Controls(eyes=float(e), lips=float(m), yaw=float(y), pitch=float(p))
            for e, m, y, p in zip(eyes, lips, yaw, pitch)]


def demo(t: np.ndarray) -> list[Controls]:
    """Blinks throughout; talks, then smiles, nods and shakes the head in turn."""
    eyes = _blink_eyes(t, every=2.3, offset=0.8)
    lips = _talk_lips(t) * _ease(t, 0.0, 0.3, 2.4)
    smile_v = 0.9 * _ease(t, 3.0, 0.5, 1.5)
    nod_env = _ease(t, 5.0, 0.3, 1.2)
    shake_env = _ease(t, 6.6, 0.3, 1.0)
    pitch = 10.0 * np.sin(2 * np.pi * 1.0 * (t - 5.0)) * nod_env
    yaw = 16.0 * np.sin(2 * np.pi * 0.8 * (t - 6.6)) * shake_env
    return [Controls(eyes=float(e), lips=float(m), smile=float(s), yaw=float(y), pitch=float(p))
            for e, m, s, y, p in zip(eyes, lips, smile_v, yaw, pitch)]


MOTIONS: dict[str, tuple[Callable[[np.ndarray], list[Controls]], float]] = {
    "blink": (blink, 3.0),
    "smile": (smile, 3.0),
    "nod": (nod, 2.5),
    "shake": (shake, 3.0),
    "talk": (talk, 4.0),
    "demo": (demo, 8.5),
}


def procedural_motion(name: str, fps: float = DEFAULT_FPS, duration: float | None = None) -> list[Controls]:
    """Controls for each frame of a built-in motion.

    Args:
        name: one of :data:`MOTIONS`.
        fps: frame rate.
        duration: seconds; default is the motion's own length.
    """
    if name not in MOTIONS:
        raise MotionError(f"unknown motion '{name}'; built-in motions: {', '.join(MOTIONS)}")
    fn, default = MOTIONS[name]
    seconds = default if duration is None else float(duration)
    if not (np.isfinite(seconds) and seconds > 0) or not (np.isfinite(fps) and fps > 0):
        raise MotionError(f"motion '{name}' needs a positive duration and frame rate")
    n = max(1, int(round(seconds * fps)))
    if n > 1_000_000:
        raise MotionError(f"motion '{name}' would have {n} frames; use a shorter --duration or lower --fps")
    return fn(np.arange(n) / fps)
