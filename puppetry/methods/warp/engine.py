"""The training-free landmark-warp engine (``--engine warp``, the default).

The global stage of wg-GAN (003, Sec. 3-4) after Averbuch-Elor et al. 2017: target landmarks from
motion transfer, plus head and background rings (:mod:`puppetry.methods.warp.rig`), drive one piecewise-affine
warp of the whole portrait (:mod:`puppetry.geometry.mesh_warp`); the inner mouth is then painted
(:mod:`puppetry.methods.warp.mouth`). Every face of a group photo shares the one mesh, so neighbouring heads
never fight over pixels. No weights are needed.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.path import Path as PolygonPath
from scipy import sparse

from puppetry.engines.base import DrivingFrame, Engine, SourceFaces
from puppetry.face import topology as T
from puppetry.face.pose import FacePose, compose
from puppetry.geometry.mesh_warp import Box, MeshWarp, StretchGauge, signed_areas, triangulate, untangle
from puppetry.methods.warp.contour import Spread, mesh_neighbours, spread_operator, unfold
from puppetry.methods.warp.mouth import MouthConfig, MouthFiller
from puppetry.methods.warp.rig import FEATURES, LANDMARK_IDS, FaceRig, RigConfig, build_rig, outer_extent
from puppetry.motion.body import BodyConfig, BodyMotion
from puppetry.motion.controls import apply_controls
from puppetry.motion.transfer import TransferOptions, transfer_motion

if TYPE_CHECKING:
    from puppetry.methods.ldnet.inference import PoseRetargeting

_FIXED_PER_SIDE = 4          # fixed points on each side of the moving region


@dataclass(frozen=True)
class WarpConfig:
    """Settings of the warp engine.

    Attributes:
        field_max_pixels: the sampling map is computed on a grid of at most this many pixels and
            upsampled (a 1000 x 1000 region is mapped at full resolution).
        mouth_fill: paint the inner mouth when it opens wider than the source's.
        unfold_contour: keep the face outline from folding on head turns (:mod:`.contour`); off where the
            landmarks must land exactly on their targets (wg-GAN's training pairs).
        gaze: let the irises follow the driving irises (clamped inside the eye opening).
        rig: ring layout around each face.
        mouth: inner-mouth settings.
        follow_body: move the source's neck and shoulders (the outer ring under each face, where the
            person is) with the driving body under the face (:mod:`puppetry.motion.body`); the background
            and everything when the driving frame shows no body stay still.
        body: how the driving body is tracked.
        retarget: ``"ldnet"`` gives the driving landmarks each source face's identity with a trained
            LD-Net (002, Sec. 3.1) before motion transfer, for cross-identity animation; None: off.
        ldnet_weights: LD-Net weights (``RUN/ldnet.pt``); None reads ``$PUPPETRY_LDNET_WEIGHTS``.
    """

    field_max_pixels: int = 1_000_000
    mouth_fill: bool = True
    unfold_contour: bool = True
    gaze: bool = True
    rig: RigConfig = field(default_factory=RigConfig)
    mouth: MouthConfig = field(default_factory=MouthConfig)
    retarget: str | None = None
    ldnet_weights: str | None = None
    follow_body: bool = True
    body: BodyConfig = field(default_factory=BodyConfig)

    def __post_init__(self) -> None:
        if self.retarget not in (None, "ldnet"):
            raise ValueError(f"--retarget must be ldnet, got {self.retarget!r}")
        if self.ldnet_weights is not None and self.retarget is None:
            raise ValueError("--ldnet-weights needs --retarget ldnet")


@dataclass
class WarpState:
    """A prepared source: the image, each face's rig and mouth filler, and the shared mesh."""

    image: np.ndarray
    rigs: list[FaceRig]
    mouths: list[MouthFiller]
    keep: list[np.ndarray]        # per face: which of its control points survive (others sit in a head)
    fixed: np.ndarray             # region border points, source pixels (x, y, depth)
    movable: np.ndarray           # mesh vertices that may be pulled back when they fold (ring points)
    mesh: MeshWarp
    flattenable: np.ndarray       # mesh vertices that may turn flat where the contour folds (contour.py)
    neighbours: sparse.csr_matrix  # mesh adjacency, for relaxing where the flat card folds
    spread: Spread                # how the flattening fades out over each face
    unfold_candidates: np.ndarray  # per triangle: a face triangle watched for contour folds
    face_starts: list[int]        # where each face's points start among the mesh vertices
    gauge: StretchGauge           # how squeezed each triangle is, against the rest pose
    retargeting: "PoseRetargeting | None" = None               # LD-Net with each face's identity
    body_weight: np.ndarray | None = None   # per mesh vertex: source pixels moved per face width of body motion
    body: BodyMotion | None = None          # the driving body, tracked against body_reference
    body_reference: int | None = None       # id() of the driving reference pose the body is tracked from


