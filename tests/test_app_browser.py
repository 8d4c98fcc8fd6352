"""``puppetry serve`` in a real browser: headless Chromium (the Debian package) driven by Playwright.

The module starts what it needs itself: it installs Chromium with apt-get when it is missing (as root),
installs the ``playwright`` package when it is not importable, and runs ``python -m puppetry serve`` on
a free port for the whole module. Missing infrastructure fails the tests; nothing is skipped.
"""

from __future__ import annotations

import base64
import importlib
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from puppetry.app.browser_bench import write_fake_webcam

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
S1 = DATA / "portraits" / "s1.jpg"
S2 = DATA / "portraits" / "s2.jpg"
D0 = DATA / "driving" / "d0.mp4"          # 78 frames, 512 x 512, 25 fps, no audio
D0_FRAMES = 78
CHROMIUM = "/usr/bin/chromium"
RENDER_TIMEOUT_MS = 120_000
UI_TIMEOUT_MS = 30_000
SCREENSHOT = Path("/tmp/app_page.png")

# JavaScript run in the page.
JS_PLAY = """async () => {
  const v = document.querySelector('#result video');
  if (v.readyState < 1) {
    await new Promise((ok, bad) => {
      v.addEventListener('loadedmetadata', ok, {once: true});
      v.addEventListener('error', () => bad(new Error('video error ' + (v.error && v.error.message))), {once: true});
      setTimeout(() => bad(new Error('no loadedmetadata within 20 s')), 20000);
    });
  }
  v.muted = true;
  await v.play();
  const t0 = v.currentTime;
  await new Promise(r => setTimeout(r, 1200));
  const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
  return {duration: v.duration, t0: t0, t1: v.currentTime, frames: q ? q.totalVideoFrames : null,
          width: v.videoWidth, height: v.videoHeight, error: v.error ? v.error.code : null};
}"""
JS_SRC_CHANGED = """([sel, old]) => {
  const e = document.querySelector(sel);
  return !!e && !!e.getAttribute('src') && e.getAttribute('src') !== old;
}"""
JS_SET_SLIDER = """(el, value) => {
  el.value = String(value);
  el.dispatchEvent(new Event('input', {bubbles: true}));
  el.dispatchEvent(new PointerEvent('pointerup', {bubbles: true}));
  el.dispatchEvent(new Event('change', {bubbles: true}));
}"""


# --------------------------------------------------------------------------- infrastructure

def _ensure_chromium() -> str:
    if not os.path.exists(CHROMIUM):
        if os.geteuid() == 0 and shutil.which("apt-get"):
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            cmd = ["apt-get", "install", "-y", "chromium", "chromium-driver"]
            if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
                subprocess.run(["apt-get", "update"], env=env, capture_output=True)
                subprocess.run(cmd, env=env, capture_output=True)
        if not os.path.exists(CHROMIUM):
            pytest.fail(f"{CHROMIUM} is missing and could not be installed; the browser tests need the Debian "
                        "packages chromium and chromium-driver (apt-get install -y chromium chromium-driver, "
                        "as root)", pytrace=False)
    return CHROMIUM


def _ensure_playwright() -> Any:
    try:
        return importlib.import_module("playwright.sync_api")
    except ImportError:
        proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "playwright"], capture_output=True,
                              text=True)
        importlib.invalidate_caches()
        try:
            return importlib.import_module("playwright.sync_api")
        except ImportError:
            pytest.fail("the playwright package (a dev dependency) is missing and pip could not install it:\n"
                        + proc.stderr[-2000:], pytrace=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no server log)"


class Server:
    """``python -m puppetry serve`` in a subprocess, its output in a log file."""

    def __init__(self, log: Path):
        self.log = log
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
        self._log_file = open(log, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "puppetry", "serve", "--port", str(self.port),
                                      "--max-upload-mb", "50"], stdout=self._log_file, stderr=subprocess.STDOUT,
                                     env=env, cwd=Path(__file__).resolve().parents[1])

    def wait(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"puppetry serve exited with status {self.proc.returncode}:\n{_tail(self.log)}",
                            pytrace=False)
            try:
                with urllib.request.urlopen(self.url, timeout=5) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        pytest.fail(f"puppetry serve did not answer on {self.url} within {timeout:.0f} s:\n{_tail(self.log)}",
                    pytrace=False)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)
        self._log_file.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("serve") / "server.log")
    try:
        srv.wait()
        yield srv
        assert srv.proc.poll() is None, f"the server died during the tests:\n{_tail(srv.log)}"
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def browser(server, tmp_path_factory) -> Iterator[Any]:
    executable = _ensure_chromium()
    sync_api = _ensure_playwright()
    webcam = write_fake_webcam(str(D0), tmp_path_factory.mktemp("webcam") / "d0.y4m", frames=60)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=[
            "--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={webcam}"])
        yield b
        b.close()


