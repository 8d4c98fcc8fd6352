"""Peak memory of ``puppetry animate`` on hostile inputs: decompression bombs and files that claim to be huge.

    .venv/bin/python benchmarks/hostile_memory.py [--kinds png-claims-50k gif-10k-frames ...] [--timeout 300]

Builds each hostile file in a temporary folder, runs ``puppetry -q animate -s PORTRAIT -d FILE -o out.mp4``
(``-s FILE`` for images) in a subprocess and prints a markdown table: per kind, the exit status, the error
line (the last stderr line, with the number of others), seconds and the peak resident memory of the
subprocess in MB (``os.wait4``). ``--root`` runs another checkout's package (before/after comparisons).
``tests/test_hostile_inputs.py`` builds the same files with the functions here.

Kinds (every file is small on disk):

* ``png-claims-50k`` / ``jpeg-claims-50k``: a header that says 50,000 x 50,000 px, almost no pixel data.
* ``png-bomb-20k``: a real 20,000 x 20,000 RGB PNG of zeros (1.2 GB decoded, 1.6 MB on disk).
* ``png-rgba-8k``: the largest image accepted (8192 x 8192), RGBA and fully transparent (no face).
* ``mkv-claims-16k``: an MJPEG .mkv whose track and JPEG headers say 15360 x 8640 (16K).
* ``mkv-frames-lie-16k``: an honest MJPEG .mkv (320 x 256) whose every JPEG header says 15360 x 8640.
* ``gif-canvas-16k``: a GIF whose canvas is 15360 x 8640 with two 1 x 1 frames (each decodes to 16K).
* ``gif-canvas-8k`` / ``mp4-h264-8k``: the largest frames accepted (8192 x 4320): five 1 x 1 GIF frames on
  that canvas; 24 H.264 frames, whose decoder holds a frame per thread (no face in either).
* ``mp4-claims-1e9-frames``: five real driving frames whose ``stts`` says a billion.
* ``gif-10k-frames``: 10,000 frames of 8 x 8 px.
* ``pkl-claims-giant-array``: a LivePortrait pickle whose array state says shape (10**9, 21, 3).
* ``pkl-bytes-claims-1tb``: a pickle whose BINBYTES8 opcode says 2**40 bytes follow.
* ``pkl-object-flood``: a 10 MB pickle of ten million empty sets (2.2 GB as Python objects).
* ``npz-landmarks-claims-giant``: our landmark template whose ``expression.npy`` header says (10**9, 478, 3).
* ``npz-landmarks-bomb``: our landmark template with a real 2.4 GB ``expression`` of zeros, 2.4 MB deflated.
* ``npz-keypoints-claims-giant``: our LivePortrait template whose ``exp.npy`` header says (10**9, 21, 3).
* ``npz-is-npy-claims-giant``: a ``.npz`` that is a bare ``.npy`` header saying (10**9, 478, 3).
* ``npz-is-text``: a text file named ``.npz``.
* ``npz-2m-entries``: a ZIP64 archive whose central directory lists two million empty entries (108 MB on
  disk; ``zipfile`` would build an object for each).
"""

from __future__ import annotations

import argparse
import io
import os
import pickle
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import av
import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PORTRAIT = DATA / "portraits" / "s1.jpg"


# ---- raw building blocks ---------------------------------------------------------------------------------

def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _deflate_zeros(block: int, repeats: int, prefix: bytes = b"") -> bytes:
    """Raw deflate of ``prefix`` + ``block * repeats`` zero bytes, built without holding them: a full flush
    makes each block's code independent, so one compressed block is repeated."""
    head = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = head.compress(prefix) + head.flush(zlib.Z_FULL_FLUSH) if prefix else b""
    zeros = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = zeros.compress(bytes(block)) + zeros.flush(zlib.Z_FULL_FLUSH)
    return start + piece * repeats + zlib.compressobj(9, zlib.DEFLATED, -15).flush()


