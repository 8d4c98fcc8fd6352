"""Where animated frames go: a video file, a still image or a list in memory (one sink for every loop).

:class:`FrameSink` is the output half of every animation loop (a still source, a source video): it
checks the output path before any work, lays out the ``driving | source | result`` view, shows
progress, and writes. Used as a context manager it finishes the output when the loop ends and removes
every trace of it when the loop raises, so a failed run never leaves a half-written file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from puppetry.errors import MediaError
from puppetry.media.image import IMAGE_EXTENSIONS, write_image
from puppetry.media.writer import VideoWriter

VIDEO_OUTPUTS = (".mp4", ".mov", ".mkv", ".gif")


@dataclass
class AnimationResult:
    """Summary of one :func:`~puppetry.pipeline.animate.animate` run."""

    output: str | None
    frames: int
    fps: float
    lost_frames: int
    size: tuple[int, int]
    seconds: float
    timings: dict[str, float]
    images: list[np.ndarray] | None = None


def side_by_side(panels: list[np.ndarray | None], height: int) -> np.ndarray:
    """Join ``H x W x 3`` panels left to right at one height (a missing panel is a black square)."""
    out = []
    for p in panels:
        if p is None:
            out.append(np.zeros((height, height, 3), np.uint8))
            continue
        w = max(2, round(p.shape[1] * height / p.shape[0]))
        out.append(p if p.shape[0] == height else cv2.resize(p, (w, height), interpolation=cv2.INTER_AREA))
    return np.concatenate(out, axis=1)


def output_kind(output: str | None) -> str | None:
    """The extension of ``output`` after checking that it can be written (None: frames stay in memory).

    Raises:
        MediaError: an unknown extension, a folder, or a parent that is a file.
    """
    if output is None:
        return None
    ext = Path(output).suffix.lower()
    if ext not in VIDEO_OUTPUTS and ext not in IMAGE_EXTENSIONS:
        raise MediaError(f"cannot write '{output}': use one of {', '.join(VIDEO_OUTPUTS + ('.png', '.jpg'))}")
    if os.path.isdir(output):
        raise MediaError(f"cannot write '{output}': it is a folder")
    parent = Path(output).resolve().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise MediaError(f"cannot write '{output}': '{parent}' is a file, not a folder")
    return ext


class FrameSink:
    """Collects a run's output frames and writes them; nothing exists at ``output`` until :meth:`close`.

    Example::

        with FrameSink(out, fps=25, concat=True, total=n, empty="driving produced no frames") as sink:
            for frame in frames:
                sink.write(render(frame), driving=frame.image, source=source_image)

    Args:
        output: a video (mp4, mov, mkv, gif) or image (png, jpg) path, or None to keep the frames in
            :attr:`images`.
        fps: frame rate of a video output.
        audio_from: a file whose audio track the video carries, or None.
        concat: write ``driving | source | result`` side by side at the source's height.
        progress: show a progress bar once the work lasts over a second.
        total: the number of frames expected (for the progress bar), or None.
        empty: the error message when no frame was written.
    """

    def __init__(self, output: str | None, fps: float, audio_from: str | None = None, concat: bool = False,
                 progress: bool = False, total: int | None = None, empty: str = "no frames were produced"):
        self.output = output
        self.ext = output_kind(output)
        self.concat = concat
        self.empty = empty
        self.frames = 0
        self.size = (0, 0)
        self.images: list[np.ndarray] = []
        self._last: np.ndarray | None = None
        self._writer = VideoWriter(output, fps, audio_from=audio_from) if self.ext in VIDEO_OUTPUTS else None
        self._bar = tqdm(total=total, desc="animating", unit="frame", delay=1.0, disable=not progress, leave=False)

    @property
    def is_image(self) -> bool:
        """Whether the output is a still image (a single frame)."""
        return self.ext in IMAGE_EXTENSIONS

    def write(self, result: np.ndarray, driving: np.ndarray | None = None, source: np.ndarray | None = None) -> None:
        """Add one ``H x W x 3`` uint8 frame (with the driving and source panels when ``concat``)."""
        if self.concat:
            result = side_by_side([driving, source, result], (source if source is not None else result).shape[0])
        if self._writer is not None:
            self._writer.write(result)
        elif self.output is None:
            self.images.append(result)
        else:
            self._last = result
        self.frames += 1
        self.size = (result.shape[1], result.shape[0])
        self._bar.update(1)

    def close(self) -> None:
        """Finish the output (raises MediaError, and writes nothing, when no frame came)."""
        self._bar.close()
        if self.frames == 0:
            self.abort()
            raise MediaError(self.empty)
        if self._writer is not None:
            self._writer.close()
        elif self._last is not None:
            write_image(self.output, self._last)

    def abort(self) -> None:
        """Drop everything written so far; the output path is left as it was."""
        self._bar.close()
        if self._writer is not None:
            self._writer.abort()

    def __enter__(self) -> "FrameSink":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
