"""Body keypoint metrics for video reconstruction of whole figures (FOMM's Tai-Chi protocol).

FOMM and paper 004 measure bodies with OpenPose, which no installable package ships with its weights.
MediaPipe 0.10.21's Pose (BlazePose, 33 keypoints with a visibility score; the "full" model, in the
wheel) stands in for it:

* AKD: mean distance in pixels between the keypoints of the generated and the true frame, over the
  keypoints visible (visibility >= ``min_visibility``) in both;
* MKR: of the keypoints visible in the true frame, the share that is not visible in the generated one
  (FOMM's missing keypoint rate, per keypoint).

Keypoints are ``F x 33 x 3``: x, y in pixels and visibility in [0, 1]; a frame with no person is NaN.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from puppetry.face.native_output import silenced

NUM_BODY_KEYPOINTS = 33
MIN_VISIBILITY = 0.5


class BodyKeypoints:
    """MediaPipe Pose on single images (``model_complexity=1``, the model its wheel carries)."""

    def __init__(self) -> None:
        with silenced():
            import mediapipe as mp  # heavy import, done only when a detector is built

            self._model = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1)

    def __call__(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """``F x 33 x 3`` keypoints of ``H x W x 3`` uint8 RGB frames (NaN where no person is found)."""
        out = np.full((len(frames), NUM_BODY_KEYPOINTS, 3), np.nan)
        for i, rgb in enumerate(frames):
            with silenced():
                result = self._model.process(np.ascontiguousarray(rgb))
            if result.pose_landmarks is None:
                continue
            h, w = rgb.shape[:2]
            out[i] = [(p.x * w, p.y * h, p.visibility) for p in result.pose_landmarks.landmark]
        return out

    def close(self) -> None:
        self._model.close()

    def __enter__(self) -> "BodyKeypoints":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _visible(keypoints: np.ndarray, min_visibility: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(keypoints[..., 2], nan=0.0) >= min_visibility


def body_keypoint_distance(generated: np.ndarray, reference: np.ndarray,
                           min_visibility: float = MIN_VISIBILITY) -> np.ndarray:
    """Per-frame AKD (``F``, pixels) over the keypoints visible in both; NaN where none is."""
    both = _visible(generated, min_visibility) & _visible(reference, min_visibility)
    d = np.linalg.norm(np.nan_to_num(generated[..., :2]) - np.nan_to_num(reference[..., :2]), axis=-1)
    with np.errstate(invalid="ignore"):
        return np.where(both.any(1), (d * both).sum(1) / both.sum(1), np.nan)


def body_missing_rate(generated: np.ndarray, reference: np.ndarray, min_visibility: float = MIN_VISIBILITY) -> float:
    """MKR: of the keypoints visible in ``reference``, the share not visible in ``generated`` (NaN if none)."""
    ref = _visible(reference, min_visibility)
    if not ref.any():
        return float("nan")
    return float((ref & ~_visible(generated, min_visibility)).sum() / ref.sum())
