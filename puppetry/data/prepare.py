"""``prepare``: turn videos into a sharded dataset of one-person face clips (see :mod:`puppetry.data.format`).

Per video (:class:`VideoPreparer`), in two decoding passes so that no video is held in memory:

1. decode (``max_frames``, every ``every``-th frame), find faces with Face Mesh in video mode, and
   note scene cuts; plan clips from face tracks (:mod:`puppetry.data.tracking`);
2. decode again; for each clip, crop its fixed square, resize to ``size``, move the landmarks into
   crop pixels, add dlib's 68 points, head pose and the semantic mask (:mod:`puppetry.face.parsing`);
   each finished clip goes straight into the video's shard.

The driver (:func:`prepare_dataset`) runs videos in worker processes, resumes an interrupted run (a
video with a finished shard or a "skipped" report line is not redone), takes every n-th video with
``shard=(i, n)`` and appends one report line per video. A video that fails for any reason is skipped with
the reason; it never stops the others.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import re
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import cv2
import numpy as np

from puppetry.data import format as fmt
from puppetry.data.tracking import ClipPlan, TrackingConfig, frame_signature, longest_track, plan_clips, scene_cuts
from puppetry.data.whole_frames import SQUARE_MODES, crop_square, prepare_whole_video
from puppetry.errors import MediaError, PuppetryError, first_line
from puppetry.face.dlib68 import Dlib68, dlib_box_from_landmarks
from puppetry.face.landmarks import DetectorConfig, FaceMeshDetector
from puppetry.face.parsing import PersonSegmenter, face_parsing
from puppetry.face.pose import decompose, rotation_to_euler
from puppetry.media.audio import Audio, read_audio
from puppetry.media.video import VideoReader, is_video_path

logger = logging.getLogger(__name__)

AUDIO_RATE = 16000
"""Sample rate of the clips' stored audio (mono int16), enough for speech features."""

IDENTITY_MODES = ("clip", "video", "parent", "grandparent")


@dataclass(frozen=True)
class PrepareOptions:
    """What a dataset is made with (stored in ``dataset.json``; a resumed run must use the same).

    Attributes:
        size: side S of the stored square frames and masks.
        crop_scale: crop side over a clip's mean face box side (the crop grows if the head moves more).
        min_frames: shortest clip kept (in stored frames).
        max_frames: read at most this many frames of each video (``None``: all).
        every: keep every k-th frame (the clip's fps is the video's over k).
        max_faces: most faces looked for per frame.
        identity: ``clip`` (each clip its own identity), ``video`` (all clips of a video), ``parent``
            (the video's folder name) or ``grandparent`` (the folder above it, e.g. the speaker id of
            VoxCeleb's ``id/youtube_id/clip.mp4``).
        landmarks_only: store landmarks, pose and boxes but no frames or masks.
        whole_frames: ``pad`` or ``crop``: no face is looked for; each scene of a video is a clip of its
            whole frames made square (:mod:`puppetry.data.whole_frames`); None: face clips.
    """

    size: int = 256
    crop_scale: float = 1.8
    min_frames: int = 16
    max_frames: int | None = None
    every: int = 1
    max_faces: int = 2
    identity: str = "clip"
    landmarks_only: bool = False
    whole_frames: str | None = None

    def __post_init__(self) -> None:
        if not 32 <= self.size <= 4096:
            raise ValueError(f"--size must be between 32 and 4096, got {self.size}")
        if not 1.0 <= self.crop_scale <= 4.0:
            raise ValueError(f"--crop-scale must be between 1 and 4, got {self.crop_scale}")
        if self.min_frames < 1:
            raise ValueError(f"--min-frames must be at least 1, got {self.min_frames}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"--max-frames must be at least 1, got {self.max_frames}")
        if self.every < 1:
            raise ValueError(f"--every must be at least 1, got {self.every}")
        if not 1 <= self.max_faces <= 16:
            raise ValueError(f"--max-faces must be between 1 and 16, got {self.max_faces}")
        if self.identity not in IDENTITY_MODES:
            raise ValueError(f"--identity must be one of {', '.join(IDENTITY_MODES)}, got {self.identity!r}")
        if self.whole_frames not in (None, *SQUARE_MODES):
            raise ValueError(f"--whole-frames must be one of {', '.join(SQUARE_MODES)}, got {self.whole_frames!r}")
        if self.whole_frames and self.landmarks_only:
            raise ValueError("--whole-frames stores frames without landmarks; it cannot go with --landmarks-only")

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if out["whole_frames"] is None:          # face datasets read the same as before the option existed
            del out["whole_frames"]
        return out

    def tracking(self) -> TrackingConfig:
        return TrackingConfig(min_frames=self.min_frames, crop_scale=self.crop_scale)


@dataclass(frozen=True)
class VideoSource:
    """One input video: ``path`` as found, ``relpath`` (names its shard, orders ``--shard``), ``key``."""

    path: str
    relpath: str
    key: str


@dataclass
class PrepareSummary:
    """Outcome of :func:`prepare_dataset` for this machine's videos (``shard``)."""

    videos: int = 0
    ok: int = 0
    skipped: int = 0
    already_ok: int = 0
    already_skipped: int = 0
    clips: int = 0
    frames: int = 0
    analysed_frames: int = 0
    seconds: float = 0.0
    reasons: Counter = field(default_factory=Counter)


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)`` with ``0 <= i < n``; raises ``ValueError`` with one line otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match:
        raise ValueError(f"--shard must look like i/n (e.g. 0/4), got {text!r}")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or index >= count:
        raise ValueError(f"--shard {text}: need 0 <= i < n")
    return index, count


