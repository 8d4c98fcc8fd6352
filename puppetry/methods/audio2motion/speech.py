"""A speech recording as driving frames: the learned mouth, generated blinks and head sway.

For ``puppetry animate -a speech.wav`` (reached through the registry's ``speech_driver``). Frame ``i`` at
``fps`` shows the speech at ``i / fps`` s, and there are as many frames as cover the recording. Each frame
carries:

* the mouth: the model's lip-open as the ``lips`` control (0 closed .. 1 wide open, the same on every
  face, so silence closes an open-mouthed portrait too) and its lip and jaw shape as a driving
  expression, the training speakers' rest face (``neutral``) plus the predicted change spread smoothly
  over the face around the mouth (:func:`spread_matrix`); the reference is ``neutral`` itself, so
  relative transfer carries the change onto the source's own mouth;
* silence: where the recording is 35 dB below its speech level (or below -65 dBFS) the mouth is
  closed outright, whatever the model says (no sound, no speech);
* blinks: a random process at the training speakers' rate (at least 1.2 s apart, 0.25 s each) as the
  ``eyes`` control;
* head sway: slow random yaw, pitch and roll (smoothed noise, at the training speakers' spread, a
  little livelier while speaking) added as control angles.

Blinks and sway are drawn from ``seed``: the same recording and seed give the same video.
"""

from __future__ import annotations

import os
from typing import Iterator

import numpy as np

from puppetry.engines.base import DrivingFrame
from puppetry.errors import MediaError
from puppetry.face.pose import FacePose, compose
from puppetry.media.audio import Audio, read_audio
from puppetry.methods.audio2motion.features import SILENCE_DBFS, frames_in, loudness_db
from puppetry.methods.audio2motion.inference import load_speech_model, predict_mouth
from puppetry.methods.audio2motion.targets import MOUTH_POINTS, mouth_width
from puppetry.motion.controls import Controls

MAX_SECONDS = 30 * 60.0
MIN_SECONDS = 0.04
BLINK_SECONDS = 0.25
MIN_BLINK_GAP = 1.2
SWAY_SECONDS = 0.6           # smoothing of the head's random walk
VIRTUAL_SCALE, VIRTUAL_CENTER = 100.0, np.array([128.0, 128.0, 0.0])   # where frame.landmarks are drawn


def read_speech(path: str | os.PathLike) -> Audio:
    """The audio of ``path`` (wav, mp3, m4a, or a video's soundtrack) at 16 kHz mono.

    Raises:
        MediaError: missing, unreadable, without an audio stream, empty or longer than 30 minutes (one line).
    """
    text = os.fspath(path)
    if not os.path.exists(text):
        raise MediaError(f"audio '{text}' does not exist")
    if os.path.isdir(text):
        raise MediaError(f"audio '{text}' is a folder, not a recording")
    audio = read_audio(text, max_seconds=MAX_SECONDS + 1.0)
    if audio is None:
        raise MediaError(f"'{text}' has no audio stream (give a wav, mp3, m4a or a video with sound)")
    seconds = len(audio.samples) / audio.rate
    if seconds < MIN_SECONDS:
        raise MediaError(f"audio '{text}' is empty (no samples could be decoded)")
    if seconds > MAX_SECONDS:
        raise MediaError(f"audio '{text}' is longer than {MAX_SECONDS / 60:.0f} minutes; cut it into parts")
    return audio


def spread_matrix(neutral: np.ndarray, blend: float = 0.08, reach: float = 0.3) -> np.ndarray:
    """``478 x P`` weights that carry a change of :data:`MOUTH_POINTS` to every point of the face: each point
    takes the Gaussian-weighted mean change of the mouth points near it (``blend`` of the mouth width),
    faded by its distance to the nearest one (``reach`` of the mouth width), so the mouth points keep
    (nearly) their own change and the cheeks follow smoothly. Rows sum to at most 1."""
    xy = neutral[:, :2].astype(np.float64)
    width = float(mouth_width(neutral))
    d2 = ((xy[:, None] - xy[None, MOUTH_POINTS]) ** 2).sum(-1)
    nearest = d2.min(1, keepdims=True)
    k = np.exp(-(d2 - nearest) / (2 * (blend * width) ** 2))       # shifted: no underflow far away
    fade = np.exp(-nearest / (2 * (reach * width) ** 2))
    return (k / k.sum(1, keepdims=True) * fade).astype(np.float32)


def _smooth(x: np.ndarray, frames: float) -> np.ndarray:
    """Gaussian smoothing along axis 0 with standard deviation ``frames`` (edges reflected)."""
    if frames <= 0 or len(x) < 2:
        return x
    radius = int(np.ceil(3 * frames))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / frames) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(x, [(radius, radius)] + [(0, 0)] * (x.ndim - 1), mode="reflect" if len(x) > radius else "edge")
    return np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="valid"), 0, padded)