def _write_zip(path: Path, members: dict[str, tuple[bytes, int, int]]) -> None:
    """A deflated zip of ``name -> (raw deflate data, crc32, uncompressed size)`` (sizes under 4 GB)."""
    out, central = io.BytesIO(), b""
    for name, (data, crc, size) in members.items():
        raw_name, offset = name.encode(), out.tell()
        fields = struct.pack("<HHHHHIII", 20, 0, 8, 0, 0, crc, len(data), size)
        out.write(b"PK\x03\x04" + fields + struct.pack("<HH", len(raw_name), 0) + raw_name + data)
        central += (b"PK\x01\x02" + struct.pack("<H", 20) + fields
                    + struct.pack("<HHHHHII", len(raw_name), 0, 0, 0, 0, 0, offset) + raw_name)
    start = out.tell()
    out.write(central + b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, len(members), len(members), len(central),
                                                    start, 0))
    path.write_bytes(out.getvalue())


def _zip_member(data: bytes) -> tuple[bytes, int, int]:
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush(), zlib.crc32(data), len(data)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _npy_header(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def _gif(width: int, height: int, frames: int, size: int) -> bytes:
    """A GIF with a ``width x height`` canvas and ``frames`` frames of ``size x size`` px at its corner,
    alternating black and white. The LZW stream sends a clear code before every pixel, so codes stay 3 bits."""
    out = [b"GIF89a", struct.pack("<HHBBB", width, height, 0xF0, 0, 0), b"\x00\x00\x00\xff\xff\xff"]
    for index in range(frames):
        pixel, bits, count = index % 2, 0, 0
        for code in [4, pixel] * (size * size) + [5]:          # clear, pixel, clear, pixel, ..., end
            bits |= code << count
            count += 3
        data = bits.to_bytes((count + 7) // 8, "little")
        blocks = b"".join(bytes([len(data[i:i + 255])]) + data[i:i + 255] for i in range(0, len(data), 255))
        out += [b"\x21\xf9\x04\x04\x04\x00\x00\x00", b"\x2c" + struct.pack("<HHHHB", 0, 0, size, size, 0),
                b"\x02" + blocks + b"\x00"]
    return b"".join(out + [b"\x3b"])


def _encode_video(path: Path, codec: str, frames: list[np.ndarray], pix_fmt: str,
                  options: dict[str, str] | None = None) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25, options=options or {})
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = pix_fmt
        for rgb in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode(None))


class _ClaimedArray:
    """Pickles like a numpy array but with ``shape`` in its state and only a few bytes of data."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def __reduce__(self):
        rebuild, args, state = np.zeros(1, np.float32).__reduce__()
        return rebuild, args, (state[0], self.shape, *state[2:])


# ---- the hostile files -----------------------------------------------------------------------------------

def png_claims_50k(folder: Path) -> Path:
    """A PNG whose IHDR says 50,000 x 50,000 RGB and whose IDAT is empty (a few dozen bytes)."""
    path = folder / "claims_50k.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 50_000, 50_000, 8, 2, 0, 0, 0))
                     + _png_chunk(b"IDAT", zlib.compress(b"")) + _png_chunk(b"IEND", b""))
    return path


def jpeg_claims_50k(folder: Path) -> Path:
    """A 16 x 16 JPEG whose SOF0 header is patched to say 50,000 x 50,000."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (128, 100, 90)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, 50_000, 50_000)
    path = folder / "claims_50k.jpg"
    path.write_bytes(bytes(data))
    return path


def _zero_png(path: Path, width: int, height: int, color_type: int, channels: int) -> Path:
    row = width * channels + 1                              # filter byte 0, then zero samples
    size = row * height
    idat = b"\x78\xda" + _deflate_zeros(row, height) + struct.pack(">I", (size % 65521) << 16 | 1)  # adler32
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0))
                     + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b""))
    return path


def png_bomb_20k(folder: Path) -> Path:
    """A valid 20,000 x 20,000 RGB PNG of black pixels: 1.2 GB decoded, about 1.6 MB on disk."""
    return _zero_png(folder / "bomb_20k.png", 20_000, 20_000, 2, 3)


