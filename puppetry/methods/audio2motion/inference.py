"""The trained speech model: its weights file, and mouth motion predicted for a whole recording."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from puppetry.engines.weights import read_settings, read_weights
from puppetry.errors import WeightsError, first_line
from puppetry.media.audio import Audio
from puppetry.methods.audio2motion.config import SpeechModel
from puppetry.methods.audio2motion.features import frame_rows, speech_features
from puppetry.methods.audio2motion.networks import SpeechToMouth, split_output

WEIGHTS_FORMAT = "puppetry-audio2motion"
WEIGHTS_FILE = "audio2motion.pt"
FLAG = "--audio-weights"
TRAIN_COMMAND = "puppetry train audio2motion"


@dataclass
class SpeechModelFile:
    """A loaded ``audio2motion.pt``.

    Attributes:
        net: the network, in eval mode on the CPU.
        neutral: ``478 x 3`` float32 rest expression of the training speakers (mouth closed, eyes open).
        statistics: blinks per minute and head sway of the training speakers (see
            :func:`~puppetry.methods.audio2motion.targets.motion_statistics`).
    """

    net: SpeechToMouth
    neutral: np.ndarray
    statistics: dict[str, float]


def load_speech_model(path: str | os.PathLike) -> SpeechModelFile:
    """Read ``audio2motion.pt`` (one-line :class:`WeightsError` when it is missing, foreign or damaged)."""
    payload = read_weights(path, WEIGHTS_FORMAT, FLAG, "speech-model weights", TRAIN_COMMAND)
    config = read_settings(SpeechModel, payload, "model", FLAG, path)
    net = SpeechToMouth(config)
    try:
        net.load_state_dict(payload["net"])
        neutral = np.asarray(payload["neutral"], np.float32)
        statistics = {k: float(v) for k, v in dict(payload["statistics"]).items()}
    except Exception as exc:  # noqa: BLE001 - any failure here is the file's
        raise WeightsError(f"{FLAG}: '{path}' does not fit the speech model: {first_line(exc)[:160]}") from None
    if neutral.shape != (478, 3) or not np.isfinite(neutral).all():
        raise WeightsError(f"{FLAG}: '{path}' holds a damaged neutral face")
    return SpeechModelFile(net.eval(), neutral, statistics)


def export_payload(net: SpeechToMouth, config: dict, neutral: np.ndarray, statistics: dict[str, float]) -> dict:
    """What :func:`load_speech_model` reads (plain tensors and numbers only)."""
    return {"format": WEIGHTS_FORMAT, "model": config, "net": {k: v.cpu() for k, v in net.state_dict().items()},
            "neutral": torch.from_numpy(np.asarray(neutral, np.float32)), "statistics": dict(statistics)}


@torch.no_grad()
def predict_mouth(net: SpeechToMouth, audio: Audio, fps: float, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Lip-open ``num_frames`` (0..1) and mouth shape ``num_frames x P x 2`` for a whole recording, frame
    ``i`` at ``i / fps`` s."""
    mel = speech_features(audio)
    device = net.mel_mean.device
    out = net(torch.from_numpy(mel).to(device)[None])[0].float().cpu()
    rows = torch.from_numpy(frame_rows(num_frames, fps, len(mel)))
    lips, shape = split_output(out[rows])
    return lips.numpy().astype(np.float32), shape.numpy().astype(np.float32)
