"""Motion transfer from a driving face to a source face (landmark form of 001, Eq. 7).

Relative (default): the source keeps its own face and takes the driving frame's *change* since the
driving reference frame, measured in the pose-free unit-size face frame, so a small face in the
driving video moves a large face in the source by the same amount:

    E_t = E_s + m * mask * (E_d - E_d0)
    R_t = R_s R_d0^T R_d,    s_t = s_s * s_d / s_d0,    c_t = c_s + R_s R_d0^T (c_d - c_d0) * s_s / s_d0

Unlike Eq. 7, which composes the rotation change in the camera's frame (``R_d R_d0^T R_s``), the change
is taken in the head's own frame, so a nod stays a nod and a video filmed with a tilted camera drives
the same motion as a level one: the result does not depend on the driving face's size, rotation or
position, only on how it moved.

Lids and lips (:func:`close_like_driver`): the additive rule moves them by the driving change, which
crosses them when the driving face starts more open than the source (a closed-mouthed source, a driver
who starts mid-word) and leaves them half open when it starts less open (a wide-eyed source). Their
gap ``g`` (middle columns of the lids or inner lips, pose-free frame) is transferred instead against
a reference gap ``g_r``: the driver's own at its reference frame for the eyes, and for the mouth the
smaller of that and the source's (a closed source mouth matches the driver's mouth when it is closed,
not mid-word, so it follows every syllable):

    g_t = g_s + m * (g_d - g_r)                 when g_d >= g_r
    g_t = g_s * max(1 - m * (1 - g_d / g_r), 0) when g_d <  g_r   (the same share of the way to closed)

so the target closes fully exactly when the driver does; both lines agree at ``g_d = g_r``.

Lip thickness (:func:`~puppetry.motion.controls.limit_lip_heights`): the additive rule also moves the
lips' outer contours by the driver's change, so a thin-lipped driver's grin, which thins his lips by a
few hundredths of the face, wiped out a full-lipped source's upper lip (its outer contour crossed the
inner one near the corners, the lip's triangles turned over and the skin above covered them: s1 and s42
with d9). Every point of each lip's body (outer contour and the two rows inside it) keeps its height
over the inner contour between ``THICKNESS_RANGE`` (half and 1.5 times) of the source's; within that
range the additive rule stands, so a face driven by its own video keeps every lip shape it makes.

Mouth proportions (:func:`mouth_scale`): faces differ in how far the mouth sits below the nose and how
wide it is, and a driver's change is in his own proportions: a long-faced driver's grin lifts his mouth
corners by half his nose-to-mouth distance, which puts a short-faced source's corners inside her nose
(s1 with d9). Around the mouth the driving change is scaled by the source's over the reference's
proportions, across by the mouth widths and up-down by the corners' distance below the nose, fading to
the plain change over one more mouth half-width. The factors are clipped to ``PROPORTION_RANGE``, which
only ever damps the change: a driver whose reference frame already smiles has a short nose-to-mouth
distance, and scaling his change up would exaggerate every syllable (s5 with d14: 0.98 -> 0.80).

Absolute: the source takes the driving expression and rotation themselves (``E_t = E_d``, ``R_t = R_d``)
and keeps its own size and position.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from puppetry.face import topology as T
from puppetry.face.pose import FacePose
from puppetry.motion.controls import (EYE_PARTS, expression_from_key, expression_key, eye_gaps, lip_gap,
                                     limit_lip_heights, set_eye_gap, set_lip_gap)
from puppetry.motion.regions import REGIONS, expression_mask, region_moves_pose

THICKNESS_RANGE = (0.5, 1.5)     # a lip keeps at least half and at most 1.5 times the source's thickness
PROPORTION_RANGE = (0.5, 1.0)    # the driving change around the mouth is only ever damped


@dataclass(frozen=True)
class TransferOptions:
    """How driving motion maps onto the source.

    Attributes:
        relative: relative (True) or absolute (False) transfer.
        region: "all", "expression", "pose", "eyes" or "lips".
        multiplier: scales the transferred expression change (LivePortrait's driving multiplier).
    """

    relative: bool = True
    region: str = "all"
    multiplier: float = 1.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.multiplier) and abs(self.multiplier) <= 10):
            raise ValueError(f"--multiplier must be a finite number between -10 and 10, got {self.multiplier}")
        if self.region not in REGIONS:
            raise ValueError(f"unknown region {self.region!r}; choose from {', '.join(REGIONS)}")


def transfer_motion(source: FacePose, driving: FacePose, reference: FacePose,
                    options: TransferOptions = TransferOptions()) -> FacePose:
    """Target face for one driving frame.

    Args:
        source: the source face (unbatched, ``478 x 3`` expression).
        driving: the driving face at this frame.
        reference: the driving face at its first frame (relative mode).
        options: transfer settings.
    Returns:
        The target :class:`FacePose` in source pixels.
    """
    mask = expression_mask(options.region, source.expression)[:, None] * options.multiplier
    if options.relative:
        change = (driving.expression - reference.expression) * _mouth_scale_once(
            expression_key(source.expression), expression_key(reference.expression))
        expression = source.expression + mask * change
        if options.multiplier > 0:
            expression = close_like_driver(expression, source.expression, driving.expression,
                                           reference.expression, options.multiplier,
                                           eyes=bool(mask[T.EYES].any()), lips=bool(mask[T.LIPS].any()))
            if mask[T.LIPS].any():
                limit_lip_heights(expression, source.expression, *THICKNESS_RANGE)
    else:
        expression = source.expression + mask * (driving.expression - source.expression)
    if not region_moves_pose(options.region):
        return FacePose(expression, source.rotation, source.scale, source.center)
    if options.relative:
        to_source = np.asarray(source.rotation) @ np.asarray(reference.rotation).T
        rotation = to_source @ driving.rotation
        ratio = float(source.scale) / float(reference.scale)
        scale = float(source.scale) * float(driving.scale) / float(reference.scale)
        center = source.center + (to_source @ (np.asarray(driving.center) - reference.center)) * ratio
    else:
        rotation, scale, center = np.asarray(driving.rotation, dtype=np.float64), source.scale, source.center
    return FacePose(expression, rotation, scale, center)


def _gap_share(g_s: np.ndarray, g_d: np.ndarray, g_r: np.ndarray, multiplier: float) -> np.ndarray:
    """Target gap from the source's, the driving frame's and the reference gap (module docstring)."""
    closing = (g_d < g_r) & (g_r > 1e-6)
    share = np.clip(1.0 - multiplier * (1.0 - np.clip(g_d, 0.0, None) / np.maximum(g_r, 1e-6)), 0.0, None)
    return np.where(closing, g_s * share, g_s + multiplier * (g_d - g_r))


def close_like_driver(expression: np.ndarray, source: np.ndarray, driving: np.ndarray, reference: np.ndarray,
                      multiplier: float = 1.0, eyes: bool = True, lips: bool = True) -> np.ndarray:
    """Re-set the lid and lip gaps of a relative target so that they open and close with the driver's
    (module docstring): never crossed, fully closed when the driver's are.

    Args:
        expression: ``478 x 3`` target expression from the additive rule.
        source, driving, reference: ``478 x 3`` expressions of the source, the driving frame and the
            driving reference frame.
        multiplier: the transfer's multiplier (> 0).
        eyes, lips: which parts the transfer moves.
    Returns:
        A new ``478 x 3`` expression; the additive one wherever the eyes do not close below the
        reference and the source's mouth is at least as open as the driver's reference.
    """
    out = np.array(expression, dtype=np.float64, copy=True)
    if eyes:
        g_s, g_d, g_r = eye_gaps(source), eye_gaps(driving), eye_gaps(reference)
        wanted = _gap_share(g_s, g_d, g_r, multiplier)
        for (upper, lower, crease, iris), g, gs, gd, gr in zip(EYE_PARTS, wanted, g_s, g_d, g_r):
            if gd < gr and gs > 1e-6:
                set_eye_gap(out, source, upper, lower, crease, iris, float(g / gs))
    if lips:
        g_s, g_d = float(lip_gap(source)), float(lip_gap(driving))
        g_r = float(np.clip(min(lip_gap(reference), g_s), 0.0, None))
        wanted = float(_gap_share(g_s, g_d, g_r, multiplier))
        if abs(wanted - float(lip_gap(out))) > 1e-9:          # else the additive rule gave it already
            set_lip_gap(out, wanted, shape=source)
    return out


@lru_cache(maxsize=8)
def _mouth_scale_once(source: bytes, reference: bytes) -> np.ndarray:
    """:func:`mouth_scale` of two expressions given by :func:`~puppetry.motion.controls.expression_key`:
    the same pair comes every frame."""
    scale = mouth_scale(expression_from_key(source), expression_from_key(reference))
    scale.flags.writeable = False
    return scale


def _mouth_size(e: np.ndarray) -> tuple[float, float]:
    """Mouth width and the corners' distance below the nose, pose-free frame."""
    left, right = e[T.MOUTH_CORNERS[0]], e[T.MOUTH_CORNERS[1]]
    return float(abs(right[0] - left[0])), float((left[1] + right[1]) / 2 - e[T.SUBNASALE, 1])


def mouth_scale(source: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``478 x 3`` per-point factors on the driving change that carry it into the source's mouth
    proportions (module docstring): ``(w_s / w_r, h_s / h_r, 1)`` on the mouth, 1 away from it.

    Args:
        source, reference: ``478 x 3`` expressions of the source and the driving reference frame.
    """
    (w_s, h_s), (w_r, h_r) = _mouth_size(source), _mouth_size(reference)
    scale = np.ones_like(np.asarray(source, dtype=np.float64))
    if min(w_s, h_s, w_r, h_r) <= 1e-6:
        return scale
    centre = source[T.MOUTH_CORNERS, :2].mean(0)
    half = w_s / 2
    r = np.hypot((source[:, 0] - centre[0]) / (1.2 * half), (source[:, 1] - centre[1]) / max(h_s, 1e-6))
    t = np.clip(2.0 - r, 0.0, 1.0)                  # 1 on the mouth (r <= 1), 0 from r = 2 on
    weight = t * t * (3 - 2 * t)
    scale[:, 0] += weight * (np.clip(w_s / w_r, *PROPORTION_RANGE) - 1)
    scale[:, 1] += weight * (np.clip(h_s / h_r, *PROPORTION_RANGE) - 1)
    return scale