def png_rgba_8k(folder: Path) -> Path:
    """A valid, fully transparent 8192 x 8192 RGBA PNG: the largest size the image reader accepts."""
    return _zero_png(folder / "rgba_8k.png", 8192, 8192, 6, 4)


def _small_mjpeg_mkv(folder: Path) -> bytearray:
    """The bytes of five honest 320 x 256 MJPEG frames in a .mkv."""
    small = folder / "small.mkv"
    _encode_video(small, "mjpeg", [np.full((256, 320, 3), 40 * i, np.uint8) for i in range(5)], "yuvj420p")
    data = bytearray(small.read_bytes())
    small.unlink()
    return data


def _jpegs_claim_16k(data: bytearray) -> None:
    """Make every JPEG SOF0 in ``data`` say 15360 x 8640 (in place)."""
    at = data.find(b"\xff\xc0")
    while at >= 0:
        struct.pack_into(">HH", data, at + 5, 8640, 15360)
        at = data.find(b"\xff\xc0", at + 2)


def mkv_claims_16k(folder: Path) -> Path:
    """Five 320 x 256 MJPEG frames in a .mkv whose track header and every JPEG SOF0 say 15360 x 8640."""
    data = _small_mjpeg_mkv(folder)
    for element, old, new in ((b"\xb0", 320, 15360), (b"\xba", 256, 8640)):   # PixelWidth, PixelHeight
        at = data.index(element + b"\x82" + struct.pack(">H", old))
        data[at + 2:at + 4] = struct.pack(">H", new)
    _jpegs_claim_16k(data)
    path = folder / "claims_16k.mkv"
    path.write_bytes(bytes(data))
    return path


def mkv_frames_lie_16k(folder: Path) -> Path:
    """Five 320 x 256 MJPEG frames in an honest .mkv (its track header says 320 x 256) whose every JPEG SOF0
    says 15360 x 8640: the decoder refuses each frame, so none is left."""
    data = _small_mjpeg_mkv(folder)
    _jpegs_claim_16k(data)
    path = folder / "frames_lie_16k.mkv"
    path.write_bytes(bytes(data))
    return path


def gif_canvas_16k(folder: Path) -> Path:
    """A GIF with a 15360 x 8640 canvas and two 1 x 1 frames (a few dozen bytes)."""
    path = folder / "canvas_16k.gif"
    path.write_bytes(_gif(15360, 8640, 2, 1))
    return path


def gif_canvas_8k(folder: Path) -> Path:
    """A GIF with an 8192 x 4320 canvas, the largest frame size the video reader accepts, and five 1 x 1 frames."""
    path = folder / "canvas_8k.gif"
    path.write_bytes(_gif(8192, 4320, 5, 1))
    return path


def mp4_h264_8k(folder: Path) -> Path:
    """24 simple 8192 x 4320 H.264 frames (the largest accepted; the decoder's frame threads hold 50 MB each)."""
    frames = []
    for i in range(24):
        frame = np.full((4320, 8192, 3), i * 10, np.uint8)
        frame[:, :100 + 50 * i] = 200
        frames.append(frame)
    path = folder / "h264_8k.mp4"
    _encode_video(path, "libx264", frames, "yuv420p", {"preset": "ultrafast"})
    return path


def mp4_claims_billion_frames(folder: Path) -> Path:
    """The first five frames of driving/d0.mp4 (256 px, MPEG-4) with the ``stts`` count set to 10**9."""
    frames = []
    with av.open(str(DATA / "driving" / "d0.mp4")) as container:
        for frame in container.decode(video=0):
            frames.append(cv2.resize(frame.to_ndarray(format="rgb24"), (256, 256), interpolation=cv2.INTER_AREA))
            if len(frames) == 5:
                break
    path = folder / "claims_1e9_frames.mp4"
    _encode_video(path, "mpeg4", frames, "yuv420p")
    data = bytearray(path.read_bytes())
    stts = data.index(b"stts")
    struct.pack_into(">I", data, stts + 12, 10**9)          # first entry's sample count
    path.write_bytes(bytes(data))
    return path


