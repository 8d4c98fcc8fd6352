"""Motion-transfer metrics from MediaPipe Face Mesh landmarks: AKD, MKR, APD, PSIM, ED and gaze error.

Every function works on stacks of landmarks, ``F x 478 x 3`` in pixels, with a frame's rows all NaN
when no face was found there (see :func:`stack_landmarks`). Per-frame results are NaN where a frame
cannot be measured; averages are taken over the frames that can.

* **AKD** (average keypoint distance, FOMM/Siarohin et al. 2019): mean Euclidean distance in pixels
  between the 68 iBUG-layout points (``puppetry.face.topology.IBUG68``, x and y only) of the generated
  and the reference frame. In cross-reenactment the two faces are framed differently, so the generated
  points are first moved and scaled (no rotation) onto the reference face's centroid and RMS size.
* **MKR** (missing keypoint rate): fraction of frames with a face in the reference where none is found
  in the generated frame.
* **APD** (average pose distance): absolute difference of head yaw, pitch and roll in degrees
  (``puppetry.face.pose``), per axis and averaged over the three.
* **PSIM** (pose similarity, paper 002): cosine similarity of the head-rotation vectors (pitch, yaw,
  roll in radians, i.e. about the X, Y and Z axes) of the two frames (:func:`pose_similarity`). The
  cosine ignores the vectors' lengths and is unstable when either head is near frontal (near-zero
  angles, where a degree of noise turns the vector around); 002 defines it so and so does this; a
  frame whose angles are all exactly zero has no direction and gives NaN.
* **ED** (expression distance, paper 002): L2 distance between the frames' expression vectors
  (:func:`expression_features`: eye and lip openness, mouth width, brow heights and smile, each a
  ratio that does not change with head position, size or rotation).
* **Gaze error**: angle in degrees between the eye-in-head gaze directions of the two frames, from a
  simple geometric model (:func:`gaze_vectors`); frames where the reference's eyes are closed are skipped.

PSIM and ED follow 002's definitions, but 002 measures head pose and action-unit intensities with
OpenFace, which is not available here: our landmark head pose and landmark expression measures stand
in for them, so the values are not comparable with the paper's numbers, only between engines.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from puppetry.face import topology as T
from puppetry.face.pose import decompose, eye_open_ratio, head_rotation, lip_open_ratio, rotation_to_euler

EYEBALL_RADIUS_PER_EYE_WIDTH = 0.4
"""Eyeball radius over the corner-to-corner eye width (about 12 mm over 30 mm in adults)."""

CLOSED_EYE_RATIO = 0.1
"""Below this lid gap over eye width the eyes count as closed and gaze is not measured."""

# Per eye, the corner on the image's left first: subject's right eye (outer, inner), left eye (inner, outer).
_EYE_CORNERS = np.array([[T.RIGHT_EYE_CORNERS[0], T.RIGHT_EYE_CORNERS[1]],
                         [T.LEFT_EYE_CORNERS[1], T.LEFT_EYE_CORNERS[0]]])
_EYE_LIDS = np.array([[T.RIGHT_EYE_UPPER[2:5], T.RIGHT_EYE_LOWER[2:5]],
                      [T.LEFT_EYE_UPPER[2:5], T.LEFT_EYE_LOWER[2:5]]])      # 2 eyes x (upper, lower) x 3

EXPRESSION_FEATURES = ("right_eye_open", "left_eye_open", "lip_open", "mouth_width", "right_brow_height",
                       "left_brow_height", "smile")
"""Names of the columns of :func:`expression_features`, in order."""

# Brow middles: the middle point of each brow's upper (outer->inner) and lower (inner->outer) contour
# (right: 105 and 52, left: 334 and 282), averaged.
_BROW_MIDDLES = np.array([[T.RIGHT_BROW[2], T.RIGHT_BROW[7]], [T.LEFT_BROW[2], T.LEFT_BROW[7]]])
# Eye centres: the midpoint of each eye's two corners (right: 33, 133; left: 263, 362).
_EYE_CENTER_CORNERS = np.array([T.RIGHT_EYE_CORNERS, T.LEFT_EYE_CORNERS])
# Middle of the mouth opening: the middle points of the inner upper and lower lips (13 and 14).
_MOUTH_MIDDLE = np.array([T.LIP_UPPER_INNER[4], T.LIP_LOWER_INNER[4]])


def stack_landmarks(faces: Sequence[np.ndarray | None]) -> np.ndarray:
    """``F`` optional ``478 x 3`` landmark arrays as one ``F x 478 x 3`` float64 array, NaN where None."""
    out = np.full((len(faces), T.NUM_LANDMARKS, 3), np.nan)
    for i, face in enumerate(faces):
        if face is not None:
            out[i] = face
    return out


def found(landmarks: np.ndarray) -> np.ndarray:
    """``F`` booleans: the frame has a face (``F x 478 x 3`` input)."""
    return np.isfinite(landmarks).all(axis=(1, 2))


def _align_centroid_scale(points: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Move and scale ``F x K x 2`` points onto the centroid and RMS radius of ``target`` (same shape)."""
    pc, tc = points.mean(1, keepdims=True), target.mean(1, keepdims=True)
    ps = np.sqrt(((points - pc) ** 2).sum(-1).mean(-1))[:, None, None]
    ts = np.sqrt(((target - tc) ** 2).sum(-1).mean(-1))[:, None, None]
    return (points - pc) * (ts / np.maximum(ps, 1e-9)) + tc