@pytest.fixture
def new_page(browser, server, request) -> Iterator[Any]:
    """``new_page()`` opens the app in a fresh browser context; the server log is shown when a test fails."""
    contexts: list[Any] = []
    failed_before = request.session.testsfailed

    def open_page() -> Any:
        ctx = browser.new_context(viewport={"width": 1400, "height": 1800}, permissions=["camera"])
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(UI_TIMEOUT_MS)
        page.goto(server.url)
        page.wait_for_selector("#run")
        return page

    yield open_page
    for ctx in contexts:
        ctx.close()
    if request.session.testsfailed > failed_before:
        sys.stderr.write(f"--- puppetry serve log (tail) ---\n{_tail(server.log)}\n")


# --------------------------------------------------------------------------- page helpers

def _upload(page: Any, elem_id: str, path: Path) -> None:
    """Put ``path`` into the gr.File ``#elem_id`` (clearing a previous file first) and wait until it is shown."""
    box = page.locator(f"#{elem_id}")
    if not box.locator("input[type=file]").count():
        box.locator("button[aria-label=Clear]").click()
    box.locator("input[type=file]").set_input_files(str(path))
    box.locator(f'td.filename[aria-label="{path.name}"]').wait_for()


def _src(page: Any, selector: str) -> str | None:
    loc = page.locator(selector)
    return loc.get_attribute("src") if loc.count() else None


def _wait_src_change(page: Any, selector: str, old: str | None, timeout: int = UI_TIMEOUT_MS) -> str:
    page.wait_for_function(JS_SRC_CHANGED, arg=[selector, old], timeout=timeout)
    return page.locator(selector).get_attribute("src")


def _fetch(page: Any, url: str) -> bytes:
    resp = page.request.get(url)
    assert resp.ok, f"GET {url}: {resp.status}"
    return resp.body()


def _image(page: Any, url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(_fetch(page, url))).convert("RGB"))


def _run_and_wait(page: Any) -> str:
    """Click Run and wait for a new result video; returns its URL."""
    old = _src(page, "#result video")
    page.click("#run")
    try:
        return _wait_src_change(page, "#result video", old, timeout=RENDER_TIMEOUT_MS)
    except Exception:
        raise AssertionError(f"no result video; status: {page.locator('#status').inner_text()!r}") from None


def _video_frames(data: bytes, tmp: Path) -> tuple[list[np.ndarray], float]:
    import av

    tmp.write_bytes(data)
    with av.open(str(tmp)) as c:
        stream = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(stream)]
        duration = float(stream.duration * stream.time_base) if stream.duration else float(c.duration) / 1e6
    return frames, duration


def _small(rgb: np.ndarray, size: int = 64) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).convert("L").resize((size, size), Image.BILINEAR), np.float32)


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(_small(a) - _small(b)).mean())


# --------------------------------------------------------------------------- tests

def test_upload_run_and_play(new_page, tmp_path):
    page = new_page()
    _upload(page, "source", S1)
    _upload(page, "driving", D0)
    url = _run_and_wait(page)
    assert page.locator("#status").inner_text().strip() == "Done."

    info = page.evaluate(JS_PLAY)
    assert info["error"] is None, info
    assert 2.9 < info["duration"] < 3.4, info                    # 78 frames at 25 fps = 3.12 s
    assert info["width"] > 0 and info["height"] > 0, info
    assert info["t1"] > info["t0"] + 0.3, f"the video does not play: {info}"
    if info["frames"] is not None:
        assert info["frames"] > 0, info
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    source = np.asarray(Image.open(S1).convert("RGB"))
    frames, duration = _video_frames(_fetch(page, url), tmp_path / "result.mp4")
    assert abs(len(frames) - D0_FRAMES) <= 1, len(frames)
    assert abs(duration - D0_FRAMES / 25) < 0.1, duration
    assert _mad(frames[0], source) < 5, "the first frame does not look like the source"
    assert max(_mad(f, frames[0]) for f in frames) > 1.0, "the result does not move"

    # The upload came right after the page load, so the on-load astronaut preview and the upload's preview race:
    # the newest request must win, not the one that happens to finish last.
    preview = _image(page, page.locator("#preview img").get_attribute("src"))
    assert _mad(preview, source) < 5, "the preview shows a stale image (the astronaut), not the uploaded portrait"


