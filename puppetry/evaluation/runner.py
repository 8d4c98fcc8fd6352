"""Self- and cross-reenactment evaluation of animation engines, with the "static" baseline.

* **Self-reenactment**: the first frame of a video is the source; the video itself (its first frame
  included, as the reference of relative motion) drives it; frames 1..N-1 are compared with the video's
  own frames, which are the ground truth. Generated frames are compared at the ground truth's size
  (resized if an engine returns another size).
* **Cross-reenactment**: every source image is driven by every driving video; all driving frames are
  compared. There is no ground truth: motion metrics (AKD, APD, gaze) compare with the driving frame,
  CSIM with the source image, FID with the driving frames. Generated frames keep their own size.
* **static**: the source frame repeated, scored as if it were an engine: the floor any engine should beat
  on motion metrics (and the ceiling of identity metrics).

Metrics that need network weights (LPIPS, FID, CSIM/AED) are reported as unavailable, with the reason,
when the weights cannot be loaded; nothing is guessed. Bad pairs (corrupt video, no face in the
source) are skipped and recorded with their reason.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from puppetry.engines.base import Engine, SourceFaces
from puppetry.methods.registry import DEFAULT_ENGINE, create_engine, engine_names, engine_variant
from puppetry.errors import MediaError, PuppetryError
from puppetry.evaluation import face_metrics as fm
from puppetry.evaluation.fid import RELIABLE_SAMPLES, fid_from_features
from puppetry.evaluation.pixel_metrics import l1_distance, mse, psnr, ssim
from puppetry.face.identity import FaceIdentity, cosine_similarity, embedding_distance
from puppetry.face.landmarks import DetectorConfig, FaceMeshDetector
from puppetry.media.video import read_video
from puppetry.motion.transfer import TransferOptions
from puppetry.pipeline.driving import open_driving
from puppetry.pipeline.source import find_source_faces, load_source_image

logger = logging.getLogger(__name__)

STATIC = "static"
SETTINGS = ("self", "cross")


@dataclass(frozen=True)
class MetricInfo:
    """How a metric is reported: label, unit, which way is better, where it applies, what it needs."""

    label: str
    unit: str
    better: str                       # "lower" or "higher"
    settings: tuple[str, ...]
    needs: str | None = None          # "lpips", "inception" or "identity" (weights), else None
    description: str = ""


METRICS: dict[str, MetricInfo] = {
    "l1": MetricInfo("L1", "[0,1]", "lower", ("self",), None, "mean absolute pixel difference to the ground truth"),
    "mse": MetricInfo("MSE", "[0,1]", "lower", ("self",), None, "mean squared pixel difference to the ground truth"),
    "psnr": MetricInfo("PSNR", "dB", "higher", ("self",), None, "10 log10(1/MSE) against the ground truth"),
    "ssim": MetricInfo("SSIM", "", "higher", ("self",), None, "Gaussian-window SSIM, RGB mean"),
    "lpips": MetricInfo("LPIPS", "", "lower", ("self",), "lpips", "AlexNet LPIPS v0.1 to the ground truth"),
    "fid": MetricInfo("FID", "", "lower", SETTINGS, "inception",
                      "Frechet Inception distance, all generated vs all real (driving) frames"),
    "akd": MetricInfo("AKD", "px", "lower", SETTINGS, None,
                      "mean distance of 68 iBUG-layout landmarks to the driving frame's"),
    "mkr": MetricInfo("MKR", "", "lower", SETTINGS, None, "frames with a driving face but none generated"),
    "aed": MetricInfo("AED", "", "lower", ("self",), "identity",
                      "L2 distance of dlib identity embeddings to the ground truth"),
    "apd": MetricInfo("APD", "deg", "lower", SETTINGS, None, "mean |yaw|,|pitch|,|roll| difference to the driving"),
    "psim": MetricInfo("PSIM", "", "higher", SETTINGS, None,
                       "002's pose similarity: cosine of (pitch, yaw, roll) in radians with the driving's"),
    "ed": MetricInfo("ED", "", "lower", SETTINGS, None,
                     "002's expression distance: L2 of landmark expression measures to the driving's"),
    "csim": MetricInfo("CSIM", "", "higher", SETTINGS, "identity",
                       "cosine similarity of dlib identity embeddings to the source"),
    "gaze": MetricInfo("Gaze MAE", "deg", "lower", SETTINGS, None,
                       "angle between geometric eye-in-head gaze estimates"),
    "lip_corr": MetricInfo("Lip corr", "", "higher", SETTINGS, None,
                           "per pair, Pearson correlation of the lip-open ratio with the driving's"),
    "eye_corr": MetricInfo("Eye corr", "", "higher", SETTINGS, None,
                           "per pair, Pearson correlation of the eye-open ratio with the driving's"),
}
FRAME_METRICS = ("l1", "mse", "psnr", "ssim", "lpips", "akd", "apd", "psim", "ed", "gaze", "csim", "aed")
PAIR_METRICS = ("lip_corr", "eye_corr")          # one value per pair; the summary averages the pairs


@dataclass
class EvaluateConfig:
    """Settings of :func:`evaluate`.

    Attributes:
        engines: engines to evaluate besides the static baseline (see :func:`~puppetry.methods.registry.engine_names`; variants such as ``warp+ldnet`` too).
        engine_options: per engine, keyword arguments of its config (e.g. LivePortrait's checkpoint_dir).
        max_frames: frames read from each video (None: all); self-reenactment scores frames 1..N-1.
        max_size: longer side of the working source image.
        lpips_weights: LPIPS weight folder or files (None: ``$PUPPETRY_LPIPS_DIR``).
        inception_weights: FID Inception weight file (None: ``$PUPPETRY_INCEPTION_WEIGHTS``).
        samples: frames shown per pair in the report's sample strips.
        identity: compute CSIM/AED with dlib (False: reported unavailable).
        relative: relative motion transfer (the engines' default); False transfers the driving
            expression and pose themselves (absolute), as identity-retargeting papers evaluate.
    """

    engines: list[str] = field(default_factory=lambda: [DEFAULT_ENGINE])
    engine_options: dict[str, dict] = field(default_factory=dict)
    max_frames: int | None = 100
    max_size: int = 1024
    lpips_weights: str | list[str] | None = None
    inception_weights: str | None = None
    samples: int = 3
    identity: bool = True
    relative: bool = True


@dataclass
class SampleStrip:
    """Frames of one pair for the report: the source, driving frames and each engine's outputs."""

    setting: str
    pair: str
    indices: list[int]
    source: np.ndarray
    driving: list[np.ndarray]
    generated: dict[str, list[np.ndarray]] = field(default_factory=dict)


@dataclass
class Evaluation:
    """What :func:`evaluate` found: ``data`` is the JSON document, ``strips`` the sample frames."""

    data: dict[str, Any]
    strips: list[SampleStrip]


@dataclass
class _Reference:
    """One pair's shared analysis: the frames compared against, their landmarks and embeddings."""

    setting: str
    name: str
    source: str
    driving: str
    source_faces: SourceFaces
    driving_frames: list          # DrivingFrame stream, frame 0 included
    frames: list[np.ndarray]      # evaluated driving / ground-truth frames
    offset: int                   # index of frames[0] in the video (1 for self, 0 for cross)
    landmarks: np.ndarray         # F x 478 x 3, NaN where no face
    embeddings: np.ndarray | None  # F x 128, NaN where no face
    source_embedding: np.ndarray | None


class _Models:
    """The weight-bearing metric networks, or the one-line reason each is unavailable."""

    def __init__(self, config: EvaluateConfig):
        from puppetry.evaluation.inception import load_inception
        from puppetry.evaluation.lpips import load_lpips

        self.status: dict[str, dict] = {}
        self.lpips = self._try("lpips", lambda: load_lpips(config.lpips_weights))
        self.inception = self._try("inception", lambda: load_inception(config.inception_weights))
        if config.identity:
            self.identity = self._try("identity", FaceIdentity)
        else:
            self.identity = None
            self.status["identity"] = {"status": "unavailable", "reason": "identity metrics turned off"}
        self.detector = FaceMeshDetector("image", DetectorConfig(max_faces=1))

    def _try(self, name: str, build):
        try:
            model = build()
        except PuppetryError as exc:
            logger.warning("%s metrics unavailable: %s", name, exc)
            self.status[name] = {"status": "unavailable", "reason": str(exc)}
            return None
        self.status[name] = {"status": "ok"}
        return model

    def landmarks(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        return fm.stack_landmarks([(f[0] if (f := self.detector.detect(img)) else None) for img in frames])

    def embeddings(self, frames: Sequence[np.ndarray], landmarks: np.ndarray) -> np.ndarray | None:
        if self.identity is None:
            return None
        out = np.full((len(frames), 128), np.nan)
        for i, (img, lm) in enumerate(zip(frames, landmarks)):
            if np.isfinite(lm).all():
                e = self.identity.embed(img, lm)
                if e is not None:
                    out[i] = e
        return out

    def close(self) -> None:
        self.detector.close()


def _pairs(self_videos: Sequence[str], cross_sources: Sequence[str], cross_driving: Sequence[str]) -> list[tuple]:
    pairs = [("self", v, v) for v in self_videos]
    pairs += [("cross", s, d) for s in cross_sources for d in cross_driving]
    return pairs


def _check_inputs(paths: Sequence[str]) -> None:
    for p in paths:
        if not os.path.exists(p):
            raise MediaError(f"'{p}' does not exist")


def _reference(setting: str, source: str, driving: str, config: EvaluateConfig, models: _Models) -> _Reference:
    """Read and analyse one pair (raises PuppetryError when it cannot be evaluated)."""
    frames, _ = read_video(driving, config.max_frames)
    if setting == "self":
        if len(frames) < 2:
            raise MediaError(f"'{driving}' has {len(frames)} frame(s); self-reenactment needs at least 2")
        image, name = load_source_image(frames[0], config.max_size)
        name = f"{driving} (frame 0)"
        truth, offset = frames[1:], 1
        label = Path(driving).name
    else:
        image, name = load_source_image(source, config.max_size)
        truth, offset = frames, 0
        label = f"{Path(source).name} x {Path(driving).name}"
    faces = find_source_faces(image, name, max_faces=1)
    stream = open_driving(driving, keep_pixels=True, max_frames=len(frames))
    driving_frames = list(stream)
    landmarks = models.landmarks(truth)
    embeddings = models.embeddings(truth, landmarks)
    source_embedding = None
    if models.identity is not None:
        source_embedding = models.identity.embed(faces.image, faces.landmarks[0])
    return _Reference(setting, label, source, driving, faces, driving_frames, truth, offset, landmarks,
                      embeddings, source_embedding)


def _render(engine: Engine | None, ref: _Reference) -> list[np.ndarray]:
    """The engine's frames for the evaluated driving frames (the static baseline when ``engine`` is None)."""
    n = len(ref.frames)
    if engine is None:
        return [ref.source_faces.image] * n
    state = engine.prepare(ref.source_faces)
    out: list[np.ndarray] = []
    frames = ref.driving_frames
    for start in range(0, len(frames), max(1, engine.batch_size)):
        out.extend(engine.render_batch(state, frames[start:start + max(1, engine.batch_size)]))
    return out[ref.offset:ref.offset + n]


def _frame_metrics(generated: list[np.ndarray], ref: _Reference, models: _Models,
                   repeated: bool = False) -> tuple[dict, np.ndarray]:
    """Per-frame metric series (``F`` arrays, NaN where undefined) and the generated landmarks.

    ``repeated``: every generated frame is the same image (the static baseline), analysed once.
    """
    series: dict[str, np.ndarray] = {}
    if ref.setting == "self":
        h, w = ref.frames[0].shape[:2]
        generated = [g if g.shape[:2] == (h, w) else cv2.resize(g, (w, h), interpolation=cv2.INTER_AREA)
                     for g in generated]
        series["l1"] = np.array([l1_distance(g, t) for g, t in zip(generated, ref.frames)])
        series["mse"] = np.array([mse(g, t) for g, t in zip(generated, ref.frames)])
        series["psnr"] = np.array([psnr(g, t) for g, t in zip(generated, ref.frames)])
        series["ssim"] = np.array([ssim(g, t) for g, t in zip(generated, ref.frames)])
        if models.lpips is not None:
            series["lpips"] = models.lpips.distance(generated, ref.frames)
    n = len(generated)
    analysed = generated[:1] if repeated else generated
    lms = models.landmarks(analysed)
    embeddings = models.embeddings(analysed, lms)
    if repeated:
        lms = np.repeat(lms, n, axis=0)
        embeddings = None if embeddings is None else np.repeat(embeddings, n, axis=0)
    series["akd"] = fm.keypoint_distance(lms, ref.landmarks, align=ref.setting == "cross")
    pose = fm.pose_error(lms, ref.landmarks)
    series["apd"] = pose.mean(-1)
    for i, axis in enumerate(("yaw", "pitch", "roll")):
        series[f"apd_{axis}"] = pose[:, i]
    series["psim"] = fm.pose_similarity(lms, ref.landmarks)
    series["ed"] = fm.expression_distance(lms, ref.landmarks)
    series["gaze"] = fm.gaze_error(lms, ref.landmarks)
    if embeddings is not None and ref.source_embedding is not None:
        series["csim"] = cosine_similarity(embeddings, ref.source_embedding)
    if embeddings is not None and ref.setting == "self":
        series["aed"] = embedding_distance(embeddings, ref.embeddings)
    return series, lms


def _finite(x: float) -> float | str | None:
    """JSON-safe number: NaN becomes null, infinities the strings "inf" / "-inf"."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return float(x)


def _mean_entry(values: np.ndarray) -> dict:
    values = np.asarray(values, dtype=np.float64)
    valid = values[~np.isnan(values)]
    if valid.size == 0:
        return {"value": None, "status": "no_data", "reason": "no frame could be measured (no face found)"}
    return {"value": _finite(float(valid.mean())), "frames": int(valid.size)}


def _unavailable(metric: str, models: _Models) -> dict | None:
    """The entry of a metric whose network could not be loaded, or None when it can be computed."""
    info = METRICS[metric]
    if info.needs is not None and models.status[info.needs]["status"] != "ok":
        return {"value": None, "status": "unavailable", "reason": models.status[info.needs]["reason"]}
    return None


def _summary(setting: str, per_frame: dict[str, list[np.ndarray]], mkr: tuple[int, int], fid: dict,
             models: _Models, per_pair: dict[str, list[float]]) -> dict:
    """Means over all evaluated frames of one engine in one setting (frame-weighted over pairs); the
    per-pair metrics are averaged over the pairs where they are defined."""
    out: dict[str, Any] = {}
    for metric, info in METRICS.items():
        if setting not in info.settings:
            continue
        missing = _unavailable(metric, models)
        if missing is not None:
            out[metric] = missing
        elif metric == "mkr":
            lost, found = mkr
            out[metric] = ({"value": lost / found, "frames": found} if found else
                           {"value": None, "status": "no_data", "reason": "no driving frame had a face"})
        elif metric == "fid":
            out[metric] = fid
        elif metric in PAIR_METRICS:
            values = np.array(per_pair.get(metric, []), dtype=np.float64)
            valid = values[np.isfinite(values)]
            out[metric] = ({"value": float(valid.mean()), "pairs": int(valid.size)} if valid.size else
                           {"value": None, "status": "no_data", "reason": "no pair moved the mouth or eyes measurably"})
        else:
            out[metric] = _mean_entry(np.concatenate(per_frame.get(metric, [np.zeros(0)]) or [np.zeros(0)]))
    for axis in ("yaw", "pitch", "roll"):
        out[f"apd_{axis}"] = _mean_entry(np.concatenate(per_frame[f"apd_{axis}"] or [np.zeros(0)]))
    return out


def _fid_entry(generated: list[np.ndarray], real: list[np.ndarray]) -> dict:
    if not generated or sum(len(g) for g in generated) < 2 or sum(len(r) for r in real) < 2:
        return {"value": None, "status": "no_data", "reason": "FID needs at least 2 frames per set"}
    g, r = np.concatenate(generated), np.concatenate(real)
    entry = {"value": _finite(fid_from_features(g, r)), "frames": int(len(g)), "real_frames": int(len(r))}
    if min(len(g), len(r)) < RELIABLE_SAMPLES:
        entry["note"] = f"biased upward with fewer than {RELIABLE_SAMPLES} frames; compare only within this run"
    return entry


def _sample_indices(n: int, count: int) -> list[int]:
    if n <= 0 or count <= 0:
        return []
    return sorted(set(np.linspace(0, n - 1, min(count, n)).round().astype(int).tolist()))


def _thumb(image: np.ndarray, height: int = 256) -> np.ndarray:
    w = max(2, round(image.shape[1] * height / image.shape[0]))
    return cv2.resize(image, (w, height), interpolation=cv2.INTER_AREA)


def _build_engines(config: EvaluateConfig) -> tuple[dict[str, Engine | None], dict[str, dict]]:
    engines: dict[str, Engine | None] = {STATIC: None}
    status: dict[str, dict] = {STATIC: {"status": "ok", "note": "the source frame repeated (baseline)"}}
    for name in config.engines:
        if name == STATIC or name in engines:
            continue
        base, options = engine_variant(name)
        if base not in engine_names():
            raise PuppetryError(f"unknown engine '{name}'; available engines: {', '.join(engine_names())}")
        try:
            options = {**options, **config.engine_options.get(name, {})}
            engines[name] = create_engine(base, TransferOptions(relative=config.relative), **options)
            status[name] = {"status": "ok"}
        except PuppetryError as exc:
            logger.warning("engine %s skipped: %s", name, exc)
            status[name] = {"status": "skipped", "reason": str(exc)}
    return engines, status


def evaluate(self_videos: Sequence[str | os.PathLike] = (), cross_sources: Sequence[str | os.PathLike] = (),
             cross_driving: Sequence[str | os.PathLike] = (), config: EvaluateConfig | None = None) -> Evaluation:
    """Evaluate engines (and the static baseline) by self- and cross-reenactment.

    Args:
        self_videos: videos whose first frame animates the rest (ground truth available).
        cross_sources: source images, each driven by every video of ``cross_driving``.
        cross_driving: driving videos of cross-reenactment.
        config: see :class:`EvaluateConfig`.
    Returns:
        An :class:`Evaluation` (the JSON document and the report's sample frames).
    Raises:
        MediaError: an input does not exist, or no pair could be evaluated.
        PuppetryError: an unknown engine name.
    """
    config = config or EvaluateConfig()
    self_videos = [os.fspath(v) for v in self_videos]
    cross_sources, cross_driving = [os.fspath(s) for s in cross_sources], [os.fspath(d) for d in cross_driving]
    if bool(cross_sources) != bool(cross_driving):
        raise MediaError("cross-reenactment needs both source images and driving videos")
    pairs = _pairs(self_videos, cross_sources, cross_driving)
    if not pairs:
        raise MediaError("nothing to evaluate: give self-reenactment videos and/or cross sources and driving videos")
    _check_inputs(self_videos + cross_sources + cross_driving)
    if config.max_frames is not None and config.max_frames < 2:
        raise ValueError("--max-frames must be at least 2")
    start = time.perf_counter()
    engines, engine_status = _build_engines(config)
    models = _Models(config)
    results = {s: {name: {"pairs": []} for name in engines} for s in SETTINGS}
    per_frame = {s: {name: {m: [] for m in FRAME_METRICS + ("apd_yaw", "apd_pitch", "apd_roll")}
                     for name in engines} for s in SETTINGS}
    mkr = {s: {name: [0, 0] for name in engines} for s in SETTINGS}
    per_pair = {s: {name: {m: [] for m in PAIR_METRICS} for name in engines} for s in SETTINGS}
    features = {s: {name: [] for name in engines} for s in SETTINGS}
    real_features: dict[str, list] = {s: [] for s in SETTINGS}
    seconds = {name: [0.0, 0] for name in engines}
    skipped: list[dict] = []
    strips: list[SampleStrip] = []
    try:
        for setting, source, driving in pairs:
            logger.info("evaluating %s-reenactment: %s", setting, driving if setting == "self" else
                        f"{source} x {driving}")
            try:
                ref = _reference(setting, source, driving, config, models)
            except PuppetryError as exc:
                logger.warning("skipped %s pair %s / %s: %s", setting, source, driving, exc)
                skipped.append({"setting": setting, "source": source, "driving": driving, "reason": str(exc)})
                continue
            if models.inception is not None:
                real_features[setting].append(models.inception.features(ref.frames))
            idx = _sample_indices(len(ref.frames), config.samples)
            strip = SampleStrip(setting, ref.name, [i + ref.offset for i in idx], _thumb(ref.source_faces.image),
                                [_thumb(ref.frames[i]) for i in idx])
            for name, engine in engines.items():
                entry: dict[str, Any] = {"source": source, "driving": driving, "name": ref.name}
                t = time.perf_counter()
                try:
                    generated = _render(engine, ref)
                except PuppetryError as exc:
                    logger.warning("engine %s failed on %s: %s", name, ref.name, exc)
                    entry.update(status="skipped", reason=str(exc))
                    results[setting][name]["pairs"].append(entry)
                    continue
                seconds[name][0] += time.perf_counter() - t
                seconds[name][1] += len(generated)
                series, lms = _frame_metrics(generated, ref, models, repeated=engine is None)
                lost = int((fm.found(ref.landmarks) & ~fm.found(lms)).sum())
                has = int(fm.found(ref.landmarks).sum())
                mkr[setting][name][0] += lost
                mkr[setting][name][1] += has
                for metric, values in series.items():
                    per_frame[setting][name][metric].append(values)
                if models.inception is not None:
                    feats = models.inception.features(generated[:1] if engine is None else generated)
                    features[setting][name].append(np.repeat(feats, len(generated), 0) if engine is None else feats)
                entry["frames"] = len(generated)
                entry["mean"] = {m: _mean_entry(v) for m, v in series.items()}
                entry["mean"]["mkr"] = {"value": lost / has if has else None, "frames": has}
                for metric, value in fm.open_ratio_correlation(lms, ref.landmarks).items():
                    per_pair[setting][name][metric].append(value)
                    entry["mean"][metric] = {"value": _finite(value)}
                entry["per_frame"] = {m: [_finite(float(x)) for x in v] for m, v in series.items()}
                results[setting][name]["pairs"].append(entry)
                strip.generated[name] = [_thumb(generated[i]) for i in idx]
            strips.append(strip)
    finally:
        models.close()
    if not strips:
        first = skipped[0]["reason"] if skipped else "no pairs"
        raise MediaError(f"no pair could be evaluated ({len(skipped)} skipped; first: {first})")
    for setting in SETTINGS:
        if not any(s.setting == setting for s in strips):
            results.pop(setting)
            continue
        for name in engines:
            if models.inception is not None:
                fid = _fid_entry(features[setting][name], real_features[setting])
            else:
                fid = {}
            results[setting][name]["mean"] = _summary(setting, per_frame[setting][name], tuple(mkr[setting][name]),
                                                      fid, models, per_pair[setting][name])
    for name, (secs, n) in seconds.items():
        if name in engine_status and n:
            engine_status[name]["seconds_per_frame"] = secs / n
    data = {
        "tool": "puppetry evaluate",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.perf_counter() - start, 2),
        "options": {**asdict(config), "self": self_videos, "cross_sources": cross_sources,
                    "cross_driving": cross_driving},
        "metrics": {k: {"label": v.label, "unit": v.unit, "better": v.better, "settings": list(v.settings),
                        "needs_weights": v.needs, "description": v.description} for k, v in METRICS.items()},
        "status": models.status,
        "engines": engine_status,
        "results": results,
        "skipped_pairs": skipped,
    }
    return Evaluation(data, strips)


__all__ = ["EvaluateConfig", "Evaluation", "SampleStrip", "METRICS", "STATIC", "evaluate"]
