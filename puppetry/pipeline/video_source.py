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
import time
from typing import Iterator

import numpy as np

from puppetry.engines.base import DrivingFrame, SourceFaces
from puppetry.engines.registry import create_engine
from puppetry.errors import MediaError, NoFaceError
from puppetry.face.landmarks import DetectorConfig, FaceMeshDetector
from puppetry.face.smoothing import OneEuroFilter
from puppetry.media.image import IMAGE_EXTENSIONS
from puppetry.media.video import VideoReader, probe_video
from puppetry.media.writer import VideoWriter

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


def animate_video_source(source: str, driving, output: str | None, options):
    """Edit the face of source video ``source`` (see the module docstring); returns an AnimationResult."""
    from puppetry.pipeline.animate import AnimationResult, _check_output, side_by_side
    from puppetry.pipeline.driving import open_driving

    start = time.perf_counter()
    ext = _check_output(output)
    if ext in IMAGE_EXTENSIONS:
        raise MediaError(f"output '{output}' is an image but the source is a video; write a video (.mp4 or .gif)")
    engine = create_engine(options.engine, options.transfer(), **options.engine_options)
    if not engine.supports_video_source:
        raise MediaError(f"source '{source}' is a video: the {engine.name} engine animates still sources only; "
                         "use --engine liveportrait to edit a source video")
    info = probe_video(source)
    stream = open_driving(driving, options.controls, info.fps, options.duration, options.smoothing,
                          keep_pixels=True, max_frames=options.max_frames)
    if stream.kind == "image" and stream.num_frames == 1:
        frames = _with_lookahead(iter(stream), repeat_last=True)
    else:
        frames = _with_lookahead(iter(stream), repeat_last=False)
    smooth = OneEuroFilter(info.fps, options.smoothing) if options.smoothing is not None else None
    images, writer, state, n, found_any, unit = [], None, None, 0, False, 0.0
    prepare_s = 0.0
    if output is not None:
        writer = VideoWriter(output, info.fps, audio_from=source if info.has_audio else None)
    try:
        with VideoReader(source, max_frames=options.max_frames) as reader, \
                FaceMeshDetector("video", DetectorConfig(max_faces=1)) as detector:
            for src, frame in zip(reader, frames):
                faces = detector.detect(src)
                if faces:
                    found_any = True
                    unit = unit or max(float(np.ptp(faces[0][:, 0])), 1.0)      # face width, frame 0
                    points = faces[0] if smooth is None else (smooth(faces[0] / unit) * unit).astype(np.float32)
                    t = time.perf_counter()
                    state = engine.prepare_next(state, SourceFaces(image=src, landmarks=[points], name=source))
                    prepare_s += time.perf_counter() - t
                    result = engine.render(state, frame)
                else:
                    result = src
                if options.concat:
                    result = side_by_side([frame.image, src, result], src.shape[0])
                if writer is not None:
                    writer.write(result)
                else:
                    images.append(result)
                n += 1
        if n == 0:
            raise MediaError(f"source video '{source}' or driving '{stream.name}' produced no frames")
        if not found_any:
            raise NoFaceError(f"no face found in any frame of source video '{source}'")
        if writer is not None:
            writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    size = (images[-1].shape[1], images[-1].shape[0]) if images else (info.width, info.height)
    return AnimationResult(output=output, frames=n, fps=info.fps, lost_frames=stream.stats.lost, size=size,
                           seconds=time.perf_counter() - start, timings={"prepare": prepare_s, **engine.timings()},
                           images=images if output is None else None)