def test_slider_changes_preview(new_page):
    page = new_page()
    page.wait_for_selector("#preview img[src]")           # the astronaut's preview, rendered on load
    before_src = _src(page, "#preview img")
    _upload(page, "source", S1)
    before_src = _wait_src_change(page, "#preview img", before_src)
    before = _image(page, before_src)
    source = np.asarray(Image.open(S1).convert("RGB"))
    assert _mad(before, source) < 5, "the preview is not the uploaded portrait"

    page.locator("#yaw input[type=range]").evaluate(JS_SET_SLIDER, 25)
    after_src = _wait_src_change(page, "#preview img", before_src)
    after = _image(page, after_src)
    assert after.shape == before.shape
    diff = float(np.abs(after.astype(np.float32) - before.astype(np.float32)).mean())
    assert diff > 2.0, f"moving the yaw slider barely changed the preview (mean abs diff {diff:.2f})"
    assert "Error" not in page.locator("#status").inner_text()


def test_faceless_source_shows_error_then_recovers(new_page, tmp_path):
    blank = tmp_path / "blank.png"
    rng = np.random.default_rng(0)
    Image.fromarray((128 + rng.integers(-8, 9, (256, 256, 3))).astype(np.uint8)).save(blank)
    page = new_page()
    _upload(page, "source", blank)
    status = page.locator("#status")
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('Error')")
    assert "face" in status.inner_text().lower(), status.inner_text()
    assert "blank.png" in status.inner_text() and "/gradio/" not in status.inner_text()   # no server paths

    page.click("#run")                                    # the render refuses it too, with a message
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('Error')",
                           timeout=RENDER_TIMEOUT_MS)
    assert "face" in status.inner_text().lower(), status.inner_text()
    assert not page.locator("#result video[src]").count()

    _upload(page, "source", S1)                           # the same page keeps working
    page.wait_for_selector("#preview img[src]")
    assert "Error" not in status.inner_text(), status.inner_text()
    assert page.locator("#motion input").input_value() == "demo"
    _run_and_wait(page)
    assert status.inner_text().strip() == "Done."


def test_two_pages_render_their_own_sources(new_page, tmp_path):
    pages = [new_page(), new_page()]
    sources = [S1, S2]
    for page, src in zip(pages, sources):
        _upload(page, "source", src)
        _upload(page, "driving", D0)
    olds = [_src(p, "#result video") for p in pages]
    for page in pages:
        page.click("#run")
    urls = [_wait_src_change(p, "#result video", old, timeout=RENDER_TIMEOUT_MS) for p, old in zip(pages, olds)]
    assert urls[0] != urls[1]
    imgs = [np.asarray(Image.open(s).convert("RGB")) for s in sources]
    for i, (page, url) in enumerate(zip(pages, urls)):
        assert page.locator("#status").inner_text().strip() == "Done."
        frames, _ = _video_frames(_fetch(page, url), tmp_path / f"r{i}.mp4")
        assert abs(len(frames) - D0_FRAMES) <= 1, len(frames)
        own, other = _mad(frames[0], imgs[i]), _mad(frames[0], imgs[1 - i])
        assert own < other, f"page {i}: first frame closer to the other page's source ({own:.1f} vs {other:.1f})"


def test_live_mode_streams_the_animated_source(new_page):
    """A fake webcam (d0.mp4) streams over the live socket; the animated astronaut streams back and moves."""
    page = new_page()
    page.get_by_role("tab", name="Live").click()
    page.locator("#live-start").click()
    page.wait_for_function("() => window.puppetryLive.frames >= 3 || window.puppetryLive.error",
                           timeout=UI_TIMEOUT_MS)
    assert page.evaluate("window.puppetryLive.error") is None
    grab = "() => document.getElementById('live-canvas').toDataURL('image/png')"
    shots = []
    for _ in range(6):
        page.wait_for_timeout(400)
        data = page.evaluate(grab)
        shots.append(np.asarray(Image.open(io.BytesIO(base64.b64decode(data.split(",", 1)[1]))).convert("RGB"))
                     .astype(int))
    live = page.evaluate("({...window.puppetryLive})")
    assert live["frames"] >= 10 and live["dropped"] == 0, live
    assert shots[0].shape == shots[-1].shape and max(shots[0].shape[:2]) == 384      # the live size
    moved = [np.abs(s - shots[0]).mean() for s in shots[1:]]
    assert max(moved) > 0.3, moved                                                  # the source follows the webcam
    # Reset and Stop act: frames keep coming after Reset, and stop after Stop.
    page.locator("#live-reset").click()
    before = page.evaluate("window.puppetryLive.frames")
    page.wait_for_timeout(600)
    assert page.evaluate("window.puppetryLive.frames") > before
    page.locator("#live-stop").click()
    page.wait_for_timeout(300)
    stopped = page.evaluate("window.puppetryLive.frames")
    page.wait_for_timeout(600)
    assert page.evaluate("window.puppetryLive.frames") == stopped
