"""The web app's work without a browser (puppetry.app.sessions), on the real portraits and videos."""

from __future__ import annotations

import threading
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from puppetry.app.live_bench import run_live_benchmark
from puppetry.app.sessions import (AppConfig, LiveSession, PreviewCache, RenderSettings, render_preview, run_render,
                                   slider_controls)
from puppetry.errors import MediaError, NoFaceError


def frames_of(path: str) -> list[np.ndarray]:
    with av.open(path) as f:
        return [fr.to_ndarray(format="rgb24") for fr in f.decode(video=0)]


def test_preview_follows_the_sliders(data):
    cache = PreviewCache(max_size=384)
    source = str(data / "portraits" / "s1.jpg")
    rest = render_preview(cache, source, RenderSettings())
    turned = render_preview(cache, source, RenderSettings(controls=slider_controls(1, 0, 20, 0, 0)))
    closed = render_preview(cache, source, RenderSettings(controls=slider_controls(0, 0, 0, 0, 0)))
    assert rest.shape == turned.shape and max(rest.shape[:2]) == 384
    assert np.abs(turned.astype(int) - rest.astype(int)).mean() > 1.0
    assert np.abs(closed.astype(int) - rest.astype(int)).mean() > 0.05
    again = render_preview(cache, source, RenderSettings())            # no drift: the rest is the rest
    assert np.array_equal(again, rest)


def test_sliders_at_rest_leave_the_face_alone():
    c = slider_controls(1, 0, 0, 0, 0)
    assert c.eyes is None and c.lips is None and c.is_neutral
    assert slider_controls(0.2, 0.5, 5, -3, 2).eyes == pytest.approx(0.2)


def test_renders_are_separate_and_errors_are_readable(data, tmp_path):
    config = AppConfig(output_dir=str(tmp_path), max_frames=20)
    sources = [str(data / "portraits" / "s1.jpg"), str(data / "portraits" / "s9.jpg")]
    results: dict[int, str] = {}

    def render(i: int) -> None:
        results[i] = run_render(sources[i], str(data / "driving" / "d0.mp4"), RenderSettings(), config)

    threads = [threading.Thread(target=render, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results[0] != results[1] and Path(results[0]).parent != Path(results[1]).parent
    first = [frames_of(results[i])[0].astype(int) for i in (0, 1)]
    assert first[0].shape != first[1].shape or np.abs(first[0] - first[1]).mean() > 10
    assert len(frames_of(results[0])) == 20

    wall = tmp_path / "wall.png"
    from puppetry.media import write_image
    write_image(wall, np.full((256, 256, 3), 120, np.uint8))
    before = sorted(p.name for p in (tmp_path / "puppetry-app").iterdir())
    with pytest.raises(NoFaceError):
        run_render(str(wall), "blink", RenderSettings(), config)
    assert sorted(p.name for p in (tmp_path / "puppetry-app").iterdir()) == before     # nothing left behind
    with pytest.raises(MediaError, match="limit is 1 MB"):
        run_render(str(data / "driving" / "d6.mp4"), "blink", RenderSettings(), AppConfig(max_upload_mb=1))
    with pytest.raises(MediaError, match="upload a portrait"):
        run_render(None, "blink", RenderSettings(), config)


def test_live_session_follows_the_webcam(data):
    from puppetry.media.video import VideoReader

    with VideoReader(data / "driving" / "d12.mp4", max_frames=40) as reader:
        webcam = list(reader)
    session = LiveSession(str(data / "portraits" / "s1.jpg"), 256)
    outs = [session.process(f) for f in webcam]
    session.close()
    assert max(outs[0].shape[:2]) == 256
    motion = np.mean([np.abs(o.astype(int) - outs[0].astype(int)).mean() for o in outs[10:]])
    assert motion > 0.5                                                 # the source moves with the webcam
    rows = run_live_benchmark(str(data / "driving" / "d0.mp4"), sizes=(256,), frames=10, warmup=2)
    assert rows[0].frames == 10 and rows[0].fps > 0


def test_serve_refuses_a_busy_port_in_one_line(capsys):
    import socket

    from puppetry.cli import main

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pick another --port" in err[0]
    assert main(["serve", "--port", "70000"]) == 2


def test_live_socket_streams_frames_and_refuses_bad_input(data):
    """The live WebSocket: astronaut by token, real webcam frames in order, and one-line refusals."""
    import json
    import socket

    from websockets.sync.client import connect

    from puppetry.app.live_socket import ROUTE, encode_frame
    from puppetry.app.server import serve

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = serve(AppConfig(live_size=256), "127.0.0.1", port, block=False)
    try:
        webcam = frames_of(str(data / "driving" / "d0.mp4"))[:12]
        with connect(f"ws://127.0.0.1:{port}{ROUTE}", max_size=2 ** 23) as ws:
            ws.send(json.dumps({"source": "/etc/passwd"}))              # only tokens the page issued are accepted
            assert "unknown source" in json.loads(ws.recv(timeout=60))["error"]
            ws.send(b"not an image")                                      # no source yet
            assert json.loads(ws.recv(timeout=10)) == {"dropped": "no source yet"}
            ws.send(json.dumps({"source": "astronaut"}))
            assert json.loads(ws.recv(timeout=60)) == {"ok": True, "width": 256, "height": 256}
            outs = []
            for frame in webcam:
                ws.send(encode_frame(frame))
                reply = ws.recv(timeout=30)
                assert isinstance(reply, bytes), reply
                outs.append(cv2.imdecode(np.frombuffer(reply, np.uint8), cv2.IMREAD_COLOR).astype(int))
            assert all(o.shape == (256, 256, 3) for o in outs)
            assert max(np.abs(o - outs[0]).mean() for o in outs) > 0.5    # the astronaut follows d0
            ws.send(b"\xff\xd8 broken jpeg")
            assert "not a JPEG or PNG" in json.loads(ws.recv(timeout=10))["dropped"]
            ws.send(encode_frame(np.zeros((240, 320, 3), np.uint8)))       # a face-less frame keeps the last pose
            assert isinstance(ws.recv(timeout=30), bytes)
            ws.send(json.dumps({"reset": True}))
            ws.send(encode_frame(webcam[0]))
            assert isinstance(ws.recv(timeout=30), bytes)
    finally:
        app.close()