def find_videos(inputs: Sequence[str | os.PathLike]) -> list[VideoSource]:
    """Video files named or found (recursively) in folders, sorted by relative path, duplicates removed.

    A file's relative path is ``parent/name``; a video found in folder ``F`` is ``F's name/path in F``.

    Raises:
        MediaError: an input is missing or is a file that is not a video, or no video was found.
    """
    found: dict[str, tuple[str, str]] = {}  # resolved path -> (path, relpath)
    for item in inputs:
        path = Path(item)
        if not path.exists():
            raise MediaError(f"input '{item}' not found")
        if path.is_file():
            if not is_video_path(path):
                raise MediaError(f"input '{item}' is not a video (expected one of .mp4 .mov .webm .avi .mkv .gif .m4v)")
            parent = path.resolve().parent.name
            found.setdefault(str(path.resolve()), (str(path), f"{parent}/{path.name}" if parent else path.name))
            continue
        base = path.resolve().name or "root"
        for folder, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                file = Path(folder) / name
                if name.startswith(".") or not is_video_path(file):
                    continue
                rel = f"{base}/{file.relative_to(path).as_posix()}"
                found.setdefault(str(file.resolve()), (str(file), rel))
    if not found:
        raise MediaError(f"no videos found in {', '.join(repr(str(i)) for i in inputs)}")
    sources, used = [], set()
    for resolved, (shown, rel) in sorted(found.items(), key=lambda kv: (kv[1][1], kv[0])):
        if rel in used:                     # two different files with the same relative path
            rel = Path(resolved).as_posix()
        used.add(rel)
        sources.append(VideoSource(shown, rel, fmt.video_key(rel)))
    return sorted(sources, key=lambda s: s.relpath)


def select_shard(videos: Sequence[VideoSource], index: int, count: int) -> list[VideoSource]:
    """This machine's part of a corpus split ``count`` ways: videos ``index, index + count, ...``."""
    return list(videos[index::count])


def to_crop(landmarks: np.ndarray, box: tuple[int, int, int, int], size: int) -> np.ndarray:
    """``... x 478 x 3`` source-pixel landmarks -> crop pixels (z scaled like x)."""
    scale = size / (box[2] - box[0])
    offset = np.array([box[0], box[1], 0.0], dtype=np.float64)
    return ((np.asarray(landmarks, dtype=np.float64) - offset) * scale).astype(np.float32)


class _Skip(Exception):
    """A video that cannot give any clip (the message is the report's reason)."""


class OutputError(MediaError):
    """The dataset cannot be written (disk full, no permission): stops the run instead of skipping videos."""


