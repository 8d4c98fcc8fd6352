"""Semantic face masks: a label per pixel (skin, brows, eyes, nose, lips, inner mouth, hair, neck/body).

This is a geometric heuristic, not a learned face parser. Face parts are polygons of the 478 Face Mesh
landmarks; where the person is comes from MediaPipe's selfie segmentation (its model ships in the
mediapipe wheel); the rest is decided by position relative to the face:

* skin: the face oval, plus the ears (ellipses beside the oval at ear level, shrinking on the side that
  turns away from the camera);
* brows, eyes (lids and iris), nose (hull of the bridge, tip and wings), lips (outer lip line minus the
  opening), inner mouth (the opening between the lips);
* neck/body: person pixels below the jaw, i.e. under the jaw contour or lower than the jaw angles;
* hair: the remaining person pixels outside the face (above the jaw angles);
* background: everything else.

Known limits: hair over the forehead is labelled skin (the face oval stops near the hairline), long hair
below the jaw angles is labelled neck/body, hands or glasses in front of the face take the label of the
face part under them, and the person mask is only as good as the selfie model (coarse at hair edges).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import cv2
import numpy as np

from puppetry.face import topology as T
from puppetry.face.native_output import QUIET_FRAMES, silenced
from puppetry.face.pose import head_rotation, rotation_to_euler

MASK_LABELS: tuple[str, ...] = ("background", "skin", "brows", "eyes", "nose", "lips", "inner_mouth", "hair",
                                "neck_body")
"""Label names by value: 0 background, 1 skin, 2 brows, 3 eyes, 4 nose, 5 lips, 6 inner mouth, 7 hair,
8 neck/body."""

BACKGROUND, SKIN, BROWS, EYES, NOSE, LIPS, INNER_MOUTH, HAIR, NECK_BODY = range(len(MASK_LABELS))

PALETTE = np.array([[0, 0, 0], [230, 180, 140], [120, 60, 20], [40, 120, 255], [255, 120, 0],
                    [220, 20, 60], [90, 0, 90], [255, 220, 0], [40, 180, 80]], dtype=np.uint8)
"""``9 x 3`` RGB colour of each label, for previews (:func:`colorize`)."""

# Nose: bridge from between the eyes to the tip, the wings and the columella; filled as a convex hull.
NOSE_POINTS = np.array([168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 97, 326, 327, 64, 294, 48, 278, 115, 344,
                 220, 440, 45, 275, 129, 358, 122, 351])
_RIGHT_EYE = np.concatenate([[T.RIGHT_EYE_CORNERS[0]], T.RIGHT_EYE_UPPER, [T.RIGHT_EYE_CORNERS[1]],
                             T.RIGHT_EYE_LOWER[::-1]])
_LEFT_EYE = np.concatenate([[T.LEFT_EYE_CORNERS[0]], T.LEFT_EYE_UPPER, [T.LEFT_EYE_CORNERS[1]],
                            T.LEFT_EYE_LOWER[::-1]])
_OVAL_RIGHT_EAR, _OVAL_LEFT_EAR = 28, 8           # positions of 234 and 454 in FACE_OVAL
_JAW_ANGLES = np.array([172, 397])               # gonion, subject's right and left
_EAR_POINTS = np.array([234, 454])
_SHIFT = 4                                        # fixed-point bits for sub-pixel polygon filling


@dataclass(frozen=True)
class SegmenterConfig:
    """Settings of :class:`PersonSegmenter`.

    Attributes:
        model: MediaPipe selfie model, 0 general (256 x 256, square crops) or 1 landscape (144 x 256).
        threshold: person probability above which a pixel is the person.
    """

    model: int = 0
    threshold: float = 0.5


class PersonSegmenter:
    """MediaPipe selfie segmentation: which pixels are the person (head, hair, body, clothes)."""

    def __init__(self, config: SegmenterConfig | None = None) -> None:
        self.config = config or SegmenterConfig()
        with silenced():                      # MediaPipe's native log lines (see native_output)
            import mediapipe as mp  # heavy import, done only when a segmenter is built

            self._model = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=self.config.model)
            self._model.process(np.zeros((32, 32, 3), np.uint8))   # start the graph now (see FaceMeshDetector)
        self._quiet_frames = QUIET_FRAMES

    def probability(self, rgb: np.ndarray) -> np.ndarray:
        """``H x W`` float32 person probability of an ``H x W x 3`` uint8 RGB image."""
        with silenced() if self._quiet_frames else contextlib.nullcontext():   # the graph logs on its first frames too
            result = self._model.process(np.ascontiguousarray(rgb))
        self._quiet_frames = max(self._quiet_frames - 1, 0)
        if result.segmentation_mask is None:
            return np.zeros(rgb.shape[:2], np.float32)
        return np.asarray(result.segmentation_mask, dtype=np.float32)

    def segment(self, rgb: np.ndarray) -> np.ndarray:
        """``H x W`` bool person mask of an ``H x W x 3`` uint8 RGB image."""
        return self.probability(rgb) > self.config.threshold

    def close(self) -> None:
        self._model.close()

    def __enter__(self) -> "PersonSegmenter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _fill(labels: np.ndarray, polygon: np.ndarray, value: int) -> None:
    """Paint a closed ``N x 2`` pixel polygon into ``labels`` (sub-pixel vertices)."""
    pts = np.round(np.asarray(polygon)[:, :2] * (1 << _SHIFT)).astype(np.int32)
    cv2.fillPoly(labels, [pts], int(value), lineType=cv2.LINE_8, shift=_SHIFT)


def _fill_hull(labels: np.ndarray, points: np.ndarray, value: int) -> None:
    pts = np.round(np.asarray(points)[:, :2] * (1 << _SHIFT)).astype(np.int32)
    cv2.fillConvexPoly(labels, cv2.convexHull(pts), int(value), lineType=cv2.LINE_8, shift=_SHIFT)


def _ear_mask(shape: tuple[int, int], xy: np.ndarray, down: np.ndarray, yaw: float) -> np.ndarray:
    """``H x W`` uint8 mask of two ear ellipses beside the face oval; the ear turned away shrinks away."""
    mask = np.zeros(shape, np.uint8)
    width = float(np.linalg.norm(xy[454] - xy[234]))
    height = float(np.linalg.norm(xy[T.CHIN] - xy[T.FOREHEAD]))
    angle = float(np.degrees(np.arctan2(down[1], down[0]))) - 90.0
    right = np.array([down[1], -down[0]])        # image right on an upright face
    # yaw > 0 turns the face toward the image's left: the ear at 234 (image left) turns away.
    visible = np.clip(1.0 - np.array([max(yaw, 0.0), max(-yaw, 0.0)]) / 35.0, 0.0, 1.0)
    for side, point, vis in zip((-1.0, 1.0), _EAR_POINTS, visible):
        semi_w = 0.07 * width * vis
        if semi_w < 1.0:
            continue
        center = xy[point] + side * right * semi_w * 0.7 + down * 0.03 * height
        axes = (max(int(round(semi_w)), 1), max(int(round(0.16 * height)), 1))
        cv2.ellipse(mask, (int(round(center[0])), int(round(center[1]))), axes, angle, 0, 360, 1, -1)
    return mask


def face_parsing(rgb: np.ndarray, landmarks478: np.ndarray, person_mask: np.ndarray | None = None) -> np.ndarray:
    """Label map of one face (see the module docstring for the rules; a heuristic, not a learned parser).

    Args:
        rgb: ``H x W x 3`` uint8 image the landmarks belong to (only its size is used).
        landmarks478: ``478 x 3`` (or ``478 x 2``) Face Mesh landmarks in pixels of ``rgb``.
        person_mask: ``H x W`` bool person mask (e.g. :meth:`PersonSegmenter.segment`); ``None`` labels
            only the face parts (no hair, body or ears).
    Returns:
        ``H x W`` uint8 labels, values index :data:`MASK_LABELS`.
    """
    h, w = rgb.shape[:2]
    pts = np.asarray(landmarks478, dtype=np.float64)
    xy = pts[:, :2]
    labels = np.zeros((h, w), np.uint8)

    if person_mask is not None:
        person = np.asarray(person_mask, dtype=bool)
        if person.shape != (h, w):
            raise ValueError(f"person_mask is {person.shape}, expected {(h, w)}")
        down = xy[T.CHIN] - xy[T.FOREHEAD]
        down = down / max(float(np.linalg.norm(down)), 1e-6)
        height = float(np.linalg.norm(xy[T.CHIN] - xy[T.FOREHEAD]))
        # Below the jaw: the lower face contour pushed far down, or lower than the jaw angles.
        jaw = xy[T.FACE_OVAL[_OVAL_LEFT_EAR:_OVAL_RIGHT_EAR + 1]]
        far = 4.0 * height * down
        below = np.zeros((h, w), np.uint8)
        _fill(below, np.concatenate([jaw, [jaw[-1] + far, jaw[0] + far]]), 1)
        ys, xs = np.mgrid[0:h, 0:w]
        depth = (xs - xy[T.CHIN, 0]) * down[0] + (ys - xy[T.CHIN, 1]) * down[1]
        angle_depth = float(((xy[_JAW_ANGLES] - xy[T.CHIN]) @ down).mean())
        body = (below > 0) | (depth > angle_depth)
        labels[person] = HAIR
        labels[person & body] = NECK_BODY
        yaw = float(rotation_to_euler(head_rotation(pts if pts.shape[1] == 3 else
                                                    np.pad(pts, ((0, 0), (0, 1)))))[0])
        ears = _ear_mask((h, w), xy, down, yaw) > 0
        labels[person & ears & ~body] = SKIN

    _fill(labels, xy[T.FACE_OVAL], SKIN)
    _fill_hull(labels, xy[NOSE_POINTS], NOSE)
    _fill(labels, xy[T.RIGHT_BROW], BROWS)
    _fill(labels, xy[T.LEFT_BROW], BROWS)
    _fill(labels, xy[_RIGHT_EYE], EYES)
    _fill(labels, xy[_LEFT_EYE], EYES)
    _fill(labels, xy[T.OUTER_MOUTH], LIPS)
    _fill(labels, xy[T.INNER_MOUTH], INNER_MOUTH)
    return labels


def colorize(labels: np.ndarray) -> np.ndarray:
    """``H x W x 3`` uint8 RGB preview of an ``H x W`` label map (:data:`PALETTE`)."""
    return PALETTE[np.clip(labels, 0, len(PALETTE) - 1)]


def overlay(rgb: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``H x W x 3`` uint8 blend of an image and its colourised labels (background left as is)."""
    colour = colorize(labels).astype(np.float32)
    out = rgb.astype(np.float32)
    fg = labels > 0
    out[fg] = (1 - alpha) * out[fg] + alpha * colour[fg]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
