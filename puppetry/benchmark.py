"""``puppetry bench``: frames per second of the whole animation loop and where the time goes.

Stages per driving frame: decode (PyAV), landmarks (Face Mesh tracking + smoothing), the engine's own
stages, and encode (H.264). The warp engine reports motion (transfer and control points), warp and mouth
(inner-mouth fill); the liveportrait engine reports crop, M, F, W, G, S (stitching), R_eyes, R_lip and
paste (paste-back), where F runs once per source and is shown per frame like the rest. With no driving
video given, the benchmark first renders a 512x512 driving video of a real face (the built-in astronaut
animated by the ``demo`` motion), so it needs no files.

The driving video is read as ``animate`` reads it (:func:`~puppetry.pipeline.driving.open_driving`):
decode and landmarks run on the read-ahead thread while the engine renders, so the stages add up to
more than the loop's wall-clock time per frame, from which frames per second are computed. The loop is
timed from the first driving frame in hand to the finished file (start-up set apart).

The writer encodes on a thread of its own (:class:`~puppetry.media.writer.VideoWriter`): ``encode`` is the time
the loop spends handing frames over plus waiting for the encoder to finish the file at the end. The
*floor* is the same decoding and encoding with nothing in between (the driving frames written back as
they are decoded, :func:`measure_floor`): no engine can make the loop faster than that.
"""

from __future__ import annotations

import itertools
import logging
import os
import tempfile
import time
from dataclasses import dataclass


from puppetry.engines.base import DrivingFrame
from puppetry.errors import MediaError
from puppetry.methods.registry import DEFAULT_ENGINE, create_engine
from puppetry.face.smoothing import OneEuroConfig
from puppetry.media.video import VideoReader, probe_video
from puppetry.media.writer import VideoWriter
from puppetry.pipeline.animate import AnimateOptions, animate
from puppetry.pipeline.driving import open_driving
from puppetry.pipeline.source import find_source_faces, load_source_image

logger = logging.getLogger(__name__)


@dataclass
class BenchResult:
    """Milliseconds per frame by stage, the loop's own time per frame, and frames per second.

    ``decode`` and ``landmarks`` run on the read-ahead thread while the engine's stages and ``encode`` run on
    the main thread, so the stages add up to more than ``loop_ms``, the wall-clock time per frame.
    """

    frames: int
    source_size: tuple[int, int]
    driving_size: tuple[int, int]
    ms_per_frame: dict[str, float]
    fps: float
    floor_ms: float | None = None   # decode + encode only, ms per frame (measure_floor); None: not measured
    loop_ms: float | None = None    # wall-clock ms per frame of the whole loop; None: the stages' sum

    def table(self) -> str:
        lines = [f"source {self.source_size[0]}x{self.source_size[1]}, driving "
                 f"{self.driving_size[0]}x{self.driving_size[1]}, {self.frames} frames"]
        stages = sum(self.ms_per_frame.values())
        loop = self.loop_ms if self.loop_ms is not None else stages
        for stage, ms in self.ms_per_frame.items():
            where = "  (read-ahead thread)" if stage in READ_AHEAD_STAGES else ""
            lines.append(f"  {stage:<10} {ms:7.2f} ms/frame  {100 * ms / max(stages, 1e-9):5.1f} %{where}")
        lines.append(f"  {'stages':<10} {stages:7.2f} ms/frame")
        lines.append(f"  {'loop':<10} {loop:7.2f} ms/frame (wall clock)  -> {self.fps:.1f} frames per second")
        if self.floor_ms is not None:
            lines.append(f"  floor (decode + encode only): {self.floor_ms:.2f} ms/frame -> "
                         f"{1000.0 / self.floor_ms:.1f} fps; engine loop is {loop / self.floor_ms:.1f} x the floor")
        return "\n".join(lines)


READ_AHEAD_STAGES = ("decode", "landmarks")


def demo_driving(folder: str, size: int = 512, seconds: float = 6.0) -> str:
    """Write a ``size`` x ``size`` driving video of a real face moving (astronaut + demo motion)."""
    import cv2
    from skimage import data

    face = cv2.resize(data.astronaut(), (size, size), interpolation=cv2.INTER_AREA)
    path = os.path.join(folder, "driving.mp4")
    animate(face, "demo", path, AnimateOptions(duration=seconds, fps=30.0, progress=False))
    return path


