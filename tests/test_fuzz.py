"""The fuzzing harness (tests/fuzz/) on a sample of cases, and one regression test for every bug it found.

The sample runs ``python -m tests.fuzz`` as a user would: 300 seeded cases over every input kind, each
through the CLI in a worker process with a time limit and a 2 GB memory ceiling; none may end unexpected,
hang, leave a file behind or go over the ceiling. The full run (``--cases 1000`` and more) is reported in
the README.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_a_sample_of_damaged_inputs_ends_cleanly(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("fuzz_corpus")
    report = tmp_path_factory.mktemp("fuzz_report") / "report.json"
    proc = subprocess.run([sys.executable, "-m", "tests.fuzz", "--cases", "300", "--seed", "7", "--corpus", str(corpus),
                           "-o", str(report)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    summary = json.loads(report.read_text())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert summary["cases"] == 300 and summary["findings"] == []
    assert summary["totals"]["unexpected"] == summary["totals"]["hang"] == 0
    assert len(summary["kinds"]) == 20                                   # every input kind had its cases
    assert all(k["ok"] + k["clean"] == 15 for k in summary["kinds"].values())
    assert summary["totals"]["ok"] > 30 and summary["totals"]["clean"] > 150   # both outcomes really occur


def test_the_harness_reports_a_crash_as_unexpected(tmp_path):
    """The classification itself: a traceback, an 'unexpected' line, a second error line and a leftover
    temporary file are findings; one clean line is not."""
    from tests.fuzz.harness import Case, classify

    out = tmp_path / "out.mp4"
    case = Case(0, "video-mp4", "d0.mp4", "bit_flips", "in.mp4", str(out), [])
    clean = {"rc": 2, "stderr": "puppetry: error: cannot read video 'in.mp4': file is corrupt\n", "peak_mb": 500}
    assert classify(case, clean, False, 2048)[0] == "clean"
    assert classify(case, {**clean, "rc": 1, "stderr": "puppetry: error: unexpected KeyError: 'x'\n"},
                    False, 2048)[0] == "unexpected"
    assert classify(case, {**clean, "stderr": clean["stderr"] * 2}, False, 2048)[0] == "unexpected"
    assert classify(case, None, True, 2048)[0] == "hang"
    assert classify(case, {**clean, "peak_mb": 3000}, False, 2048)[0] == "memory"
    (tmp_path / ".out.tmp-1234.mp4").write_bytes(b"")
    assert classify(case, clean, False, 2048)[0] == "leftover"


# ------------------------------------------------------------------------------------- what the harness found
def test_a_library_value_error_is_reported_as_unexpected():
    """The CLI showed any ValueError as a plain error line, so numpy's and PyAV's (bugs) passed as input
    errors: 'operands could not be broadcast together' (speech on a 0.1 s recording) and 'Frame does not
    match AudioResampler setup' (a damaged mp3)."""
    from puppetry.cli import raised_by_puppetry

    try:
        np.ones(3) + np.ones(5)
    except ValueError as exc:
        assert not raised_by_puppetry(exc)
    from puppetry.methods.audio2motion import speech

    try:                                     # numpy failing on a line of ours is not a message of ours
        speech._smooth(np.ones((4, 3)), np.array([1.0, 2.0]))
    except ValueError as exc:
        assert not raised_by_puppetry(exc)
    else:
        raise AssertionError("expected a ValueError from numpy")
    try:
        from puppetry.motion.controls import Controls

        Controls(eyes=float("nan")).validated()
    except ValueError as exc:
        assert raised_by_puppetry(exc)


def test_a_damaged_array_in_a_shard_is_one_line(tmp_path):
    """A shard whose landmarks.npz had a bad CRC raised zipfile.BadZipFile from the reader."""
    from puppetry.data.format import decode_npz
    from puppetry.errors import MediaError

    buf = io.BytesIO()
    np.savez(buf, landmarks478=np.arange(3000, dtype=np.float32))
    data = bytearray(buf.getvalue())
    data[200] ^= 0xFF                                                    # inside the array: a CRC mismatch
    with pytest.raises(MediaError, match="damaged shard 'x.tar': a stored array is unreadable"):
        decode_npz(bytes(data), "'x.tar'")
    with pytest.raises(MediaError, match="unreadable"):
        decode_npz(b"PK\x03\x04" + bytes(100))


def test_a_damaged_motion_template_is_one_line(tmp_path):
    """A bit flip inside a compressed .npz template raised zlib.error."""
    from puppetry.errors import MotionError
    from puppetry.motion.sequence import MotionSequence

    n = 20
    seq = MotionSequence(np.zeros((n, 478, 3), np.float32) + np.linspace(0, 1, 478)[:, None],
                         np.tile(np.eye(3, dtype=np.float32), (n, 1, 1)), np.ones(n, np.float32),
                         np.zeros((n, 3), np.float32), np.ones(n, bool), 25.0, (256, 256))
    path = tmp_path / "motion.npz"
    seq.save(path)
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("expression.npy")
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0x5A                        # inside the deflate stream
    path.write_bytes(bytes(data))
    with pytest.raises(MotionError, match="motion template"):
        MotionSequence.load(path)


