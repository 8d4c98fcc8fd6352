"""From per-frame face detections to clips: one person each, with one fixed square crop.

1. Scene cuts: consecutive frames whose small thumbnails differ a lot end every track.
2. Tracking: faces are linked frame to frame by the overlap (IoU) of their landmark boxes; a track
   ends when its face is lost for more than ``max_gap`` frames or jumps (no overlap with where it was).
   Short losses inside a track are bridged by interpolating the landmarks (flagged as not detected).
3. Stable crops: a track whose head wanders is split so that, within each part, the union of the face
   boxes stays within ``max_crop_growth`` times the mean face box; parts shorter than ``min_frames``
   are dropped.
4. Crop: a square around the union box, ``crop_scale`` times the mean face box (larger if the union
   needs it), moved inside the frame when it fits (FOMM / VoxCeleb style: the head moves inside a
   still crop).

Frame "positions" count the frames that were analysed (after ``--every``), not source frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_THUMB = 16


@dataclass(frozen=True)
class TrackingConfig:
    """Settings of :func:`plan_clips`.

    Attributes:
        min_iou: a face continues a track when its box overlaps the track's last box at least this much.
        max_gap: most consecutive frames a face may be lost inside a track (bridged by interpolation).
        min_face: faces whose box side is smaller than this (pixels) are ignored.
        scene_cut: mean absolute difference (0..1) of consecutive 16 x 16 thumbnails that marks a cut
            (measured on shared/data: at most 0.07 inside a shot; 0.06-0.4, median 0.22, across the
            joins of two different videos).
        min_frames: shortest clip kept.
        max_crop_growth: a clip's union box side may be at most this times its mean face box side.
        crop_scale: crop side over the mean face box side (see :func:`crop_box`).
        union_margin: the crop side is at least this times the union box side.
        crop_shift: vertical shift of the crop centre, as a fraction of its side (negative: up, toward
            the hair).
    """

    min_iou: float = 0.3
    max_gap: int = 4
    min_face: float = 32.0
    scene_cut: float = 0.12
    min_frames: int = 16
    max_crop_growth: float = 1.4
    crop_scale: float = 1.8
    union_margin: float = 1.15
    crop_shift: float = -0.04


@dataclass
class Track:
    """One face followed through frames.

    Attributes:
        positions: ``N`` increasing frame positions where the face was detected.
        landmarks: ``N x 478 x 3`` landmarks in source pixels at those positions.
    """

    positions: np.ndarray
    landmarks: np.ndarray


@dataclass(frozen=True)
class ClipPlan:
    """One clip to store: frames ``start .. stop - 1`` of one track, cut with ``crop_box``.

    Attributes:
        track: index of the track it comes from.
        start, stop: frame positions, half-open.
        landmarks: ``T x 478 x 3`` landmarks in source pixels (gaps interpolated).
        detected: ``T`` bool, False where the landmarks were interpolated.
        crop_box: ``(x0, y0, x1, y1)`` integer square in source pixels (may reach outside the frame).
    """

    track: int
    start: int
    stop: int
    landmarks: np.ndarray
    detected: np.ndarray
    crop_box: tuple[int, int, int, int]

    @property
    def num_frames(self) -> int:
        return self.stop - self.start


def face_boxes(landmarks: np.ndarray) -> np.ndarray:
    """``... x 4`` boxes ``(x0, y0, x1, y1)`` of ``... x 478 x D`` landmarks (x, y pixels)."""
    xy = np.asarray(landmarks)[..., :2]
    return np.concatenate([xy.min(-2), xy.max(-2)], -1)


def box_sides(boxes: np.ndarray) -> np.ndarray:
    """``...`` larger side of ``... x 4`` boxes."""
    return np.maximum(boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1])


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``N x M`` intersection over union of ``N x 4`` and ``M x 4`` boxes."""
    a = np.asarray(a, dtype=np.float64)[:, None, :]
    b = np.asarray(b, dtype=np.float64)[None, :, :]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


