"""The web app under abuse: the real ``puppetry serve`` on localhost, driven as clients would (issue 18).

Uploads that are not what their names say, uploads over the limit, 20 renders at once from 20 clients, a
live socket flooded with frames, and clients that leave in the middle of a render. Every case checks that the
answer is one readable line, that nothing is left in the app's folders, and that the app keeps serving.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np
import pytest

from puppetry.app.sessions import AppConfig
from puppetry.methods.registry import app_switches

logger = logging.getLogger(__name__)

LIMIT_MB = 1                       # the small upload limit of the abuse server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(root: Path, **config) -> Iterator[tuple[str, Path, Path]]:
    """``(url, output folder of the renders, Gradio's upload folder)`` of ``serve`` on a free port.

    Gradio's uploads and the process's temporary files go to folders of this server's own (under ``root``),
    so a test can see everything the server leaves behind.
    """
    from puppetry.app.server import serve

    uploads, scratch = root / "gradio", root / "tmp"
    out = scratch / "out"                          # Gradio hands on results from the temporary folder only
    for folder in (uploads, scratch, out):
        folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADIO_TEMP_DIR", str(uploads))
        mp.setattr(tempfile, "tempdir", str(scratch))
        app = serve(AppConfig(output_dir=str(out), **config), "127.0.0.1", port, block=False)
        try:
            yield f"http://127.0.0.1:{port}/", out / "puppetry-app", uploads
        finally:
            app.close()


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Iterator[tuple[str, Path, Path]]:
    """The abuse server: a 1 MB upload limit, 8 frames per render, room in the queue for 20 renders."""
    with running_server(tmp_path_factory.mktemp("abuse"), max_upload_mb=LIMIT_MB, max_frames=8, queue_size=32,
                        live_size=256) as server:
        yield server


def client_of(url: str):
    from gradio_client import Client

    return Client(url, verbose=False)


def press_run(client, driving: Path | None = None, webcam: Path | None = None, motion: str = "blink",
              yaw: float = 0.0) -> tuple[str | None, str]:
    """Run with the session's source and the warp engine: (result video or None, status line)."""
    from gradio_client import handle_file

    result, status = client.predict(
        handle_file(str(driving)) if driving else None,
        {"video": handle_file(str(webcam)), "subtitles": None} if webcam else None,
        motion, None, "warp", "relative", "all", 1.0, False, "", yaw != 0.0, 1, 0, yaw, 0, 0,
        *[True] * len(app_switches()), api_name="/on_run")
    return (result["video"] if isinstance(result, dict) else result), status


def set_source(client, path: Path | None) -> None:
    """The page's source: an upload, or the astronaut (None)."""
    from gradio_client import handle_file

    if path is None:
        client.predict(api_name="/on_astronaut")
    else:
        client.predict(handle_file(str(path)), api_name="/on_source")


def folders(root: Path) -> set[str]:
    return {p.name for p in root.iterdir()} if root.is_dir() else set()


def temporary_files(root: Path) -> list[str]:
    """Half-written outputs (``.name.tmp-*``) anywhere under ``root``."""
    return [str(p) for p in root.rglob("*") if ".tmp" in p.name] if root.is_dir() else []


def frames_of(path: str) -> list[np.ndarray]:
    with av.open(path) as f:
        return [fr.to_ndarray(format="rgb24") for fr in f.decode(video=0)]


def one_line_error(status: str, name: str) -> None:
    """A refusal in the page's words: one line, the file's name and no server path or traceback."""
    assert status.startswith("**Error:**") and "\n" not in status, status
    assert name in status and "Traceback" not in status and "/tmp" not in status, status


def rss_mb() -> float:
    """This process's resident memory (the server runs in it)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


# ---- 1. uploads that are not what their names say ------------------------------------------------------

def test_uploads_that_lie_about_their_type_get_one_line_and_leave_nothing(page, data, tmp_path):
    url, out, _ = page
    rng = np.random.default_rng(18)
    junk_jpg = tmp_path / "portrait.jpg"
    junk_jpg.write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    video_as_jpg = tmp_path / "portrait2.jpg"
    video_as_jpg.write_bytes((data / "driving" / "d0.mp4").read_bytes()[:400_000])
    jpeg_as_mp4 = tmp_path / "driving.mp4"
    jpeg_as_mp4.write_bytes((data / "portraits" / "s1.jpg").read_bytes())
    junk_mp4 = tmp_path / "junk.mp4"
    junk_mp4.write_bytes(rng.integers(0, 256, 20000, dtype=np.uint8).tobytes())
    text_npz = tmp_path / "motion.npz"
    text_npz.write_text("this is not a motion template\n")
    text_pkl = tmp_path / "motion.pkl"
    text_pkl.write_text("not a pickle either\n")
    junk_webcam = tmp_path / "webcam.webm"
    junk_webcam.write_bytes(rng.integers(0, 256, 20000, dtype=np.uint8).tobytes())
    recording = tmp_path / "recording.mp4"                       # a real webcam-like clip under the limit
    from puppetry.media.writer import VideoWriter
    with VideoWriter(recording, fps=25) as writer:
        for frame in frames_of(str(data / "driving" / "d0.mp4"))[:12]:
            writer.write(frame)
    client = client_of(url)
    before = folders(out)

    for source in (junk_jpg, video_as_jpg):                      # sources: Run and the slider preview
        set_source(client, source)
        video, status = press_run(client)
        assert video is None
        one_line_error(status, source.name)
        preview, status = client.predict("warp", "", 1, 0, 0, 0, 0, api_name="/on_preview")
        assert preview is None
        one_line_error(status, source.name)

    set_source(client, None)
    for driving in (junk_mp4, text_npz, text_pkl):               # driving files
        video, status = press_run(client, driving=driving)
        assert video is None
        one_line_error(status, driving.name)
    video, status = press_run(client, webcam=junk_webcam)      # a webcam "recording" that is no video
    assert video is None
    one_line_error(status, junk_webcam.name)
    assert folders(out) == before and not temporary_files(out)  # no folder or half-written file left

    # A JPEG named .mp4 is read by its content (one driving frame), and a real video as the webcam
    # recording is rendered as uploaded (no ffmpeg program needed).
    video, status = press_run(client, driving=jpeg_as_mp4)
    assert status == "Done." and len(frames_of(video)) == 1
    video, status = press_run(client, webcam=recording)
    assert status == "Done." and len(frames_of(video)) == 8
    assert len(folders(out) - before) == 2 and not temporary_files(out)


# ---- 2. uploads over the limit -------------------------------------------------------------------------

def test_oversize_uploads_are_refused_in_one_line(page, data, tmp_path):
    import httpx
    from gradio_client import handle_file

    from puppetry.app.server import run_page

    url, out, uploads = page
    big = tmp_path / "huge_portrait.jpg"
    big.write_bytes((data / "portraits" / "s1.jpg").read_bytes() + bytes(LIMIT_MB * 2**20))
    client = client_of(url)
    with pytest.raises(ValueError, match="exceeds the maximum file size"):      # the client checks first
        client.predict(handle_file(str(big)), api_name="/on_source")

    scratch = Path(tempfile.gettempdir())          # the server's own temporary folder (see running_server)
    leftovers = set(os.listdir(scratch)) if scratch.is_dir() else set()
    with big.open("rb") as f:                                                     # a client that does not
        reply = httpx.post(f"{url}gradio_api/upload", files={"files": (big.name, f)}, timeout=60)
    assert reply.status_code == 413
    assert reply.text == f"File size exceeded maximum allowed size of {LIMIT_MB * 2**20} bytes."
    assert not list(uploads.rglob(big.name))                                     # nothing kept of it
    assert (set(os.listdir(scratch)) if scratch.is_dir() else set()) == leftovers

    # A file over the limit that reaches Run anyway (the app's own check) is refused in the status line.
    options = ["warp", "relative", "all", 1.0, False, "", False, 1, 0, 0, 0, 0, *[True] * len(app_switches())]
    before = folders(out)
    video, status = run_page(AppConfig(output_dir=str(out.parent), max_upload_mb=LIMIT_MB), str(big), None, None,
                             "blink", None, *options)
    assert video is None and status == f"**Error:** the source is 1.1 MB; the limit is {LIMIT_MB} MB"
    assert folders(out) == before

    set_source(client, None)                                                      # still serving
    assert press_run(client)[1] == "Done."


# ---- 3. twenty renders at once ---------------------------------------------------------------------------

def test_twenty_concurrent_renders_all_complete_each_with_its_own_result(page, data):
    url, out, _ = page
    n, yaws = 20, (-16.0, -8.0, 0.0, 8.0, 16.0)
    portrait = data / "portraits" / "s1.jpg"
    # client i: s1 or the astronaut (its session's source) turned by one of five yaws; i and i + 10 ask alike
    asks = [(portrait if i % 2 else None, yaws[(i // 2) % len(yaws)]) for i in range(n)]
    results: dict[int, tuple[str | None, str, float]] = {}
    errors: dict[int, BaseException] = {}
    start = threading.Barrier(n)
    before = folders(out)

    def one_client(i: int) -> None:
        try:
            client = client_of(url)
            source, yaw = asks[i]
            set_source(client, source)
            start.wait(timeout=120)
            t0 = time.perf_counter()
            video, status = press_run(client, yaw=yaw)
            results[i] = (video, status, time.perf_counter() - t0)
        except BaseException as exc:              # reported below with the client's number
            errors[i] = exc

    t0 = time.perf_counter()
    threads = [threading.Thread(target=one_client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    wall = time.perf_counter() - t0
    assert not errors, errors
    assert sorted(results) == list(range(n)) and all(r[1] == "Done." for r in results.values())   # none lost
    seconds = sorted(r[2] for r in results.values())
    logger.info("20 concurrent renders: %.1f s in all; per request %.1f s median, %.1f s max",
                wall, seconds[n // 2], seconds[-1])
    assert len(folders(out) - before) == n                       # one folder of the server's own per render

    firsts = {}
    for i, (video, _, _) in results.items():
        frames = frames_of(video)
        source, _ = asks[i]
        assert len(frames) == 8                                   # max_frames of this server
        side = frames[0].shape[1]
        assert side == 512 if source is None else side > 1000, (i, frames[0].shape)   # its own source
        firsts[i] = frames[0].astype(np.int16)
    for i in range(n // 2):                                       # the same request, the same result
        assert np.abs(firsts[i] - firsts[i + n // 2]).mean() < 1.0, i
    for i in range(n // 2):                                       # different requests, different results
        for j in range(i + 1, n // 2):
            if firsts[i].shape == firsts[j].shape:
                assert np.abs(firsts[i] - firsts[j]).mean() > 0.3, (i, j)


# ---- 4. the live socket flooded ---------------------------------------------------------------------

def test_live_socket_flood_drops_frames_and_stays_responsive(page, data):
    import httpx
    from websockets.sync.client import connect

    from puppetry.app.live_socket import MAX_FRAME_BYTES, ROUTE, encode_frame

    url, _, _ = page
    ws_url = url.replace("http", "ws").rstrip("/") + ROUTE
    webcam = [encode_frame(f) for f in frames_of(str(data / "driving" / "d0.mp4"))]
    sent, answers = 300, {"images": 0, "dropped": 0}
    replies: list[dict] = []
    with connect(ws_url, max_size=2 ** 23) as ws:
        ws.send(json.dumps({"source": "astronaut"}))
        assert json.loads(ws.recv(timeout=60))["ok"]
        for frame in webcam[:3]:                                  # warm up
            ws.send(frame)
            assert isinstance(ws.recv(timeout=30), bytes)
        rss_before = rss_mb()

        def receive() -> None:
            while answers["images"] + answers["dropped"] < sent or not replies:
                msg = ws.recv(timeout=60)
                if isinstance(msg, bytes):
                    answers["images"] += 1
                elif "dropped" in json.loads(msg):
                    answers["dropped"] += 1
                else:
                    replies.append({**json.loads(msg), "at": time.perf_counter()})

        reader = threading.Thread(target=receive)
        reader.start()
        t0 = time.perf_counter()
        for i in range(sent):
            ws.send(webcam[i % len(webcam)])
            if i == sent // 2:                                     # an ordinary request in the middle of it
                h0 = time.perf_counter()
                assert httpx.get(f"{url}config", timeout=30).status_code == 200
                http_s = time.perf_counter() - h0
        flood_s = time.perf_counter() - t0
        asked = time.perf_counter()
        ws.send(json.dumps({"source": "no-such-token"}))           # the flooded socket's own control message
        reader.join(timeout=120)
        assert not reader.is_alive()
        control_s = replies[0]["at"] - asked
        assert "unknown source" in replies[0]["error"]

        with connect(ws_url, max_size=2 ** 23) as other:          # a second live session meanwhile
            t1 = time.perf_counter()
            other.send(json.dumps({"source": "astronaut"}))
            assert json.loads(other.recv(timeout=30))["ok"]
            other.send(webcam[0])
            assert isinstance(other.recv(timeout=30), bytes)
            other_s = time.perf_counter() - t1

        ws.send(b"\xff\xd8" + bytes(MAX_FRAME_BYTES))              # too large: refused unread
        assert "larger than 4 MB" in json.loads(ws.recv(timeout=30))["dropped"]
        growth = rss_mb() - rss_before
    logger.info("live flood: %d frames sent in %.2f s, %d animated, %d dropped; control reply %.2f s, "
                "http %.2f s, second session %.2f s; RSS %+.0f MB", sent, flood_s, answers["images"],
                answers["dropped"], control_s, http_s, other_s, growth)
    assert answers["images"] + answers["dropped"] == sent            # every frame answered once
    assert answers["dropped"] > 0 and answers["images"] >= 1          # dropped, not queued
    assert control_s < 3.0 and http_s < 3.0 and other_s < 10.0
    assert growth < 200


# ---- 5. clients that leave in the middle of a render ------------------------------------------------------

@pytest.fixture(scope="module")
def long_page(tmp_path_factory) -> Iterator[tuple[str, Path, Path]]:
    """A server for long renders (600 frames) with one render slot and a queue of one."""
    with running_server(tmp_path_factory.mktemp("long"), max_frames=600, concurrency=1, queue_size=1) as server:
        yield server


def start_long_render(client, out: Path, driving: Path):
    """Submit a 600-frame render and wait until it writes its video; returns (job, render folder)."""
    from gradio_client import handle_file

    before = folders(out)
    job = client.submit(handle_file(str(driving)), None, "(none)", None, "warp", "relative", "all", 1.0, False, "",
                        False, 1, 0, 0, 0, 0, *[True] * len(app_switches()), api_name="/on_run")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = folders(out) - before
        if new and temporary_files(out / next(iter(new))):
            return job, out / next(iter(new))
        time.sleep(0.05)
    raise AssertionError("the long render did not start")


def wait_gone(folder: Path, seconds: float = 5.0) -> float:
    t0 = time.monotonic()
    while folder.exists() and time.monotonic() - t0 < seconds:
        time.sleep(0.05)
    return time.monotonic() - t0


def test_a_cancelled_render_stops_and_leaves_nothing(long_page, data):
    from gradio_client.utils import QueueError

    url, out, _ = long_page
    client = client_of(url)
    job, folder = start_long_render(client, out, data / "driving" / "d6.mp4")

    waiting = client_of(url)                                       # the slot is busy: one request may wait ...
    queued = waiting.submit(None, None, "blink", None, "warp", "relative", "all", 1.0, False, "", False, 1, 0, 0, 0,
                            0, *[True] * len(app_switches()), api_name="/on_run")
    time.sleep(0.5)
    with pytest.raises(QueueError, match="Queue is full"):         # ... and one more is refused in one line
        client_of(url).predict(None, None, "blink", None, "warp", "relative", "all", 1.0, False, "", False, 1, 0, 0,
                               0, 0, *[True] * len(app_switches()), api_name="/on_run")

    t0 = time.monotonic()
    job.cancel()
    gone = wait_gone(folder)
    assert not folder.exists(), "the cancelled render's folder is still there"
    video, status = queued.result(timeout=30)                      # the freed slot serves the waiting one
    waited = time.monotonic() - t0
    logger.info("cancelled render: folder gone %.2f s after cancel; the queued render done %.2f s after", gone,
                waited)
    assert status == "Done." and video and waited < 20
    time.sleep(1.0)                                                # and it does not come back finished
    assert not folder.exists() and not temporary_files(out)


def test_a_render_whose_page_closes_stops_and_leaves_nothing(long_page, data):
    import httpx

    url, out, _ = long_page
    client = client_of(url)
    with httpx.stream("GET", f"{url}gradio_api/heartbeat/{client.session_hash}", timeout=30) as heartbeat:
        lines = heartbeat.iter_lines()                             # held open, as a browser's page holds it
        assert next(lines).startswith("data:")
        job, folder = start_long_render(client, out, data / "driving" / "d6.mp4")
    gone = wait_gone(folder)                                       # the page closed (its heartbeat ended)
    logger.info("closed page: the render's folder gone %.2f s after", gone)
    assert not folder.exists(), "the abandoned render's folder is still there"
    video, status = job.result(timeout=30)
    assert video is None and status == "**Error:** the render was stopped: the page was closed"
    time.sleep(1.0)
    assert not folder.exists() and not temporary_files(out)


def test_render_jobs_stop_a_running_render_and_let_it_clean_up():
    """The mechanism alone: a stop reaches a busy render loop, its clean-up runs, the request hears of it."""
    import asyncio

    from puppetry.app.render_jobs import RenderJobs, RenderStopped

    jobs, cleaned, started = RenderJobs(), threading.Event(), threading.Event()

    def busy(stop: threading.Event) -> str:
        from puppetry.pipeline.stop import check_stop

        try:
            started.set()
            while True:                                             # a render loop checks before every frame
                check_stop(stop)
                time.sleep(0.01)
        finally:
            cleaned.set()

    async def scenario() -> None:
        task = asyncio.create_task(jobs.run("page-1", busy))
        await asyncio.to_thread(started.wait, 10)
        assert jobs.running() == 1 and jobs.stop("page-2", "other page") == 0
        assert jobs.stop("page-1", "the page was closed") == 1
        with pytest.raises(RenderStopped, match="the page was closed"):
            await asyncio.wait_for(task, 10)
        assert cleaned.is_set() and jobs.running() == 0
        task = asyncio.create_task(jobs.run("page-1", busy))         # a cancelled request stops its render too
        started.clear()
        cleaned.clear()
        await asyncio.to_thread(started.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert cleaned.is_set() and jobs.running() == 0
        assert await jobs.run(None, lambda stop: "result") == "result"

    asyncio.run(scenario())
