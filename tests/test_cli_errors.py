"""The ``puppetry`` command on bad, odd and hostile input, run as a real subprocess.

Contract checked for bad input: exit status 2, exactly one ``puppetry: error: ...`` line on stderr (native
MediaPipe / TFLite log lines and progress bars aside), no Python traceback, and nothing new in the output
folder (no output file, no temporary file). Odd but valid inputs (grayscale, alpha, 16-bit, EXIF-rotated,
huge sources; a driving video that loses the face) must work. Real data comes from ../shared/data.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import puppetry
from puppetry.media import VideoReader, VideoWriter, probe_video, read_video

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Native log lines MediaPipe / TFLite print on stderr, and tqdm progress bars: not part of our output.
_NOISE_PREFIXES = ("W0000", "I0000", "WARNING: All log", "INFO: Created TensorFlow Lite")
_PROGRESS_MARKS = ("frame/s]", "animating")

MOTIONS = ("blink", "smile", "nod", "shake", "talk", "demo")


def data(relative: str) -> Path:
    """A file of the shared test data; fails (never skips) when it is missing."""
    path = DATA / relative
    assert path.exists(), f"test data missing: {path}"
    return path


def _command() -> list[str]:
    script = Path(sys.executable).with_name("puppetry")
    if script.is_file():
        return [str(script)]
    found = shutil.which("puppetry")
    return [found] if found else [sys.executable, "-m", "puppetry"]


def _is_noise(line: str) -> bool:
    stripped = line.strip()
    return (not stripped or stripped.startswith(_NOISE_PREFIXES)
            or any(mark in stripped for mark in _PROGRESS_MARKS))


def run_cli(*args, cwd: Path, quiet: bool = True, timeout: float = 180) -> tuple[int, str, list[str]]:
    """Run ``puppetry [-q] ARGS`` in ``cwd``; returns (returncode, stdout, stderr lines without noise)."""
    cmd = _command() + (["-q"] if quiet else []) + [str(a) for a in args]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines = [line for line in re.split(r"[\r\n]+", proc.stderr) if not _is_noise(line)]
    return proc.returncode, proc.stdout, lines


_REPORT_PEAK = """
import atexit, sys
def report(path=sys.argv[1]):
    with open("/proc/self/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    with open(path, "w") as out:
        out.write(str(kib))
atexit.register(report)
from puppetry.cli import main
sys.exit(main(sys.argv[2:]))
"""


def run_cli_peak_rss(*args, cwd: Path, timeout: float = 180) -> tuple[int, list[str], int]:
    """:func:`run_cli` (with ``-q``), plus the child's own peak resident memory in KiB: its ``VmHWM`` at exit,
    the high-water mark of the memory it mapped after starting. ``RUSAGE_CHILDREN`` is the largest of every
    child the session has waited for, and even one child's ``ru_maxrss`` starts from the size of the test
    process it was forked from, which grows over the suite."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "peak"
        cmd = [sys.executable, "-c", _REPORT_PEAK, str(report), "-q", *[str(a) for a in args]]
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
        peak = int(report.read_text()) if report.is_file() else -1
    lines = [line for line in re.split(r"[\r\n]+", proc.stderr) if not _is_noise(line)]
    assert peak > 0, "the child did not report its peak memory:\n" + "\n".join(lines)
    return proc.returncode, lines, peak


def listing(folder: Path) -> set[str]:
    """Every name under ``folder`` (hidden files included), relative to it."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def assert_clean_error(rc: int, lines: list[str], *fragments: str) -> str:
    """Exit 2, exactly one ``puppetry: error:`` line containing every fragment, no traceback."""
    text = "\n".join(lines)
    assert "Traceback" not in text, text
    assert rc == 2, f"exit status {rc}, stderr:\n{text}"
    assert len(lines) == 1, f"expected one error line, got {len(lines)}:\n{text}"
    line = lines[0]
    assert line.startswith("puppetry: error: "), line
    assert "unexpected" not in line, line
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    return line


def check_fails_cleanly(tmp: Path, *args, fragments=(), output: str = "out.mp4", quiet: bool = True) -> str:
    """Run ``animate ARGS -o OUTPUT`` in ``tmp``: clean error, and the folder listing is unchanged."""
    before = listing(tmp)
    rc, _, lines = run_cli("animate", *args, "-o", output, cwd=tmp, quiet=quiet)
    line = assert_clean_error(rc, lines, *fragments)
    assert not (tmp / output).exists()
    assert listing(tmp) == before, f"new files: {listing(tmp) - before}"
    return line


def frame_count(path: Path) -> int:
    """Frames actually decodable from ``path`` (not just the header's claim)."""
    with VideoReader(path) as reader:
        return sum(1 for _ in reader)


# ----------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def s1() -> Path:
    return data("portraits/s1.jpg")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A folder of derived driving inputs shared by the tests of this module."""
    return tmp_path_factory.mktemp("inputs")


@pytest.fixture(scope="module")
def short_clip(inputs) -> Path:
    """The first 8 frames of d0.mp4 (a real face, 25 fps)."""
    path = inputs / "short.mp4"
    with VideoReader(data("driving/d0.mp4"), max_frames=8) as reader, VideoWriter(path, reader.fps) as writer:
        for frame in reader:
            writer.write(frame)
    return path


@pytest.fixture(scope="module")
def gradient_clip(inputs) -> Path:
    """20 frames of a smooth colour gradient: a video with no face at all."""
    path = inputs / "gradient.mp4"
    h, w = 240, 320
    with VideoWriter(path, 25) as writer:
        for i in range(20):
            x = np.clip(np.linspace(0, 255, w)[None, :] + 4 * i, 0, 255)
            g = np.repeat(x, h, axis=0).astype(np.uint8)
            writer.write(np.stack([g, g[:, ::-1], np.full_like(g, 120)], axis=-1))
    return path


@pytest.fixture(scope="module")
def template(inputs, short_clip) -> Path:
    """A valid motion template made by ``puppetry template`` from the short clip."""
    path = inputs / "motion.npz"
    rc, _, lines = run_cli("template", short_clip, "-o", path, cwd=inputs)
    assert rc == 0, lines
    assert path.is_file()
    return path


# ------------------------------------------------------------------------------------------ 1. source face


@pytest.mark.parametrize("name", ["s33.jpg", "s41.jpg"])
def test_source_without_face(tmp_path, name):
    source = data(f"portraits/{name}")
    line = check_fails_cleanly(tmp_path, "-s", source, "-d", "blink", quiet=False)
    assert "no face" in line
    assert str(source) in line


# ------------------------------------------------------------------------------------- 2. unreadable source


def test_source_missing(tmp_path):
    missing = tmp_path / "nobody.jpg"
    line = check_fails_cleanly(tmp_path, "-s", missing, "-d", "blink", quiet=False)
    assert str(missing) in line
    assert "not found" in line


def test_source_text_renamed_jpg(tmp_path):
    source = tmp_path / "notes.jpg"
    source.write_text("this is not a picture\n")
    line = check_fails_cleanly(tmp_path, "-s", source, "-d", "blink")
    assert str(source) in line
    assert "not an image" in line or "corrupt" in line


def test_source_truncated_jpeg(tmp_path, s1):
    source = tmp_path / "cut.jpg"
    source.write_bytes(s1.read_bytes()[:500])
    line = check_fails_cleanly(tmp_path, "-s", source, "-d", "blink")
    assert str(source) in line
    assert "corrupt" in line or "truncated" in line


def test_source_is_a_video(tmp_path):
    video = data("driving/d0.mp4")
    line = check_fails_cleanly(tmp_path, "-s", video, "-d", "blink")
    assert str(video) in line


# ------------------------------------------------------------------------------------------- 3. bad driving


def test_driving_truncated_video(tmp_path, s1):
    driving = tmp_path / "cut.mp4"
    driving.write_bytes(data("driving/d0.mp4").read_bytes()[:3000])
    line = check_fails_cleanly(tmp_path, "-s", s1, "-d", driving)
    assert str(driving) in line


def test_driving_random_bytes_video(tmp_path, s1):
    driving = tmp_path / "noise.mp4"
    driving.write_bytes(np.random.default_rng(7).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    line = check_fails_cleanly(tmp_path, "-s", s1, "-d", driving)
    assert str(driving) in line


def test_driving_empty_video(tmp_path, s1):
    driving = tmp_path / "empty.mp4"
    driving.write_bytes(b"")
    line = check_fails_cleanly(tmp_path, "-s", s1, "-d", driving)
    assert str(driving) in line
    assert "empty" in line


def test_driving_video_without_face(tmp_path, s1, gradient_clip):
    # An older file at the output path must survive the failed run untouched.
    existing = tmp_path / "out.mp4"
    existing.write_bytes(b"previous result")
    before = listing(tmp_path)
    rc, _, lines = run_cli("animate", "-s", s1, "-d", gradient_clip, "-o", existing, cwd=tmp_path)
    line = assert_clean_error(rc, lines, "no face")
    assert str(gradient_clip) in line
    assert existing.read_bytes() == b"previous result"
    assert listing(tmp_path) == before


def test_driving_unknown_motion(tmp_path, s1):
    line = check_fails_cleanly(tmp_path, "-s", s1, "-d", "dance")
    assert "'dance'" in line
    for motion in MOTIONS:
        assert motion in line


def test_liveportrait_template_needs_the_liveportrait_engine(tmp_path, s1):
    pkl = data("templates/d1.pkl")
    line = check_fails_cleanly(tmp_path, "-s", s1, "-d", pkl)
    assert str(pkl) in line
    assert "--engine liveportrait" in line


def test_liveportrait_without_weights(tmp_path, s1, monkeypatch):
    monkeypatch.delenv("PUPPETRY_LIVEPORTRAIT_DIR", raising=False)
    line = check_fails_cleanly(tmp_path, "-s", s1, "--engine", "liveportrait")
    assert "--checkpoint-dir" in line and "PUPPETRY_LIVEPORTRAIT_DIR" in line
    assert "base_models/motion_extractor.pth" in line
    line = check_fails_cleanly(tmp_path, "-s", s1, "--engine", "liveportrait", "--checkpoint-dir", tmp_path / "none")
    assert "does not exist" in line


def test_liveportrait_flags_need_that_engine(tmp_path, s1):
    line = check_fails_cleanly(tmp_path, "-s", s1, "--no-stitching")
    assert "--no-stitching" in line and "liveportrait" in line


def test_pickle_template_is_never_unpickled(tmp_path, s1):
    """A .pkl that would run code when unpickled is refused without being loaded."""
    marker = tmp_path / "pwned"
    payload = (b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(payload)
    before = listing(tmp_path)
    rc, _, lines = run_cli("animate", "-s", s1, "-d", evil, "-o", "out.mp4", cwd=tmp_path)
    assert_clean_error(rc, lines, str(evil))
    assert not marker.exists()
    assert listing(tmp_path) == before


def test_driving_npz_random_bytes(tmp_path, s1):
    driving = tmp_path / "x.npz"
    driving.write_bytes(np.random.default_rng(3).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    line = check_fails_cleanly(tmp_path, "-s", s1, "-d", driving)
    assert str(driving) in line


def test_driving_npz_wrong_arrays(tmp_path, s1):
    driving = tmp_path / "wrong.npz"
    np.savez(driving, a=np.zeros(3))
    line = check_fails_cleanly(tmp_path, "-s", s1, "-d", driving)
    assert str(driving) in line


def test_driving_image_without_face(tmp_path, s1):
    dog = data("portraits/s33.jpg")
    line = check_fails_cleanly(tmp_path, "-s", s1, "-d", dog)
    assert "no face" in line and str(dog) in line


def test_driving_unsupported_file(tmp_path, s1):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    line = check_fails_cleanly(tmp_path, "-s", s1, "-d", notes)
    assert str(notes) in line


def test_driving_empty_folder(tmp_path, s1):
    (tmp_path / "frames").mkdir()
    check_fails_cleanly(tmp_path, "-s", s1, "-d", tmp_path / "frames")


# -------------------------------------------------------------------------------------------- 4. bad output


def test_output_unsupported_extension(tmp_path, s1):
    line = check_fails_cleanly(tmp_path, "-s", s1, "-d", "blink", "--duration", "0.4", output="out.xyz")
    assert "out.xyz" in line and ".mp4" in line


def test_output_image_with_multi_frame_driving(tmp_path, s1):
    line = check_fails_cleanly(tmp_path, "-s", s1, "-d", "blink", output="out.png")
    assert "out.png" in line and "frames" in line


def test_output_image_with_one_frame_works(tmp_path, s1):
    rc, _, lines = run_cli("animate", "-s", s1, "-d", "blink", "--duration", "0.02", "-o", "one.png",
                           cwd=tmp_path)
    assert rc == 0, lines
    assert listing(tmp_path) == {"one.png"}
    with Image.open(tmp_path / "one.png") as image:
        assert image.size[0] > 500 and image.size[1] > 500


def test_output_image_with_driving_image_works(tmp_path, s1):
    rc, _, lines = run_cli("animate", "-s", s1, "-d", data("driving/d12.jpg"), "-o", "still.jpg",
                           cwd=tmp_path)
    assert rc == 0, lines
    assert listing(tmp_path) == {"still.jpg"}
    with Image.open(tmp_path / "still.jpg") as image:
        assert image.format == "JPEG"


def test_output_is_a_folder(tmp_path, s1):
    (tmp_path / "dir.mp4").mkdir()
    before = listing(tmp_path)
    rc, _, lines = run_cli("animate", "-s", s1, "-d", "blink", "--duration", "0.4", "-o", "dir.mp4",
                           cwd=tmp_path)
    assert_clean_error(rc, lines, "dir.mp4")
    assert listing(tmp_path) == before


# -------------------------------------------------------------------------------- 5. face lost mid-driving


def test_face_lost_in_the_middle_of_the_driving(tmp_path, s1):
    with VideoReader(data("driving/d0.mp4"), max_frames=60) as reader:
        frames, fps = list(reader), reader.fps
    assert len(frames) == 60
    driving = tmp_path / "gap.mp4"
    with VideoWriter(driving, fps) as writer:
        for frame in frames[:30]:
            writer.write(frame)
        for _ in range(15):
            writer.write(np.full_like(frames[0], 128))
        for frame in frames[30:60]:
            writer.write(frame)
    assert frame_count(driving) == 75

    rc, _, lines = run_cli("animate", "-s", s1, "-d", driving, "-o", "out.mp4", cwd=tmp_path)
    text = "\n".join(lines)
    assert rc == 0, text
    assert "Traceback" not in text
    assert any("face lost in 15 of 75 driving frames" in line for line in lines), text
    out = tmp_path / "out.mp4"
    info = probe_video(out)
    assert info.num_frames == 75
    assert info.fps == pytest.approx(fps)
    assert frame_count(out) == 75
    assert listing(tmp_path) == {"gap.mp4", "out.mp4"}


# ------------------------------------------------------------------------------ 6. odd sources that work


def animate_ok(tmp: Path, source: Path, *extra: str) -> Path:
    """``animate -s SOURCE -d blink --duration 0.4`` must succeed with a readable 10-frame output."""
    out = tmp / "out.mp4"
    rc, _, lines = run_cli("animate", "-s", source, "-d", "blink", "--duration", "0.4", *extra, "-o", out,
                           cwd=tmp)
    text = "\n".join(lines)
    assert rc == 0, text
    assert "Traceback" not in text and "error" not in text, text
    assert out.is_file()
    assert probe_video(out).num_frames == 10
    assert frame_count(out) == 10
    assert not [name for name in os.listdir(tmp) if ".tmp-" in name]
    return out


def test_grayscale_source(tmp_path, s1):
    source = tmp_path / "gray.png"
    Image.open(s1).convert("L").save(source)
    out = animate_ok(tmp_path, source)
    frame = read_video(out, max_frames=1)[0][0]
    spread = frame.astype(int).max(axis=2) - frame.astype(int).min(axis=2)
    assert float(np.median(spread)) <= 6  # still a gray picture (up to codec colour noise)


def test_rgba_source(tmp_path, s1):
    rgba = np.array(Image.open(s1).convert("RGBA"))
    rgba[..., 3] = np.linspace(60, 255, rgba.shape[1]).astype(np.uint8)[None, :]
    source = tmp_path / "alpha.png"
    Image.fromarray(rgba).save(source)
    animate_ok(tmp_path, source)


def test_16_bit_png_source(tmp_path, s1):
    bgr = cv2.imread(str(s1))
    source = tmp_path / "deep.png"
    assert cv2.imwrite(str(source), bgr.astype(np.uint16) * 257)
    assert cv2.imread(str(source), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    out = animate_ok(tmp_path, source)
    assert probe_video(out).width == bgr.shape[1] - bgr.shape[1] % 2


def test_exif_rotated_source(tmp_path, s1):
    image = Image.open(s1).convert("RGB")
    w, h = image.size
    upright = image.crop((round(w * 0.15), 0, round(w * 0.85), h))      # taller than wide, as displayed
    stored = upright.transpose(Image.Transpose.ROTATE_90)               # pixels lie on their side
    assert stored.width > stored.height
    exif = Image.Exif()
    exif[0x0112] = 6                                                    # "rotate 90 CW to display"
    source = tmp_path / "rotated.jpg"
    stored.save(source, quality=95, exif=exif.tobytes())

    out = animate_ok(tmp_path, source)
    info = probe_video(out)
    assert info.height > info.width
    assert (info.width, info.height) == (stored.height - stored.height % 2, stored.width - stored.width % 2)
    # The content is upright too (not turned 180 degrees): the first frame matches the upright crop.
    first = read_video(out, max_frames=1)[0][0].astype(np.float32)
    ref = np.asarray(upright, np.float32)[: first.shape[0], : first.shape[1]]
    assert np.abs(first - ref).mean() < np.abs(first - ref[::-1, ::-1]).mean() / 2


def test_huge_source_is_shrunk_with_bounded_memory(tmp_path, s1):
    source = tmp_path / "huge.jpg"
    big = cv2.resize(cv2.imread(str(s1)), (8000, 8000), interpolation=cv2.INTER_LINEAR)
    assert cv2.imwrite(str(source), big, [cv2.IMWRITE_JPEG_QUALITY, 90])
    del big
    out = tmp_path / "out.mp4"
    rc, lines, peak_kib = run_cli_peak_rss("animate", "-s", source, "-d", "blink", "--duration", "0.4",
                                           "--max-size", "1024", "-o", out, cwd=tmp_path)
    assert rc == 0 and "Traceback" not in "\n".join(lines), "\n".join(lines)
    assert peak_kib < 3 * 1024 * 1024, f"child peak RSS {peak_kib / 1024:.0f} MiB"
    assert frame_count(out) == 10 and probe_video(out).num_frames == 10
    assert not [name for name in os.listdir(tmp_path) if ".tmp-" in name]
    info = probe_video(out)
    assert max(info.width, info.height) <= 1024
    assert max(info.width, info.height) >= 1000


# ------------------------------------------------------------------------------------------- 7. PNG bomb


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def test_png_claiming_enormous_size(tmp_path):
    source = tmp_path / "bomb.png"
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    source.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
                       + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b""))
    before = listing(tmp_path)
    start = time.monotonic()
    rc, _, lines = run_cli("animate", "-s", source, "-d", "blink", "-o", "out.mp4", cwd=tmp_path, timeout=20)
    assert time.monotonic() - start < 20
    line = assert_clean_error(rc, lines, str(source))
    assert "too large" in line and "limit" in line
    assert listing(tmp_path) == before


# ------------------------------------------------------------------------------------------ templates


def test_template_round_trip(tmp_path, s1, template):
    rc, _, lines = run_cli("animate", "-s", s1, "-d", template, "-o", "out.mp4", cwd=tmp_path)
    assert rc == 0, lines
    assert frame_count(tmp_path / "out.mp4") == 8


def test_template_command_refuses_bad_output(tmp_path, short_clip):
    before = listing(tmp_path)
    rc, _, lines = run_cli("template", short_clip, "-o", "motion.txt", cwd=tmp_path)
    assert_clean_error(rc, lines, "motion.txt", ".npz")
    assert listing(tmp_path) == before


def test_template_command_without_face(tmp_path, gradient_clip):
    before = listing(tmp_path)
    rc, _, lines = run_cli("template", gradient_clip, "-o", "motion.npz", cwd=tmp_path)
    assert_clean_error(rc, lines, "no face")
    assert listing(tmp_path) == before


def _damaged_template(src: Path, dst: Path, **changes) -> None:
    with np.load(src) as z:
        arrays = dict(z)
    arrays.update(changes)
    np.savez(dst, **arrays)


# --------------------------------------------------------------------------- 8. Python API (in process)


def test_api_no_face_raises():
    with pytest.raises(puppetry.NoFaceError, match="no face"):
        puppetry.animate(source=str(data("portraits/s33.jpg")), driving="blink")


def test_api_to_file(tmp_path):
    out = tmp_path / "api.mp4"
    result = puppetry.animate("astronaut", "blink", out, puppetry.AnimateOptions(duration=0.4, progress=False))
    assert isinstance(result, puppetry.AnimationResult)
    assert result.frames == 10
    assert result.fps == 25
    assert result.output == str(out)
    assert result.images is None
    assert result.lost_frames == 0
    assert frame_count(out) == 10
    assert listing(tmp_path) == {"api.mp4"}


def test_api_to_memory(tmp_path):
    result = puppetry.animate("astronaut", "blink", output=None,
                              options=puppetry.AnimateOptions(duration=0.4, progress=False))
    assert result.output is None
    assert result.frames == 10
    assert len(result.images) == 10
    for image in result.images:
        assert isinstance(image, np.ndarray)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert image.shape == result.images[0].shape
    assert result.images[0].shape[:2] == (512, 512)


def test_api_bad_output_extension_writes_nothing(tmp_path):
    with pytest.raises(puppetry.MediaError, match="out.xyz"):
        puppetry.animate("astronaut", "blink", tmp_path / "out.xyz", puppetry.AnimateOptions(duration=0.4))
    assert listing(tmp_path) == set()


# ------------------------------------------------------------------------ option and template values


def test_bug_fps_infinite(tmp_path, s1):
    check_fails_cleanly(tmp_path, "-s", s1, "-d", "blink", "--fps", "inf", fragments=("fps",))


def test_bug_fps_zero_is_accepted(tmp_path, s1):
    check_fails_cleanly(tmp_path, "-s", s1, "-d", "blink", "--duration", "0.4", "--fps", "0",
                        fragments=("fps",))


def test_bug_max_faces_zero(tmp_path, s1):
    check_fails_cleanly(tmp_path, "-s", s1, "-d", "blink", "--duration", "0.4", "--max-faces", "0",
                        fragments=("max-faces",))


def test_bug_multiplier_nan(tmp_path, s1, short_clip):
    check_fails_cleanly(tmp_path, "-s", s1, "-d", short_clip, "--multiplier", "nan", fragments=("multiplier",))


@pytest.mark.parametrize("output,duration", [("file.txt/out.mp4", "0.4"), ("file.txt/out.png", "0.02")])
def test_bug_output_below_a_file(tmp_path, s1, output, duration):
    (tmp_path / "file.txt").write_text("not a folder")
    check_fails_cleanly(tmp_path, "-s", s1, "-d", "blink", "--duration", duration, output=output)


@pytest.mark.parametrize("damage", ["nan_rotation", "nan_center", "zero_scale", "scale_2d"])
def test_bug_damaged_template_values(tmp_path, s1, template, damage):
    with np.load(template) as z:
        n = len(z["scale"])
        changes = {
            "nan_rotation": {"rotation": np.full_like(z["rotation"], np.nan)},
            "nan_center": {"center": np.full_like(z["center"], np.nan)},
            "zero_scale": {"scale": np.zeros_like(z["scale"])},
            "scale_2d": {"scale": np.ones((n, 2), np.float32)},
        }[damage]
    damaged = tmp_path / "damaged.npz"
    _damaged_template(template, damaged, **changes)
    check_fails_cleanly(tmp_path, "-s", s1, "-d", damaged, fragments=(str(damaged),))
