"""The main job: animate a source with a driving signal, to a file or frame by frame.

:func:`animate` runs a whole animation and writes it (mp4, mov, mkv, gif or a still image);
:class:`Animator` is the streaming form for live use: prepare once, then one call per frame.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np

from puppetry.engines.base import DrivingFrame, Engine, SourceFaces
from puppetry.errors import MediaError, MotionError
from puppetry.face.pose import decompose
from puppetry.face.smoothing import OneEuroConfig
from puppetry.media.video import is_video_path
from puppetry.motion.controls import Controls
from puppetry.motion.tracker import MotionTracker
from puppetry.motion.transfer import TransferOptions
from puppetry.methods.registry import DEFAULT_ENGINE, create_engine, engines_that, needs_landmarks
from puppetry.pipeline.driving import open_driving
from puppetry.pipeline.speech import open_speech
from puppetry.pipeline.stop import check_stop
from puppetry.pipeline.frame_sink import AnimationResult, FrameSink, output_kind
from puppetry.pipeline.source import find_source_faces, load_source_image
from puppetry.pipeline.video_source import animate_video_source

logger = logging.getLogger(__name__)

@dataclass
class AnimateOptions:
    """Everything ``puppetry animate`` can set.

    Attributes:
        engine: engine name (``warp`` is the default and needs no weights).
        relative: relative (True) or absolute (False) motion transfer.
        region: "all", "expression", "pose", "eyes" or "lips".
        multiplier: scales the transferred expression.
        controls: direct controls (eyes, lips, smile, yaw, pitch, roll) applied to every frame.
        concat: write driving | source | result side by side.
        fps: frame rate for built-in motions, templates and still driving images.
        duration: seconds of a built-in motion.
        max_size: longer side of the working image; larger sources are shrunk to it.
        max_faces: most faces animated in one source.
        smoothing: One Euro smoothing of tracked driving landmarks (None: off).
        progress: show a progress bar for work longer than a second.
        max_frames: stop after this many driving frames (None: all).
        engine_options: extra keyword arguments for the engine's config.
        audio: a speech recording that drives the motion instead of ``driving`` (wav, mp3, m4a or a video's
            soundtrack); it becomes the output's soundtrack, and the output lasts as long as it.
        audio_weights: the speech model (``puppetry train audio2motion``); None reads the environment.
        seed: draws the generated blinks and head sway of speech-driven motion.
    """

    engine: str = DEFAULT_ENGINE
    relative: bool = True
    region: str = "all"
    multiplier: float = 1.0
    controls: Controls = field(default_factory=Controls)
    concat: bool = False
    fps: float | None = None
    duration: float | None = None
    max_size: int = 2048
    max_faces: int = 8
    smoothing: OneEuroConfig | None = field(default_factory=OneEuroConfig)
    progress: bool = True
    max_frames: int | None = None
    engine_options: dict = field(default_factory=dict)
    audio: str | None = None
    audio_weights: str | None = None
    seed: int = 0

    def transfer(self) -> TransferOptions:
        return TransferOptions(relative=self.relative, region=self.region, multiplier=self.multiplier)


def _batches(frames: Iterable[DrivingFrame], size: int) -> Iterator[list[DrivingFrame]]:
    """Group a stream of frames into lists of at most ``size``."""
    batch: list[DrivingFrame] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def source_faces(image: np.ndarray, name: str, options: AnimateOptions) -> SourceFaces:
    """The source's faces, or none looked for when the engine animates any object (whole frames)."""
    if not needs_landmarks(options.engine):
        return SourceFaces(image=image, landmarks=[], name=name)
    return find_source_faces(image, name, options.max_faces)