class _ClipBuffer:
    """A clip being cut in the second pass: its encoded frames and masks and its 68-point landmarks."""

    def __init__(self, number: int, plan: ClipPlan, landmarks: np.ndarray) -> None:
        self.number = number
        self.plan = plan
        self.landmarks = landmarks                      # T x 478 x 3, crop pixels
        self.landmarks68 = np.zeros((plan.num_frames, 68, 2), np.float32)
        self.jpegs: list[bytes] = []
        self.pngs: list[bytes] = []


class VideoPreparer:
    """Turns one video into one shard; holds the per-process models (dlib predictor, person segmenter).

    Build one per process and call :meth:`process` for each video.
    """

    def __init__(self, options: PrepareOptions) -> None:
        self.options = options
        self.tracking = options.tracking()
        whole = options.whole_frames is not None
        self.dlib = None if whole else Dlib68()
        self.segmenter = None if options.landmarks_only or whole else PersonSegmenter()

    def process(self, source: VideoSource, root: Path) -> dict[str, Any]:
        """Prepare one video into ``root/shards``; never raises for a bad video (returns a skip record).

        Raises:
            OutputError: the shard cannot be written (the run should stop).
        """
        start = time.perf_counter()
        record: dict[str, Any] = {"video": source.path, "key": source.key, "status": "ok", "reason": "",
                                  "clips": 0, "frames": 0, "analysed_frames": 0}
        shards = Path(root) / fmt.SHARDS_DIR
        fmt.remove_stale_temps(shards, f"{source.key}.")
        try:
            record.update(self._process(source, shards))
        except OutputError:
            raise
        except (_Skip, PuppetryError) as exc:
            record.update(status="skipped", reason=first_line(exc))
        except Exception as exc:  # noqa: BLE001 - one bad video must not stop the others
            logger.debug("unexpected failure on %s", source.path, exc_info=True)
            text = first_line(exc) if str(exc) else ""
            record.update(status="skipped", reason=f"unexpected {type(exc).__name__}: {text}".rstrip(": "))
        record["seconds"] = round(time.perf_counter() - start, 3)
        return record

    # -- pass 1 ------------------------------------------------------------------------------------
    def _analyse(self, source: VideoSource) -> tuple[list[list[np.ndarray]], np.ndarray, float, tuple[int, int]]:
        detections, signatures = [], []
        with VideoReader(source.path, max_frames=self.options.max_frames) as reader, \
                FaceMeshDetector("video", DetectorConfig(max_faces=self.options.max_faces)) as detector:
            for i, frame in enumerate(reader):
                if i % self.options.every:
                    continue
                detections.append(detector.detect(frame))
                signatures.append(frame_signature(frame))
            fps, size = reader.fps, reader.size
        cuts = scene_cuts(np.stack(signatures), self.tracking.scene_cut)
        return detections, cuts, fps, size

    # -- both passes -------------------------------------------------------------------------------
    def _process(self, source: VideoSource, shards: Path) -> dict[str, Any]:
        if self.options.whole_frames is not None:
            return self._process_whole(source, shards)
        detections, cuts, fps, frame_size = self._analyse(source)
        analysed = len(detections)
        if not any(detections):
            raise _Skip(f"no face found in {analysed} frames")
        plans = plan_clips(detections, frame_size, cuts, self.tracking)
        if not plans:
            longest = longest_track(detections, cuts, self.tracking)
            raise _Skip(f"no face track of at least {self.options.min_frames} frames with a steady crop "
                        f"(longest track {longest} frames)")
        clip_fps = fps / self.options.every
        audio = self._audio(source, fps)
        try:
            with fmt.ShardWriter(shards, source.key, video=source.path) as shard:
                self._cut(source, plans, shard, clip_fps, frame_size, audio)
                shard_clips = list(shard.clips)
                shard.extra.update(fps=fps, source_size=list(frame_size), analysed_frames=analysed,
                                   options=self.options.as_dict())
        except OSError as exc:
            raise OutputError(f"cannot write to '{shards}': {exc.strerror or exc}") from None
        return {"clips": len(shard_clips), "frames": int(sum(c["num_frames"] for c in shard_clips)),
                "analysed_frames": analysed}

    def _process_whole(self, source: VideoSource, shards: Path) -> dict[str, Any]:
        """``--whole-frames``: every scene a clip of whole squared frames, no face looked for."""
        try:
            with fmt.ShardWriter(shards, source.key, video=source.path) as shard:
                try:
                    done = prepare_whole_video(source.path, source.key, shard, self.options,
                                               lambda cid: self._identity(source, cid))
                except ValueError as exc:
                    raise _Skip(str(exc)) from None
                shard.extra.update(fps=done.pop("fps"), source_size=done.pop("source_size"),
                                   analysed_frames=done["analysed_frames"], options=self.options.as_dict())
        except OSError as exc:
            raise OutputError(f"cannot write to '{shards}': {exc.strerror or exc}") from None
        return done

    def _audio(self, source: VideoSource, fps: float) -> Audio | None:
        """The video's soundtrack at :data:`AUDIO_RATE` (None without one, or when it cannot be decoded)."""
        limit = self.options.max_frames / fps + 1.0 if self.options.max_frames else None
        try:
            return read_audio(source.path, AUDIO_RATE, limit)
        except MediaError as exc:
            logger.warning("%s; its clips are stored without audio", exc)
            return None

    # -- pass 2 ------------------------------------------------------------------------------------
    def _cut(self, source: VideoSource, plans: list[ClipPlan], shard: fmt.ShardWriter, clip_fps: float,
             frame_size: tuple[int, int], audio: Audio | None = None) -> None:
        size, every = self.options.size, self.options.every
        pending = list(enumerate(plans))
        active: list[_ClipBuffer] = []
        last = max(p.stop for p in plans)
        pos = -1
        with VideoReader(source.path, max_frames=self.options.max_frames) as reader:
            for i, frame in enumerate(reader):
                if i % every:
                    continue
                pos += 1
                if pos >= last:
                    break
                while pending and pending[0][1].start == pos:
                    number, plan = pending.pop(0)
                    active.append(_ClipBuffer(number, plan, to_crop(plan.landmarks, plan.crop_box, size)))
                for clip in active:
                    t = pos - clip.plan.start
                    crop = crop_square(frame, clip.plan.crop_box, size)
                    clip.landmarks68[t] = self.dlib.predict(crop, dlib_box_from_landmarks(clip.landmarks[t]))
                    if self.segmenter is not None:
                        labels = face_parsing(crop, clip.landmarks[t], self.segmenter.segment(crop))
                        clip.jpegs.append(fmt.encode_jpeg(crop))
                        clip.pngs.append(fmt.encode_png(labels))
                for clip in [c for c in active if c.plan.stop == pos + 1]:
                    self._store(source, clip, shard, clip_fps, frame_size, audio)
                    active.remove(clip)
        if active or pending:
            raise MediaError(f"cannot read video '{source.path}': it gave fewer frames on the second read")

    def _identity(self, source: VideoSource, cid: str) -> str:
        mode = self.options.identity
        if mode == "clip":
            return cid
        if mode == "video":
            return source.key
        resolved = Path(source.path).resolve()
        folder = resolved.parent if mode == "parent" else resolved.parent.parent
        return folder.name or source.key

    def _store(self, source: VideoSource, clip: _ClipBuffer, shard: fmt.ShardWriter, clip_fps: float,
               frame_size: tuple[int, int], audio: Audio | None = None) -> None:
        """Write one clip; its audio runs from its first frame's start to its last frame's end (``every``
        source frames each), ``round(seconds * AUDIO_RATE)`` samples, silence where the track is shorter."""
        plan, every = clip.plan, self.options.every
        cid = fmt.clip_id(source.key, clip.number)
        rotation = decompose(clip.landmarks).rotation
        frame_index = (np.arange(plan.start, plan.stop) * every).astype(np.int32)
        arrays = {
            "landmarks478": clip.landmarks.astype(np.float32),
            "landmarks68": clip.landmarks68,
            "pose": rotation_to_euler(rotation).astype(np.float32),
            "rotation": rotation.astype(np.float32),
            "crop_box": np.tile(np.asarray(plan.crop_box, dtype=np.float32), (plan.num_frames, 1)),
            "frame_index": frame_index,
            "detected": plan.detected.astype(bool),
        }
        meta = {
            "id": cid, "identity": self._identity(source, cid), "video": source.path, "key": source.key,
            "track": plan.track, "num_frames": plan.num_frames, "fps": clip_fps,
            "frame_index_start": int(frame_index[0]), "frame_index_end": int(frame_index[-1]), "every": every,
            "size": self.options.size, "crop_box": list(plan.crop_box), "source_size": list(frame_size),
            "detected_frames": int(plan.detected.sum()), "has_frames": self.segmenter is not None,
            "has_audio": audio is not None, "audio_rate": AUDIO_RATE if audio is not None else None,
        }
        samples = None
        if audio is not None:
            fps = clip_fps * every
            clip_audio = audio.segment(frame_index[0] / fps, plan.num_frames * every / fps)
            samples = np.round(clip_audio * 32767.0).astype(np.int16)
        shard.add_clip(meta, arrays, clip.jpegs, clip.pngs, audio=samples)
        clip.jpegs, clip.pngs = [], []


