"""Reading and probing videos: container files through PyAV, and folders of numbered image frames.

Every frame comes out as an ``H x W x 3 uint8 RGB`` array, upright (the container's display rotation is
applied) and with transparency composited over white. A file is validated when its reader is built: the
first frame is decoded right away, so a corrupt or empty file fails with :class:`MediaError` before any
work starts, not halfway through a loop.

Huge inputs are refused from their headers, before anything is decoded: a frame size over
:data:`MAX_VIDEO_SIDE` per side or :data:`MAX_VIDEO_PIXELS` in all (the decoder is told the same limit, so a
frame that lies about its size later is refused too), a frame count over :data:`MAX_VIDEO_FRAMES` or over
the file's size in bytes, and a GIF of more than :data:`MAX_GIF_FRAMES` frames unless the reader stops
earlier. Very large frames get fewer decoder threads, so the frames the threads hold stay within about
:data:`_DECODER_FRAME_BYTES`.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av
import cv2
import numpy as np

from puppetry.errors import MediaError, reason
from puppetry.media.image import IMAGE_EXTENSIONS, composite_over_white, read_image

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS: frozenset[str] = frozenset({".mp4", ".mov", ".webm", ".avi", ".mkv", ".gif", ".m4v"})

FRAME_FOLDER_FPS = 25.0
"""Frame rate given to a folder of image frames, which carries no timing of its own."""

MAX_VIDEO_SIDE = 8192
MAX_VIDEO_PIXELS = 8192 * 4320
"""Largest frames read (DCI 8K): ``puppetry animate`` peaks near 1 GB on them (benchmarks/hostile_memory.py)."""

MAX_VIDEO_FRAMES = 10_000_000
"""Most frames a video header may claim (about 93 hours at 30 fps); a file claiming more is refused."""

MAX_GIF_FRAMES = 3000
"""Most frames read from a GIF (each is decoded at the full canvas size however little of it changes): a
longer GIF is refused unless the reader stops at ``max_frames <= MAX_GIF_FRAMES``."""

_DEFAULT_GIF_FPS = 10.0  # browsers play GIF frames without a delay at about 10 fps
_MAX_SANE_FPS = 1000.0
_DECODER_FRAME_BYTES = 512 * 2**20  # RGB bytes of the frames the decoder's threads may hold at once


@dataclass(frozen=True)
class VideoInfo:
    """What is known about a video before decoding it all.

    ``width`` and ``height`` are the size of the frames as yielded (after display rotation). ``num_frames``
    comes from the container header, or from counting packets when the header has none; ``None`` when it
    cannot be known. ``duration`` is in seconds.
    """

    path: str
    fps: float
    width: int
    height: int
    num_frames: int | None
    has_audio: bool
    duration: float | None


def is_video_path(path: str | os.PathLike) -> bool:
    """True when ``path`` has a video extension (see :data:`VIDEO_EXTENSIONS`); folders are not checked here."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def is_image_path(path: str | os.PathLike) -> bool:
    """True when ``path`` has an image extension (see :data:`IMAGE_EXTENSIONS`)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def is_frame_folder(path: str | os.PathLike) -> bool:
    """True when ``path`` is a folder, which is read as a video of its image files in natural order."""
    return Path(path).is_dir()


def _natural_key(name: str) -> list:
    """Sort key that orders embedded numbers by value: ``frame2`` before ``frame10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name.lower())]


def _list_frame_files(folder: Path) -> list[Path]:
    """Image files of ``folder`` (hidden files skipped) in natural order."""
    files = [
        entry
        for entry in folder.iterdir()
        if entry.is_file() and not entry.name.startswith(".") and entry.suffix.lower() in IMAGE_EXTENSIONS
    ]
    return sorted(files, key=lambda entry: _natural_key(entry.name))


def _check_frame_size(path: Path, width: int, height: int) -> None:
    """Raise :class:`MediaError` when ``width x height`` frames are over :data:`MAX_VIDEO_SIDE` or
    :data:`MAX_VIDEO_PIXELS`."""
    if width > MAX_VIDEO_SIDE or height > MAX_VIDEO_SIDE or width * height > MAX_VIDEO_PIXELS:
        raise MediaError(f"cannot read video '{path}': its frames are {width}x{height}, too large; the limit is "
                         f"{MAX_VIDEO_SIDE} pixels per side and {MAX_VIDEO_PIXELS} pixels in all")


