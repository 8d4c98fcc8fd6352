"""Hostile inputs: decompression bombs and files that claim to be huge are refused from their headers.

Each case builds its file with ``benchmarks/hostile_memory.py`` (nothing is stored), runs
``puppetry -q animate`` on it in a subprocess and checks: exit status 2, one stderr line that says why (no
traceback, nothing "unexpected"), no output nor hidden temporary file beside it, and a peak resident memory
under 2 GB. The last two kinds are the largest inputs accepted, decoded in full and then refused for having
no face.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_SPEC = importlib.util.spec_from_file_location("hostile_memory", ROOT / "benchmarks" / "hostile_memory.py")
hostile = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = hostile  # dataclasses look their module up by name
_SPEC.loader.exec_module(hostile)

PEAK_LIMIT_MB = 2048
TIMEOUT_S = 120

REASONS = {  # kind -> what its error line must say
    "png-claims-50k": "image is too large (2500000000 pixels)",
    "jpeg-claims-50k": "image is too large (2500000000 pixels)",
    "png-bomb-20k": "image is too large (400000000 pixels)",
    "mkv-claims-16k": "its frames are 15360x8640, too large",
    "mkv-frames-lie-16k": "it contains no video frames it can decode (5 corrupt packet(s) skipped)",
    "gif-canvas-16k": "its frames are 15360x8640, too large",
    "mp4-claims-1e9-frames": "its header claims 1000000000 frames",
    "gif-10k-frames": "the GIF has 10000 frames and at most 3000 are read from a GIF; use its first ones (--frames",
    "pkl-claims-giant-array": "an array claims shape (1000000000, 21, 3), over 256 MB",
    "pkl-bytes-claims-1tb": "bytes in a bytes8",
    "pkl-object-flood": "its objects would take over 512 MB of memory",
    "npz-landmarks-claims-giant": "expression claims shape (1000000000, 478, 3) of float32, over 512 MB",
    "npz-landmarks-bomb": "expression claims shape (420000, 478, 3) of float32, over 512 MB",
    "npz-keypoints-claims-giant": "exp claims shape (1000000000, 21, 3) of float32, over 256 MB",
    "npz-is-npy-claims-giant": "is a single .npy array, not an .npz motion template",
    "npz-is-text": "is not an .npz motion template (not a zip archive of arrays)",
    "npz-2m-entries": "its archive lists 2000000 entries, and a template has at most 64",
    "png-rgba-8k": "no face found in source",
    "gif-canvas-8k": "no face found in any frame of driving video",
}
KINDS = {kind.name: kind for kind in hostile.KINDS}


@pytest.mark.parametrize("name", list(REASONS))
def test_hostile_input_is_refused_in_one_line_within_2_gb(tmp_path, name):
    outcome = hostile.measure(KINDS[name], tmp_path, timeout=TIMEOUT_S)
    report = f"{name}: exit {outcome.returncode}, {outcome.peak_mb:.0f} MB, {outcome.seconds:.1f} s, {outcome.stderr}"
    assert outcome.returncode == 2, report
    assert len(outcome.stderr) == 1, report
    line = outcome.stderr[0]
    assert line.startswith("puppetry: error: ") and "Traceback" not in line and "unexpected" not in line, report
    assert REASONS[name] in line, report
    assert outcome.leftovers == [], report  # neither out.mp4 nor .out.tmp-*
    assert outcome.peak_mb < PEAK_LIMIT_MB, report


def test_every_hostile_kind_is_tested():
    untested = set(KINDS) - set(REASONS) - {"mp4-h264-8k"}  # slow to encode: the benchmark runs it
    assert not untested, untested


def test_largest_frames_get_few_decoder_threads(tmp_path, data, monkeypatch):
    """On 16 cores FFmpeg would run 17 frame threads, each holding a frame: 8K H.264 then peaks at 2.3 GB."""
    from puppetry.media import video

    monkeypatch.setattr(video.os, "cpu_count", lambda: 16)
    threads = {}
    for path in (hostile.gif_canvas_8k(tmp_path), data / "driving" / "d0.mp4"):
        container = video._open_container(path)
        video._limit_decoder(container.streams.video[0])
        threads[path.name] = container.streams.video[0].codec_context.thread_count
        container.close()
    assert threads == {"canvas_8k.gif": video._DECODER_FRAME_BYTES // (8192 * 4320 * 3), "d0.mp4": 0}


def test_zip_entry_count_reads_the_end_record(tmp_path):
    """The entry count :func:`open_npz` checks: a real template's members, an archive with a 60,000-byte
    comment after its end record, ZIP64 (the two-million-entry case above), and None for a non-zip."""
    import zipfile

    import numpy as np

    from puppetry.motion.npz_archive import zip_entry_count

    np.savez(tmp_path / "t.npz", format=np.array("x"), a=np.zeros(3), b=np.ones((2, 2)))
    assert zip_entry_count(tmp_path / "t.npz") == 3
    with zipfile.ZipFile(tmp_path / "c.zip", "w") as z:
        z.comment = b"#" * 60_000
        for name in "abcde":
            z.writestr(name, b"1")
    assert zip_entry_count(tmp_path / "c.zip") == 5
    assert zip_entry_count(hostile.npz_2m_entries(tmp_path, entries=70_000)) == 70_000
    assert zip_entry_count(hostile.npz_is_text(tmp_path)) is None
