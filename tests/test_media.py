"""Tests of puppetry.media on the real clips and portraits in ../shared/data (and files derived from them)."""

from __future__ import annotations

import os
import struct
import time
import zlib
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from puppetry.errors import MediaError, PuppetryError
from puppetry.media import (
    MAX_IMAGE_SIDE,
    VideoReader,
    VideoWriter,
    even_size,
    is_frame_folder,
    is_image_path,
    is_video_path,
    probe_video,
    read_image,
    read_video,
    write_image,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def data(relative: str) -> Path:
    """A file of the shared test data; fails (never skips) when it is missing."""
    path = DATA / relative
    assert path.is_file(), f"test data missing: {path}"
    return path


def test_shared_data_is_present():
    assert DATA.is_dir(), f"shared test data folder missing: {DATA}"


@pytest.fixture(scope="module")
def d3_frames() -> list[np.ndarray]:
    frames, fps = read_video(data("driving/d3.mp4"), max_frames=90)
    assert fps == 30
    return frames


def streams_of(path: Path) -> dict[str, av.stream.Stream]:
    """type -> (first) stream, read with PyAV directly, plus durations in seconds."""
    with av.open(str(path)) as container:
        out = {}
        for stream in container.streams:
            duration = float(stream.duration * stream.time_base) if stream.duration else None
            rate = getattr(stream, "average_rate", None)
            out.setdefault(stream.type, (stream.codec_context.name, duration, rate, stream.frames))
        return out


# --- reading videos -------------------------------------------------------------------------------------------


def test_read_d0():
    with VideoReader(data("driving/d0.mp4")) as reader:
        assert reader.fps == 25
        assert reader.size == (512, 512)
        assert len(reader) == 78
        assert reader.info.has_audio is False
        frames = list(reader)
    assert len(frames) == 78
    assert all(f.shape == (512, 512, 3) and f.dtype == np.uint8 for f in frames)
    assert not np.array_equal(frames[0], frames[-1])


def test_reader_max_frames_and_reiteration():
    frames, fps = read_video(data("driving/d0.mp4"), max_frames=10)
    assert len(frames) == 10 and fps == 25
    with VideoReader(data("driving/d0.mp4"), max_frames=5) as reader:
        assert len(reader) == 5
        first_pass = list(reader)
        second_pass = list(reader)  # every loop starts again from the first frame
    assert len(first_pass) == len(second_pass) == 5
    assert np.array_equal(first_pass[0], second_pass[0])
    assert np.array_equal(first_pass[0], frames[0])


def test_reader_close_after_partial_loop():
    reader = VideoReader(data("driving/d0.mp4"))
    for _ in reader:
        break
    reader.close()
    reader.close()


def test_probe_d3_d9_d13():
    d3 = probe_video(data("driving/d3.mp4"))
    assert d3.has_audio and d3.fps == 30 and d3.num_frames == 354 and (d3.width, d3.height) == (512, 512)
    assert d3.duration == pytest.approx(354 / 30, abs=0.05)
    d9 = probe_video(data("driving/d9.mp4"))
    assert (d9.width, d9.height) == (512, 480) and d9.fps == 30 and d9.has_audio
    d13 = probe_video(data("driving/d13.mp4"))
    assert (d13.width, d13.height) == (720, 1280) and not d13.has_audio
    frame = next(iter(VideoReader(data("driving/d9.mp4"), max_frames=1)))
    assert frame.shape == (480, 512, 3)


def test_frame_folder_natural_order(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(1, 13):  # f1..f12: plain sorting would put f10 before f2
        cv2.imwrite(str(folder / f"f{i}.png"), np.full((24, 32, 3), i * 20, np.uint8))
    (folder / "notes.txt").write_text("not a frame")
    assert is_frame_folder(folder)
    info = probe_video(folder)
    assert (info.fps, info.num_frames, info.width, info.height, info.has_audio) == (25, 12, 32, 24, False)
    frames, fps = read_video(folder)
    assert fps == 25
    assert [int(f[0, 0, 0]) for f in frames] == [i * 20 for i in range(1, 13)]


def test_frame_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MediaError, match="no video frames"):
        VideoReader(empty)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    cv2.imwrite(str(mixed / "1.png"), np.zeros((10, 10, 3), np.uint8))
    cv2.imwrite(str(mixed / "2.png"), np.zeros((12, 10, 3), np.uint8))
    with pytest.raises(MediaError, match="2.png"):
        read_video(mixed)


def test_frame_folder_is_held_to_the_video_size_limit(tmp_path):
    """A folder of 8192 x 4400 frames: each is a valid image (under the 8192 x 8192 image limit), but 36 M
    pixels is over the video limit of 8192 x 4320, which a frame folder is held to like any video."""
    folder = tmp_path / "wide"
    folder.mkdir()
    cv2.imwrite(str(folder / "1.png"), np.zeros((4400, 8192, 3), np.uint8))
    cv2.imwrite(str(folder / "2.png"), np.zeros((4400, 8192, 3), np.uint8))
    with pytest.raises(MediaError, match="its frames are 8192x4400, too large"):
        VideoReader(folder)
    ok = tmp_path / "ok"
    ok.mkdir()
    cv2.imwrite(str(ok / "1.png"), np.zeros((4320, 8192, 3), np.uint8))
    assert VideoReader(ok).size == (8192, 4320)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda src: src.read_bytes()[:3000], id="first-3000-bytes"),
        pytest.param(lambda src: np.random.default_rng(0).bytes(200_000), id="random-bytes"),
        pytest.param(lambda src: b"", id="empty"),
        pytest.param(lambda src: b"this is a text file, not a video\n" * 10, id="text"),
    ],
)
def test_corrupt_video_raises_media_error(tmp_path, make):
    path = tmp_path / "bad.mp4"
    path.write_bytes(make(data("driving/d0.mp4")))
    with pytest.raises(MediaError, match="bad.mp4"):
        VideoReader(path)
    with pytest.raises(MediaError):
        probe_video(path)


