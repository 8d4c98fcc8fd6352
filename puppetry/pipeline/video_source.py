"""Portrait video editing: a source *video* whose face is re-animated by a driving signal.

Frame i of the source is driven by frame i of the driving (paper 001, Appendix, Eq. 8): the engine
prepares every source frame (:meth:`~puppetry.engines.base.Engine.prepare_next`), keeps the driving's
first frame as the reference, and gets the next driving frame as a lookahead for Eq. 8's smoothing.
The output has the source's frame rate and audio and as many frames as the shorter of the two;
a still driving image or a built-in motion drives every source frame. Source frames where no face
is found are written unchanged.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Iterator

import numpy as np

from puppetry.engines.base import DrivingFrame, SourceFaces
from puppetry.errors import MediaError, NoFaceError
from puppetry.face.landmarks import DetectorConfig, FaceMeshDetector
from puppetry.face.smoothing import FaceMotionFilter
from puppetry.media.image import IMAGE_EXTENSIONS
from puppetry.media.video import VideoReader, probe_video
from puppetry.methods.registry import create_engine, engines_that
from puppetry.pipeline.stop import check_stop
from puppetry.pipeline.driving import open_driving
from puppetry.pipeline.frame_sink import AnimationResult, FrameSink, output_kind

logger = logging.getLogger(__name__)


def _with_lookahead(frames: Iterator[DrivingFrame], repeat_last: bool) -> Iterator[DrivingFrame]:
    """Each frame with the next one attached as ``lookahead``; a single frame repeats forever when
    ``repeat_last`` (still image driving a whole source video)."""
    previous = None
    for frame in frames:
        if previous is not None:
            previous.lookahead = frame
            yield previous
        previous = frame
    if previous is None:
        return
    if repeat_last:
        while True:
            yield previous
    yield previous


def animate_video_source(source: str, driving, output: str | None, options,
                         stop: threading.Event | None = None) -> AnimationResult:
    """Edit the face of source video ``source`` (see the module docstring).

    Args:
        source: the source video.
        driving: as for :func:`~puppetry.pipeline.animate.animate`.
        output: a video path, or None to return the frames in the result.
        options: an :class:`~puppetry.pipeline.animate.AnimateOptions`.
        stop: as for :func:`~puppetry.pipeline.animate.animate`.
    """
    start = time.perf_counter()
    if output_kind(output) in IMAGE_EXTENSIONS:
        raise MediaError(f"output '{output}' is an image but the source is a video; write a video (.mp4 or .gif)")
    editors = engines_that("video_source")
    if options.engine not in editors:
        raise MediaError(f"source '{source}' is a video: the {options.engine} engine animates still sources only; "
                         f"use --engine {' or '.join(editors)} to edit a source video")
    engine = create_engine(options.engine, options.transfer(), **options.engine_options)
    info = probe_video(source)
    stream = open_driving(driving, options.controls, info.fps, options.duration, options.smoothing,
                          keep_pixels=True, max_frames=options.max_frames)
    frames = _with_lookahead(iter(stream), repeat_last=stream.kind == "image" and stream.num_frames == 1)
    smooth = FaceMotionFilter(info.fps, options.smoothing) if options.smoothing is not None else None
    state, found_any, prepare_s = None, False, 0.0
    known = [n for n in (info.num_frames, options.max_frames) if n]
    sink = FrameSink(output, info.fps, audio_from=source if info.has_audio else None, concat=options.concat,
                     progress=options.progress, total=min(known) if known else None,
                     empty=f"source video '{source}' or driving '{stream.name}' produced no frames")
    with stream, sink, VideoReader(source, max_frames=options.max_frames) as reader, \
            FaceMeshDetector("video", DetectorConfig(max_faces=1)) as detector:
        for src, frame in zip(reader, frames):
            check_stop(stop)
            faces = detector.detect(src)
            if faces:
                found_any = True
                points = faces[0] if smooth is None else smooth(faces[0]).astype(np.float32)
                t = time.perf_counter()
                state = engine.prepare_next(state, SourceFaces(image=src, landmarks=[points], name=source))
                prepare_s += time.perf_counter() - t
                result = engine.render(state, frame)
            else:
                result = src
            sink.write(result, driving=frame.image, source=src)
        if sink.frames and not found_any:
            raise NoFaceError(f"no face found in any frame of source video '{source}'")
    size = sink.size if sink.frames else (info.width, info.height)
    return AnimationResult(output=output, frames=sink.frames, fps=info.fps, lost_frames=stream.stats.lost, size=size,
                           seconds=time.perf_counter() - start, timings={"prepare": prepare_s, **engine.timings()},
                           images=sink.images if output is None else None)
