"""Every kind of driving signal as one stream of :class:`~puppetry.engines.base.DrivingFrame`.

DRIVING may be a video (mp4, mov, webm, avi, gif), a folder of frames, an image, a motion template
(``.npz`` from ``puppetry template``), a LivePortrait keypoint template (the release's ``.pkl``, read
by a restricted loader, or ours ``.npz``) or the name of a built-in motion (``blink``, ``smile``, ``nod``,
``shake``, ``talk``, ``demo``). Direct controls are merged into every frame.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from puppetry.engines.base import DrivingFrame
from puppetry.errors import MediaError, MotionError, NoFaceError
from puppetry.face.landmarks import DetectorConfig, FaceMeshDetector
from puppetry.face.pose import FacePose, compose, decompose
from puppetry.face.smoothing import OneEuroConfig
from puppetry.media.image import read_image
from puppetry.media.video import VideoReader, is_frame_folder, is_image_path, is_video_path, probe_video
from puppetry.motion.controls import Controls
from puppetry.motion.keypoint_template import is_keypoint_template, load_any_template
from puppetry.motion.procedural import DEFAULT_FPS, MOTIONS, procedural_motion
from puppetry.motion.sequence import MotionSequence
from puppetry.motion.tracker import MotionTracker
from puppetry.pipeline.read_ahead import read_ahead

logger = logging.getLogger(__name__)


@dataclass
class DrivingStats:
    """What happened while reading the driving signal.

    Attributes:
        frames, lost: frames read, and frames where the face was lost.
        decode_s, landmarks_s: seconds spent decoding a driving video and tracking its face (on the
            read-ahead thread, :mod:`~puppetry.pipeline.read_ahead`), for ``puppetry bench``.
    """

    frames: int = 0
    lost: int = 0
    decode_s: float = 0.0
    landmarks_s: float = 0.0


class DrivingStream:
    """Iterable of driving frames with a known frame rate.

    Attributes:
        kind: "video", "image", "template" (landmarks), "keypoints" (LivePortrait) or "motion".
        fps: frames per second of the output.
        num_frames: number of frames when known in advance, else None.
        audio_path: a file whose audio belongs in the output, or None.
        stats: frames read and frames where the face was lost (filled while iterating).
    """

    def __init__(self, kind: str, frames: Iterator[DrivingFrame], fps: float, num_frames: int | None,
                 audio_path: str | None, stats: DrivingStats, name: str):
        self.kind, self.fps, self.num_frames, self.audio_path = kind, fps, num_frames, audio_path
        self.stats, self.name = stats, name
        self._frames = frames

    def __iter__(self) -> Iterator[DrivingFrame]:
        return self._frames

    def close(self) -> None:
        """Stop reading: the video is closed and the read-ahead thread ends (safe to call more than once)."""
        close = getattr(self._frames, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> "DrivingStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_driving(spec: str | os.PathLike, controls: Controls = Controls(), fps: float | None = None,
                 duration: float | None = None, smoothing: OneEuroConfig | None = OneEuroConfig(),
                 keep_pixels: bool = True, source_pose: FacePose | None = None,
                 max_frames: int | None = None, track: bool = True) -> DrivingStream:
    """Open a driving signal.

    A video's frames are decoded and tracked on a thread of their own, up to two frames ahead of the
    consumer (:func:`~puppetry.pipeline.read_ahead.read_ahead`); close the stream (or use it in ``with``)
    when stopping before its end.

    Args:
        spec: video, folder, image, ``.npz`` template path, or built-in motion name.
        controls: direct controls merged into every frame.
        fps: frame rate for motions and stills (videos keep their own).
        duration: seconds, for built-in motions.
        smoothing: One Euro settings for tracked landmarks (None: raw).
        keep_pixels: pass the driving pixels on (used by the inner-mouth fill).
        source_pose: for a still driving image, the face its expression is measured against.
        max_frames: stop after this many frames (None: all).
        track: find the driving face (landmarks, pose); False passes the pixels of every frame of a video
            or image on and looks for no face (engines that animate any object).
    """
    controls = controls.validated()
    if fps is not None and not (np.isfinite(fps) and 0 < fps <= 1000):
        raise MotionError(f"--fps must be a positive number up to 1000, got {fps}")
    fps = DEFAULT_FPS if fps is None else float(fps)
    text = os.fspath(spec)
    stats = DrivingStats()
    if text in MOTIONS:
        frames = procedural_motion(text, fps, duration)[:max_frames]
        it = (DrivingFrame(index=i, controls=c.merged(controls)) for i, c in enumerate(frames))
        return DrivingStream("motion", counted(it, stats), fps, len(frames), None, stats, text)
    if not os.path.exists(text):
        names = ", ".join(MOTIONS)
        raise MotionError(f"driving '{text}' is neither an existing file nor a built-in motion ({names})")
    if text.lower().endswith(".pkl") or (text.lower().endswith(".npz") and is_keypoint_template(text)):
        template = load_any_template(text)
        n = len(template) if max_frames is None else min(len(template), max_frames)
        it = (DrivingFrame(index=i, controls=controls, keypoints=template.frame(i)) for i in range(n))
        return DrivingStream("keypoints", counted(it, stats), template.fps, n, None, stats, text)
    if text.lower().endswith(".npz"):
        seq = MotionSequence.load(text)
        n = len(seq) if max_frames is None else min(len(seq), max_frames)
        return DrivingStream("template", counted(_template_frames(seq, controls, n), stats), seq.fps, n,
                             None, stats, text)
    if is_image_path(text) and not track:
        frame = DrivingFrame(index=0, controls=controls, image=read_image(text))
        return DrivingStream("image", counted(iter([frame]), stats), fps, 1, None, stats, text)
    if is_image_path(text):
        image = read_image(text)
        with FaceMeshDetector("image", DetectorConfig(max_faces=1)) as det:
            faces = det.detect(image)
        if not faces:
            raise NoFaceError(f"no face found in driving image '{text}'")
        pose = decompose(faces[0])
        frame = DrivingFrame(index=0, controls=controls, image=image if keep_pixels else None,
                             landmarks=faces[0], pose=pose, reference=source_pose)
        return DrivingStream("image", counted(iter([frame]), stats), fps, 1, None, stats, text)
    if is_video_path(text) or is_frame_folder(text):
        info = probe_video(text)
        reader = VideoReader(text, max_frames=max_frames)
        audio = text if info.has_audio else None
        n = info.num_frames if max_frames is None or info.num_frames is None else min(info.num_frames, max_frames)
        if track:
            it = _video_frames(reader, controls, smoothing, keep_pixels, stats)
        else:
            it = _pixel_frames(reader, controls, stats)
        return DrivingStream("video", read_ahead(it, name="puppetry-driving"), reader.fps, n, audio, stats, text)
    raise MediaError(f"cannot use '{text}' as driving: unsupported file type")


def counted(frames: Iterator[DrivingFrame], stats: DrivingStats) -> Iterator[DrivingFrame]:
    """``frames``, counting each in ``stats.frames`` as it passes (every driving stream, speech too)."""
    for f in frames:
        stats.frames += 1
        yield f


def _template_frames(seq: MotionSequence, controls: Controls, n: int) -> Iterator[DrivingFrame]:
    first = int(np.argmax(seq.valid)) if seq.valid.any() else 0
    reference = seq.pose(first)
    for i in range(n):
        pose = seq.pose(i)
        yield DrivingFrame(index=i, controls=controls, pose=pose, reference=reference,
                           landmarks=compose(pose.expression, pose.rotation, pose.scale, pose.center),
                           found=bool(seq.valid[i]))


def _video_frames(reader: VideoReader, controls: Controls, smoothing: OneEuroConfig | None,
                  keep_pixels: bool, stats: DrivingStats) -> Iterator[DrivingFrame]:
    """Track the driving face frame by frame; frames before the face first appears keep the source
    still, later lost frames hold the last good motion. Both count as lost."""
    reference: FacePose | None = None
    clock = time.perf_counter
    with reader, MotionTracker(reader.fps, smoothing) as tracker:
        frames = iter(reader)
        for i in itertools.count():
            t0 = clock()
            rgb = next(frames, None)
            t1 = clock()
            stats.decode_s += t1 - t0
            if rgb is None:
                break
            stats.frames += 1
            face = tracker(rgb)
            stats.landmarks_s += clock() - t1
            if face is None or not face.found:
                stats.lost += 1
            if face is None:
                yield DrivingFrame(index=i, controls=controls, image=None, found=False)
                continue
            if reference is None:
                reference = face.pose
            yield DrivingFrame(index=i, controls=controls, image=rgb if keep_pixels else None,
                               landmarks=face.landmarks, pose=face.pose, reference=reference, found=face.found)
    if stats.frames and reference is None:
        raise NoFaceError(f"no face found in any frame of driving video '{reader.info.path}'")


def _pixel_frames(reader: VideoReader, controls: Controls, stats: DrivingStats) -> Iterator[DrivingFrame]:
    """Every frame's pixels, no face looked for (``open_driving(..., track=False)``)."""
    with reader:
        for i, rgb in enumerate(reader):
            stats.frames += 1
            yield DrivingFrame(index=i, controls=controls, image=rgb)