def speech_gate(level: np.ndarray, fps: float) -> np.ndarray:
    """``T`` 0..1: 1 where the recording is speaking (module docstring), eased over two frames."""
    speech = float(np.quantile(level, 0.95))
    threshold = max(speech - 35.0, -65.0)
    on = (level >= threshold) & (speech > SILENCE_DBFS + 1)
    reach = max(int(round(0.06 * fps)), 1)             # short pauses between sounds stay open
    on = np.convolve(on.astype(np.float64), np.ones(2 * reach + 1))[reach:reach + len(on)] > 0   # also when shorter
    return np.clip(_smooth(on.astype(np.float64), 1.0), 0.0, 1.0)


def generate_blinks(num_frames: int, fps: float, per_minute: float, rng: np.random.Generator) -> np.ndarray:
    """``T`` eye-open values (1 open): blinks at ``per_minute`` on average, at least 1.2 s apart."""
    seconds = num_frames / fps
    mean_gap = 60.0 / max(per_minute, 1e-3)
    times, t = [], rng.uniform(0.3, mean_gap)
    while t < seconds:
        times.append(t)
        t += MIN_BLINK_GAP + rng.exponential(max(mean_gap - MIN_BLINK_GAP, 0.1))
    clock = np.arange(num_frames) / fps
    closed = np.zeros(num_frames)
    for centre in times:                                 # a handful of blinks, each a raised cosine
        x = np.clip((clock - centre) / (BLINK_SECONDS / 2), -1, 1)
        closed = np.maximum(closed, 0.5 * (1 + np.cos(np.pi * x)))
    return 1.0 - closed


def generate_sway(num_frames: int, fps: float, spread: np.ndarray, activity: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """``T x 3`` yaw, pitch, roll offsets in degrees: smoothed noise of standard deviation ``spread``
    (``3``), 70 % at rest and 100 % while speaking (``activity`` ``T`` 0..1)."""
    noise = _smooth(rng.standard_normal((num_frames + 1, 3)), SWAY_SECONDS * fps)[:num_frames]
    noise = (noise - noise.mean(0)) / np.maximum(noise.std(0), 1e-6) if num_frames > 1 else noise * 0
    return noise * np.asarray(spread)[None] * (0.7 + 0.3 * _smooth(activity, 0.3 * fps))[:, None]


def speech_driving(audio_path: str | os.PathLike, weights: str | os.PathLike, fps: float, controls: Controls,
                   seed: int = 0) -> tuple[Iterator[DrivingFrame], int]:
    """Driving frames for ``audio_path`` (module docstring) and their number.

    Args:
        audio_path: the recording.
        weights: ``audio2motion.pt`` from ``puppetry train audio2motion``.
        fps: output frame rate.
        controls: the user's controls; values they set win over the speech's.
        seed: draws the blinks and the head sway.
    """
    audio = read_speech(audio_path)
    model = load_speech_model(weights)
    n = frames_in(audio, fps)
    lips, shape = predict_mouth(model.net, audio, fps, n)
    gate = speech_gate(loudness_db(audio, fps, n), fps)
    lips, shape = lips * gate, shape * gate[:, None, None]
    rng = np.random.default_rng(seed)
    stats = model.statistics
    eyes = generate_blinks(n, fps, stats["blinks_per_minute"], rng)
    spread = np.array([stats["sway_yaw"], stats["sway_pitch"], stats["sway_roll"]])
    angles = generate_sway(n, fps, spread, gate, rng)
    neutral = model.neutral.astype(np.float64)
    weights_478 = spread_matrix(neutral)
    identity = np.eye(3)
    reference = FacePose(neutral, identity, VIRTUAL_SCALE, VIRTUAL_CENTER)

    def frames() -> Iterator[DrivingFrame]:
        for i in range(n):
            expression = neutral.copy()
            expression[:, :2] += weights_478 @ shape[i]
            own = Controls(eyes=float(eyes[i]), lips=float(lips[i]), yaw=float(angles[i, 0]),
                           pitch=float(angles[i, 1]), roll=float(angles[i, 2]))
            pose = FacePose(expression, identity, VIRTUAL_SCALE, VIRTUAL_CENTER)
            yield DrivingFrame(index=i, controls=own.merged(controls).validated(), pose=pose, reference=reference,
                               landmarks=compose(expression, identity, VIRTUAL_SCALE, VIRTUAL_CENTER))

    return frames(), n