def keypoint_distance(generated: np.ndarray, reference: np.ndarray, align: bool = False) -> np.ndarray:
    """Per-frame AKD in pixels of the reference frame.

    Args:
        generated, reference: ``F x 478 x 3`` landmarks (NaN rows where no face).
        align: move and scale the generated points onto the reference face first (cross-reenactment).
    Returns:
        ``F`` mean distances over the 68 iBUG points; NaN where either face is missing.
    """
    g = generated[:, T.IBUG68, :2]
    r = reference[:, T.IBUG68, :2]
    with np.errstate(invalid="ignore"):
        if align:
            g = _align_centroid_scale(g, r)
        return np.linalg.norm(g - r, axis=-1).mean(-1)


def missing_keypoint_rate(generated: np.ndarray, reference: np.ndarray) -> float:
    """MKR: of the frames with a face in ``reference``, the fraction without one in ``generated``.

    Args:
        generated, reference: ``F x 478 x 3`` landmarks (NaN rows where no face).
    Returns:
        A rate in [0, 1]; NaN when the reference has no face in any frame.
    """
    ref = found(reference)
    if not ref.any():
        return float("nan")
    return float((ref & ~found(generated)).sum() / ref.sum())


def head_angles(landmarks: np.ndarray) -> np.ndarray:
    """Yaw, pitch and roll in degrees, ``F x 3`` (NaN where no face), from ``F x 478 x 3`` landmarks."""
    with np.errstate(invalid="ignore"):
        return rotation_to_euler(head_rotation(np.asarray(landmarks, dtype=np.float64)))