def gif_10k_frames(folder: Path) -> Path:
    """A GIF of 10,000 frames of 8 x 8 px (about 0.5 MB)."""
    path = folder / "frames_10k.gif"
    path.write_bytes(_gif(8, 8, 10_000, 8))
    return path


def pkl_claims_giant_array(folder: Path) -> Path:
    """A LivePortrait template pickle whose ``exp`` array state says shape (10**9, 21, 3) float32."""
    frame = {"scale": np.ones((1, 1), np.float32), "R": np.eye(3, dtype=np.float32)[None],
             "exp": _ClaimedArray((10**9, 21, 3)), "t": np.zeros((1, 3), np.float32)}
    path = folder / "claims_giant_array.pkl"
    path.write_bytes(pickle.dumps({"n_frames": 1, "output_fps": 25, "motion": [frame]}, protocol=4))
    return path


def pkl_bytes_claims_1tb(folder: Path) -> Path:
    """A pickle whose BINBYTES8 opcode says 2**40 bytes follow (16 do)."""
    path = folder / "bytes_claims_1tb.pkl"
    path.write_bytes(b"\x80\x04\x8e" + struct.pack("<Q", 2**40) + bytes(16) + b".")
    return path


def pkl_object_flood(folder: Path) -> Path:
    """A 10 MB pickle of a list of ten million empty sets (each a 216-byte Python object)."""
    path = folder / "object_flood.pkl"
    path.write_bytes(b"\x80\x04](" + b"\x8f" * 10_000_000 + b"e.")
    return path


def _landmark_members(n: int, expression: tuple[bytes, int, int]) -> dict[str, tuple[bytes, int, int]]:
    """Zip members of a landmark template of ``n`` frames around a given ``expression.npy`` member."""
    arrays = {"format": np.array("puppetry-motion"), "version": np.array(1),
              "rotation": np.tile(np.eye(3, dtype=np.float32), (n, 1, 1)), "scale": np.ones(n, np.float32),
              "center": np.zeros((n, 3), np.float32), "valid": np.ones(n, bool), "fps": np.array(25.0),
              "frame_size": np.array([512, 512])}
    return {"expression.npy": expression, **{f"{k}.npy": _zip_member(_npy(v)) for k, v in arrays.items()}}


def npz_landmarks_claims_giant(folder: Path) -> Path:
    """Our landmark motion template whose ``expression.npy`` header says (10**9, 478, 3) float32, no data."""
    path = folder / "landmarks_claims_giant.npz"
    _write_zip(path, _landmark_members(2, _zip_member(_npy_header((10**9, 478, 3)))))
    return path