def frame_signature(rgb: np.ndarray) -> np.ndarray:
    """``16 x 16 x 3`` float32 thumbnail (0..1) of an ``H x W x 3`` uint8 frame, for :func:`scene_cuts`."""
    return cv2.resize(rgb, (_THUMB, _THUMB), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def scene_cuts(signatures: np.ndarray, threshold: float = TrackingConfig.scene_cut) -> np.ndarray:
    """``T`` bool: True where frame t starts a new shot (frame 0 is False).

    Args:
        signatures: ``T x 16 x 16 x 3`` thumbnails from :func:`frame_signature`.
        threshold: mean absolute thumbnail difference that marks a cut.
    """
    sig = np.asarray(signatures, dtype=np.float32)
    cuts = np.zeros(len(sig), dtype=bool)
    if len(sig) > 1:
        cuts[1:] = np.abs(np.diff(sig, axis=0)).mean(axis=(1, 2, 3)) > threshold
    return cuts


def _match(track_boxes: np.ndarray, boxes: np.ndarray, min_iou: float) -> list[tuple[int, int]]:
    """Greedy one-to-one matching of tracks to faces by decreasing IoU (pairs at least ``min_iou``)."""
    iou = box_iou(track_boxes, boxes)
    order = np.argsort(-iou, axis=None)
    rows, cols = np.unravel_index(order, iou.shape)
    keep = iou[rows, cols] >= min_iou
    pairs, used_rows, used_cols = [], set(), set()
    for r, c in zip(rows[keep].tolist(), cols[keep].tolist()):
        if r not in used_rows and c not in used_cols:
            pairs.append((r, c))
            used_rows.add(r)
            used_cols.add(c)
    return pairs


def track_faces(detections: list[list[np.ndarray]], cuts: np.ndarray | None = None,
                config: TrackingConfig | None = None) -> list[Track]:
    """Link per-frame faces into tracks.

    Args:
        detections: for each frame position, its faces as ``478 x 3`` landmark arrays (pixels).
        cuts: ``T`` bool from :func:`scene_cuts` (``None``: no cuts).
        config: thresholds.
    Returns:
        Tracks sorted by their first frame (ties: larger face first).
    """
    config = config or TrackingConfig()
    cuts = np.zeros(len(detections), dtype=bool) if cuts is None else np.asarray(cuts, dtype=bool)
    finished: list[tuple[list[int], list[np.ndarray]]] = []
    active: list[tuple[list[int], list[np.ndarray]]] = []
    for pos, faces in enumerate(detections):
        if cuts[pos]:
            finished.extend(active)
            active = []
        alive = [t for t in active if pos - t[0][-1] <= config.max_gap + 1]
        finished.extend(t for t in active if pos - t[0][-1] > config.max_gap + 1)
        active = alive
        if not faces:
            continue
        stack = np.stack([np.asarray(f, dtype=np.float32) for f in faces])
        boxes = face_boxes(stack)
        big = box_sides(boxes) >= config.min_face
        stack, boxes = stack[big], boxes[big]
        matched: set[int] = set()
        if active and len(boxes):
            last = face_boxes(np.stack([t[1][-1] for t in active]))
            for r, c in _match(last, boxes, config.min_iou):
                active[r][0].append(pos)
                active[r][1].append(stack[c])
                matched.add(c)
        active.extend(([pos], [stack[c]]) for c in range(len(stack)) if c not in matched)
    finished.extend(active)
    tracks = [Track(np.asarray(p, dtype=np.int64), np.stack(lm)) for p, lm in finished]
    tracks.sort(key=lambda t: (int(t.positions[0]), -float(box_sides(face_boxes(t.landmarks[0])))))
    return tracks


def fill_gaps(track: Track) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks at every position from the track's first to last frame.

    Returns:
        ``T x 478 x 3`` landmarks (linear interpolation over lost frames) and ``T`` bool ``detected``.
    """
    pos = track.positions
    full = np.arange(pos[0], pos[-1] + 1)
    detected = np.isin(full, pos)
    if len(pos) == 1:
        return track.landmarks.copy(), detected
    i = np.clip(np.searchsorted(pos, full, side="right") - 1, 0, len(pos) - 2)
    w = ((full - pos[i]) / (pos[i + 1] - pos[i])).astype(np.float32)[:, None, None]
    lm = track.landmarks[i] * (1 - w) + track.landmarks[i + 1] * w
    return lm.astype(np.float32), detected


def stable_segments(boxes: np.ndarray, max_growth: float, min_frames: int) -> list[tuple[int, int]]:
    """Split a run of face boxes where the crop would have to grow too much.

    Args:
        boxes: ``T x 4`` face boxes of consecutive frames.
        max_growth: within a segment, union box side / mean box side stays at most this.
        min_frames: segments shorter than this are dropped.
    Returns:
        Half-open ``(start, stop)`` index ranges into ``boxes``.
    """
    sides = box_sides(boxes)
    segments, start = [], 0
    lo, hi, total = boxes[0, :2].copy(), boxes[0, 2:].copy(), 0.0
    for t in range(len(boxes)):              # one step per frame: running union and mean size
        new_lo, new_hi = np.minimum(lo, boxes[t, :2]), np.maximum(hi, boxes[t, 2:])
        union = float((new_hi - new_lo).max())
        mean = (total + sides[t]) / (t - start + 1)
        if t > start and union > max_growth * mean:
            segments.append((start, t))
            start, new_lo, new_hi, total = t, boxes[t, :2].copy(), boxes[t, 2:].copy(), 0.0
        lo, hi, total = new_lo, new_hi, total + float(sides[t])
    segments.append((start, len(boxes)))
    return [(s, e) for s, e in segments if e - s >= min_frames]


def crop_box(boxes: np.ndarray, frame_size: tuple[int, int], scale: float, shift: float = 0.0,
             union_margin: float = 1.15) -> tuple[int, int, int, int]:
    """One square crop for a run of face boxes.

    The side is ``scale`` times the mean face box side, so faces have the same size in every clip,
    grown when needed so that the union of all boxes fits with ``union_margin`` to spare.

    Args:
        boxes: ``T x 4`` face boxes in source pixels.
        frame_size: ``(width, height)`` of the source frames.
        scale: crop side over the mean face box side.
        shift: vertical shift of the centre as a fraction of the side (negative: up).
        union_margin: crop side over the union box's larger side, at least.
    Returns:
        ``(x0, y0, x1, y1)`` integers, a square centred on the union box; moved inside the frame when
        it fits, otherwise reaching outside (the outside is padded when cropping).
    """
    lo, hi = boxes[:, :2].min(0), boxes[:, 2:].max(0)
    side = max(float(box_sides(boxes).mean()) * scale, float((hi - lo).max()) * union_margin)
    side = max(int(round(side)), 2)
    center = (lo + hi) / 2 + np.array([0.0, shift * side])
    corner = np.round(center - side / 2).astype(np.int64)
    limits = np.array(frame_size, dtype=np.int64) - side
    fits = limits >= 0
    corner = np.where(fits, np.clip(corner, 0, np.maximum(limits, 0)), corner)
    x0, y0 = int(corner[0]), int(corner[1])
    return x0, y0, x0 + side, y0 + side


def plan_clips(detections: list[list[np.ndarray]], frame_size: tuple[int, int], cuts: np.ndarray | None = None,
               config: TrackingConfig | None = None) -> list[ClipPlan]:
    """Every clip of a video, sorted by start frame then track.

    Args:
        detections: per frame position, ``478 x 3`` landmark arrays in source pixels.
        frame_size: ``(width, height)`` of the source frames.
        cuts: scene cuts from :func:`scene_cuts`.
        config: thresholds and crop settings.
    """
    config = config or TrackingConfig()
    plans = []
    for index, track in enumerate(track_faces(detections, cuts, config)):
        if track.positions[-1] - track.positions[0] + 1 < config.min_frames:
            continue
        landmarks, detected = fill_gaps(track)
        boxes = face_boxes(landmarks)
        for s, e in stable_segments(boxes, config.max_crop_growth, config.min_frames):
            box = crop_box(boxes[s:e], frame_size, config.crop_scale, config.crop_shift, config.union_margin)
            first = int(track.positions[0])
            plans.append(ClipPlan(index, first + s, first + e, landmarks[s:e], detected[s:e], box))
    plans.sort(key=lambda p: (p.start, p.track))
    return plans


def longest_track(detections: list[list[np.ndarray]], cuts: np.ndarray | None = None,
                  config: TrackingConfig | None = None) -> int:
    """Frames spanned by the longest track (0 when no face), for skip reasons."""
    tracks = track_faces(detections, cuts, config)
    return max((int(t.positions[-1] - t.positions[0] + 1) for t in tracks), default=0)


def face_crop_box(landmarks: np.ndarray, image_shape: tuple[int, ...], crop_scale: float = TrackingConfig.crop_scale):
    """The square ``puppetry prepare`` would cut around one face (``478 x 3`` landmarks) in an image of
    ``image_shape`` (``H x W x ...``), as a :class:`~puppetry.face.crop.CropBox`: what engines trained on
    prepared clips crop at inference."""
    from puppetry.face.crop import CropBox

    x0, y0, x1, y1 = crop_box(face_boxes(landmarks)[None], (image_shape[1], image_shape[0]), crop_scale,
                              TrackingConfig.crop_shift, TrackingConfig.union_margin)
    return CropBox((x0 + x1) / 2.0, (y0 + y1) / 2.0, float(x1 - x0))