def pose_error(generated: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Absolute yaw, pitch and roll differences in degrees, ``F x 3`` (APD averages them)."""
    return np.abs(head_angles(generated) - head_angles(reference))


def pose_similarity(generated: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per-frame PSIM (002): cosine similarity of the head-rotation vectors of two landmark stacks.

    Each frame's vector is (pitch, yaw, roll) in radians, from :func:`head_angles`. As in 002 the cosine
    only compares directions: near-frontal heads (angles of a few degrees) give an unstable value, and
    a vector that is exactly zero has no direction, so its frames are NaN rather than a division warning.

    Args:
        generated, reference: ``F x 478 x 3`` landmarks (NaN rows where no face).
    Returns:
        ``F`` similarities in [-1, 1] (higher is better); NaN where either face is missing or has all
        angles zero.
    """
    g = np.deg2rad(head_angles(generated)[:, [1, 0, 2]])
    r = np.deg2rad(head_angles(reference)[:, [1, 0, 2]])
    with np.errstate(invalid="ignore", divide="ignore"):
        norms = np.linalg.norm(g, axis=-1) * np.linalg.norm(r, axis=-1)
        cos = (g * r).sum(-1) / norms
        cos[norms == 0] = np.nan
        return np.clip(cos, -1.0, 1.0)


def expression_features(landmarks: np.ndarray) -> np.ndarray:
    """Landmark expression measures, our stand-in for OpenFace's action-unit intensities (ED, 002).

    The columns (:data:`EXPRESSION_FEATURES`), each a ratio of lengths, so independent of the head's
    position, size and rotation; heights are taken along the face's own down axis, in the pose-free
    frame of :func:`puppetry.face.pose.decompose`, and divided by the inter-ocular distance (IOD,
    between the eye centres, each the midpoint of the eye's corners 33/133 and 263/362):

    0, 1. right and left eye-open ratio (:func:`~puppetry.face.pose.eye_open_ratio`, ~0.3 open, ~0 closed);
    2. lip-open ratio (:func:`~puppetry.face.pose.lip_open_ratio`, 0 closed to ~0.5 wide open);
    3. mouth width (corners 61-291) over IOD (~0.8);
    4, 5. right and left brow height: brow middle (mean of 105 and 52; 334 and 282) above the eye
       centre, over IOD (~0.3);
    6. smile: how far the mouth corners (61, 291) lie above the middle of the mouth opening (mean of
       13 and 14), over IOD (around 0; positive when the corners are raised).

    Args:
        landmarks: ``F x 478 x 3`` landmarks (NaN rows where no face).
    Returns:
        ``F x 7`` features, NaN rows where no face.
    """
    points = np.asarray(landmarks, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        face = decompose(points).expression                                  # F x 478 x 3 (right, down, back)
        eyes = face[:, _EYE_CENTER_CORNERS].mean(-2)                         # F x 2 x 3
        iod = np.linalg.norm(eyes[:, 1] - eyes[:, 0], axis=-1)
        brows = face[:, _BROW_MIDDLES].mean(-2)                              # F x 2 x 3
        brow_height = (eyes[..., 1] - brows[..., 1]) / iod[:, None]
        corners = face[:, T.MOUTH_CORNERS]                                   # F x 2 x 3
        mouth_width = np.linalg.norm(corners[:, 1] - corners[:, 0], axis=-1) / iod
        smile = (face[:, _MOUTH_MIDDLE, 1].mean(-1) - corners[..., 1].mean(-1)) / iod
        return np.concatenate([eye_open_ratio(points), lip_open_ratio(points)[:, None], mouth_width[:, None],
                               brow_height, smile[:, None]], axis=-1)


def expression_distance(generated: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per-frame ED (002): L2 distance between the :func:`expression_features` of two landmark stacks.

    Args:
        generated, reference: ``F x 478 x 3`` landmarks (NaN rows where no face).
    Returns:
        ``F`` distances (lower is better); NaN where either face is missing.
    """
    return np.linalg.norm(expression_features(generated) - expression_features(reference), axis=-1)


def gaze_vectors(landmarks: np.ndarray) -> np.ndarray:
    """Eye-in-head gaze directions, ``F x 3`` unit vectors (x right along the eye, y down, z toward the
    camera is negative), NaN where no face.

    The model: each eye has an axis ``u`` from its image-left corner to its image-right corner and the
    perpendicular ``v`` (down). The iris centre's offset from the corners' midpoint along ``u``, and
    from the midpoint of the middle upper and lower lid points along ``v``, divided by the eyeball
    radius (:data:`EYEBALL_RADIUS_PER_EYE_WIDTH` x eye width), are the sines of the horizontal and
    vertical eye rotations. Both eyes' directions are averaged. Measured in the eye's own frame, the
    estimate ignores head pose (APD measures that) and in-plane roll; it is a coarse proxy, not a
    calibrated gaze tracker.
    """
    pts = np.asarray(landmarks, dtype=np.float64)[..., :2]
    left, right = pts[:, _EYE_CORNERS[:, 0]], pts[:, _EYE_CORNERS[:, 1]]          # F x 2 eyes x 2
    with np.errstate(invalid="ignore", divide="ignore"):
        width = np.linalg.norm(right - left, axis=-1, keepdims=True)
        u = (right - left) / np.maximum(width, 1e-9)
        v = np.stack([-u[..., 1], u[..., 0]], -1)
        iris = pts[:, T.IRIS_CENTERS]
        lid_mid = 0.5 * (pts[:, _EYE_LIDS[:, 0]].mean(-2) + pts[:, _EYE_LIDS[:, 1]].mean(-2))
        radius = EYEBALL_RADIUS_PER_EYE_WIDTH * width[..., 0]
        sx = np.clip(((iris - 0.5 * (left + right)) * u).sum(-1) / radius, -0.99, 0.99)
        sy = np.clip(((iris - lid_mid) * v).sum(-1) / radius, -0.99, 0.99)
        sz = -np.sqrt(np.clip(1.0 - sx ** 2 - sy ** 2, 0.0, 1.0))
        g = np.stack([sx, sy, sz], -1).mean(1)                                    # F x 3
        return g / np.linalg.norm(g, axis=-1, keepdims=True)


def gaze_error(generated: np.ndarray, reference: np.ndarray, closed_eye_ratio: float = CLOSED_EYE_RATIO) -> np.ndarray:
    """Per-frame angle in degrees between the gaze directions of ``F x 478 x 3`` landmark stacks.

    Frames where the reference's eyes are closed (mean lid gap over eye width below ``closed_eye_ratio``)
    have no gaze and are NaN.
    """
    cos = (gaze_vectors(generated) * gaze_vectors(reference)).sum(-1)
    with np.errstate(invalid="ignore"):
        error = np.rad2deg(np.arccos(np.clip(cos, -1.0, 1.0)))
        error[eye_open_ratio(np.asarray(reference, dtype=np.float64)).mean(-1) < closed_eye_ratio] = np.nan
    return error


__all__ = ["stack_landmarks", "found", "keypoint_distance", "missing_keypoint_rate", "head_angles",
           "pose_error", "pose_similarity", "expression_features", "expression_distance", "gaze_vectors",
           "gaze_error", "EXPRESSION_FEATURES", "EYEBALL_RADIUS_PER_EYE_WIDTH", "CLOSED_EYE_RATIO"]


def _pearson(a: np.ndarray, b: np.ndarray, min_frames: int = 3) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if len(a) < min_frames or a.std() < 1e-6 or b.std() < 1e-6:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def open_ratio_correlation(generated: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """How well the generated mouth and eyes open and close in step with the driving face.

    Args:
        generated, reference: ``F x 478 x 3`` landmarks per frame (NaN where no face was found).
    Returns:
        ``{"lip_corr": r, "eye_corr": r}``: Pearson correlations over the frames where both faces were
        found of the lip-open ratio and of the mean eye-open ratio; NaN with under 3 frames or when
        either side never moves (a still image, such as the static baseline).
    """
    return {"lip_corr": _pearson(lip_open_ratio(generated), lip_open_ratio(reference)),
            "eye_corr": _pearson(eye_open_ratio(generated).mean(-1), eye_open_ratio(reference).mean(-1))}
