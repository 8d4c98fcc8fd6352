"""Speech on the web app's Animate tab: the real page on localhost, its Run button called as the browser does."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from puppetry.app.sessions import AppConfig
from puppetry.methods.registry import app_switches
from tests.wav_files import write_wav

SECONDS = 2.0


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory, data) -> Path:
    """The first 2 s of d6.mp4's soundtrack as a 16-bit mono wav."""
    from puppetry.media.audio import read_audio

    audio = read_audio(data / "driving" / "d6.mp4", max_seconds=SECONDS)
    samples = audio.samples[:int(SECONDS * audio.rate)]
    assert len(samples) == int(SECONDS * audio.rate)
    return write_wav(tmp_path_factory.mktemp("speech") / "hello.wav", samples, audio.rate)


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Iterator[tuple[object, Path]]:
    """``(client, output folder)``: ``puppetry serve`` on a free localhost port and a Gradio client of it."""
    from gradio_client import Client

    from puppetry.app.server import serve

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path_factory.mktemp("app_out")
    app = serve(AppConfig(output_dir=str(out), max_frames=200), "127.0.0.1", port, block=False)
    try:
        yield Client(f"http://127.0.0.1:{port}/", verbose=False), out / "puppetry-app"
    finally:
        app.close()


def press_run(client, speech: Path | None, weights_dir: str = "", driving: Path | None = None,
              mode: str = "relative") -> tuple[str | None, str]:
    """The Run button with the astronaut, the warp engine and the sliders at rest: (result video, status)."""
    from gradio_client import handle_file

    switches = [True] * len(app_switches())
    result, status = client.predict(handle_file(str(driving)) if driving else None, None, "demo",
                                    handle_file(str(speech)) if speech else None,
                                    "warp", mode, "all", 1.0, False, weights_dir, False, 1, 0, 0, 0, 0, *switches,
                                    api_name="/on_run")
    video = result["video"] if isinstance(result, dict) else result
    return video, status


def folders(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def test_speech_upload_renders_a_talking_video_with_its_sound(page, speech_wav, speech_weights):
    client, out = page
    before = folders(out)
    video, status = press_run(client, speech_wav, weights_dir=str(speech_weights.parent))
    assert status == "Done." and video
    new = sorted(set(folders(out)) - set(before))
    assert len(new) == 1                                                  # the server's own copy of the result
    for path in (video, out / new[0] / "animation.mp4"):
        with av.open(str(path)) as f:
            assert f.streams.audio, "the result carries the speech"
            fps = float(f.streams.video[0].average_rate)
            frames = sum(1 for _ in f.decode(video=0))
        assert abs(frames - SECONDS * fps) <= 1, (frames, fps)


def test_speech_with_a_driving_file_is_refused_in_one_line(page, speech_wav, speech_weights, data):
    client, out = page
    before = folders(out)
    video, status = press_run(client, speech_wav, str(speech_weights.parent), driving=data / "driving" / "d0.mp4")
    assert video is None and status.startswith("**Error:**") and "\n" not in status
    assert "not both" in status and "speech" in status
    assert folders(out) == before

    from puppetry.app.server import run_page                          # the webcam video: Run's own function
    options = ["warp", "relative", "all", 1.0, False, str(speech_weights.parent), False, 1, 0, 0, 0, 0,
               *[True] * len(app_switches())]
    video, status = run_page(AppConfig(output_dir=str(out.parent)), "astronaut", None,
                             str(data / "driving" / "d0.mp4"), "demo", str(speech_wav), *options)
    assert video is None and "not both" in status and "\n" not in status
    assert folders(out) == before


def test_speech_without_a_model_names_audio2motion(page, speech_wav, tmp_path, monkeypatch):
    client, out = page
    monkeypatch.delenv("PUPPETRY_AUDIO_WEIGHTS", raising=False)
    empty = tmp_path / "weights"
    empty.mkdir()
    before = folders(out)
    video, status = press_run(client, speech_wav, weights_dir=str(empty))
    assert video is None and status.startswith("**Error:**") and "\n" not in status
    assert "audio2motion.pt" in status and "PUPPETRY_AUDIO_WEIGHTS" in status and "Traceback" not in status
    assert folders(out) == before


def test_corrupt_speech_upload_is_one_line_and_leaves_no_output(page, speech_weights, tmp_path):
    client, out = page
    junk = tmp_path / "broken.wav"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    before = folders(out)
    video, status = press_run(client, junk, weights_dir=str(speech_weights.parent))
    assert video is None and status.startswith("**Error:**") and "\n" not in status
    assert "broken.wav" in status and "Traceback" not in status
    assert folders(out) == before                                         # no result folder left behind
