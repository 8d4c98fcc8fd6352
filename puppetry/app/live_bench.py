"""``puppetry bench --live``: frames per second of the web app's live mode, without a browser.

Each webcam frame goes through :meth:`LiveSession.process` exactly as the page's stream handler calls
it (landmarks of the webcam frame, motion transfer, warp of the source). The webcam is stood in for by a
driving video; frames are fed as fast as they are processed, so the rate is the most the server
sustains per live session (the browser's own capture and transport are not included).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from puppetry.app.sessions import LiveSession
from puppetry.media.video import VideoReader


@dataclass
class LiveBenchRow:
    """One source size: mean and 95th-percentile milliseconds per frame, and frames per second."""

    size: int
    frames: int
    mean_ms: float
    p95_ms: float

    @property
    def fps(self) -> float:
        return 1000.0 / self.mean_ms


def run_live_benchmark(driving: str, sizes: tuple[int, ...] = (256, 384, 512), source: str = "astronaut",
                       frames: int = 150, warmup: int = 10) -> list[LiveBenchRow]:
    """Time live sessions at each source size on the first ``frames`` frames of ``driving``."""
    with VideoReader(driving, max_frames=frames + warmup) as reader:
        webcam = list(reader)
    rows = []
    for size in sizes:
        session = LiveSession(source, size)
        try:
            times = []
            for i, frame in enumerate(webcam):
                t0 = time.perf_counter()
                session.process(frame)
                if i >= warmup:
                    times.append((time.perf_counter() - t0) * 1000)
        finally:
            session.close()
        t = np.array(times)
        rows.append(LiveBenchRow(size, len(t), float(t.mean()), float(np.percentile(t, 95))))
    return rows


def table(rows: list[LiveBenchRow]) -> str:
    lines = ["live mode (warp engine)  source px   frames   mean ms   p95 ms     fps"]
    lines += [f"{'':25}{r.size:>9}   {r.frames:>6}   {r.mean_ms:>7.1f}   {r.p95_ms:>6.1f}   {r.fps:>5.1f}"
              for r in rows]
    return "\n".join(lines)