def _clamp_irises(e: np.ndarray) -> None:
    """Keep each iris centre (and its ring) inside its eye opening, in the pose-free frame (in place)."""
    for iris, upper, lower, corners in ((T.RIGHT_IRIS, T.RIGHT_EYE_UPPER, T.RIGHT_EYE_LOWER, T.RIGHT_EYE_CORNERS),
                                        (T.LEFT_IRIS, T.LEFT_EYE_UPPER, T.LEFT_EYE_LOWER, T.LEFT_EYE_CORNERS)):
        c = e[iris[0]]
        x_lo, x_hi = sorted((e[corners[0], 0], e[corners[1], 0]))
        width = x_hi - x_lo
        top, bottom = e[upper[2:5], 1].mean(), e[lower[2:5], 1].mean()
        gap = max(bottom - top, 0.0)
        x = np.clip(c[0], x_lo + 0.22 * width, x_hi - 0.22 * width)
        y = np.clip(c[1], top + 0.3 * gap, bottom - 0.3 * gap) if gap > 1e-6 else (top + bottom) / 2
        e[iris, 0] += x - c[0]
        e[iris, 1] += y - c[1]


def _region_border(box: Box) -> np.ndarray:
    """Fixed points on the border of the moving region (corners included)."""
    t = np.linspace(0.0, 1.0, _FIXED_PER_SIDE + 1)[:-1]
    x0, y0, x1, y1 = box.x0, box.y0, box.x1 - 1, box.y1 - 1
    top = np.stack([x0 + t * (x1 - x0), np.full_like(t, y0)], 1)
    right = np.stack([np.full_like(t, x1), y0 + t * (y1 - y0)], 1)
    bottom = np.stack([x1 - t * (x1 - x0), np.full_like(t, y1)], 1)
    left = np.stack([np.full_like(t, x0), y1 - t * (y1 - y0)], 1)
    return np.concatenate([top, right, bottom, left])


def _body_weights(state: WarpState) -> np.ndarray:
    """Per mesh vertex, how many source pixels it moves per face width of driving body motion: the
    outer-ring points under each face (full weight straight down, none from the sides up) that lie on
    the person (MediaPipe selfie segmentation of the source), times that face's width."""
    from puppetry.face.parsing import PersonSegmenter

    with PersonSegmenter() as segmenter:
        person = segmenter.probability(state.image)
    h, w = person.shape
    weights = []
    for rig, keep in zip(state.rigs, state.keep):
        rest = rig.rest_points[:, :2]
        n_face = len(LANDMARK_IDS)
        oval = rig.outline
        centre, width = oval.mean(0), float(np.ptp(oval[:, 0]))
        offset = rest - centre
        down = offset[:, 1] / np.maximum(np.linalg.norm(offset, axis=1), 1e-9)
        t = np.clip((down - 0.2) / 0.6, 0.0, 1.0)
        weight = t * t * (3 - 2 * t)
        weight[:n_face] = 0.0
        weight[n_face:][rig.ring_weight >= 1] = 0.0                 # the head ring follows the head
        xy = np.round(rest).astype(int)
        inside = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
        on_person = np.zeros(len(rest))
        on_person[inside] = person[xy[inside, 1], xy[inside, 0]]
        weights.append((weight * np.clip((on_person - 0.3) / 0.4, 0.0, 1.0) * width)[keep])
    return np.concatenate(weights + [np.zeros(len(state.fixed))])


