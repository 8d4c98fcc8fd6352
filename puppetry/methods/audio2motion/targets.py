"""What the speech model predicts, measured on tracked faces: lip-open and the shape of lips and jaw.

From ``T x 478 x 3`` landmarks (any pixels) each frame's pose-free unit-size expression ``E`` (see
:mod:`puppetry.face.pose`) gives:

* ``lips``: the inner-lip gap over half the mouth width, the value of the ``lips`` control
  (:class:`~puppetry.motion.controls.Controls`: 0 closed, 1 wide open), clipped to 0..1;
* ``shape``: ``P x 2`` positions of :data:`MOUTH_POINTS` (outer and inner lip contours and the lower jaw)
  minus the clip's rest shape, the mean over its most closed tenth of frames. Taking the change from the
  speaker's own rest makes the target speaker-independent: the model learns how a mouth moves, not what
  it looks like.

The generated parts of the motion are measured here too (:func:`motion_statistics`): how often the
speakers blink and how far their heads sway.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from puppetry.face import topology as T
from puppetry.face.pose import decompose, rotation_to_euler
from puppetry.motion.controls import MAX_LIP_GAP, eye_gaps, lip_gap

LOWER_JAW = T.IBUG68[4:13]
MOUTH_POINTS = np.concatenate([T.OUTER_MOUTH, T.INNER_MOUTH, LOWER_JAW])
"""The ``P = 49`` Face Mesh points whose motion the model predicts: 20 outer-lip, 20 inner-lip, 9 jaw."""
REST_SHARE = 0.1


def mouth_width(e: np.ndarray) -> np.ndarray:
    """Distance between the mouth corners in the pose-free frame (``... x 478 x 3`` -> ``...``)."""
    return np.abs(e[..., T.MOUTH_CORNERS[1], 0] - e[..., T.MOUTH_CORNERS[0], 0])


def lips_open(e: np.ndarray) -> np.ndarray:
    """The ``lips`` control value of each expression (module docstring), ``... x 478 x 3`` -> ``...``."""
    return np.clip(lip_gap(e) / np.maximum(MAX_LIP_GAP * mouth_width(e), 1e-6), 0.0, 1.0)


@dataclass
class MouthTargets:
    """Per-frame targets of one clip.

    Attributes:
        lips: ``T`` float32 lip-open, 0..1.
        shape: ``T x P x 2`` float32 change of :data:`MOUTH_POINTS` from the rest shape (pose-free units).
        rest: ``478 x 3`` float32 mean expression of the clip's most closed frames.
        eyes: ``T`` float32 mean lid gap over the clip's open-eye gap (1 open, 0 closed).
        angles: ``T x 3`` float32 yaw, pitch, roll in degrees.
    """

    lips: np.ndarray
    shape: np.ndarray
    rest: np.ndarray
    eyes: np.ndarray
    angles: np.ndarray


def mouth_targets(landmarks: np.ndarray) -> MouthTargets:
    """The targets of one clip from its ``T x 478 x 3`` landmarks."""
    pose = decompose(landmarks)
    e = pose.expression
    lips = lips_open(e)
    closed = lips <= np.quantile(lips, REST_SHARE)
    rest = e[closed].mean(0)
    shape = e[:, MOUTH_POINTS, :2] - rest[None, MOUTH_POINTS, :2]
    gaps = eye_gaps(e).mean(-1)
    eyes = gaps / max(float(np.quantile(gaps, 0.9)), 1e-6)
    return MouthTargets(lips.astype(np.float32), shape.astype(np.float32), rest.astype(np.float32),
                        np.clip(eyes, 0.0, 1.5).astype(np.float32),
                        rotation_to_euler(pose.rotation).astype(np.float32))


def count_blinks(eyes: np.ndarray) -> int:
    """Blinks in an eye-open series: times it drops below half of open after being above 0.8."""
    armed, count = True, 0
    for value in eyes:                                   # a short 1-D state machine over frames
        if armed and value < 0.5:
            count, armed = count + 1, False
        elif value > 0.8:
            armed = True
    return count


def motion_statistics(targets: list[MouthTargets], fps: list[float]) -> dict[str, float]:
    """What generated motion copies from the training speakers: blinks per minute and the head's sway
    (standard deviation of yaw, pitch, roll about each clip's median, median over clips), in plain floats."""
    seconds = sum(len(t.lips) / f for t, f in zip(targets, fps))
    blinks = sum(count_blinks(t.eyes) for t in targets)
    sway = np.median(np.stack([np.std(t.angles - np.median(t.angles, 0), 0) for t in targets]), 0)
    return {"blinks_per_minute": float(np.clip(60.0 * blinks / max(seconds, 1e-6), 4.0, 40.0)),
            "sway_yaw": float(np.clip(sway[0], 0.3, 4.0)), "sway_pitch": float(np.clip(sway[1], 0.3, 4.0)),
            "sway_roll": float(np.clip(sway[2], 0.2, 3.0))}