def measure_floor(driving: str, max_frames: int, folder: str) -> float:
    """Milliseconds per frame of decoding ``driving`` (at most ``max_frames`` frames) and encoding each frame
    again as it comes, with nothing in between: the floor of the animation loop. Timed as the loop is:
    from the first frame to the finished file, opening the video and the writer set apart."""
    n = 0
    with VideoReader(driving, max_frames=max_frames) as reader, \
            VideoWriter(os.path.join(folder, "floor.mp4"), reader.fps) as writer:
        start = time.perf_counter()
        for rgb in reader:
            writer.write(rgb)
            n += 1
        writer.close()
        seconds = time.perf_counter() - start
    if n == 0:
        raise RuntimeError("the benchmark decoded no frames")
    return 1000.0 * seconds / n


def _warm_up(eng, state, driving: str, frames: int) -> None:
    """Render ``frames`` frames untimed, then clear the engine's timers."""
    if frames <= 0:
        return
    with VideoReader(driving, max_frames=1) as reader:
        rgb = next(iter(reader))
    for i in range(frames):
        eng.render(state, DrivingFrame(index=i, image=rgb))
    if hasattr(eng, "reset_timings"):
        eng.reset_timings()


def run_benchmark(source: str = "astronaut", driving: str | None = None, max_frames: int = 180,
                  engine: str = DEFAULT_ENGINE, engine_options: dict | None = None, warmup: int = 0) -> BenchResult:
    """Time the animation loop stage by stage (see module docstring).

    Args:
        engine, engine_options: the engine and its config (e.g. ``checkpoint_dir`` for liveportrait).
        warmup: frames rendered before timing starts (CUDA kernels, ``torch.compile``).
    """
    with tempfile.TemporaryDirectory() as tmp:
        if driving is None:
            driving = demo_driving(tmp)
        image, name = load_source_image(source, 2048)
        faces = find_source_faces(image, name)
        eng = create_engine(engine, **(engine_options or {}))
        state = eng.prepare(faces)
        _warm_up(eng, state, driving, warmup)
        info = probe_video(driving)
        stream = open_driving(driving, smoothing=OneEuroConfig(), keep_pixels=True, max_frames=max_frames)
        if stream.kind != "video":
            raise MediaError(f"the benchmark's driving must be a video or frame folder, not '{driving}'")
        render_s = encode_s = 0.0
        n = 0
        clock = time.perf_counter
        with stream, VideoWriter(os.path.join(tmp, "out.mp4"), stream.fps) as writer:
            frames = iter(stream)                       # decoded and tracked on the read-ahead thread
            first = next(frames, None)                  # the thread's start-up (video, Face Mesh graph) set apart
            start = clock()
            for frame in itertools.chain([first] if first is not None else [], frames):
                t0 = clock()
                out = eng.render(state, frame)
                t1 = clock()
                writer.write(out)
                render_s += t1 - t0
                encode_s += clock() - t1
                n += 1
            t0 = clock()
            if n:
                writer.close()                          # the frames still queued for the encoder, and its flush
            end = clock()
            encode_s += end - t0
        engine_times = eng.timings()
        if n == 0:
            raise RuntimeError("the benchmark decoded no frames")
        floor_ms = measure_floor(driving, max_frames, tmp)
    ms = {"decode": stream.stats.decode_s, "landmarks": stream.stats.landmarks_s}
    ms.update(engine_times)
    ms["other"] = max(render_s - sum(engine_times.values()), 0.0)
    ms["encode"] = encode_s
    ms = {k: 1000.0 * v / n for k, v in ms.items()}
    loop_ms = 1000.0 * (end - start) / n
    return BenchResult(frames=n, source_size=(image.shape[1], image.shape[0]), driving_size=(info.width, info.height),
                       ms_per_frame=ms, fps=1000.0 / loop_ms, floor_ms=floor_ms, loop_ms=loop_ms)