def test_an_empty_checkpoint_is_one_line(tmp_path):
    """torch.load's error on a cut checkpoint can have no message; reading its first line raised IndexError."""
    from puppetry.errors import WeightsError, first_line
    from puppetry.training.checkpoint import load_checkpoint

    assert first_line(ValueError("")) == "ValueError" and first_line(OSError("a\nb")) == "a"
    for size in (0, 1, 7):
        path = tmp_path / f"cut{size}.pt"
        path.write_bytes(b"PK\x03\x04\x00\x00\x00"[:size])
        with pytest.raises(WeightsError, match="cannot read checkpoint"):
            load_checkpoint(path)


def test_a_config_that_is_not_text_is_one_line(tmp_path):
    """A YAML config holding binary bytes raised UnicodeDecodeError."""
    from puppetry.methods.audio2motion.config import Audio2MotionConfig
    from puppetry.training.config import ConfigError, load_config

    path = tmp_path / "config.yaml"
    path.write_bytes(b"train:\n  seed: \xa1\xff\n")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config(Audio2MotionConfig, path)


def test_speech_shorter_than_the_silence_window(tmp_path):
    """A 0.1 s recording (3 frames) made the silence gate longer than the frames: numpy's broadcast error."""
    from puppetry.methods.audio2motion.speech import speech_gate

    for n in (1, 2, 3, 5):
        assert speech_gate(np.full(n, -20.0), 25.0).shape == (n,)


def test_audio_that_changes_rate_midway_is_read(tmp_path):
    """Two mp3 streams of different rates back to back (what a damaged frame header also looks like) made
    PyAV's resampler refuse the second part."""
    import av

    from puppetry.media.audio import read_audio

    def mp3(rate: int, seconds: float) -> bytes:
        path = tmp_path / f"{rate}.mp3"
        with av.open(str(path), "w") as c:
            s = c.add_stream("libmp3lame", rate=rate)
            s.layout = "mono"
            t = np.arange(int(rate * seconds)) / rate
            frame = av.AudioFrame.from_ndarray((np.sin(2 * np.pi * 300 * t)[None] * 8000).astype(np.int16),
                                               format="s16", layout="mono")
            frame.sample_rate = rate
            for f in av.AudioResampler(format=s.format.name, layout="mono", rate=rate).resample(frame):
                for packet in s.encode(f):
                    c.mux(packet)
            for packet in s.encode():
                c.mux(packet)
        return path.read_bytes()

    joined = tmp_path / "joined.mp3"
    joined.write_bytes(mp3(16000, 1.0) + mp3(24000, 1.0))
    audio = read_audio(joined)
    assert audio is not None and len(audio.samples) >= 16000 * 0.9
    from puppetry.media.writer import VideoWriter                    # the writer's AAC encoder refused it too

    out = tmp_path / "out.mp4"
    with VideoWriter(out, fps=25, audio_from=joined) as w:
        for _ in range(50):
            w.write(np.zeros((64, 64, 3), np.uint8))
    with av.open(str(out)) as c:
        assert c.streams.audio


def test_a_video_whose_codec_tag_is_gone_is_one_line(tmp_path, data):
    """A zeroed block over an mp4's sample description left the stream without a codec context; the new
    header check (frame size) then read ``None.width``."""
    from puppetry.errors import MediaError
    from puppetry.media.video import VideoReader
    from puppetry.media.writer import VideoWriter

    clean = tmp_path / "clean.mp4"
    with VideoWriter(clean, fps=25) as w:
        for _ in range(5):
            w.write(np.full((64, 64, 3), 128, np.uint8))
    damaged = tmp_path / "damaged.mp4"
    raw = clean.read_bytes()
    at = raw.index(b"avc1")
    damaged.write_bytes(raw[:at - 4] + bytes(64) + raw[at + 60:])          # the stsd entry's size, tag and more
    with pytest.raises(MediaError, match="cannot read video"):
        with VideoReader(damaged) as reader:
            list(reader)


def test_audio_that_claims_to_start_hours_late_is_one_line(tmp_path):
    """An audio start time patched to hours after the video asked for hours of silence in memory."""
    import av

    from puppetry.errors import MediaError
    from puppetry.media.audio import read_audio

    path = tmp_path / "late.mkv"
    with av.open(str(path), "w") as c:
        v = c.add_stream("mpeg4", rate=25)                              # every stream before any packet
        v.width, v.height, v.pix_fmt = 64, 64, "yuv420p"
        s = c.add_stream("pcm_s16le", rate=8000)
        s.layout = "mono"
        for packet in v.encode(av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")):
            c.mux(packet)
        for packet in v.encode():
            c.mux(packet)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        frame.pts = 8000 * 3600 * 5                                        # five hours in
        frame.time_base = Fraction(1, 8000)
        for packet in s.encode(frame):
            c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    with pytest.raises(MediaError, match="start"):
        read_audio(path)