def _check_header(path: Path, stream: av.video.stream.VideoStream) -> None:
    """Refuse a stream whose header claims frames too large, or more frames than the file could hold, or
    names no codec FFmpeg knows (a damaged header: PyAV then gives the stream no codec context)."""
    context = stream.codec_context
    if context is None:
        raise MediaError(f"cannot read video '{path}': its video codec cannot be identified (damaged header)")
    _check_frame_size(path, context.width, context.height)
    claimed, size = stream.frames or 0, os.path.getsize(path)
    if claimed > MAX_VIDEO_FRAMES:
        raise MediaError(f"cannot read video '{path}': its header claims {claimed} frames, over the limit of "
                         f"{MAX_VIDEO_FRAMES}; the file is damaged or far too long")
    if claimed > size:
        raise MediaError(f"cannot read video '{path}': its header claims {claimed} frames but the file has only "
                         f"{size} bytes; the file is damaged")


def _open_container(path: Path) -> av.container.InputContainer:
    """Open ``path`` with PyAV and check its header, turning every failure into a one-line :class:`MediaError`."""
    if os.path.getsize(path) == 0:
        raise MediaError(f"cannot read video '{path}': file is empty")
    try:
        container = av.open(str(path), mode="r")
    except Exception as exc:  # av.FFmpegError, OSError, decoding of odd metadata, ...
        raise MediaError(f"cannot read video '{path}': file is corrupt or not a video ({reason(exc)})") from None
    try:
        if not container.streams.video:
            raise MediaError(f"cannot read video '{path}': it has no video stream")
        _check_header(path, container.streams.video[0])
    except MediaError:
        container.close()
        raise
    return container


