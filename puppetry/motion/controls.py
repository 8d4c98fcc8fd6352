"""Direct controls that need no driving video: eyes, lips, smile and head-angle offsets.

Controls edit a target face in its pose-free frame (:class:`~puppetry.face.pose.FacePose`):
``eyes`` 0 closes the lids, 1 keeps the source's open eyes; ``lips`` 0 closes the mouth, 1 opens it
wide (inner gap half the mouth width); ``smile`` 0..1 lifts and widens the mouth corners; ``yaw``,
``pitch`` and ``roll`` add degrees to the head rotation.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import lru_cache

import numpy as np

from puppetry.face import topology as T
from puppetry.face.pose import FacePose, euler_to_rotation

MAX_LIP_GAP = 0.5          # inner-lip gap over mouth width at lips = 1
UPPER_LIP_SHARE = 0.15     # share of a mouth opening taken by the upper lip (the jaw does the rest)
LOWER_LID_SHARE = 0.35
CREASE_FOLLOW = 0.6


@dataclass(frozen=True)
class Controls:
    """One frame's direct controls; ``None`` leaves that part to the driving motion."""

    eyes: float | None = None
    lips: float | None = None
    smile: float | None = None
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0

    def merged(self, other: "Controls") -> "Controls":
        """``other``'s set values win for eyes/lips/smile; angles add up."""
        return Controls(
            eyes=other.eyes if other.eyes is not None else self.eyes,
            lips=other.lips if other.lips is not None else self.lips,
            smile=other.smile if other.smile is not None else self.smile,
            yaw=self.yaw + other.yaw, pitch=self.pitch + other.pitch, roll=self.roll + other.roll)

    @property
    def is_neutral(self) -> bool:
        return self == Controls()

    def validated(self) -> "Controls":
        """Clamp the 0..1 controls; raises ValueError on non-finite values."""
        for f in fields(self):
            v = getattr(self, f.name)
            if v is not None and not np.isfinite(v):
                raise ValueError(f"control {f.name} must be a finite number, got {v}")
        clamp = lambda v: None if v is None else float(min(max(v, 0.0), 1.0))  # noqa: E731
        return replace(self, eyes=clamp(self.eyes), lips=clamp(self.lips), smile=clamp(self.smile))


EYE_PARTS = ((T.RIGHT_EYE_UPPER, T.RIGHT_EYE_LOWER, T.RIGHT_EYE_CREASE, T.RIGHT_IRIS),
             (T.LEFT_EYE_UPPER, T.LEFT_EYE_LOWER, T.LEFT_EYE_CREASE, T.LEFT_IRIS))
"""Per eye (subject's right, left): upper lid, lower lid (column by column under the upper), crease, iris."""


def set_eye_gap(e: np.ndarray, source_e: np.ndarray, upper, lower, crease, iris, value: float) -> None:
    """Set one eye's lid gap to ``value`` times the source's gap (in place, on ``N x 3`` arrays)."""
    gap_source = source_e[lower] - source_e[upper]                  # 7 x 3, upper -> lower
    gap_now = e[lower] - e[upper]
    # Move the lids so that the gap becomes value * the source's gap, split between the lids.
    change = gap_now - value * gap_source                           # how much the gap must shrink
    e[upper] += (1 - LOWER_LID_SHARE) * change
    e[lower] -= LOWER_LID_SHARE * change
    e[crease] += CREASE_FOLLOW * (1 - LOWER_LID_SHARE) * change
    e[iris] += 0.5 * (1 - LOWER_LID_SHARE) * change.mean(0)


def _mouth_frame(e: np.ndarray) -> tuple[float, float, float]:
    """Mouth centre x, corner-line y and half width in the pose-free frame."""
    left, right = e[T.MOUTH_CORNERS[0]], e[T.MOUTH_CORNERS[1]]
    return float((left[0] + right[0]) / 2), float((left[1] + right[1]) / 2), float(abs(right[0] - left[0]) / 2)


