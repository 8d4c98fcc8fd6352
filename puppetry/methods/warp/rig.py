"""Control points of the landmark warp (003, Sec. 3 "global 2D warp"; Averbuch-Elor et al. 2017).

Around each face the rig adds, besides the face's own landmarks:

* a *head ring* just outside the face outline (hair above, ears at the sides, under the chin), which
  moves rigidly with the head and follows the jaw, so hair moves with the head;
* an *outer ring* further out (background, shoulders) that stays still, with a little neck motion
  under the chin;
* the corners and edges of the moving region, fixed, so that everything outside stays untouched.

The weight of a point is its confidence that it belongs to the head: 1 moves with the head, 0 stays.
Rings are laid out in the pose-free face frame, so they stay anatomical on tilted heads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from puppetry.face import topology as T
from puppetry.face.pose import FacePose, compose, decompose

# Landmarks used as control points: the 468 mesh points and both iris centres.
LANDMARK_IDS = np.concatenate([np.arange(T.NUM_MESH), T.IRIS_CENTERS])


@dataclass(frozen=True)
class RigConfig:
    """Ring sizes (multiples of the face outline's distance from the face centre) and weights.

    ``*_top`` applies above the eyes, ``*_side`` at the temples and ears, ``*_bottom`` under the chin;
    values in between blend smoothly with the direction.
    """

    head_top: float = 1.32
    head_side: float = 1.14
    head_bottom: float = 1.10
    head_weight_bottom: float = 0.75
    outer_top: float = 1.95
    outer_side: float = 1.75
    outer_bottom: float = 1.75
    neck_weight: float = 0.15
    margin: float = 0.04          # region margin beyond the outer ring, as a share of the ring size


def _blend(direction_y: np.ndarray, top: float, side: float, bottom: float) -> np.ndarray:
    """Interpolate a value over directions: ``direction_y`` is -1 (up), 0 (sideways), +1 (down)."""
    up = np.clip(-direction_y, 0, 1)
    down = np.clip(direction_y, 0, 1)
    return side + up * (top - side) + down * (bottom - side)


@dataclass
class FaceRig:
    """Rest pose of one face's control points.

    Attributes:
        pose: the source face decomposed.
        ring_expression: ``K x 3`` ring points in the pose-free frame.
        ring_oval: ``K`` index into ``FACE_OVAL`` of the outline point each ring point follows.
        ring_weight: ``K`` head confidence of each ring point.
        head_outline: ``36 x 2`` source pixels of the head ring (to tell what is inside a head).
    """

    pose: FacePose
    ring_expression: np.ndarray
    ring_oval: np.ndarray
    ring_weight: np.ndarray
    head_outline: np.ndarray

    @property
    def rest_points(self) -> np.ndarray:
        """``(470 + K) x 3`` control points at rest, source pixels (x, y, depth)."""
        return self.points(self.pose)

    def points(self, target: FacePose) -> np.ndarray:
        """Control points ``(470 + K) x 3`` for a target face: x, y and depth z (source pixels)."""
        face = compose(target.expression, target.rotation, target.scale, target.center)[LANDMARK_IDS]
        # Ring points follow their outline point's expression change (the jaw), then the rigid head.
        follow = target.expression[T.FACE_OVAL[self.ring_oval]] - self.pose.expression[T.FACE_OVAL[self.ring_oval]]
        moved = compose(self.ring_expression + follow, target.rotation, target.scale, target.center)
        rest = compose(self.ring_expression, self.pose.rotation, self.pose.scale, self.pose.center)
        ring = rest + self.ring_weight[:, None] * (moved - rest)
        return np.concatenate([face, ring])


def build_rig(landmarks: np.ndarray, config: RigConfig = RigConfig()) -> FaceRig:
    """Lay out the rings around one face.

    Args:
        landmarks: ``478 x 3`` source landmarks in pixels.
    """
    pose = decompose(landmarks)
    oval = pose.expression[T.FACE_OVAL]
    centre = oval.mean(0)
    offset = oval - centre
    direction = offset[:, 1] / np.maximum(np.linalg.norm(offset[:, :2], axis=1), 1e-9)
    head_f = _blend(direction, config.head_top, config.head_side, config.head_bottom)
    outer_f = _blend(direction, config.outer_top, config.outer_side, config.outer_bottom)
    head_w = _blend(direction, 1.0, 1.0, config.head_weight_bottom)
    outer_w = np.clip(direction, 0, 1) ** 2 * config.neck_weight
    head = centre + offset * head_f[:, None]
    outer = centre + offset * outer_f[:, None]
    # Outline depth: keep the outline's own z so that a head turn shifts the ring as the ears shift.
    head[:, 2], outer[:, 2] = oval[:, 2], oval[:, 2]
    n = len(T.FACE_OVAL)
    ring = np.concatenate([head, outer])
    outline = compose(head, pose.rotation, pose.scale, pose.center)[:, :2]
    return FaceRig(pose=pose, ring_expression=ring, ring_oval=np.concatenate([np.arange(n)] * 2),
                   ring_weight=np.concatenate([head_w, outer_w]), head_outline=outline)


def outer_extent(rig: FaceRig, config: RigConfig = RigConfig()) -> tuple[np.ndarray, np.ndarray]:
    """Bounding box (min xy, max xy) of a rig's rest points plus the margin, source pixels."""
    pts = rig.rest_points[:, :2]
    lo, hi = pts.min(0), pts.max(0)
    pad = (hi - lo).max() * config.margin
    return lo - pad, hi + pad
