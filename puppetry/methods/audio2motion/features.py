"""What the speech model hears and what the baseline follows: log-mel rows and the loudness envelope.

Both are on the video's clock: log-mel row ``k`` is centred on ``k * hop`` seconds (10 ms) and video frame
``i`` at ``fps`` is read from row ``round(i / fps / hop)`` (:func:`frame_rows`). Loudness is measured on
the raw samples, so a recording's level is known; the model's input is normalised per recording first
(:func:`normalise_gain`), so a quiet and a loud recording of the same speech look alike.
"""

from __future__ import annotations

import numpy as np

from puppetry.media.audio import Audio, MelConfig, log_mel

SPEECH_MEL = MelConfig(n_mels=80, window=0.025, hop=0.010, f_min=40.0, f_max=7600.0)
SILENCE_DBFS = -100.0


def loudness_db(audio: Audio, fps: float, num_frames: int) -> np.ndarray:
    """``num_frames`` RMS levels in dBFS, frame ``i`` measured over the ``1 / fps`` s starting at ``i / fps``."""
    hop = audio.rate / float(fps)
    starts = np.round(np.arange(num_frames + 1) * hop).astype(np.int64)
    power = np.concatenate([[0.0], np.cumsum(audio.samples.astype(np.float64) ** 2)])
    lo, hi = np.clip(starts[:-1], 0, len(audio.samples)), np.clip(starts[1:], 0, len(audio.samples))
    mean = (power[hi] - power[lo]) / np.maximum(hi - lo, 1)
    return np.maximum(10.0 * np.log10(np.maximum(mean, 1e-12)), SILENCE_DBFS).astype(np.float32)


def normalise_gain(audio: Audio, target_db: float = -20.0) -> Audio:
    """``audio`` scaled so that its speech (its loudest 30 % of 10 ms slices) sits at ``target_db`` dBFS;
    a silent recording is returned unchanged."""
    level = loudness_db(audio, 100.0, max(len(audio.samples) * 100 // max(audio.rate, 1), 1))
    loud = level[level >= np.quantile(level, 0.7)] if len(level) else level
    if not len(loud) or loud.mean() <= SILENCE_DBFS + 1:
        return audio
    gain = 10.0 ** ((target_db - float(loud.mean())) / 20.0)
    return Audio(np.clip(audio.samples * gain, -1.0, 1.0).astype(np.float32), audio.rate)


def speech_features(audio: Audio) -> np.ndarray:
    """``K x 80`` log-mel rows of the gain-normalised ``audio`` (row ``k`` centred on ``k * 10`` ms)."""
    return log_mel(normalise_gain(audio), SPEECH_MEL)


def frame_rows(num_frames: int, fps: float, num_rows: int) -> np.ndarray:
    """``num_frames`` int64 log-mel row indices, frame ``i`` at ``i / fps`` s (clipped to the last row)."""
    rows = np.round(np.arange(num_frames) / float(fps) / SPEECH_MEL.hop).astype(np.int64)
    return np.clip(rows, 0, max(num_rows - 1, 0))


def frames_in(audio: Audio, fps: float) -> int:
    """Video frames that cover ``audio`` at ``fps`` (the last one may be partly past its end)."""
    return int(np.ceil(len(audio.samples) / audio.rate * float(fps) - 1e-6))
