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

from puppetry.errors import MediaError, first_line

logger = logging.getLogger(__name__)

DEFAULT_RATE = 16000
MAX_LEAD_SECONDS = 600.0       # silence put before audio that starts late; a later start is a damaged header


@dataclass
class Audio:
    """Mono samples ``N`` float32 in [-1, 1] at ``rate`` Hz, sample 0 at the start of the file's video."""

    samples: np.ndarray
    rate: int

    def segment(self, start: float, seconds: float) -> np.ndarray:
        """``round(seconds * rate)`` samples from ``start`` seconds on, zero-padded past either end."""
        first, count = int(round(start * self.rate)), int(round(seconds * self.rate))
        out = np.zeros(count, np.float32)
        lo, hi = max(first, 0), min(first + count, len(self.samples))
        if hi > lo:
            out[lo - first:hi - first] = self.samples[lo:hi]
        return out


def clock_origin(container: av.container.InputContainer) -> float:
    """Seconds of a file's time zero: the start of its video stream (of its first audio stream without
    one). The writer and :func:`read_audio` both measure audio from here."""
    anchor = container.streams.video[0] if container.streams.video else container.streams.audio[0]
    return float(anchor.start_time * anchor.time_base) if anchor.start_time is not None else 0.0


def codec_problem(stream: av.audio.stream.AudioStream, need_format: bool = True) -> str | None:
    """Why an audio stream cannot be decoded, or None: a damaged header may name no codec FFmpeg knows, or
    (``need_format``) give no sample rate or channel count."""
    context = stream.codec_context
    if context is None or not context.name:
        return "its codec cannot be identified"
    if need_format and not (context.sample_rate and context.channels):
        return "it has no sample rate or channel count"
    return None


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
                         f"({first_line(exc)})") from None
    with container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        problem = codec_problem(stream)
        if problem:
            raise MediaError(f"cannot read audio from '{path}': {problem}")
        origin = clock_origin(container)
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
                    try:
                        outs = resampler.resample(frame)
                    except ValueError:              # the stream changed rate or layout (or a damaged frame
                        outs = [*resampler.resample(None)]   # says so): a new resampler from here on
                        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
                        try:
                            outs += resampler.resample(frame)
                        except ValueError:
                            skipped += 1
                    for out in outs:
                        chunks.append(out.to_ndarray().reshape(-1))
                        total += chunks[-1].size
                if limit is not None and total >= limit:
                    break
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.FFmpegError as exc:
            logger.warning("audio of '%s' ends early after a read error: %s", path, first_line(exc))
        if skipped:
            logger.warning("skipped %d undecodable audio packet(s) of '%s'", skipped, path)
    samples = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    lead = int(round((start or 0.0) * rate))
    if lead > MAX_LEAD_SECONDS * rate:
        raise MediaError(f"cannot read audio from '{path}': it claims to start {lead / rate:.0f} s after the video "
                         "(a damaged header)")
    if lead > 0:
        samples = np.concatenate([np.zeros(lead, np.float32), samples])
    elif lead < 0:
        samples = samples[-lead:]
    if limit is not None:
        samples = samples[:limit]
    return Audio(np.clip(samples, -1.0, 1.0), rate)


@dataclass(frozen=True)
class MelConfig:
    """Log-mel spectrogram settings (speech defaults: 25 ms Hann windows every 10 ms, 80 bands to 8 kHz).

    Attributes:
        n_mels: mel bands.
        window: window length in seconds.
        hop: seconds between windows; row ``k`` is centred on ``k * hop``.
        f_min: lowest band edge in Hz.
        f_max: highest band edge in Hz (None: half the sample rate).
        floor: power added before the log (so silence is ``log(floor)``, not minus infinity).
    """

    n_mels: int = 80
    window: float = 0.025
    hop: float = 0.010
    f_min: float = 20.0
    f_max: float | None = None
    floor: float = 1e-6


def _hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)        # O'Shaughnessy's mel scale


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)


def mel_filterbank(rate: int, n_fft: int, config: MelConfig = MelConfig()) -> np.ndarray:
    """``n_mels x (n_fft // 2 + 1)`` triangular filters, evenly spaced on the mel scale, each of unit area."""
    f_max = config.f_max or rate / 2.0
    edges = _mel_to_hz(np.linspace(_hz_to_mel(config.f_min), _hz_to_mel(f_max), config.n_mels + 2))
    bins = np.fft.rfftfreq(n_fft, 1.0 / rate)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None] - lo) / np.maximum(mid - lo, 1e-9)
    falling = (hi - bins[None]) / np.maximum(hi - mid, 1e-9)
    bank = np.clip(np.minimum(rising, falling), 0.0, None)
    return (bank * (2.0 / np.maximum(hi - lo, 1e-9))).astype(np.float32)


def log_mel(audio: Audio, config: MelConfig = MelConfig()) -> np.ndarray:
    """``K x n_mels`` float32 log-mel spectrogram of ``audio``; row ``k`` is centred on ``k * hop`` seconds
    (the signal is zero-padded by half a window at both ends), ``K = floor(seconds / hop) + 1``."""
    rate = audio.rate
    win, hop = int(round(config.window * rate)), int(round(config.hop * rate))
    n_fft = 1 << max(int(np.ceil(np.log2(win))), 1)
    padded = np.pad(audio.samples.astype(np.float32), (win // 2, win - win // 2))
    count = len(audio.samples) // hop + 1
    starts = np.arange(count) * hop
    index = starts[:, None] + np.arange(win)[None]
    frames = np.zeros((count, win), np.float32)
    inside = index < len(padded)
    frames[inside] = padded[index[inside]]
    spectrum = np.abs(np.fft.rfft(frames * np.hanning(win).astype(np.float32), n=n_fft, axis=1)) ** 2
    return np.log(spectrum @ mel_filterbank(rate, n_fft, config).T + config.floor).astype(np.float32)