def jaw_weights(e: np.ndarray) -> np.ndarray:
    """How much each landmark (``478``) follows the jaw when the mouth opens: 1 at the lower lip's
    middle and the chin, fading to 0 toward the mouth corners, the jaw's angles and the upper face."""
    xm, yc, half = _mouth_frame(e)
    y_lip = float(e[T.LIP_LOWER_INNER[4], 1])
    y_chin = float(e[T.CHIN, 1])
    jaw_half = float(abs(e[454, 0] - e[234, 0]) / 2)
    yc = min(yc, y_lip - 0.3 * half)          # a downturned mouth's corners lie below its middle
    v = np.clip((e[:, 1] - yc) / max(y_lip - yc, 1e-6), 0.0, 1.0)
    v = v * v * (3 - 2 * v)
    depth = np.clip((e[:, 1] - y_lip) / max(y_chin - y_lip, 1e-6), 0.0, 1.0)
    reach = half * 1.05 + depth * (jaw_half - half * 1.05)
    h = np.sqrt(np.clip(1 - ((e[:, 0] - xm) / reach) ** 2, 0.0, 1.0))
    w = v * h
    w[np.concatenate([T.LIP_UPPER_INNER, T.LIP_UPPER_OUTER])] = 0.0   # a closed mouth's inner lips coincide
    return w


def upper_lip_weights(e: np.ndarray) -> np.ndarray:
    """How much each landmark follows the upper lip when the mouth opens (``478``)."""
    xm, _, half = _mouth_frame(e)
    w = np.zeros(len(e))
    upper = np.concatenate([T.LIP_UPPER_INNER, T.LIP_UPPER_OUTER])
    w[upper] = np.sqrt(np.clip(1 - ((e[upper, 0] - xm) / (half * 1.05)) ** 2, 0.0, 1.0))
    return w


def expression_key(e: np.ndarray) -> bytes:
    """An expression as bytes, to cache what a per-frame function derives from a face that stays the
    same every frame (the source, the driving reference) with ``functools.lru_cache``."""
    return np.ascontiguousarray(e, dtype=np.float64).tobytes()


def expression_from_key(key: bytes) -> np.ndarray:
    """The ``N x 3`` expression back from :func:`expression_key` (read-only)."""
    return np.frombuffer(key, dtype=np.float64).reshape(-1, 3)


def lip_gap(e: np.ndarray) -> np.ndarray:
    """Inner-lip gap in the pose-free frame, mean of the three middle columns (``... x 478 x 3`` -> ``...``)."""
    mid = slice(3, 6)
    return (e[..., T.LIP_LOWER_INNER[mid], 1] - e[..., T.LIP_UPPER_INNER[mid], 1]).mean(-1)


