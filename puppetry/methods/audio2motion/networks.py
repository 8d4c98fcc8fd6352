"""The speech model: a temporal CNN from log-mel rows to lip-open and mouth shape (FaceFormer's task,
a convolutional encoder in place of its transformer, small enough to train on a CPU).

The network is non-causal and windowed: each output row sees ``1 + 2 * (1 + sum(dilations))`` rows of
10 ms around it (0.65 s with the defaults), as lips start moving before the sound they make.
"""

from __future__ import annotations

import torch
from torch import nn

from puppetry.methods.audio2motion.config import SpeechModel
from puppetry.methods.audio2motion.targets import MOUTH_POINTS

NUM_POINTS = len(MOUTH_POINTS)


class _Block(nn.Module):
    """Residual block: dilated 3-tap convolution, group norm, GELU, dropout, 1x1 convolution."""

    def __init__(self, channels: int, dilation: int, dropout: float):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation),
            nn.GroupNorm(1, channels), nn.GELU(), nn.Dropout(dropout), nn.Conv1d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SpeechToMouth(nn.Module):
    """Log-mel rows to per-row mouth motion.

    Input ``B x K x n_mels`` log-mel (:func:`~puppetry.methods.audio2motion.features.speech_features`),
    normalised inside by the training set's per-band mean and deviation (buffers saved with the weights);
    output ``B x K x (1 + 2P)``: column 0 is lip-open (a
    logit; ``sigmoid`` gives 0..1), columns ``1 + 2p``, ``2 + 2p`` the x, y change of mouth point ``p``
    from its rest (pose-free units).
    """

    def __init__(self, config: SpeechModel):
        super().__init__()
        c = config.channels
        self.register_buffer("mel_mean", torch.zeros(config.n_mels))
        self.register_buffer("mel_std", torch.ones(config.n_mels))
        self.stem = nn.Sequential(nn.Conv1d(config.n_mels, c, 3, padding=1), nn.GELU())
        self.blocks = nn.Sequential(*[_Block(c, d, config.dropout) for d in config.dilations])
        self.head = nn.Conv1d(c, 1 + 2 * NUM_POINTS, 1)
        self.energy_weight = nn.Parameter(torch.zeros(1)) if config.energy_skip else None

    @property
    def reach(self) -> int:
        """Rows seen on each side of an output row."""
        return 1 + sum(b.body[0].dilation[0] for b in self.blocks)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = ((mel - self.mel_mean) / self.mel_std).transpose(1, 2)
        out = self.head(self.blocks(self.stem(x))).transpose(1, 2)
        if self.energy_weight is None:
            return out
        energy = torch.logsumexp(mel, -1)                                          # B x K
        energy = (energy - energy.mean(1, keepdim=True)) / energy.std(1, keepdim=True).clamp(min=1e-3)
        return torch.cat([out[..., :1] + self.energy_weight * energy[..., None], out[..., 1:]], -1)


def split_output(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lips, shape)`` from :class:`SpeechToMouth`'s output: ``... x K`` in 0..1 and ``... x K x P x 2``."""
    return torch.sigmoid(out[..., 0]), out[..., 1:].unflatten(-1, (NUM_POINTS, 2))