class WarpEngine(Engine):
    """Landmark-driven piecewise-affine portrait warp with inner-mouth fill."""

    name = "warp"

    def __init__(self, transfer: TransferOptions = TransferOptions(), config: WarpConfig = WarpConfig()):
        super().__init__(transfer)
        self.config = config
        self._times: dict[str, float] = defaultdict(float)
        self.retargeter = None
        if config.retarget == "ldnet":
            from puppetry.methods.ldnet.inference import LDNet, LandmarkRetargeter
            self.retargeter = LandmarkRetargeter(LDNet(config.ldnet_weights))

    def timings(self) -> dict[str, float]:
        return dict(self._times)

    def prepare(self, source: SourceFaces) -> WarpState:
        image = source.image
        h, w = image.shape[:2]
        cfg = self.config
        rigs = [build_rig(lm, cfg.rig) for lm in source.landmarks]
        lo = np.min([outer_extent(r, cfg.rig)[0] for r in rigs], axis=0)
        hi = np.max([outer_extent(r, cfg.rig)[1] for r in rigs], axis=0)
        box = Box(int(max(np.floor(lo[0]), 0)), int(max(np.floor(lo[1]), 0)),
                  int(min(np.ceil(hi[0]) + 1, w)), int(min(np.ceil(hi[1]) + 1, h)))
        # A ring point of one face that falls inside another face's head would pin that head: drop it.
        keep, movable, outer = [], [], []
        n_face = len(LANDMARK_IDS)
        for i, rig in enumerate(rigs):
            rest = rig.rest_points[:, :2]
            ok = np.ones(len(rest), bool)
            for j, other in enumerate(rigs):
                if j != i:
                    ok[n_face:] &= ~PolygonPath(other.head_outline).contains_points(rest[n_face:])
            keep.append(ok)
            movable.append((np.concatenate([np.zeros(n_face), rig.ring_weight]) < 1)[ok])   # the outer ring
            outer.append(np.arange(len(rest)) >= n_face)
        points = np.concatenate([r.rest_points[k] for r, k in zip(rigs, keep)])
        far = points[:, 2].max() + np.ptp(points[:, :2])          # the background is far behind every head
        fixed = np.concatenate([_region_border(box), np.full((4 * _FIXED_PER_SIDE, 1), far)], 1)
        points = np.concatenate([points, fixed])
        movable = np.concatenate(movable + [np.zeros(len(fixed), bool)])
        # The face and its head ring unfold together (the ring follows the outline); the outer ring and the
        # border do not (untangle moves the outer ring toward the head instead).
        head = np.concatenate([(np.concatenate([np.ones(n_face), r.ring_weight]) >= 1)[k] for r, k in zip(rigs, keep)]
                              + [np.zeros(len(fixed), bool)])
        flattenable = head.copy()
        is_face = np.concatenate([~o[k] for o, k in zip(outer, keep)] + [np.zeros(len(fixed), bool)])
        flattenable[is_face] = np.concatenate([r.flattenable for r in rigs])
        face_starts = np.cumsum([0] + [int(k.sum()) for k in keep[:-1]]).tolist()
        groups = np.concatenate([np.full(int(k.sum()), i) for i, k in enumerate(keep)] + [np.full(len(fixed), -1)])
        widths = np.array([np.ptp(r.outline[:, 0]) for r in rigs])
        feature = np.zeros(len(points), bool)
        for start in face_starts:
            feature[start + FEATURES] = True
        mesh = MeshWarp(points[:, :2], triangulate(points[:, :2]), box, cfg.field_max_pixels)
        tri = mesh.triangles
        rest = signed_areas(mesh.source, tri)
        solid = np.abs(rest) > 1e-4 * np.abs(rest).max(initial=1.0)
        mouths = [MouthFiller(image, lm, cfg.mouth) for lm in source.landmarks]
        retargeting = None
        if self.retargeter is not None:
            from puppetry.methods.ldnet.inference import PoseRetargeting
            retargeting = PoseRetargeting(self.retargeter, source.landmarks)
        return WarpState(image=image, rigs=rigs, mouths=mouths, keep=keep, fixed=fixed, movable=movable,
                         mesh=mesh, flattenable=flattenable, neighbours=mesh_neighbours(tri, len(points)),
                         spread=spread_operator(points[:, :2], groups, cfg.rig.flatten_fade * widths, flattenable),
                         face_starts=face_starts, gauge=StretchGauge(mesh.source, tri),
                         unfold_candidates=(solid & head[tri].all(1) & flattenable[tri].any(1)
                                            & ~feature[tri].any(1)),
                         retargeting=retargeting)

    def target_face(self, rig: FaceRig, frame: DrivingFrame, state: WarpState | None = None,
                    face: int = 0) -> FacePose:
        """The face a source face should take for this frame (motion transfer, then controls)."""
        target = rig.pose
        if frame.pose is not None:
            driving = frame.pose
            reference = frame.reference if frame.reference is not None else frame.pose
            if state is not None and state.retargeting is not None:
                driving = state.retargeting.pose(face, frame.pose)
                reference = state.retargeting.reference(face, reference)
            target = transfer_motion(rig.pose, driving, reference, self.transfer)
        target = apply_controls(target, rig.pose, frame.controls)
        if self.config.gaze:
            e = np.array(target.expression, dtype=np.float64, copy=True)
            _clamp_irises(e)
        else:
            e = np.array(target.expression, dtype=np.float64, copy=True)
            e[T.RIGHT_IRIS] += rig.pose.expression[T.RIGHT_IRIS[0]] - e[T.RIGHT_IRIS[0]]
            e[T.LEFT_IRIS] += rig.pose.expression[T.LEFT_IRIS[0]] - e[T.LEFT_IRIS[0]]
            _clamp_irises(e)
        return FacePose(e, target.rotation, target.scale, target.center)

    def control_points(self, state: WarpState, frame: DrivingFrame) -> tuple[list[FacePose], np.ndarray]:
        """Each source face's target and the moved mesh vertices (``N x 3``: x, y, depth in source pixels)
        for one frame.

        The faces' 3D targets are unfolded at the contour (:func:`~puppetry.methods.warp.contour.unfold`),
        the rings are laid around the unfolded outlines, and outer-ring points whose triangles fold or
        are crushed move toward the head (never the head ring back from the face).
        """
        targets = [self.target_face(rig, frame, state, i) for i, rig in enumerate(state.rigs)]

        def assemble(faces: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
            blocks, anchors = [], []
            for rig, target, keep, face in zip(state.rigs, targets, state.keep, faces):
                ring, following = rig.ring_points(target, face)
                blocks.append(np.concatenate([face, ring])[keep])
                anchors.append(np.concatenate([face, following])[keep])
            return np.concatenate(blocks + [state.fixed]), np.concatenate(anchors + [state.fixed])

        true_3d = assemble([r.face_points(t) for r, t in zip(state.rigs, targets)])[0]
        moved = true_3d
        if self.config.unfold_contour:
            flat = assemble([r.face_points(t, flat=True) for r, t in zip(state.rigs, targets)])[0]
            moved = unfold(true_3d, flat, state.mesh.triangles, state.gauge, state.unfold_candidates,
                           state.flattenable, state.neighbours, state.spread)
        n = len(LANDMARK_IDS)
        moved, anchor = assemble([moved[start:start + n] for start in state.face_starts])
        shift = self._body_shift(state, frame)
        if shift is not None:
            moved[:, :2] += state.body_weight[:, None] * shift
            anchor[:, :2] += state.body_weight[:, None] * shift
        moved[:, :2] = untangle(anchor[:, :2], moved[:, :2], state.mesh.triangles, state.movable,
                                rest=state.mesh.source, min_area=self.config.rig.min_ring_squeeze,
                                gauge=state.gauge)
        return targets, moved

    def reset_reference(self, state: WarpState) -> None:
        state.body_reference = None

    def _body_shift(self, state: WarpState, frame: DrivingFrame) -> np.ndarray | None:
        """The driving body's motion since its reference frame (``2``, face widths), or None when the
        frame has no pixels or no body to follow. The first frame of a new reference becomes the body's
        reference frame; the source's body weights are found then, once."""
        if not self.config.follow_body or frame.image is None or frame.landmarks is None:
            return None
        reference = id(frame.reference) if frame.reference is not None else None
        if state.body is None or state.body_reference != reference:
            state.body = state.body or BodyMotion(config=self.config.body)
            state.body.reset(frame.image, frame.landmarks)
            state.body_reference = reference
            if state.body.tracking and state.body_weight is None:
                state.body_weight = _body_weights(state)
            return None
        if not state.body.tracking:
            return None
        return state.body(frame.image)

    def sampling_map(self, state: WarpState, frame: DrivingFrame) -> tuple[np.ndarray, np.ndarray]:
        """Where each output pixel of the moving region reads the source (``map_x, map_y``, box-sized)."""
        moved = self.control_points(state, frame)[1]
        return state.mesh.sampling_map(moved[:, :2], moved[:, 2])

    def render(self, state: WarpState, frame: DrivingFrame) -> np.ndarray:
        return self.render_with_targets(state, frame)[0]

    def render_with_targets(self, state: WarpState, frame: DrivingFrame) -> tuple[np.ndarray, list[np.ndarray]]:
        """The warped frame and each source face's target landmarks (``478 x 3`` source pixels), which
        engines built on the warp (wg-GAN) refine further."""
        t0 = time.perf_counter()
        targets, moved = self.control_points(state, frame)
        t1 = time.perf_counter()
        out = state.mesh.warp(state.image, moved[:, :2], moved[:, 2])
        t2 = time.perf_counter()
        points = [compose(t.expression, t.rotation, t.scale, t.center) for t in targets]
        if self.config.mouth_fill:
            for mouth, p in zip(state.mouths, points):
                mouth.fill(out, p[:, :2], frame.image, frame.landmarks)
        t3 = time.perf_counter()
        self._times["motion"] += t1 - t0
        self._times["warp"] += t2 - t1
        self._times["mouth"] += t3 - t2
        return out, points
