"""Speech as a driving signal (``puppetry animate -a``): a recording becomes driving frames, its sound the
output's soundtrack.

The model that listens belongs to a method (``audio2motion``); this layer reaches it through the registry
(:func:`~puppetry.methods.registry.speech_method`), never by name.
"""

from __future__ import annotations

import os

from puppetry.errors import WeightsError
from puppetry.methods.descriptor import load
from puppetry.methods.registry import speech_method
from puppetry.motion.controls import Controls
from puppetry.motion.procedural import DEFAULT_FPS
from puppetry.pipeline.driving import DrivingStats, DrivingStream, counted

AUDIO_WEIGHTS_FLAG = "--audio-weights"


def speech_weights(given: str | os.PathLike | None) -> str:
    """The speech model's weights: ``given``, else the method's environment variable (one line naming both
    and the training command when neither is set)."""
    method = speech_method()
    path = given or (os.environ.get(method.speech_weights_env) if method.speech_weights_env else None)
    if not path:
        raise WeightsError(f"-a needs a trained speech model: pass {AUDIO_WEIGHTS_FLAG} RUN/audio2motion.pt "
                           f"(written by 'puppetry train {next(iter(method.recipes), method.name)}') or set "
                           f"${method.speech_weights_env}")
    return os.fspath(path)


def open_speech(audio: str | os.PathLike, weights: str | os.PathLike | None, controls: Controls = Controls(),
                fps: float | None = None, seed: int = 0, max_frames: int | None = None) -> DrivingStream:
    """Driving frames for a speech recording, one per ``1 / fps`` s of it, with the recording as audio.

    Args:
        audio: wav, mp3, m4a, or a video whose soundtrack is the speech.
        weights: the speech model (None: the method's environment variable).
        controls: direct controls; values set here win over the speech's.
        fps: output frame rate (default 25).
        seed: draws the generated blinks and head sway.
        max_frames: stop after this many frames.
    """
    fps = DEFAULT_FPS if fps is None else float(fps)
    driver = load(speech_method().speech_driver)
    frames, n = driver(os.fspath(audio), speech_weights(weights), fps, controls.validated(), int(seed))
    if max_frames is not None:
        n = min(n, max_frames)
        frames = (f for f in frames if f.index < n)
    stats = DrivingStats()
    return DrivingStream("speech", counted(frames, stats), fps, n, os.fspath(audio), stats, os.fspath(audio))
