"""Video reconstruction with paper 004's protocol (after FOMM): the first frame of a video is the source,
every later frame drives it, and the output is compared with the true frame.

Frames are squared and resized to the model's side as in training (:mod:`puppetry.data.whole_frames`),
and every metric is computed at that size:

* L1: mean absolute difference of RGB in [0, 1];
* faces: AKD over the 68 iBUG-layout points of MediaPipe Face Mesh (the paper: Bulat's FAN), MKR the
  share of frames whose true frame has a face and the output none, AED the distance between dlib's
  128-d face embeddings (the paper: FOMM's identity embedding);
* bodies: AKD and per-keypoint MKR with MediaPipe Pose (:mod:`puppetry.evaluation.body_metrics`; the
  paper: OpenPose); no re-identification network is installable, so AED is not reported for bodies.

:data:`PAPER_TABLE1` holds the paper's Table 1 for comparison: other data (Tai-Chi-HD, VoxCeleb, BAIR),
other detectors, full-size networks trained for 100 epochs.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from puppetry.data.whole_frames import square_frame
from puppetry.media.video import read_video

logger = logging.getLogger(__name__)

# Paper 004, Table 1 (video reconstruction; lower is better).
PAPER_TABLE1 = {
    "Tai-Chi-HD": {"FOMM": {"l1": 0.063, "akd": 6.862, "mkr": 0.036, "aed": 0.179},
                   "Ours": {"l1": 0.047, "akd": 4.239, "mkr": 0.015, "aed": 0.147}},
    "VoxCeleb": {"FOMM": {"l1": 0.043, "akd": 1.294, "aed": 0.140},
                 "Ours": {"l1": 0.034, "akd": 1.329, "aed": 0.130}},
    "BAIR": {"FOMM": {"l1": 0.027}, "Ours": {"l1": 0.021}},
}
KINDS = ("face", "body")


@dataclass
class VideoScores:
    """One video's reconstruction scores (NaN: not measurable, e.g. AED of a body)."""

    video: str
    kind: str
    frames: int
    l1: float
    akd: float
    mkr: float
    aed: float
    static_l1: float          # the source frame itself against every true frame: the do-nothing baseline

    def as_dict(self) -> dict:
        return asdict(self)


def reconstruct(model, frames: list[np.ndarray], square: str = "pad",
                device: torch.device | str = "cpu") -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frame 0 drives nothing; frames 1.. each drive frame 0. Returns ``(outputs, truths)``, both
    ``S x S x 3`` uint8 at the model's side."""
    size = int(model.config.size)
    squares = [square_frame(f, size, square) for f in frames]

    def tensor(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x).permute(2, 0, 1)[None].float().div(255).to(device)

    outputs = []
    with torch.no_grad():
        source = tensor(squares[0])
        prepared = model.source_mask(source)
        for truth in squares[1:]:
            f = model.animate(source, tensor(truth), prepared)["final"][0]
            outputs.append((f.clamp(0, 1).permute(1, 2, 0) * 255).round().byte().cpu().numpy())
    return outputs, squares[1:]


def _face_scores(outputs: list[np.ndarray], truths: list[np.ndarray]) -> tuple[float, float, float]:
    from puppetry.evaluation import face_metrics as fm
    from puppetry.face.identity import FaceIdentity
    from puppetry.face.landmarks import DetectorConfig, FaceMeshDetector

    with FaceMeshDetector("image", DetectorConfig(max_faces=1)) as det:
        gen = fm.stack_landmarks([(f[0] if (f := det.detect(x)) else None) for x in outputs])
        ref = fm.stack_landmarks([(f[0] if (f := det.detect(x)) else None) for x in truths])
    akd = float(np.nanmean(fm.keypoint_distance(gen, ref))) if (fm.found(gen) & fm.found(ref)).any() else np.nan
    mkr = fm.missing_keypoint_rate(gen, ref)
    identity = FaceIdentity()
    dists = []
    for g, r, lg, lr in zip(outputs, truths, gen, ref):
        if np.isfinite(lg).all() and np.isfinite(lr).all():
            eg, er = identity.embed(g, lg), identity.embed(r, lr)
            if eg is not None and er is not None:
                dists.append(float(np.linalg.norm(eg - er)))
    return akd, mkr, float(np.mean(dists)) if dists else float("nan")


def _body_scores(outputs: list[np.ndarray], truths: list[np.ndarray]) -> tuple[float, float, float]:
    from puppetry.evaluation.body_metrics import BodyKeypoints, body_keypoint_distance, body_missing_rate

    with BodyKeypoints() as pose:
        gen, ref = pose(outputs), pose(truths)
    akd = body_keypoint_distance(gen, ref)
    return (float(np.nanmean(akd)) if np.isfinite(akd).any() else float("nan"), body_missing_rate(gen, ref),
            float("nan"))


def evaluate_video(model, path: str | Path, kind: str, max_frames: int | None = 100, square: str = "pad",
                   device: torch.device | str = "cpu") -> VideoScores:
    """Reconstruct one video (its first ``max_frames`` frames) and score it as a ``face`` or ``body`` video."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    frames, _ = read_video(path, max_frames)
    outputs, truths = reconstruct(model, frames, square, device)
    l1 = float(np.mean([np.abs(o.astype(np.float32) - t).mean() / 255 for o, t in zip(outputs, truths)]))
    first = square_frame(frames[0], int(model.config.size), square).astype(np.float32)   # what the model saw
    static = float(np.mean([np.abs(first - t).mean() / 255 for t in truths]))
    akd, mkr, aed = (_face_scores if kind == "face" else _body_scores)(outputs, truths)
    logger.info("%s (%s): L1 %.4f (static %.4f), AKD %.3f, MKR %.3f, AED %.3f", path, kind, l1, static, akd, mkr, aed)
    return VideoScores(str(path), kind, len(outputs), l1, akd, mkr, aed, static)
