"""``puppetry bench --live-browser``: live mode's frame rate as a user sees it, in headless Chromium.

For each source size a ``puppetry serve`` runs in this process; Chromium (driven by Playwright) opens
the page with a fake webcam that plays a driving video at 30 frames per second, presses **Start**, and
counts the animated frames the page draws over a few seconds. Everything a user's frame goes through
is included: capture, JPEG encoding in the page, the WebSocket both ways, the server's work and
drawing. The webcam's own rate (30) is the ceiling.

Needs the ``playwright`` package (a dev dependency) and a Chromium executable (``/usr/bin/chromium``
from the Debian package, or ``--chromium``).
"""

from __future__ import annotations

import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from puppetry.errors import PuppetryError

WEBCAM_FPS = 30


@dataclass
class BrowserBenchRow:
    """One source size: frames drawn in the page over ``seconds``, and the frames dropped."""

    size: int
    frames: int
    seconds: float
    dropped: int

    @property
    def fps(self) -> float:
        return self.frames / self.seconds


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_fake_webcam(driving: str, path: Path, frames: int = 150, size: tuple[int, int] = (640, 480)) -> Path:
    """The first ``frames`` frames of ``driving`` as a 30 fps ``.y4m`` file, which Chromium plays as a webcam."""
    import av
    import cv2

    from puppetry.media.video import VideoReader

    w, h = size
    with VideoReader(driving, max_frames=frames) as reader, av.open(str(path), "w", format="yuv4mpegpipe") as out:
        stream = out.add_stream("rawvideo", rate=WEBCAM_FPS)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for rgb in reader:
            k = min(w / rgb.shape[1], h / rgb.shape[0])
            small = cv2.resize(rgb, (round(rgb.shape[1] * k), round(rgb.shape[0] * k)), interpolation=cv2.INTER_AREA)
            canvas = cv2.copyMakeBorder(small, (h - small.shape[0]) // 2, h - small.shape[0] - (h - small.shape[0]) // 2,
                                        (w - small.shape[1]) // 2, w - small.shape[1] - (w - small.shape[1]) // 2,
                                        cv2.BORDER_CONSTANT, value=(0, 0, 0))
            frame = av.VideoFrame.from_ndarray(canvas, format="rgb24").reformat(format="yuv420p")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def run_browser_benchmark(driving: str, sizes: tuple[int, ...] = (256, 384, 512), seconds: float = 6.0,
                          warmup: float = 2.0, chromium: str = "/usr/bin/chromium") -> list[BrowserBenchRow]:
    """Frames per second drawn by the live page in headless Chromium, per source size."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise PuppetryError("--live-browser needs the playwright package: pip install playwright") from None
    if not Path(chromium).exists():
        raise PuppetryError(f"--live-browser needs Chromium at {chromium} (apt-get install chromium, or --chromium)")
    from puppetry.app.server import serve
    from puppetry.app.sessions import AppConfig

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        webcam = write_fake_webcam(driving, Path(tmp) / "webcam.y4m")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=[
                "--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={webcam}"])
            try:
                for size in sizes:
                    port = _free_port()
                    app = serve(AppConfig(live_size=size), "127.0.0.1", port, block=False)
                    try:
                        page = browser.new_context(permissions=["camera"]).new_page()
                        page.goto(f"http://127.0.0.1:{port}/")
                        page.get_by_role("tab", name="Live").click()
                        page.locator("#live-start").click()
                        page.wait_for_function("() => window.puppetryLive.frames >= 1 || window.puppetryLive.error",
                                               timeout=60_000)
                        error = page.evaluate("window.puppetryLive.error")
                        if error:
                            raise PuppetryError(f"live mode failed in the browser: {error}")
                        page.wait_for_timeout(warmup * 1000)
                        n0, d0, t0 = page.evaluate("[window.puppetryLive.frames, window.puppetryLive.dropped]") + [
                            time.perf_counter()]
                        page.wait_for_timeout(seconds * 1000)
                        n1, d1 = page.evaluate("[window.puppetryLive.frames, window.puppetryLive.dropped]")
                        rows.append(BrowserBenchRow(size, n1 - n0, time.perf_counter() - t0, d1 - d0))
                        page.context.close()
                    finally:
                        app.close()
            finally:
                browser.close()
    return rows


def table(rows: list[BrowserBenchRow]) -> str:
    lines = [f"live mode in Chromium (webcam {WEBCAM_FPS} fps)  source px   frames   seconds   dropped     fps"]
    lines += [f"{'':39}{r.size:>9}   {r.frames:>6}   {r.seconds:>7.1f}   {r.dropped:>7}   {r.fps:>5.1f}"
              for r in rows]
    return "\n".join(lines)
