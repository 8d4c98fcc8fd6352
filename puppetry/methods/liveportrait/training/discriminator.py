"""Multi-scale patch discriminators D_global, D_face and D_lip of the cascaded GAN loss (paper 001, Sec. 3.2).

Each is FOMM / face vid2vid's patch discriminator (spectral-norm convolutions, instance norm from the
second block, leaky ReLU 0.2, 2x2 average pooling, a 1x1 convolution to one logit per patch) at one or
more image scales. FOMM's unpadded 4x4 convolutions are replaced by padded 3x3 ones, so that the small
lip crops of low-resolution runs still give patches; scales whose image would be smaller than the
network's pooling are dropped when the discriminator is built (they would leave unused parameters).
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

logger = logging.getLogger(__name__)

Output = list[tuple[list[torch.Tensor], torch.Tensor]]
"""A discriminator's output: per scale, (feature maps, ``N x 1 x h x w`` logits)."""


class _DownBlock(nn.Module):
    """Spectral-norm conv 3x3, optional instance norm, leaky ReLU 0.2, optional 2x2 average pooling."""

    def __init__(self, c_in: int, c_out: int, norm: bool, pool: bool):
        super().__init__()
        self.conv = spectral_norm(nn.Conv2d(c_in, c_out, 3, padding=1))
        self.norm = nn.InstanceNorm2d(c_out, affine=True) if norm else None
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x)
        x = F.leaky_relu(x, 0.2)
        return F.avg_pool2d(x, 2) if self.pool else x


class PatchDiscriminator(nn.Module):
    """``B x 3 x H x W`` -> (feature maps of every block, ``B x 1 x H/2^(n-1) x W/2^(n-1)`` logits)."""

    def __init__(self, block_expansion: int = 32, max_features: int = 512, num_blocks: int = 4):
        super().__init__()
        blocks, c_in = [], 3
        for i in range(num_blocks):
            c_out = min(max_features, block_expansion * 2 ** (i + 1))
            blocks.append(_DownBlock(c_in, c_out, norm=i > 0, pool=i < num_blocks - 1))
            c_in = c_out
        self.down_blocks = nn.ModuleList(blocks)
        self.conv = spectral_norm(nn.Conv2d(c_in, 1, 1))

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        features = []
        for block in self.down_blocks:
            x = block(x)
            features.append(x)
        return features, self.conv(x)


class MultiScaleDiscriminator(nn.Module):
    """One :class:`PatchDiscriminator` per usable scale of ``size``-pixel images.

    Args:
        size: side of the images it will see.
        scales: wanted scales (1 = as given); a scale is kept when ``size * scale >= 2^(num_blocks - 1)``.
    """

    def __init__(self, size: int, scales: tuple[float, ...], block_expansion: int, max_features: int,
                 num_blocks: int, name: str = "D"):
        super().__init__()
        least = 2 ** (num_blocks - 1)
        self.scales = tuple(s for s in scales if int(size * s) >= least)
        if not self.scales:
            self.scales = (1.0,)
        dropped = [s for s in scales if s not in self.scales]
        if dropped:
            logger.info("%s: %d-pixel images are too small for scale(s) %s; dropped", name, size, dropped)
        self.size = size
        self.nets = nn.ModuleList(PatchDiscriminator(block_expansion, max_features, num_blocks) for _ in self.scales)

    def forward(self, x: torch.Tensor) -> Output:
        """``B x 3 x size x size`` in [0, 1] -> per scale (features, logits)."""
        out = []
        for scale, net in zip(self.scales, self.nets):
            xs = x if scale == 1 else F.interpolate(x, size=(int(self.size * scale),) * 2, mode="bilinear",
                                                   align_corners=False, antialias=True)
            out.append(net(xs))
        return out


def split_output(out: Output, n: int) -> tuple[Output, Output]:
    """Split a discriminator's output on ``cat([a, b])`` (``a`` has ``n`` images) into the two halves."""
    first = [([f[:n] for f in feats], logits[:n]) for feats, logits in out]
    second = [([f[n:] for f in feats], logits[n:]) for feats, logits in out]
    return first, second