# -- driver ----------------------------------------------------------------------------------------

_WORKER: VideoPreparer | None = None


def _worker_init(options: PrepareOptions, threads: int) -> None:
    global _WORKER
    cv2.setNumThreads(threads)
    _WORKER = VideoPreparer(options)


def _worker_run(source: VideoSource, root: str) -> dict[str, Any]:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER.process(source, Path(root))


def _open_output(root: Path, options: PrepareOptions) -> None:
    """Create ``root`` with its ``dataset.json``, or check that an existing one matches ``options``."""
    header = fmt.dataset_header(options.size, options.as_dict())
    if root.exists() and not root.is_dir():
        raise MediaError(f"output '{root}' exists and is not a folder")
    if (root / fmt.DATASET_FILE).exists():
        old = fmt.read_dataset_header(root)
        if old.get("options") != header["options"]:
            diffs = [f"{k} {old.get('options', {}).get(k)!r} -> {v!r}" for k, v in header["options"].items()
                     if old.get("options", {}).get(k) != v]
            raise MediaError(f"'{root}' was prepared with other options ({'; '.join(diffs) or 'unknown'}); "
                             f"use the same options to resume, or a new output folder")
    elif root.is_dir() and any(e.name != fmt.SHARDS_DIR and fmt.TMP_MARK not in e.name for e in os.scandir(root)):
        raise MediaError(f"output '{root}' is a non-empty folder that is not a puppetry dataset")
    else:
        root.mkdir(parents=True, exist_ok=True)
        fmt.write_json_atomic(root / fmt.DATASET_FILE, header)
    (root / fmt.SHARDS_DIR).mkdir(exist_ok=True)