def test_missing_video_and_audio_only_file(tmp_path):
    with pytest.raises(MediaError, match="nope.mp4.*not found"):
        VideoReader(tmp_path / "nope.mp4")
    wav = tmp_path / "audio.wav"
    _write_wav_from(data("driving/d3.mp4"), wav, seconds=0.5)
    with pytest.raises(MediaError, match="no video stream"):
        VideoReader(wav)


def test_truncated_d3_reads_some_frames_or_raises_media_error(tmp_path):
    blob = data("driving/d3.mp4").read_bytes()
    path = tmp_path / "truncated.mp4"
    path.write_bytes(blob[: int(len(blob) * 0.6)])
    try:
        frames, _ = read_video(path)
    except MediaError:
        return
    assert 0 < len(frames) <= 354


def test_truncated_and_damaged_faststart_mp4_keeps_decoding(tmp_path, d3_frames):
    # Our own writer puts the index first, so a cut or damaged file still opens and decodes up to the damage.
    good = tmp_path / "good.mp4"
    with VideoWriter(good, fps=30) as writer:
        for frame in d3_frames:
            writer.write(frame)
    blob = good.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(blob[: len(blob) // 2])
    frames, _ = read_video(cut)
    assert 0 < len(frames) < 90
    damaged = bytearray(blob)
    middle = len(blob) // 2
    damaged[middle : middle + 4000] = np.random.default_rng(1).bytes(4000)
    path = tmp_path / "damaged.mp4"
    path.write_bytes(bytes(damaged))
    frames, _ = read_video(path)
    assert len(frames) >= 45 and all(f.shape == (512, 512, 3) for f in frames)


def test_display_rotation_is_applied(tmp_path, d3_frames):
    # Phones store portrait clips as landscape plus a display rotation; frames must come out upright.
    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30, width=512, height=256, pix_fmt="yuv420p")
        stream.set_display_rotation(90)  # counterclockwise, as FFmpeg's display matrix
        for frame in d3_frames[:5]:
            stored = frame[128:384].copy()
            stored[:, :256] = (220, 30, 30)  # left half red
            container.mux(stream.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")))
        container.mux(stream.encode(None))
    info = probe_video(path)
    assert (info.width, info.height) == (256, 512)
    upright = next(iter(VideoReader(path)))
    assert upright.shape == (512, 256, 3)
    assert np.abs(upright[400, 128].astype(int) - (220, 30, 30)).max() < 12  # left half turned to the bottom
    assert np.abs(upright[100, 128].astype(int) - (220, 30, 30)).max() > 40


def test_path_predicates(tmp_path):
    assert is_video_path("a/B.MP4") and is_video_path("x.gif") and not is_video_path("x.png")
    assert is_image_path("x.JPEG") and is_image_path("x.webp") and not is_image_path("x.mov")
    assert is_frame_folder(tmp_path) and not is_frame_folder(tmp_path / "x.png")


# --- writing videos -------------------------------------------------------------------------------------------


def test_even_size():
    assert even_size(101, 77) == (100, 76)
    assert even_size(512, 480) == (512, 480)
    assert even_size(1, 3) == (2, 2)


def test_mp4_with_audio_from_d3(tmp_path, d3_frames):
    out = tmp_path / "nested" / "out.mp4"
    with VideoWriter(out, fps=30, audio_from=data("driving/d3.mp4")) as writer:
        for frame in d3_frames:
            writer.write(frame)
        assert writer.frames_written == 90
    info = probe_video(out)
    assert info.has_audio and info.fps == 30 and info.num_frames == 90 and (info.width, info.height) == (512, 512)
    streams = streams_of(out)
    assert streams["video"][0] == "h264"
    assert streams["audio"][0] == "aac"
    video_seconds, audio_seconds = streams["video"][1], streams["audio"][1]
    assert video_seconds == pytest.approx(3.0, abs=0.01)
    assert audio_seconds == pytest.approx(video_seconds, abs=0.15)  # d3's audio is 11.8 s: it was trimmed
    frames, _ = read_video(out)
    assert len(frames) == 90
    assert np.abs(frames[45].astype(int) - d3_frames[45]).mean() < 4
    assert [p.name for p in out.parent.iterdir()] == ["out.mp4"]


def _write_wav_from(source: Path, wav: Path, seconds: float) -> None:
    """PCM copy of the first ``seconds`` of ``source``'s audio (real audio, non-AAC codec)."""
    with av.open(str(source)) as src, av.open(str(wav), "w") as dst:
        stream = dst.add_stream("pcm_s16le", rate=44100, layout="stereo")
        for frame in src.decode(audio=0):
            if frame.time > seconds:
                break
            frame.pts = None
            dst.mux(stream.encode(frame))
        dst.mux(stream.encode(None))


def test_mkv_with_pcm_audio_is_transcoded_and_trimmed(tmp_path, d3_frames):
    wav = tmp_path / "voice.wav"
    _write_wav_from(data("driving/d3.mp4"), wav, seconds=5.0)
    out = tmp_path / "out.mkv"
    with VideoWriter(out, fps=30, audio_from=wav) as writer:
        for frame in d3_frames[:45]:
            writer.write(frame)
    with av.open(str(out)) as container:
        assert container.streams.audio[0].codec_context.name == "aac"
        audio_end = max(float(p.pts * p.time_base) + float(p.duration * p.time_base)
                        for p in container.demux(audio=0) if p.pts is not None)
    assert audio_end == pytest.approx(1.5, abs=0.1)
    assert probe_video(out).num_frames == 45


def test_audio_source_without_audio_writes_video_only(tmp_path, d3_frames):
    out = tmp_path / "silent.mp4"
    with VideoWriter(out, fps=25, audio_from=data("driving/d0.mp4")) as writer:
        for frame in d3_frames[:10]:
            writer.write(frame)
    assert not probe_video(out).has_audio
    with pytest.raises(MediaError, match="missing.mp4"):
        VideoWriter(tmp_path / "x.mp4", fps=25, audio_from=tmp_path / "missing.mp4")


def test_a_damaged_audio_stream_is_dropped_with_a_warning(tmp_path, d3_frames, caplog):
    """Issue 18's first find: a driving video whose audio header is damaged (its codec tag and MPEG-4 object
    type zeroed, so FFmpeg names no codec) crashed the audio copy with AttributeError."""
    raw = bytearray(data("driving/d3.mp4").read_bytes())
    tag = raw.find(b"mp4a")
    raw[tag:tag + 4] = b"zzzz"
    oti = raw.find(b"\x40\x15", raw.find(b"esds", tag))           # objectTypeIndication 0x40 (AAC), audio
    raw[oti] = 0
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(raw))
    with av.open(str(damaged)) as container:
        assert container.streams.audio[0].codec_context is None       # what the writer met
    out = tmp_path / "out.mp4"
    with caplog.at_level("WARNING", logger="puppetry"):
        with VideoWriter(out, fps=30, audio_from=damaged) as writer:
            for frame in d3_frames[:10]:
                writer.write(frame)
    assert "damaged" in caplog.text and not probe_video(out).has_audio
    assert probe_video(out).num_frames == 10


@pytest.mark.parametrize("fps, rate", [(29.97, Fraction(2997, 100)), (30000 / 1001, Fraction(30000, 1001))])
def test_fractional_fps(tmp_path, d3_frames, fps, rate):
    out = tmp_path / "ntsc.mp4"
    with VideoWriter(out, fps=fps) as writer:
        for frame in d3_frames[:30]:
            writer.write(frame)
    assert streams_of(out)["video"][2] == rate
    info = probe_video(out)
    assert info.fps == pytest.approx(fps, abs=1e-6) and info.num_frames == 30
    assert info.duration == pytest.approx(30 / fps, abs=1e-3)


def test_odd_frame_size_is_cropped_to_even(tmp_path):
    frame = np.zeros((77, 101, 3), np.uint8)
    frame[:, :50] = (200, 40, 40)
    out = tmp_path / "odd.mp4"
    with VideoWriter(out, fps=25) as writer:
        for _ in range(5):
            writer.write(frame)
        with pytest.raises(ValueError, match="differs"):
            writer.write(np.zeros((78, 101, 3), np.uint8))
    info = probe_video(out)
    assert (info.width, info.height) == (100, 76)
    first = next(iter(VideoReader(out)))
    assert np.abs(first[38, 10].astype(int) - (200, 40, 40)).max() < 8


def test_exception_inside_with_leaves_no_file(tmp_path, d3_frames):
    out = tmp_path / "crash.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(out, fps=30, audio_from=data("driving/d3.mp4")) as writer:
            for frame in d3_frames[:20]:
                writer.write(frame)
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_abort_and_zero_frames_leave_no_file(tmp_path, d3_frames):
    writer = VideoWriter(tmp_path / "aborted.mp4", fps=30)
    writer.write(d3_frames[0])
    writer.abort()
    with pytest.raises(ValueError):
        writer.write(d3_frames[0])
    with pytest.raises(MediaError, match="no frames to write"):
        with VideoWriter(tmp_path / "empty.mp4", fps=30):
            pass
    assert list(tmp_path.iterdir()) == []


def test_writer_keeps_its_own_copy_of_each_frame(tmp_path):
    """The encoder thread encodes after write() returns: a caller reusing one buffer must not change the video."""
    out = tmp_path / "reused.mp4"
    buffer = np.zeros((64, 64, 3), np.uint8)
    with VideoWriter(out, fps=25) as writer:
        for value in (0, 80, 160, 240):
            buffer[:] = value
            writer.write(buffer)
        buffer[:] = 40                                  # after the last write, before the encoder may be done
    frames, _ = read_video(out)
    assert [round(float(f.mean()) / 10) * 10 for f in frames] == [0, 80, 160, 240]


def test_encoder_thread_error_is_raised_and_leaves_no_file(tmp_path, monkeypatch):
    def broken(self, rgb):
        raise av.FFmpegError(5, "Input/output error")

    monkeypatch.setattr(VideoWriter, "_write_h264", broken)
    frame = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(MediaError, match="encoding failed"):
        with VideoWriter(tmp_path / "broken.mp4", fps=25) as writer:
            for _ in range(10):                         # raised by a later write() or by close()
                writer.write(frame)
    assert list(tmp_path.iterdir()) == []


def test_unsupported_output_format(tmp_path):
    with pytest.raises(MediaError, match=r"unsupported output format.*\.mp4"):
        VideoWriter(tmp_path / "out.avi", fps=25)
    with pytest.raises(ValueError):
        VideoWriter(tmp_path / "out.mp4", fps=0)


def test_gif_round_trip(tmp_path):
    colours = [(230, 30, 30), (30, 200, 40), (20, 40, 220), (240, 240, 240), (10, 10, 10)]
    frames = []
    for i in range(10):
        frame = np.zeros((48, 64, 3), np.uint8)
        frame[:] = colours[i % len(colours)]
        frame[:8] = (i * 25, 100, 50)  # a stripe whose colour changes every frame
        frames.append(frame)
    out = tmp_path / "anim.gif"
    with VideoWriter(out, fps=10, audio_from=data("driving/d3.mp4")) as writer:  # audio ignored for GIF
        for frame in frames:
            writer.write(frame)
    info = probe_video(out)
    assert info.num_frames == 10 and info.fps == pytest.approx(10) and (info.width, info.height) == (64, 48)
    back, fps = read_video(out)
    assert len(back) == 10 and fps == pytest.approx(10)
    for original, decoded in zip(frames, back):
        assert np.abs(decoded.astype(int) - original).max() <= 8


def test_gif_from_real_video_is_capped_at_50_fps(tmp_path, d3_frames):
    out = tmp_path / "fast.gif"
    with VideoWriter(out, fps=100) as writer:
        for frame in d3_frames[:40]:
            writer.write(frame[::4, ::4])
    assert writer.frames_written == 20
    back, fps = read_video(out)
    assert len(back) == 20 and fps == pytest.approx(50, rel=0.1)
    assert np.abs(back[10].astype(int) - d3_frames[20][::4, ::4]).mean() < 10


# --- images ---------------------------------------------------------------------------------------------------


def test_read_portraits():
    s2 = read_image(data("portraits/s2.jpg"))
    assert s2.dtype == np.uint8 and s2.ndim == 3 and s2.shape[2] == 3 and max(s2.shape[:2]) == 2048
    assert read_image(data("portraits/s1.jpg")).shape == (1145, 1145, 3)


def test_grayscale_palette_and_cmyk(tmp_path):
    portrait = Image.open(data("portraits/s1.jpg")).convert("RGB").resize((120, 90))
    portrait.convert("L").save(tmp_path / "gray.png")
    gray = read_image(tmp_path / "gray.png")
    assert gray.shape == (90, 120, 3) and np.array_equal(gray[..., 0], gray[..., 2])
    portrait.convert("P", palette=Image.Palette.ADAPTIVE, colors=64).save(tmp_path / "pal.png")
    palette = read_image(tmp_path / "pal.png")
    assert np.abs(palette.astype(int) - np.asarray(portrait)).mean() < 8
    portrait.convert("CMYK").save(tmp_path / "cmyk.jpg")
    cmyk = read_image(tmp_path / "cmyk.jpg")
    assert cmyk.shape == (90, 120, 3) and np.abs(cmyk.astype(int) - np.asarray(portrait)).mean() < 12


def test_rgba_composited_over_white(tmp_path):
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[0, 0, 3] = 0  # fully transparent -> white
    rgba[1, 1, 3] = 255  # opaque -> its colour
    rgba[2, 2] = (0, 0, 0, 128)  # half black over white -> mid grey
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    rgb = read_image(tmp_path / "alpha.png")
    assert rgb.shape == (4, 5, 3)
    assert tuple(rgb[0, 0]) == (255, 255, 255)
    assert tuple(rgb[1, 1]) == (10, 20, 30)
    assert abs(int(rgb[2, 2, 0]) - 127) <= 1


def test_16_bit_png(tmp_path):
    values = np.array([[0, 32768, 65535, 257 * 100]], np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), values)
    rgb = read_image(tmp_path / "deep.png")
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 4, 3)
    assert list(rgb[0, :, 0]) == [0, 128, 255, 100]


