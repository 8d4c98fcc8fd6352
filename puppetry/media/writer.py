"""Writing videos (H.264 in mp4 / mov / mkv, or GIF), optionally carrying the audio of another file.

The output is written to a hidden temporary file next to the target and renamed into place only when
:meth:`VideoWriter.close` finishes cleanly, so a crash, an exception inside ``with VideoWriter(...)`` or a
call to :meth:`VideoWriter.abort` never leaves a half-written file behind.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
import queue
import secrets
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from puppetry.errors import MediaError, reason
from puppetry.media.audio import clock_origin, codec_problem

logger = logging.getLogger(__name__)

# extension -> PyAV / FFmpeg muxer name
_FORMATS: dict[str, str] = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".gif": "gif"}
# audio codecs that are copied as they are; anything else is transcoded to AAC
_COPY_AUDIO_CODECS = frozenset({"aac", "mp3"})
_AAC_SAMPLE_RATES = frozenset({96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000})
_GIF_TICKS_PER_SECOND = 100  # GIF delays are in centiseconds
_GIF_MIN_DELAY = 2  # browsers slow down frames shown for less than 2 cs, so GIFs are capped at 50 fps
_ENCODER_QUEUE = 2  # H.264 frames waiting for the encoder thread before write() waits for it


def even_size(width: int, height: int) -> tuple[int, int]:
    """Round ``(width, height)`` down to even numbers (at least 2), as H.264 in yuv420p requires."""
    return max(2, width - width % 2), max(2, height - height % 2)


def _temp_sibling(path: Path) -> Path:
    """A fresh hidden name next to ``path`` that keeps its extension: ``.name.tmp-1a2b3c4d.mp4``."""
    return path.with_name(f".{path.stem}.tmp-{secrets.token_hex(4)}{path.suffix}")


class UnusableAudio(Exception):
    """An audio stream that cannot be copied or decoded: the output is written without it."""


class _AudioTrack:
    """The first audio stream of a source file, muxed into an output and trimmed to the video's length.

    AAC and MP3 packets are copied unchanged; other codecs are decoded and encoded to AAC. Times are taken
    relative to the start of the source's video (or of the audio when the source has no video), so the
    audio of a driving video stays in sync with frames read from it.
    """

    def __init__(self, path: Path, container: av.container.InputContainer) -> None:
        self.path = path
        self.input = container
        self.source = container.streams.audio[0]
        context = self.source.codec_context
        problem = codec_problem(self.source, need_format=bool(context) and context.name not in _COPY_AUDIO_CODECS)
        if problem:                                      # copied codecs need no rate or channels of ours
            raise UnusableAudio(problem)
        self.offset = clock_origin(container)
        self.copy = self.source.codec_context.name in _COPY_AUDIO_CODECS
        self.output: av.container.OutputContainer | None = None
        self.stream = None
        self._packets = container.demux(self.source)
        self._pending: av.Packet | None = None
        self._done = False
        self._skipped = 0

    def add_to(self, output: av.container.OutputContainer) -> None:
        """Create the audio stream in ``output`` (call before anything is muxed)."""
        self.output = output
        if self.copy:
            try:
                self.stream = output.add_stream_from_template(self.source)
                return
            except ValueError:
                self.copy = False
        rate = self.source.codec_context.sample_rate
        rate = rate if rate in _AAC_SAMPLE_RATES else 48000
        layout = "mono" if self.source.codec_context.channels == 1 else "stereo"
        self.stream = output.add_stream("aac", rate=rate, layout=layout, bit_rate=192000)
        logger.info("transcoding %s audio of '%s' to AAC", self.source.codec_context.name, self.path)

    def _next_packet(self) -> av.Packet | None:
        if self._pending is None and not self._done:
            try:
                while True:
                    packet = next(self._packets)
                    if packet.size and packet.pts is not None:
                        self._pending = packet
                        break
            except StopIteration:
                self._done = True
            except av.FFmpegError as exc:
                logger.warning("audio of '%s' ends early after a read error: %s", self.path, reason(exc))
                self._done = True
        return self._pending

    def mux_until(self, seconds: float, final: bool = False) -> None:
        """Mux the source packets up to ``seconds`` of output time.

        Until ``final``, only packets that end by ``seconds`` are taken, so the one that crosses the end of
        the video can still be cut there; with ``final``, every packet that starts before ``seconds``.
        """
        while (packet := self._next_packet()) is not None:
            start = float(packet.pts * packet.time_base) - self.offset
            end = start + float((packet.duration or 0) * packet.time_base)
            if start >= seconds or (end > seconds and not final):
                return
            self._pending = None
            if end < 0:
                continue  # entirely before the video starts
            if self.copy:
                self._copy(packet)
            else:
                self._encode(self._decode(packet), seconds if final else math.inf)

    def _copy(self, packet: av.Packet) -> None:
        shift = round(self.offset / packet.time_base)
        packet.pts -= shift
        if packet.dts is not None:
            packet.dts -= shift
        packet.stream = self.stream
        self.output.mux(packet)

    def _decode(self, packet: av.Packet | None) -> list[av.AudioFrame]:
        try:
            return packet.decode() if packet is not None else self.source.codec_context.decode(None)
        except av.FFmpegError:
            self._skipped += 1
            return []

    def _encode(self, frames: list[av.AudioFrame], limit: float) -> None:
        """Encode decoded frames to AAC, dropping what lies before 0 and cutting at ``limit`` seconds."""
        for frame in frames:
            if frame.time is None:
                continue
            start = frame.time - self.offset
            keep = frame.samples
            if limit != math.inf:
                keep = min(keep, round((limit - start) * frame.sample_rate))
            if keep <= 0 or start + frame.samples / frame.sample_rate <= 0:
                continue
            if keep < frame.samples:
                frame = _first_samples(frame, keep)
            frame.pts = round(start * frame.sample_rate)
            frame.time_base = Fraction(1, frame.sample_rate)
            try:
                packets = self.stream.encode(frame)
            except ValueError:      # a damaged frame with another rate or layout than the stream's first
                self._skipped += 1
                continue
            self.output.mux(packets)

    def finish(self, end_seconds: float) -> None:
        """Mux what is left up to ``end_seconds`` (the end of the video) and flush the encoder."""
        self.mux_until(end_seconds, final=True)
        if not self.copy:
            self._encode(self._decode(None), end_seconds)
            self.output.mux(self.stream.encode(None))
        if self._skipped:
            logger.warning("skipped %d corrupt audio packet(s) of '%s'", self._skipped, self.path)

    def close(self) -> None:
        self.input.close()


def _first_samples(frame: av.AudioFrame, keep: int) -> av.AudioFrame:
    """A copy of ``frame`` holding only its first ``keep`` samples."""
    data = frame.to_ndarray()  # channels x samples (planar) or 1 x samples*channels (packed)
    width = keep if frame.format.is_planar else keep * frame.layout.nb_channels
    out = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(data[:, :width]), format=frame.format.name, layout=frame.layout.name
    )
    out.sample_rate = frame.sample_rate
    return out


def _open_audio(path: Path) -> _AudioTrack | None:
    """Open the audio of ``path``; ``None`` (with a log line) when the file has no audio stream."""
    if not path.exists():
        raise MediaError(f"cannot read audio from '{path}': file not found")
    if path.is_dir():
        raise MediaError(f"cannot read audio from '{path}': it is a folder, not a media file")
    try:
        container = av.open(str(path), mode="r")
    except Exception as exc:
        raise MediaError(f"cannot read audio from '{path}': file is corrupt or not media ({reason(exc)})") from None
    if not container.streams.audio:
        container.close()
        logger.info("'%s' has no audio; writing video only", path)
        return None
    try:
        return _AudioTrack(path, container)
    except UnusableAudio as exc:
        container.close()
        logger.warning("the audio of '%s' is damaged (%s); writing video only", path, exc)
        return None


class _GifStream:
    """GIF frames through FFmpeg's encoder, all sharing one 256-colour palette.

    The palette is chosen (median cut) from the first frames, up to two seconds of them, which are held
    until then; later frames are mapped onto it with Floyd-Steinberg dithering. One shared palette keeps
    static areas from flickering and lets the encoder store only the changed part of each frame.
    """

    def __init__(self, container: av.container.OutputContainer, stream, fps: float) -> None:
        self.container = container
        self.stream = stream
        self.fps = fps
        self.sample_frames = max(1, min(50, round(2 * fps)))
        self.pending: list[tuple[int, np.ndarray]] = []  # (pts, H x W x 3 uint8) until the palette exists
        self.palette: Image.Image | None = None
        self.argb: np.ndarray | None = None  # 256 x 4 uint8, the palette as FFmpeg wants it
        self.seen = 0
        self.last_pts: int | None = None

    def add(self, rgb: np.ndarray) -> bool:
        """Queue or encode one ``H x W x 3 uint8 RGB`` frame; False when dropped to stay at 50 fps or less."""
        pts = round(self.seen * _GIF_TICKS_PER_SECOND / self.fps)
        self.seen += 1
        if self.last_pts is not None and pts - self.last_pts < _GIF_MIN_DELAY:
            return False
        self.last_pts = pts
        if self.palette is None:
            self.pending.append((pts, rgb.copy()))
            if len(self.pending) >= self.sample_frames:
                self._choose_palette()
        else:
            self._encode(pts, rgb)
        return True

    def _choose_palette(self) -> None:
        height, width = self.pending[0][1].shape[:2]
        step = max(1, int(math.sqrt(height * width / 65536)))  # about 64k sampled pixels per frame
        sample = np.concatenate([rgb[::step, ::step] for _, rgb in self.pending], axis=0)
        self.palette = Image.fromarray(sample).quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        entries = np.asarray(self.palette.getpalette(), np.uint8).reshape(-1, 3)[:256]
        self.argb = np.zeros((256, 4), np.uint8)
        self.argb[:, 0] = 255
        self.argb[: len(entries), 1:] = entries
        for pts, rgb in self.pending:
            self._encode(pts, rgb)
        self.pending.clear()

    def _encode(self, pts: int, rgb: np.ndarray) -> None:
        indices = Image.fromarray(rgb).quantize(palette=self.palette, dither=Image.Dither.FLOYDSTEINBERG)
        frame = av.VideoFrame.from_ndarray((np.asarray(indices), self.argb), format="pal8")
        frame.pts = pts
        frame.time_base = Fraction(1, _GIF_TICKS_PER_SECOND)
        self.container.mux(self.stream.encode(frame))

    def flush(self) -> None:
        if self.palette is None and self.pending:
            self._choose_palette()
        self.container.mux(self.stream.encode(None))


class VideoWriter:
    """Write ``H x W x 3 uint8 RGB`` frames to a video file.

    ``.mp4`` / ``.mov`` / ``.mkv`` are encoded with libx264 (yuv420p, BT.709, ``crf`` / ``preset``);
    ``.gif`` uses one 256-colour palette sampled from the first two seconds and is capped at 50 fps (frames
    that would be shown for less than 2 cs are dropped). The first frame fixes the size; for H.264 an odd side is
    cropped by one pixel (101 x 77 -> 100 x 76). With ``audio_from``, that file's audio is added (copied when
    AAC/MP3, otherwise transcoded to AAC) and trimmed to the video's length; GIFs carry no audio.

    H.264 frames are converted, encoded and muxed on a thread of the writer's own, so that the caller renders
    the next frame meanwhile: :meth:`write` keeps a copy of the frame and returns (it waits only while
    two frames are already waiting); an encoding error is raised by the next :meth:`write` or by :meth:`close`.

    Use as a context manager; the file appears at ``path`` only when the block finishes without an
    exception::

        with VideoWriter("out.mp4", fps=reader.fps, audio_from="driving.mp4") as writer:
            for frame in frames:
                writer.write(frame)

    Raises:
        MediaError: unsupported extension, unreadable ``audio_from``, or the file cannot be written.
        ValueError: ``fps`` is not a positive number.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float,
        audio_from: str | os.PathLike | None = None,
        crf: int = 18,
        preset: str = "veryfast",
    ) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in _FORMATS:
            supported = ", ".join(sorted(_FORMATS))
            raise MediaError(
                f"cannot write video '{self.path}': unsupported output format '{suffix}' (supported: {supported})"
            )
        if not (isinstance(fps, numbers.Real) and math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        self.fps = float(fps)
        self.crf = crf
        self.preset = preset
        self._format = _FORMATS[suffix]
        self._is_gif = self._format == "gif"
        self._rate = Fraction(self.fps).limit_denominator(1001)
        self._tmp_path = _temp_sibling(self.path)
        self._container: av.container.OutputContainer | None = None
        self._stream = None
        self._input_shape: tuple[int, ...] | None = None
        self._size: tuple[int, int] | None = None  # (width, height) written
        self._gif: _GifStream | None = None
        self._frames_written = 0  # frames taken by write()
        self._frames_encoded = 0  # H.264 frames handed to the encoder (the encoder thread's count)
        self._closed = False
        self._queue: queue.Queue[np.ndarray | None] | None = None
        self._encoder: threading.Thread | None = None
        self._encoder_error: Exception | None = None

        self._audio: _AudioTrack | None = None
        if audio_from is not None:
            if self._is_gif:
                logger.warning("GIF output has no audio; ignoring the audio of '%s'", audio_from)
            else:
                self._audio = _open_audio(Path(audio_from))

    @property
    def frames_written(self) -> int:
        """Frames taken so far (H.264 frames may still be on their way to the file until :meth:`close`)."""
        return self._frames_written

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()

    def _fail(self, action: str, exc: BaseException) -> MediaError:
        self.abort()
        return MediaError(f"cannot write video '{self.path}': {action} failed ({reason(exc)})")

    def _open(self, width: int, height: int) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            options = {"movflags": "+faststart"} if self._format in ("mp4", "mov") else {}
            self._container = av.open(str(self._tmp_path), mode="w", format=self._format, options=options)
            if self._is_gif:
                self._stream = self._container.add_stream(
                    "gif", rate=self._rate, width=width, height=height, pix_fmt="pal8",
                    time_base=Fraction(1, _GIF_TICKS_PER_SECOND),
                )
                self._gif = _GifStream(self._container, self._stream, self.fps)
            else:
                self._stream = self._container.add_stream(
                    "libx264", rate=self._rate, width=width, height=height, pix_fmt="yuv420p",
                    time_base=1 / self._rate, options={"crf": str(self.crf), "preset": self.preset},
                )
                ctx = self._stream.codec_context
                ctx.colorspace, ctx.color_primaries, ctx.color_trc, ctx.color_range = 1, 1, 1, 1  # BT.709, limited
                # Frame threads (what the ffmpeg command line uses) encode in the background while the caller
                # renders the next frame; PyAV's default, slice threads, holds write() for the whole frame.
                ctx.thread_type = "FRAME"
                if self._audio is not None:
                    self._audio.add_to(self._container)
                self._queue = queue.Queue(_ENCODER_QUEUE)
                self._encoder = threading.Thread(target=self._encode_frames, name="puppetry-h264", daemon=True)
                self._encoder.start()
        except (OSError, av.FFmpegError, ValueError) as exc:
            raise self._fail("opening the output", exc) from None

    def write(self, frame: np.ndarray) -> None:
        """Append one ``H x W x 3 uint8 RGB`` frame; the first frame fixes the size of the video.

        Raises:
            ValueError: the writer is closed, or the frame is not ``H x W x 3 uint8`` of the first frame's size.
            MediaError: encoding or writing failed (the partial output is removed).
        """
        if self._closed:
            raise ValueError(f"VideoWriter for '{self.path}' is closed")
        self._raise_encoder_error()
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
            raise ValueError(f"expected an H x W x 3 uint8 RGB frame, got {got}")
        if self._input_shape is None:
            height, width = frame.shape[:2]
            if width < 2 or height < 2:
                raise ValueError(f"frames must be at least 2x2 pixels, got {width}x{height}")
            self._input_shape = frame.shape
            self._size = (width, height) if self._is_gif else even_size(width, height)
            if self._size != (width, height):
                logger.info("cropping %dx%d frames to %dx%d for H.264", width, height, *self._size)
            self._open(*self._size)
        elif frame.shape != self._input_shape:
            raise ValueError(
                f"frame size {frame.shape[1]}x{frame.shape[0]} differs from the first frame's "
                f"{self._input_shape[1]}x{self._input_shape[0]}"
            )
        width, height = self._size
        if not self._is_gif:
            self._queue.put(np.array(frame[:height, :width]))     # a copy: the caller may reuse its frame
            self._frames_written += 1
            return
        try:
            self._frames_written += self._gif.add(np.ascontiguousarray(frame[:height, :width]))
        except (OSError, av.FFmpegError) as exc:
            raise self._fail("encoding", exc) from None

    def _encode_frames(self) -> None:
        """The encoder thread: encode and mux queued frames in order until ``None`` comes. After an error it
        only empties the queue (so that write() never waits for ever); the error is raised in the caller's
        thread."""
        while (rgb := self._queue.get()) is not None:
            if self._encoder_error is None and not self._closed:     # closed here: aborted, frames unwanted
                try:
                    self._write_h264(rgb)
                except Exception as exc:  # any error: handed to the caller's thread
                    self._encoder_error = exc

    def _raise_encoder_error(self) -> None:
        """Raise what failed on the encoder thread, as :meth:`write` would have raised it (the output removed)."""
        exc = self._encoder_error
        if exc is None:
            return
        if isinstance(exc, (OSError, av.FFmpegError)):
            raise self._fail("encoding", exc) from None
        self.abort()
        raise exc

    def _stop_encoder(self) -> None:
        """Let the encoder thread finish the queued frames and end (nothing when it never started)."""
        if self._encoder is not None:
            self._queue.put(None)
            self._encoder.join()
            self._encoder = None

    def _write_h264(self, rgb: np.ndarray) -> None:
        video_frame = av.VideoFrame.from_numpy_buffer(rgb, format="rgb24")       # no copy: reformat makes one
        video_frame = video_frame.reformat(
            format="yuv420p", src_colorspace="ITU709", dst_colorspace="ITU709", dst_color_range="MPEG"
        )
        video_frame.pts = self._frames_encoded
        video_frame.time_base = 1 / self._rate
        video_frame.duration = 1
        self._container.mux(self._stream.encode(video_frame))
        self._frames_encoded += 1
        if self._audio is not None:
            self._audio.mux_until(float(self._frames_encoded / self._rate))

    def close(self) -> None:
        """Finish the file and move it to ``path``. Safe to call more than once.

        Raises:
            MediaError: no frame was written (nothing is created), or finishing the file failed.
        """
        if self._closed:
            return
        self._stop_encoder()
        self._raise_encoder_error()
        if self._frames_written == 0:
            self.abort()
            raise MediaError(f"cannot write video '{self.path}': no frames to write")
        try:
            if self._gif is not None:
                self._gif.flush()
            else:
                self._container.mux(self._stream.encode(None))
            if self._audio is not None:
                self._audio.finish(float(self._frames_written / self._rate))
            self._container.close()
            self._container = None
            os.replace(self._tmp_path, self.path)
        except (OSError, av.FFmpegError) as exc:
            raise self._fail("finishing the file", exc) from None
        finally:
            if self._audio is not None:
                self._audio.close()
                self._audio = None
        self._closed = True
        logger.debug("wrote %d frames to '%s'", self._frames_written, self.path)

    def abort(self) -> None:
        """Stop writing and delete the partial output; nothing is left at ``path``. Safe to call twice."""
        self._closed = True
        self._stop_encoder()
        if self._container is not None:
            try:
                self._container.close()
            except Exception as exc:  # the file is being thrown away; only log
                logger.debug("error while closing aborted output '%s': %s", self._tmp_path, exc)
            self._container = None
        if self._audio is not None:
            self._audio.close()
            self._audio = None
        try:
            self._tmp_path.unlink(missing_ok=True)
        except OSError:  # the folder never existed (e.g. below a file)
            pass