def _reason_kind(reason: str) -> str:
    """A skip reason with paths and numbers blanked, to group reasons in the summary."""
    return re.sub(r"\d+", "N", re.sub(r"'[^']*'", "'...'", reason))


def _sidecar_record(root: Path, source: VideoSource) -> dict[str, Any]:
    """A report line rebuilt from a finished shard whose report line was lost to an interruption."""
    sidecar = json.loads((root / fmt.SHARDS_DIR / f"{source.key}.json").read_text(encoding="utf-8"))
    clips = sidecar.get("clips", [])
    return {"video": source.path, "key": source.key, "status": "ok", "reason": "", "clips": len(clips),
            "frames": int(sum(c.get("num_frames", 0) for c in clips)),
            "analysed_frames": sidecar.get("analysed_frames", 0), "seconds": None}


def _run_parallel(todo: list[VideoSource], root: Path, options: PrepareOptions, workers: int
                  ) -> Iterable[tuple[VideoSource, dict[str, Any]]]:
    """Yield ``(video, record)`` as worker processes finish them; a crashed worker's video is retried once."""
    ctx = multiprocessing.get_context("spawn")
    queue = [(source, 0) for source in todo]
    queue.reverse()
    while queue:
        executor = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init, initargs=(options, 1))
        inflight: dict[Future, tuple[VideoSource, int]] = {}
        broken = False
        try:
            while (queue or inflight) and not broken:
                while queue and len(inflight) < 2 * workers:
                    source, tries = queue.pop()
                    inflight[executor.submit(_worker_run, source, str(root))] = (source, tries)
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                for future in done:
                    source, tries = inflight.pop(future)
                    try:
                        yield source, future.result()
                    except BrokenProcessPool:
                        broken = True
                        if tries >= 1:
                            yield source, {"video": source.path, "key": source.key, "status": "skipped",
                                           "reason": "the worker process crashed on it (twice)", "clips": 0,
                                           "frames": 0, "analysed_frames": 0, "seconds": None}
                        else:
                            queue.append((source, tries + 1))
            if broken:  # the pool is dead: every video still in flight goes back in the queue
                for future, (source, tries) in inflight.items():
                    queue.append((source, tries + 1 if future.done() else tries))
                logger.warning("a worker process crashed; restarting the workers")
        finally:
            executor.shutdown(wait=True, cancel_futures=True)