def _limit_decoder(stream: av.video.stream.VideoStream) -> None:
    """Tell the decoder the largest frame it may allocate, and give very large frames fewer threads."""
    context = stream.codec_context
    context.options = {**context.options, "max_pixels": str(MAX_VIDEO_PIXELS)}
    frame_bytes = context.width * context.height * 3
    if frame_bytes and frame_bytes * ((os.cpu_count() or 1) + 1) > _DECODER_FRAME_BYTES:
        context.thread_count = max(1, _DECODER_FRAME_BYTES // frame_bytes)


def _stream_fps(stream: av.video.stream.VideoStream) -> float | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and 0 < float(rate) <= _MAX_SANE_FPS:
            return float(rate)
    return None


def _scan_packets(path: Path, limit: int | None = None) -> tuple[int, float]:
    """Count the video packets of ``path`` (stopping at ``limit``) and sum their durations in seconds,
    without decoding."""
    count, ticks, time_base = 0, 0, None
    try:
        with av.open(str(path), mode="r") as container:
            stream = container.streams.video[0]
            time_base = stream.time_base
            for packet in container.demux(stream):
                if packet.size:
                    count += 1
                    ticks += packet.duration or 0
                    if limit is not None and count >= limit:
                        break
    except av.FFmpegError as exc:
        logger.debug("packet scan of '%s' stopped early: %s", path, exc)
    return count, float(ticks * time_base) if time_base else 0.0


def _container_header(path: Path, container: av.container.InputContainer, max_frames: int | None) -> dict:
    """fps, num_frames, has_audio and duration of an open container (a GIF's timing comes from its frames).

    Raises:
        MediaError: a GIF of more than :data:`MAX_GIF_FRAMES` frames when ``max_frames`` does not stop earlier.
    """
    stream = container.streams.video[0]
    num_frames = stream.frames if stream.frames and stream.frames > 0 else None
    duration = None
    if stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / av.time_base

    is_gif = stream.codec_context.name == "gif"
    fps = None if is_gif else _stream_fps(stream)
    if is_gif or num_frames is None:
        count, seconds = _scan_packets(path, MAX_GIF_FRAMES + 1 if is_gif else None)
        num_frames = num_frames or count or None
        if is_gif and (num_frames or 0) > MAX_GIF_FRAMES and (max_frames is None or max_frames > MAX_GIF_FRAMES):
            counted = num_frames if stream.frames else f"more than {MAX_GIF_FRAMES}"  # the scan stops there
            raise MediaError(f"cannot read video '{path}': the GIF has {counted} frames and at most "
                             f"{MAX_GIF_FRAMES} are read from a GIF; use its first ones (--frames {MAX_GIF_FRAMES}) "
                             "or convert it to a video")
        if is_gif:
            fps = count / seconds if count and seconds > 0 else _DEFAULT_GIF_FPS
            if count <= MAX_GIF_FRAMES:  # scanned to the end
                duration = seconds if seconds > 0 else count / fps
    if fps is None:
        fps = FRAME_FOLDER_FPS
        logger.warning("'%s' has no usable frame rate; assuming %.0f fps", path, fps)
    if duration is None and num_frames:
        duration = num_frames / fps
    return {"fps": fps, "num_frames": num_frames, "has_audio": bool(container.streams.audio), "duration": duration}


class VideoReader:
    """Iterate the frames of a video file or of a folder of image frames.

    Each frame is an ``H x W x 3 uint8 RGB`` array of size ``self.size == (width, height)``. Every ``for``
    loop starts again from the first frame. Use as a context manager (or call :meth:`close`) so the file is
    released even when a loop stops early::

        with VideoReader("driving.mp4", max_frames=100) as reader:
            for frame in reader:
                ...

    Corrupt packets in the middle of a file are skipped with a warning; a read error near the end (for
    example a truncated file) ends the video early with a warning.

    Args:
        path: a video file (mp4, mov, webm, avi, mkv, gif, ...) or a folder of image frames.
        max_frames: stop after this many frames (``None`` for all).

    Raises:
        MediaError: the path is missing, unreadable, not a video or has no decodable frame.
    """

    def __init__(self, path: str | os.PathLike, max_frames: int | None = None) -> None:
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"max_frames must be at least 1 or None, got {max_frames}")
        self.path = Path(path)
        self.max_frames = max_frames
        self._frames: Iterator[np.ndarray] | None = None
        self._first: np.ndarray | None = None
        self._container: av.container.InputContainer | None = None
        self._resize_warned = False
        self._skipped = 0                # corrupt packets skipped so far (the error when none decodes says so)
        self._read_error: str | None = None   # why reading stopped before the first frame

        if not self.path.exists():
            raise MediaError(f"cannot read video '{self.path}': file not found")
        if self.path.is_dir():
            self._files = _list_frame_files(self.path)
            if not self._files:
                raise MediaError(f"cannot read video '{self.path}': folder contains no video frames (no images)")
            count = len(self._files)
            header = {"fps": FRAME_FOLDER_FPS, "num_frames": count, "has_audio": False,
                      "duration": count / FRAME_FOLDER_FPS}
            self._start()
        else:
            container = _open_container(self.path)  # header checks: refused here, before anything is decoded
            try:
                header = _container_header(self.path, container, max_frames)
            except BaseException:
                container.close()
                raise
            self._start(container)
        height, width = self._first.shape[:2]
        self.info = VideoInfo(path=str(self.path), width=width, height=height, **header)
        logger.debug("opened video %s", self.info)

    @property
    def fps(self) -> float:
        return self.info.fps

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the yielded frames."""
        return self.info.width, self.info.height

    def __len__(self) -> int:
        """Number of frames a loop yields, from the header; raises ``TypeError`` when it is unknown."""
        if self.info.num_frames is None:
            raise TypeError(f"the number of frames of '{self.path}' is unknown")
        if self.max_frames is None:
            return self.info.num_frames
        return min(self.info.num_frames, self.max_frames)

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._first is None:  # a previous loop used the decoded start: open the source again
            self._start()
        first, frames = self._first, self._frames
        self._first = None
        return self._limited(first, frames)

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Release the file. Safe to call more than once."""
        if self._frames is not None:
            self._frames.close()  # runs the generator's ``finally``, which closes its container
        self._frames = None
        self._first = None
        self._container = None

    def _start(self, container: av.container.InputContainer | None = None) -> None:
        """Open the source (or use ``container``, already open) and decode its first frame, so a broken file
        fails here rather than mid-loop."""
        self.close()
        if self.path.is_dir():
            frames = self._folder_frames(self._files)
        else:
            self._container = container or _open_container(self.path)
            frames = self._container_frames(self._container)
        first = next(frames, None)
        if first is None:
            frames.close()
            why = f" it can decode ({self._skipped} corrupt packet(s) skipped)" if self._skipped else ""
            why += f" (read error: {self._read_error})" if self._read_error else ""
            raise MediaError(f"cannot read video '{self.path}': it contains no video frames{why}")
        self._frames, self._first = frames, first

    def _limited(self, first: np.ndarray, frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        try:
            yield first
            produced = 1
            while self.max_frames is None or produced < self.max_frames:
                frame = next(frames, None)
                if frame is None:
                    break
                yield frame
                produced += 1
        finally:
            frames.close()

    def _folder_frames(self, files: list[Path]) -> Iterator[np.ndarray]:
        first_shape = None
        for file in files:
            frame = read_image(file)
            if first_shape is None:
                _check_frame_size(self.path, frame.shape[1], frame.shape[0])   # a video's limit, not an image's
                first_shape = frame.shape
            elif frame.shape != first_shape:
                raise MediaError(
                    f"cannot read video '{self.path}': frame '{file.name}' is {frame.shape[1]}x{frame.shape[0]} "
                    f"but the first frame is {first_shape[1]}x{first_shape[0]}; all frames must be the same size"
                )
            yield frame

    def _container_frames(self, container: av.container.InputContainer) -> Iterator[np.ndarray]:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        _limit_decoder(stream)
        self._skipped, self._read_error = 0, None
        first_shape = None
        try:
            for packet in container.demux(stream):
                try:
                    decoded = packet.decode()
                except av.FFmpegError as exc:
                    self._skipped += 1
                    logger.debug("skipping corrupt packet in '%s': %s", self.path, exc)
                    continue
                for frame in decoded:
                    rgb = self._frame_to_rgb(frame)
                    if first_shape is None:
                        first_shape = rgb.shape
                    elif rgb.shape != first_shape:
                        rgb = self._resize_to(rgb, first_shape)
                    yield rgb
        except av.FFmpegError as exc:
            if first_shape is None:                             # no frame at all: the error says why
                self._read_error = reason(exc)
            else:
                logger.warning("stopped reading '%s' early after a read error: %s", self.path, reason(exc))
        finally:
            container.close()
            if self._skipped and first_shape is not None:     # with no frame at all, the error says it
                logger.warning("skipped %d corrupt packet(s) while reading '%s'", self._skipped, self.path)

    def _frame_to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        """Decoded frame -> upright ``H x W x 3 uint8 RGB`` (alpha composited over white)."""
        _check_frame_size(self.path, frame.width, frame.height)
        try:
            if len(frame.format.components) in (2, 4):  # gray+alpha or colour+alpha (GIF, VP9 alpha, ...)
                rgb = composite_over_white(frame.to_ndarray(format="rgba"))
            else:
                rgb = frame.to_ndarray(format="rgb24")
        except (av.FFmpegError, ValueError) as exc:
            name, why = frame.format.name, reason(exc)
            message = f"cannot read video '{self.path}': cannot convert {name} frames to RGB ({why})"
            raise MediaError(message) from None
        quarter_turns = round(getattr(frame, "rotation", 0) / 90) % 4
        if quarter_turns:
            rgb = np.ascontiguousarray(np.rot90(rgb, quarter_turns))
        return rgb

    def _resize_to(self, rgb: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        if not self._resize_warned:
            logger.warning(
                "'%s' changes frame size mid-stream (%dx%d -> %dx%d); resizing to the first frame's size",
                self.path, shape[1], shape[0], rgb.shape[1], rgb.shape[0],
            )
            self._resize_warned = True
        return cv2.resize(rgb, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Describe a video file or frame folder (fps, size, frame count, audio, duration).

    Decodes only the first frame (to validate the file and learn the upright frame size); a GIF longer than
    :data:`MAX_GIF_FRAMES` is described, not refused.

    Raises:
        MediaError: the path is missing, unreadable, not a video or too large.
    """
    with VideoReader(path, max_frames=1) as reader:
        return reader.info


def read_video(path: str | os.PathLike, max_frames: int | None = None) -> tuple[list[np.ndarray], float]:
    """Decode a whole video into memory: ``(frames, fps)`` with frames ``H x W x 3 uint8 RGB``."""
    with VideoReader(path, max_frames=max_frames) as reader:
        return list(reader), reader.fps