def npz_landmarks_bomb(folder: Path) -> Path:
    """Our landmark motion template with a real (420000, 478, 3) float32 ``expression`` of zeros: 2.4 GB
    inflated, 2.4 MB deflated."""
    frames, chunk = 420_000, 478 * 3 * 4 * 1000
    header = _npy_header((frames, 478, 3))
    crc = zlib.crc32(header)
    zeros = bytes(chunk)
    for _ in range(frames // 1000):
        crc = zlib.crc32(zeros, crc)
    bomb = (_deflate_zeros(chunk, frames // 1000, header), crc, len(header) + chunk * (frames // 1000))
    path = folder / "landmarks_bomb.npz"
    _write_zip(path, _landmark_members(frames, bomb))
    return path


def npz_keypoints_claims_giant(folder: Path) -> Path:
    """Our LivePortrait keypoint template whose ``exp.npy`` header says (10**9, 21, 3) float32, no data."""
    arrays = {"format": np.array("puppetry-liveportrait-motion"), "version": np.array(1), "fps": np.array(25.0),
              "scale": np.ones(2, np.float32), "R": np.tile(np.eye(3, dtype=np.float32), (2, 1, 1)),
              "t": np.zeros((2, 3), np.float32)}
    members = {f"{k}.npy": _zip_member(_npy(v)) for k, v in arrays.items()}
    members["exp.npy"] = _zip_member(_npy_header((10**9, 21, 3)))
    path = folder / "keypoints_claims_giant.npz"
    _write_zip(path, members)
    return path


def npz_is_npy_claims_giant(folder: Path) -> Path:
    """A ``.npz`` that is really a bare ``.npy`` header saying (10**9, 478, 3) float32."""
    path = folder / "is_npy_claims_giant.npz"
    path.write_bytes(_npy_header((10**9, 478, 3)))
    return path


def npz_is_text(folder: Path) -> Path:
    """A text file named ``.npz``."""
    path = folder / "notes.npz"
    path.write_text("expression, rotation and scale are in the spreadsheet\n")
    return path


def npz_2m_entries(folder: Path, entries: int = 2_000_000) -> Path:
    """A ZIP64 archive whose central directory lists ``entries`` empty stored files, all pointing at the one
    local header at offset 0 (listing them is the cost; no member is ever read)."""
    local = b"PK\x03\x04" + struct.pack("<HHHHHIIIHH", 20, 0, 0, 0, 0, 0, 0, 0, 1, 0) + b"x"
    head = b"PK\x01\x02" + struct.pack("<HHHHHHIII", 20, 20, 0, 0, 0, 0, 0, 0, 0)
    tail = struct.pack("<HHHHII", 0, 0, 0, 0, 0, 0)     # after the name length: extra, comment, disk, attributes, offset
    names = (f"{i:08d}" for i in range(entries))
    central = b"".join(head + struct.pack("<H", 8) + tail + name.encode() for name in names)
    start = len(local)
    end64_at = start + len(central)
    end64 = b"PK\x06\x06" + struct.pack("<QHHIIQQQQ", 44, 45, 45, 0, 0, entries, entries, len(central), start)
    locator = b"PK\x06\x07" + struct.pack("<IQI", 0, end64_at, 1)
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    path = folder / "entries_2m.npz"
    path.write_bytes(local + central + end64 + locator + end)
    return path


@dataclass(frozen=True)
class Kind:
    """A hostile input: its name, the function that builds it in a folder, and whether it is the source."""

    name: str
    build: Callable[[Path], Path]
    is_source: bool = False


KINDS: tuple[Kind, ...] = (
    Kind("png-claims-50k", png_claims_50k, True),
    Kind("jpeg-claims-50k", jpeg_claims_50k, True),
    Kind("png-bomb-20k", png_bomb_20k, True),
    Kind("png-rgba-8k", png_rgba_8k, True),
    Kind("mkv-claims-16k", mkv_claims_16k),
    Kind("mkv-frames-lie-16k", mkv_frames_lie_16k),
    Kind("gif-canvas-16k", gif_canvas_16k),
    Kind("gif-canvas-8k", gif_canvas_8k),
    Kind("mp4-h264-8k", mp4_h264_8k),
    Kind("mp4-claims-1e9-frames", mp4_claims_billion_frames),
    Kind("gif-10k-frames", gif_10k_frames),
    Kind("pkl-claims-giant-array", pkl_claims_giant_array),
    Kind("pkl-bytes-claims-1tb", pkl_bytes_claims_1tb),
    Kind("pkl-object-flood", pkl_object_flood),
    Kind("npz-landmarks-claims-giant", npz_landmarks_claims_giant),
    Kind("npz-landmarks-bomb", npz_landmarks_bomb),
    Kind("npz-keypoints-claims-giant", npz_keypoints_claims_giant),
    Kind("npz-is-npy-claims-giant", npz_is_npy_claims_giant),
    Kind("npz-is-text", npz_is_text),
    Kind("npz-2m-entries", npz_2m_entries),
)


# ---- running and measuring -------------------------------------------------------------------------------

# A small Python forks and execs the command, kills it after the timeout, and reports its peak RSS. Linux
# counts into a process's ru_maxrss the RSS of the image it replaced at exec, so a command started straight
# from a big parent (a pytest run, this script after building a file) would inherit the parent's size.
_LAUNCHER = """
import math, os, signal, sys
report, timeout, command = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
pid = os.fork()
if pid == 0:
    os.execv(command[0], command)
signal.signal(signal.SIGALRM, lambda *_: os.kill(pid, signal.SIGKILL))
signal.alarm(math.ceil(timeout))
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as out:
    out.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}")
"""


@dataclass
class Outcome:
    """What one ``puppetry animate`` run did: exit status, stderr lines, seconds, peak RSS (MB), leftovers."""

    returncode: int
    stderr: list[str]
    seconds: float
    peak_mb: float
    leftovers: list[str]


def animate_args(kind: Kind, path: Path, output: Path) -> list[str]:
    """``puppetry`` arguments that read ``path`` as the source (images) or as the driving (the rest)."""
    source, driving = (path, "blink") if kind.is_source else (PORTRAIT, path)
    return ["-q", "animate", "-s", str(source), "-d", str(driving), "-o", str(output)]


def run_measured(args: list[str], cwd: Path, timeout: float, root: Path = ROOT) -> tuple[int, str, float, float]:
    """Run ``python -m puppetry ARGS`` from the package in ``root``; ``(exit status, stderr, seconds, peak RSS
    in MB)`` of that process (and its children). Killed (status -9) after ``timeout`` seconds."""
    env = dict(os.environ, PYTHONPATH=str(root))
    with tempfile.TemporaryFile() as err, tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "maxrss"
        argv = [sys.executable, "-c", _LAUNCHER, str(report), str(timeout), sys.executable, "-m", "puppetry", *args]
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)
        try:
            code = proc.wait(timeout + 30)
        except subprocess.TimeoutExpired:  # the launcher itself hangs: end the whole group
            os.killpg(proc.pid, signal.SIGKILL)
            code = proc.wait()
        seconds = time.perf_counter() - start
        err.seek(0)
        text = err.read().decode(errors="replace")
        if report.exists():  # the command's own status (-9 when killed) and peak RSS in KB
            code, peak_kb = map(int, report.read_text().split())
        else:  # the launcher itself was killed or failed
            peak_kb = -1
    return code, text, seconds, peak_kb / 1024


def measure(kind: Kind, folder: Path, timeout: float = 300.0, root: Path = ROOT) -> Outcome:
    """Build ``kind`` in ``folder`` (which should be empty) and run ``puppetry animate`` on it."""
    path = kind.build(folder)
    output = folder / "out.mp4"
    before = set(os.listdir(folder))
    code, stderr, seconds, peak = run_measured(animate_args(kind, path, output), folder, timeout, root)
    leftovers = sorted(set(os.listdir(folder)) - before)
    return Outcome(code, [line for line in stderr.splitlines() if line.strip()], seconds, peak, leftovers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="+", choices=[k.name for k in KINDS], help="only these kinds")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before a run is killed")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="run the puppetry package of this checkout (e.g. an older commit, for before/after)")
    args = parser.parse_args()
    print("| kind | exit | error line | seconds | peak MB |")
    print("| --- | --- | --- | --- | --- |")
    for kind in KINDS:
        if args.kinds and kind.name not in args.kinds:
            continue
        with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
            outcome = measure(kind, Path(tmp), args.timeout, args.root.resolve())
        last = outcome.stderr[-1] if outcome.stderr else ""
        extra = f" (+{len(outcome.stderr) - 1} more lines)" if len(outcome.stderr) > 1 else ""
        left = f"; left {', '.join(outcome.leftovers)}" if outcome.leftovers else ""
        line = (last.replace(tmp, "TMP") + extra + left).replace("|", "\\|")
        print(f"| {kind.name} | {outcome.returncode} | {line} | {outcome.seconds:.1f} | {outcome.peak_mb:.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