def test_exif_orientation_is_applied(tmp_path):
    portrait = Image.open(data("portraits/s1.jpg")).convert("RGB")
    portrait = portrait.crop((0, 0, 600, 400))  # s1 is square; make it wide so a rotation shows in the shape
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rotated.jpg"
    portrait.save(path, quality=95, exif=exif)
    rgb = read_image(path)
    assert rgb.shape == (600, 400, 3)
    expected = np.rot90(np.asarray(portrait), k=-1)
    assert np.abs(rgb.astype(int) - expected).mean() < 6


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("size", [(100_000, 100_000), (9000, 9000), (100_000, 1)])
def test_huge_header_rejected_before_decoding(tmp_path, size):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(*size))
    start = time.perf_counter()
    with pytest.raises(MediaError, match=rf"bomb.png.*too large.*{MAX_IMAGE_SIDE}"):
        read_image(path)
    assert time.perf_counter() - start < 0.5


def test_large_image_within_limit_loads(tmp_path):
    path = tmp_path / "big.png"
    cv2.imwrite(str(path), np.zeros((8000, 8000), np.uint8))
    rgb = read_image(path)
    assert rgb.shape == (8000, 8000, 3) and rgb.dtype == np.uint8


def test_bad_image_inputs(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("definitely not a jpeg")
    with pytest.raises(MediaError, match="notes.jpg"):
        read_image(text)
    missing = tmp_path / "nowhere" / "face.png"
    with pytest.raises(MediaError, match=r"nowhere.*face\.png.*not found"):
        read_image(missing)
    with pytest.raises(MediaError, match="folder"):
        read_image(tmp_path)
    blob = data("portraits/s1.jpg").read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(blob[: len(blob) // 3])
    with pytest.raises(MediaError, match="cut.jpg"):
        read_image(cut)
    assert issubclass(MediaError, PuppetryError)


def test_write_image_round_trip_and_atomic(tmp_path):
    portrait = read_image(data("portraits/s1.jpg"))
    png = tmp_path / "out" / "deep" / "face.png"
    write_image(png, portrait)
    assert np.array_equal(read_image(png), portrait)
    jpg = tmp_path / "out" / "face.jpg"
    write_image(jpg, portrait)
    assert np.abs(read_image(jpg).astype(int) - portrait).mean() < 3
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["deep", "face.jpg"]
    assert os.listdir(png.parent) == ["face.png"]
    with pytest.raises(MediaError, match="unsupported"):
        write_image(tmp_path / "face.xyz", portrait)
    with pytest.raises(ValueError):
        write_image(tmp_path / "bad.png", portrait.astype(np.float32))


# ------------------------------------------------------------------------------------------------ audio
def test_log_mel_puts_a_tone_in_its_band_and_rows_on_the_clock():
    from puppetry.media.audio import Audio, MelConfig, _hz_to_mel, log_mel, mel_filterbank

    rate, cfg = 16000, MelConfig()
    t = np.arange(rate) / rate
    tone = np.where(t >= 0.5, 0.5 * np.sin(2 * np.pi * 1000.0 * t), 0.0).astype(np.float32)   # 1 kHz from 0.5 s
    mel = log_mel(Audio(tone, rate), cfg)
    assert mel.shape == (101, 80) and mel.dtype == np.float32                # rows at 0, 10, ..., 1000 ms
    centres = np.linspace(_hz_to_mel(cfg.f_min), _hz_to_mel(rate / 2), cfg.n_mels + 2)[1:-1]
    band = int(np.argmin(np.abs(centres - _hz_to_mel(1000.0))))
    assert abs(int(np.argmax(mel[80])) - band) <= 1                          # the tone's band is the loudest
    assert mel[20].max() == pytest.approx(np.log(cfg.floor), abs=1e-3)      # silence sits at the floor
    loud = mel[:, band] > np.log(cfg.floor) + 5
    assert 48 <= int(np.argmax(loud)) <= 50                                  # it starts at row 50 (half a window early)
    bank = mel_filterbank(rate, 512, cfg)
    assert bank.shape == (80, 257) and (bank >= 0).all() and (bank.sum(1) > 0).all()
