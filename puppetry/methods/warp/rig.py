"""Control points of the landmark warp (003, Sec. 3 "global 2D warp"; Averbuch-Elor et al. 2017).

Around each face the rig adds, besides the face's own landmarks:

* a *head ring* just outside the face outline (hair above, ears at the sides, under the chin), which
  keeps its offset from the outline turned with the head, so hair and ears move with the head as one
  piece and the ring can never fall behind the face's edge (the old tear at the contour);
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
# Control points (positions in LANDMARK_IDS) of the lids, irises and lips, whose triangles collapse on
# purpose (a blink, closed lips).
FEATURES = np.flatnonzero(np.isin(LANDMARK_IDS, np.concatenate([T.EYES, T.LIPS, T.RIGHT_EYE_CREASE,
                                                                T.LEFT_EYE_CREASE, T.IRIS_CENTERS])))


@dataclass(frozen=True)
class RigConfig:
    """Ring sizes (multiples of the face outline's distance from the face centre) and weights.

    ``*_top`` applies above the eyes, ``*_side`` at the temples and ears, ``*_bottom`` under the chin;
    values in between blend smoothly with the direction.
    """

    head_top: float = 1.32
    head_side: float = 1.14
    head_bottom: float = 1.10
    outer_top: float = 1.95
    outer_side: float = 1.75
    outer_bottom: float = 1.75
    neck_weight: float = 0.15
    margin: float = 0.2           # region margin beyond the outer ring, as a share of the ring size
    flatten_from: float = 0.5     # face points beyond this share of the outline radius may turn flat
    flatten_fade: float = 0.25    # the flattening fades out over this share of the face width (contour.Spread)
    min_ring_squeeze: float = 0.4  # a ring triangle squeezed below this share of its rest size pulls the outer ring


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
        ring_offset: ``K x 3`` each ring point's offset from its outline point (pose-free, no depth).
        rest_ring: ``K x 3`` the ring points at rest, source pixels.
        ring_oval: ``K`` index into ``FACE_OVAL`` of the outline point each ring point follows.
        ring_weight: ``K`` head confidence of each ring point (1 on the head ring).
        head_outline: ``36 x 2`` source pixels of the head ring (to tell what is inside a head).
        flat_offset: ``470 x 3`` expression offsets that put every control point on the plane
            through the face centre parallel to the image at rest (``face_points(..., flat=True)``): the head
            then turns as a flat card, which cannot fold (see :mod:`puppetry.methods.warp.contour`).
        flattenable: ``470`` bool, the face points that may be flattened where the mesh folds: the
            outer face (cheeks, temples, jaw, forehead edge), never the eyes, nose or mouth.
    """

    pose: FacePose
    ring_oval: np.ndarray
    ring_weight: np.ndarray
    head_outline: np.ndarray
    flat_offset: np.ndarray
    flattenable: np.ndarray
    ring_offset: np.ndarray
    rest_ring: np.ndarray

    @property
    def outline(self) -> np.ndarray:
        """``36 x 2`` the face outline (``FACE_OVAL``) at rest, source pixels."""
        return self.rest_points[T.FACE_OVAL, :2]

    @property
    def rest_points(self) -> np.ndarray:
        """``(470 + K) x 3`` control points at rest, source pixels (x, y, depth)."""
        return self.points(self.pose)

    def face_points(self, target: FacePose, flat: bool = False) -> np.ndarray:
        """The ``470 x 3`` face control points (x, y, depth in source pixels) for a target face.

        ``flat=True`` turns the face as a flat card through its centre (:attr:`flat_offset`): the same
        points at rest, but depth no longer moves them sideways on a head turn.
        """
        expression = target.expression[LANDMARK_IDS]
        if flat:
            expression = expression + self.flat_offset
        return compose(expression, target.rotation, target.scale, target.center)

    def ring_points(self, target: FacePose, face: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ``K x 3`` ring points around the moved ``face`` (``470 x 3``, :meth:`face_points`).

        Each ring point keeps its offset from the outline point it follows, turned and scaled with the
        head, so the head ring can never fall behind the outline: hair and ears move with the head as
        one piece. Points with a weight below 1 (the outer ring) stay behind by that much.

        Returns:
            ``(ring, following)``: the ring points, and where they would be at weight 1.
        """
        oval = face[T.FACE_OVAL[self.ring_oval]]
        following = oval + target.scale * self.ring_offset @ np.asarray(target.rotation).T
        rest = self.rest_ring
        return rest + self.ring_weight[:, None] * (following - rest), following

    def points(self, target: FacePose) -> np.ndarray:
        """Control points ``(470 + K) x 3`` for a target face: the face, then the rings."""
        face = self.face_points(target)
        return np.concatenate([face, self.ring_points(target, face)[0]])


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
    outer_w = np.clip(direction, 0, 1) ** 2 * config.neck_weight
    head = centre + offset * head_f[:, None]
    outer = centre + offset * outer_f[:, None]
    # Outline depth: keep the outline's own z so that a head turn shifts the ring as the ears shift.
    head[:, 2], outer[:, 2] = oval[:, 2], oval[:, 2]
    n = len(T.FACE_OVAL)
    ring = np.concatenate([head, outer])
    outline = compose(head, pose.rotation, pose.scale, pose.center)[:, :2]
    # Flat card: move each point along the camera axis onto the depth of the face centre, expressed in
    # the head's frame (decompose's E = (P - c) R / s, so a camera-space step d adds d R / s).
    camera = compose(pose.expression[LANDMARK_IDS], pose.rotation, pose.scale, pose.center)
    step = np.zeros_like(camera)
    step[:, 2] = pose.center[2] - camera[:, 2]
    flat_offset = step @ pose.rotation / pose.scale
    # Outer face: farther from the centre than config.flatten_from of the outline in that direction.
    p = pose.expression[LANDMARK_IDS, :2] - centre[:2]
    angle = np.arctan2(offset[:, 1], offset[:, 0])
    order = np.argsort(angle)
    radius = np.interp(np.arctan2(p[:, 1], p[:, 0]), angle[order], np.linalg.norm(offset[order, :2], axis=1),
                       period=2 * np.pi)
    outer_face = np.linalg.norm(p, axis=1) > config.flatten_from * radius
    outer_face[FEATURES] = False                                   # lids and lips keep their own motion
    ring_oval = np.concatenate([np.arange(n)] * 2)
    ring_offset = ring - oval[ring_oval]
    ring_offset[:, 2] = 0.0
    return FaceRig(pose=pose, ring_oval=ring_oval,
                   ring_weight=np.concatenate([np.ones(n), outer_w]), head_outline=outline,
                   flat_offset=flat_offset, flattenable=outer_face, ring_offset=ring_offset,
                   rest_ring=compose(ring, pose.rotation, pose.scale, pose.center))


def outer_extent(rig: FaceRig, config: RigConfig = RigConfig()) -> tuple[np.ndarray, np.ndarray]:
    """Bounding box (min xy, max xy) of a rig's rest points plus the margin, source pixels."""
    pts = rig.rest_points[:, :2]
    lo, hi = pts.min(0), pts.max(0)
    pad = (hi - lo).max() * config.margin
    return lo - pad, hi + pad