def _inner_y(e: np.ndarray, inner: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The inner lip contour ``inner`` of ``e`` (``478 x 3``) read at each ``x``."""
    xi = e[inner, 0]
    order = np.argsort(xi)
    return np.interp(x, xi[order], e[inner, 1][order])


def limit_lip_heights(e: np.ndarray, source: np.ndarray, low: float, high: float) -> None:
    """Keep every point of each lip's body (outer contour and the rows inside it) of ``478 x 3``
    expression ``e`` between ``low`` and ``high`` times its ``source`` height above (upper lip) or
    below (lower lip) the inner contour at its x, in place; the inner contours and every x stay."""
    offsets = _lip_offsets(expression_key(source))
    for body, inner, k in ((T.LIP_UPPER_BODY, T.LIP_UPPER_INNER, 0), (T.LIP_LOWER_BODY, T.LIP_LOWER_INNER, 1)):
        y_in = _inner_y(e, inner, e[body, 0])
        h_s = offsets[k]
        ok = np.abs(h_s) > 1e-6
        share = np.clip((e[body, 1] - y_in) / np.where(ok, h_s, 1.0), low, high)
        e[body, 1] = np.where(ok, y_in + share * h_s, e[body, 1])


@lru_cache(maxsize=8)
def _lip_offsets(source: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Each lip body point's height over its inner contour in a source expression (its bytes: the
    source is the same every frame, so this is computed once)."""
    e = expression_from_key(source)
    return tuple(e[body, 1] - _inner_y(e, inner, e[body, 0])
                 for body, inner in ((T.LIP_UPPER_BODY, T.LIP_UPPER_INNER), (T.LIP_LOWER_BODY, T.LIP_LOWER_INNER)))


def eye_gaps(e: np.ndarray) -> np.ndarray:
    """Lid gaps in the pose-free frame, mean of the three middle columns, ``... x 2`` (right, left eye)."""
    mid = slice(2, 5)
    return np.stack([(e[..., lower[mid], 1] - e[..., upper[mid], 1]).mean(-1) for upper, lower, _, _ in EYE_PARTS], -1)


def set_lip_gap(e: np.ndarray, gap: float, shape: np.ndarray | None = None) -> None:
    """Open or close the mouth of ``478 x 3`` expression ``e`` (in place) to an inner-lip gap of ``gap``:
    the jaw takes most of the change and the upper lip the rest (:data:`UPPER_LIP_SHARE`). ``shape``
    (default ``e``) is the face whose mouth lays out those weights; pass an uncrossed one when ``e``'s
    lips may have crossed."""
    delta = gap - float(lip_gap(e))
    jaw, upper, reach = _mouth_weights(e) if shape is None else _source_mouth_weights(expression_key(shape))
    delta /= reach
    e[:, 1] += (1 - UPPER_LIP_SHARE) * delta * jaw - UPPER_LIP_SHARE * delta * upper


def _mouth_weights(e: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """:func:`jaw_weights` and :func:`upper_lip_weights` of a face, and how much of a gap change they
    land on the columns :func:`lip_gap` reads (at least half)."""
    jaw, upper = jaw_weights(e), upper_lip_weights(e)
    mid = slice(3, 6)
    reach = ((1 - UPPER_LIP_SHARE) * jaw[T.LIP_LOWER_INNER[mid]].mean()
             + UPPER_LIP_SHARE * upper[T.LIP_UPPER_INNER[mid]].mean())
    return jaw, upper, max(float(reach), 0.5)


@lru_cache(maxsize=8)
def _source_mouth_weights(shape: bytes) -> tuple[np.ndarray, np.ndarray, float]:
    """:func:`_mouth_weights` of a face given by :func:`expression_key` (motion transfer passes the
    source every frame)."""
    return _mouth_weights(expression_from_key(shape))


def apply_controls(target: FacePose, source: FacePose, controls: Controls) -> FacePose:
    """Apply direct controls to a target face.

    Args:
        target: the face after motion transfer (or the source itself when there is no driving).
        source: the source face, which defines "open eyes" for ``eyes = 1``.
        controls: the values to impose.
    Returns:
        A new :class:`FacePose`.
    """
    if controls.is_neutral:
        return target
    e = np.array(target.expression, dtype=np.float64, copy=True)
    s = source.expression
    if controls.eyes is not None:
        for upper, lower, crease, iris in EYE_PARTS:
            set_eye_gap(e, s, upper, lower, crease, iris, controls.eyes)
    if controls.lips is not None:
        _, _, half = _mouth_frame(e)
        set_lip_gap(e, controls.lips * MAX_LIP_GAP * 2 * half)
    if controls.smile is not None and controls.smile > 0:
        _, _, half = _mouth_frame(e)
        width = 2 * half
        for corner, side in ((T.MOUTH_CORNERS[0], -1.0), (T.MOUTH_CORNERS[1], 1.0)):
            d2 = ((e[:, :2] - e[corner, :2]) ** 2).sum(-1)
            w = np.exp(-d2 / (2 * (0.45 * width) ** 2))
            e[:, 0] += controls.smile * 0.12 * width * side * w
            e[:, 1] -= controls.smile * 0.10 * width * w
    rotation = target.rotation
    if controls.yaw or controls.pitch or controls.roll:
        # Offsets are applied in the head's own frame, so "yaw" stays a turn about the head's axis.
        rotation = target.rotation @ euler_to_rotation(controls.yaw, controls.pitch, controls.roll)
    return FacePose(e, rotation, target.scale, target.center)