def animate(source: str | os.PathLike | np.ndarray = "astronaut", driving: str | os.PathLike = "demo",
            output: str | os.PathLike | None = None, options: AnimateOptions | None = None,
            stop: threading.Event | None = None) -> AnimationResult:
    """Animate ``source`` with ``driving``.

    Args:
        source: image path, ``"astronaut"``, an RGB array, or a video (portrait video editing, for
            engines that support it: each source frame is driven by the driving frame of the same index).
        driving: video, folder of frames, image, ``.npz`` template, or built-in motion name (unused when
            ``options.audio`` is set).
        output: where to write (mp4/mov/mkv/gif/png/jpg); None returns the frames in the result.
        options: see :class:`AnimateOptions`.
        stop: set it (from another thread) to stop the animation before its next frame: it raises
            :class:`~puppetry.errors.Cancelled` and writes nothing (the web app's cancelled renders).
    Returns:
        An :class:`AnimationResult`. Nothing is written unless the whole animation succeeds.
    """
    options = options or AnimateOptions()
    start = time.perf_counter()
    out_path = os.fspath(output) if output is not None else None
    output_kind(out_path)
    if options.audio is not None and not options.relative:
        raise MotionError("speech drives relative motion (the change from a closed mouth); drop --absolute")
    if isinstance(source, (str, os.PathLike)) and is_video_path(source):
        if options.audio is not None:
            raise MotionError(f"-a drives a still portrait; '{source}' is a video")
        return animate_video_source(os.fspath(source), driving, out_path, options, stop)
    image, name = load_source_image(source, options.max_size)
    engine = create_engine(options.engine, options.transfer(), **options.engine_options)   # weights errors first
    speech = None
    if options.audio is not None:                   # bad audio or a missing speech model: before any work
        if not needs_landmarks(options.engine):
            raise MotionError(f"--engine {options.engine} animates from the driving frames' pixels; speech drives "
                              "engines that take landmark motion")
        speech = open_speech(options.audio, options.audio_weights, options.controls, options.fps, options.seed,
                             options.max_frames)
    faces = source_faces(image, name, options)
    t = time.perf_counter()
    state = engine.prepare(faces)
    prepare_s = time.perf_counter() - t
    track = bool(faces.landmarks)
    if speech is not None:
        stream = speech
    else:
        stream = open_driving(driving, options.controls, options.fps, options.duration, options.smoothing,
                              keep_pixels=True, source_pose=decompose(faces.landmarks[0]) if track else None,
                              max_frames=options.max_frames, track=track)
    if not track and stream.kind not in ("video", "image"):
        raise MotionError(f"--engine {options.engine} animates from the driving frames' pixels: give a driving "
                          f"video, frame folder or image, not '{stream.name}' (a {stream.kind})")
    readers = engines_that("keypoint_templates")
    if stream.kind == "keypoints" and options.engine not in readers:
        raise MotionError(f"'{stream.name}' is a LivePortrait keypoint template; it drives --engine "
                          f"{' or '.join(readers)} only (the {engine.name} engine reads landmark templates "
                          "made by 'puppetry template')")
    sink = FrameSink(out_path, stream.fps, audio_from=stream.audio_path, concat=options.concat,
                     progress=options.progress, total=stream.num_frames,
                     empty=f"driving '{stream.name}' produced no frames")
    if sink.is_image and stream.num_frames not in (None, 1):
        sink.abort()
        raise MediaError(f"output '{out_path}' is an image but the driving has {stream.num_frames} frames; "
                         "write a video (.mp4 or .gif) instead")
    with stream, sink:
        for batch in _batches(stream, engine.batch_size):
            check_stop(stop)
            for frame, result in zip(batch, engine.render_batch(state, batch)):
                sink.write(result, driving=frame.image, source=image)
    if stream.stats.lost:
        logger.warning("face lost in %d of %d driving frames; held the last good motion",
                       stream.stats.lost, stream.stats.frames)
    timings = {"prepare": prepare_s, **engine.timings()}
    return AnimationResult(output=out_path, frames=sink.frames, fps=stream.fps, lost_frames=stream.stats.lost,
                           size=sink.size, seconds=time.perf_counter() - start, timings=timings,
                           images=sink.images if out_path is None else None)


class Animator:
    """Frame-by-frame animation for live use (webcam, app).

    Example::

        animator = Animator("portrait.jpg")
        for frame in webcam:                 # H x W x 3 uint8 RGB
            show(animator.render(frame))
        still = animator.render(controls=Controls(eyes=0.0, yaw=10))

    Args:
        source: image path, ``"astronaut"`` or an RGB array.
        options: see :class:`AnimateOptions` (driving-related fields only).
        fps: expected driving frame rate (for landmark smoothing).
    """

    def __init__(self, source: str | os.PathLike | np.ndarray = "astronaut",
                 options: AnimateOptions | None = None, fps: float = 30.0):
        self.options = options or AnimateOptions()
        image, name = load_source_image(source, self.options.max_size)
        self.engine: Engine = create_engine(self.options.engine, self.options.transfer(),
                                            **self.options.engine_options)
        self.source: SourceFaces = source_faces(image, name, self.options)
        self.state = self.engine.prepare(self.source)
        # an engine that reads pixels only needs no driving face
        self.tracker = MotionTracker(fps, self.options.smoothing) if self.source.landmarks else None
        self.reference = None
        self.index = 0

    def reset(self) -> None:
        """Take the next driving frame as the new reference (relative mode)."""
        self.reference = None
        self.engine.reset_reference(self.state)

    def render(self, driving: np.ndarray | None = None, controls: Controls | None = None) -> np.ndarray:
        """One animated frame.

        Args:
            driving: ``H x W x 3`` uint8 RGB driving frame, or None for controls only.
            controls: direct controls for this frame (merged over the options' controls).
        Returns:
            ``H x W x 3`` uint8 RGB frame of the source's size.
        """
        merged = self.options.controls.merged(controls or Controls()).validated()
        frame = DrivingFrame(index=self.index, controls=merged)
        if driving is not None and self.tracker is None:
            frame = DrivingFrame(index=self.index, controls=merged, image=driving)
        elif driving is not None:
            face = self.tracker(driving)
            if face is not None:
                if self.reference is None:
                    self.reference = face.pose
                frame = DrivingFrame(index=self.index, controls=merged, image=driving, landmarks=face.landmarks,
                                     pose=face.pose, reference=self.reference, found=face.found)
        self.index += 1
        return self.engine.render(self.state, frame)

    def close(self) -> None:
        if self.tracker is not None:
            self.tracker.close()

    def __enter__(self) -> "Animator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
