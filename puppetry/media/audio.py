"""Reading the audio of a media file as samples on the video's clock (for datasets and speech-driven motion).

:func:`read_audio` decodes the first audio stream of a file (a video's soundtrack, or wav / mp3 / m4a), mixes
it to mono and resamples it to one rate. Sample 0 is the start of the file's video (of the audio when it has
no video), the origin :class:`~puppetry.media.writer.VideoWriter` also uses, so video frame ``i`` at ``fps``
starts at sample ``round(i / fps * rate)``: audio that starts late is preceded by silence, audio that starts
early is cut.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import av
import numpy as np

from puppetry.errors import MediaError

logger = logging.getLogger(__name__)

DEFAULT_RATE = 16000


@dataclass
class Audio:
    """Mono samples ``N`` float32 in [-1, 1] at ``rate`` Hz, sample 0 at the start of the file's video."""

    samples: np.ndarray
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / float(self.rate)

    def segment(self, start: float, seconds: float) -> np.ndarray:
        """``round(seconds * rate)`` samples from ``start`` seconds on, zero-padded past either end."""
        first, count = int(round(start * self.rate)), int(round(seconds * self.rate))
        out = np.zeros(count, np.float32)
        lo, hi = max(first, 0), min(first + count, len(self.samples))
        if hi > lo:
            out[lo - first:hi - first] = self.samples[lo:hi]
        return out


def read_audio(path: str | os.PathLike, rate: int = DEFAULT_RATE, max_seconds: float | None = None) -> Audio | None:
    """The audio of ``path`` (see the module docstring), or None when it has no audio stream.

    Args:
        path: a media file.
        rate: output sample rate.
        max_seconds: stop decoding after this much audio (None: all of it).
    Raises:
        MediaError: the file cannot be opened, or its audio stream names no codec FFmpeg can decode (one
            line). Packets that fail to decode part-way are skipped with a warning.
    """
    try:
        container = av.open(os.fspath(path), mode="r")
    except Exception as exc:  # noqa: BLE001 - any open failure is the file's fault
        raise MediaError(f"cannot read audio from '{path}': file is corrupt or not media "
                         f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    with container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        if stream.codec_context is None or not stream.codec_context.name:
            raise MediaError(f"cannot read audio from '{path}': its audio codec cannot be identified")
        anchor = container.streams.video[0] if container.streams.video else stream
        origin = float(anchor.start_time * anchor.time_base) if anchor.start_time is not None else 0.0
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks: list[np.ndarray] = []
        start: float | None = None
        total, limit, skipped = 0, None if max_seconds is None else int(max_seconds * rate), 0
        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.FFmpegError:
                    skipped += 1
                    continue
                for frame in frames:
                    if start is None and frame.pts is not None:
                        start = float(frame.pts * frame.time_base) - origin
                    for out in resampler.resample(frame):
                        chunks.append(out.to_ndarray().reshape(-1))
                        total += chunks[-1].size
                if limit is not None and total >= limit:
                    break
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.FFmpegError as exc:
            logger.warning("audio of '%s' ends early after a read error: %s", path, str(exc).splitlines()[0])
        if skipped:
            logger.warning("skipped %d undecodable audio packet(s) of '%s'", skipped, path)
    samples = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    lead = int(round((start or 0.0) * rate))
    if lead > 0:
        samples = np.concatenate([np.zeros(lead, np.float32), samples])
    elif lead < 0:
        samples = samples[-lead:]
    if limit is not None:
        samples = samples[:limit]
    return Audio(np.clip(samples, -1.0, 1.0), rate)