def extract_motion(spec: str | os.PathLike, smoothing: OneEuroConfig | None = OneEuroConfig()) -> MotionSequence:
    """Track a driving video or image into a :class:`MotionSequence` (for ``puppetry template``)."""
    if os.fspath(spec).lower().endswith(".npz"):
        return MotionSequence.load(spec)
    stream = open_driving(spec, smoothing=smoothing, keep_pixels=False)
    if stream.kind == "motion":
        raise MotionError(f"'{spec}' is a built-in motion, not a video; built-in motions need no template")
    poses, valid, size = [], [], None
    pending = 0
    for frame in stream:
        if frame.pose is None:          # before the face first appears: filled with the first face
            pending += 1
            continue
        if pending:
            poses.extend([frame.pose] * pending)
            valid.extend([False] * pending)
            pending = 0
        poses.append(frame.pose)
        valid.append(frame.found)
    if not poses:
        raise NoFaceError(f"no face found in driving '{spec}'")
    size = _frame_size(spec)
    seq = MotionSequence.from_poses(poses, valid, stream.fps, size)
    if stream.stats.lost:
        logger.warning("face lost in %d of %d driving frames; held the last good motion",
                       stream.stats.lost, stream.stats.frames)
    return seq


def _frame_size(spec: str | os.PathLike) -> tuple[int, int]:
    text = os.fspath(spec)
    if is_image_path(text):
        image = read_image(text)
        return image.shape[1], image.shape[0]
    info = probe_video(text)
    return info.width, info.height


__all__ = ["DrivingStream", "DrivingStats", "open_driving", "extract_motion"]
