"""Head pose, face size and expression from 3D Face Mesh landmarks, and eye/lip openness.

A face is written as ``P = s * E @ R.T + c`` (row vectors): ``E`` (``478 x 3``) is the expression in a
pose-free, unit-size face frame, ``R`` the head rotation, ``s`` the face size and ``c`` its centre.
This is the landmark analogue of LivePortrait's ``x = s (x_c R + exp) + t`` (001, Eq. 1), so relative
motion transfer (001, Eq. 7) can be written the same way for every engine.

Axes: x to the image's right, y down, z away from the camera. Angles in degrees, with
``R = Rz(roll) @ Ry(yaw) @ Rx(pitch)``: yaw > 0 turns the face toward the image's left, pitch > 0
tilts it down, roll > 0 tilts it clockwise on screen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from puppetry.face import topology as T

# MediaPipe's forehead-to-chin line leans back by this much on a frontal, level face; removing it
# makes "pitch 0" mean "looking straight at the camera" (measured on frontal portraits of shared/data).
PITCH_BIAS_DEG = 7.0


@dataclass
class FacePose:
    """Decomposition ``points = scale * expression @ rotation.T + center`` (batched over ``...``).

    Attributes:
        expression: ``... x 478 x 3`` pose-free landmarks of unit size.
        rotation: ``... x 3 x 3`` head rotation (columns: face right, face down, face back).
        scale: ``...`` face size in pixels (RMS radius of the rigid points).
        center: ``... x 3`` centre of the rigid points in pixels.
    """

    expression: np.ndarray
    rotation: np.ndarray
    scale: np.ndarray
    center: np.ndarray

    def compose(self) -> np.ndarray:
        """Landmarks ``... x 478 x 3`` in pixels."""
        return compose(self.expression, self.rotation, self.scale, self.center)

    def __getitem__(self, index) -> "FacePose":
        return FacePose(self.expression[index], self.rotation[index], self.scale[index], self.center[index])


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-8)


def head_rotation(points: np.ndarray) -> np.ndarray:
    """Head rotation from landmarks.

    Args:
        points: ``... x 478 x 3`` landmarks (pixels).
    Returns:
        ``... x 3 x 3`` rotation whose columns are the face's right, down and backward axes.
    """
    sides = points[..., _AXIS_POINTS, :].mean(-2)               # left side, right side, top, bottom
    ex = _normalize(sides[..., 0, :] - sides[..., 1, :])
    down = sides[..., 3, :] - sides[..., 2, :]
    ey = _normalize(down - (down * ex).sum(-1, keepdims=True) * ex)
    ez = np.cross(ex, ey)
    rot = np.stack([ex, ey, ez], axis=-1)
    if PITCH_BIAS_DEG:
        rot = rot @ _PITCH_BIAS
    return rot


# Landmarks averaged for the head's axes: its left side (image right on a frontal face), right side,
# top and bottom; one gather for all four.
_AXIS_POINTS = np.array([[263, 362, 454, 356], [33, 133, 234, 127], [10, 151, 9, 8], [152, 175, 199, 200]])


def decompose(points: np.ndarray) -> FacePose:
    """Split landmarks into expression, rotation, size and centre (see module docstring).

    Args:
        points: ``... x 478 x 3`` landmarks in pixels.
    """
    points = np.asarray(points, dtype=np.float64)
    rigid = points[..., T.RIGID, :]
    center = rigid.mean(-2)
    scale = np.sqrt(((rigid - center[..., None, :]) ** 2).sum(-1).mean(-1))
    rotation = head_rotation(points)
    expression = ((points - center[..., None, :]) @ rotation) / scale[..., None, None]
    return FacePose(expression, rotation, scale, center)


def compose(expression: np.ndarray, rotation: np.ndarray, scale: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Inverse of :func:`decompose`: ``scale * expression @ rotation.T + center``."""
    return (np.asarray(scale)[..., None, None] * (expression @ np.swapaxes(rotation, -1, -2))
            + np.asarray(center)[..., None, :])


def euler_to_rotation(yaw, pitch, roll) -> np.ndarray:
    """``Rz(roll) @ Ry(yaw) @ Rx(pitch)`` from angles in degrees (broadcast), shape ``... x 3 x 3``."""
    y, p, r = (np.deg2rad(np.asarray(a, dtype=np.float64)) for a in (yaw, pitch, roll))
    y, p, r = np.broadcast_arrays(y, p, r)
    cy, sy, cp, sp, cr, sr = np.cos(y), np.sin(y), np.cos(p), np.sin(p), np.cos(r), np.sin(r)
    one, zero = np.ones_like(y), np.zeros_like(y)
    rx = np.stack([one, zero, zero, zero, cp, -sp, zero, sp, cp], -1).reshape(y.shape + (3, 3))
    ry = np.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(y.shape + (3, 3))
    rz = np.stack([cr, -sr, zero, sr, cr, zero, zero, zero, one], -1).reshape(y.shape + (3, 3))
    return rz @ ry @ rx


def rotation_to_euler(rotation: np.ndarray) -> np.ndarray:
    """Angles ``... x 3`` (yaw, pitch, roll) in degrees of rotations ``... x 3 x 3``."""
    r = np.asarray(rotation)
    yaw = np.arcsin(np.clip(-r[..., 2, 0], -1.0, 1.0))
    pitch = np.arctan2(r[..., 2, 1], r[..., 2, 2])
    roll = np.arctan2(r[..., 1, 0], r[..., 0, 0])
    return np.rad2deg(np.stack([yaw, pitch, roll], -1))


def eye_open_ratio(points: np.ndarray) -> np.ndarray:
    """Eye openness: mean lid gap over eye width, per eye.

    Args:
        points: ``... x 478 x D`` landmarks (D = 2 or 3).
    Returns:
        ``... x 2`` ratios (subject's right eye, left eye); about 0.25-0.35 open, under 0.1 closed.
    """
    out = []
    for upper, lower, corners in ((T.RIGHT_EYE_UPPER, T.RIGHT_EYE_LOWER, T.RIGHT_EYE_CORNERS),
                                  (T.LEFT_EYE_UPPER, T.LEFT_EYE_LOWER, T.LEFT_EYE_CORNERS)):
        gap = np.linalg.norm(points[..., upper[2:5], :] - points[..., lower[2:5], :], axis=-1).mean(-1)
        width = np.linalg.norm(points[..., corners[0], :] - points[..., corners[1], :], axis=-1)
        out.append(gap / np.maximum(width, 1e-6))
    return np.stack(out, -1)


def lip_open_ratio(points: np.ndarray) -> np.ndarray:
    """Mouth openness: gap between the inner lips at their middle over mouth width, shape ``...``."""
    mid = slice(3, 6)
    gap = np.linalg.norm(points[..., T.LIP_UPPER_INNER[mid], :] - points[..., T.LIP_LOWER_INNER[mid], :],
                         axis=-1).mean(-1)
    width = np.linalg.norm(points[..., T.MOUTH_CORNERS[0], :] - points[..., T.MOUTH_CORNERS[1], :], axis=-1)
    return gap / np.maximum(width, 1e-6)


_PITCH_BIAS = euler_to_rotation(0.0, -PITCH_BIAS_DEG, 0.0)
"""The rotation that removes :data:`PITCH_BIAS_DEG` (constant, built once)."""