def prepare_dataset(inputs: Sequence[str | os.PathLike], output: str | os.PathLike,
                    options: PrepareOptions | None = None, workers: int = 1,
                    shard: tuple[int, int] = (0, 1)) -> PrepareSummary:
    """Prepare (or resume preparing) a dataset from videos.

    Args:
        inputs: video files and folders (searched recursively).
        output: dataset folder (created; an existing one is resumed if made with the same options).
        options: what to store (:class:`PrepareOptions`).
        workers: videos processed in parallel (worker processes; 1 runs in this process).
        shard: ``(i, n)``: this call takes videos ``i, i + n, ...`` of the sorted input list.
    Returns:
        Counts for this call's videos (earlier runs' results included as ``already_*``).
    Raises:
        MediaError: missing input, nothing found, or ``output`` made with other options.
        ValueError: bad ``workers`` or ``shard``.
    """
    options = options or PrepareOptions()
    index, count = shard
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard must be i/n with 0 <= i < n, got {index}/{count}")
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    root = Path(output)
    videos = select_shard(find_videos(inputs), index, count)
    _open_output(root, options)
    summary = PrepareSummary(videos=len(videos))
    start = time.perf_counter()

    reported = {r.get("key"): r for r in fmt.read_report(root)}
    shards = root / fmt.SHARDS_DIR
    finished = {name[:-5] for name in os.listdir(shards) if name.endswith(".json") and fmt.TMP_MARK not in name}
    todo = []
    for source in videos:
        if source.key in finished:
            summary.already_ok += 1
            if reported.get(source.key, {}).get("status") != "ok":
                fmt.append_report(root, _sidecar_record(root, source))
        elif reported.get(source.key, {}).get("status") == "skipped":
            summary.already_skipped += 1
        else:
            todo.append(source)
    if summary.already_ok or summary.already_skipped:
        logger.info("resuming %s: %d videos already done (%d ok, %d skipped), %d to do", root,
                    summary.already_ok + summary.already_skipped, summary.already_ok, summary.already_skipped,
                    len(todo))

    if workers == 1 or len(todo) <= 1:
        preparer = VideoPreparer(options) if todo else None
        results = ((source, preparer.process(source, root)) for source in todo)
    else:
        results = _run_parallel(todo, root, options, min(workers, len(todo)))
    for done, (source, record) in enumerate(results, 1):
        fmt.append_report(root, record)
        summary.analysed_frames += int(record.get("analysed_frames") or 0)
        if record["status"] == "ok":
            summary.ok += 1
            summary.clips += record["clips"]
            summary.frames += record["frames"]
            logger.info("[%d/%d] %s: %d clips, %d frames (%.1f s)", done, len(todo), source.path,
                        record["clips"], record["frames"], record["seconds"] or 0.0)
        else:
            summary.skipped += 1
            summary.reasons[_reason_kind(record["reason"])] += 1
            logger.info("[%d/%d] %s: skipped: %s", done, len(todo), source.path, record["reason"])
    summary.seconds = time.perf_counter() - start
    _log_summary(root, summary)
    return summary


def _log_summary(root: Path, s: PrepareSummary) -> None:
    rate = s.analysed_frames / s.seconds if s.seconds > 0 else 0.0
    logger.info("%s: %d videos ok, %d skipped this run (%d ok and %d skipped before); %d clips, %d frames; "
                "%.1f s, %.1f analysed frames/s", root, s.ok, s.skipped, s.already_ok, s.already_skipped,
                s.clips, s.frames, s.seconds, rate)
    for reason, n in s.reasons.most_common(10):
        logger.info("  skipped %d x: %s", n, reason)
