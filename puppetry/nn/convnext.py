"""ConvNeXt-V2 (Woo et al. 2023): blocks with global response normalisation, and the backbone.

Parameter names follow the official ConvNeXt-V2 code (``downsample_layers``, ``stages``, ``dwconv``,
``pwconv1``, ``grn``, ``pwconv2``, ``norm``), so checkpoints built on it load without renaming.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

TINY_DEPTHS = (3, 3, 9, 3)
TINY_DIMS = (96, 192, 384, 768)


class LayerNorm2d(nn.Module):
    """Layer norm over the channels of ``B x C x H x W`` (eps 1e-6)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class GRN(nn.Module):
    """Global response normalisation of ``B x H x W x C``: ``gamma * (x * N(x)) + beta + x``.

    ``N(x)`` is each channel's L2 norm over H and W divided by its mean over channels.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gx = torch.linalg.vector_norm(x, ord=2, dim=(1, 2), keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * nx) + self.beta + x


class ConvNeXtV2Block(nn.Module):
    """Depthwise 7x7 conv, layer norm, MLP (4x) with GELU and GRN, residual; ``B x C x H x W``."""

    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.grn = GRN(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(self.grn(F.gelu(self.pwconv1(self.norm(y)))))
        return x + y.permute(0, 3, 1, 2)


class ConvNeXtV2(nn.Module):
    """ConvNeXt-V2 feature extractor: ``B x 3 x H x W -> B x dims[-1]`` (pooled, layer-normed).

    Args:
        depths: blocks per stage (tiny: 3, 3, 9, 3).
        dims: channels per stage (tiny: 96, 192, 384, 768).
    """

    def __init__(self, in_chans: int = 3, depths: tuple[int, ...] = TINY_DEPTHS, dims: tuple[int, ...] = TINY_DIMS):
        super().__init__()
        layers = [nn.Sequential(nn.Conv2d(in_chans, dims[0], 4, stride=4), LayerNorm2d(dims[0]))]
        for i in range(len(dims) - 1):
            layers.append(nn.Sequential(LayerNorm2d(dims[i]), nn.Conv2d(dims[i], dims[i + 1], 2, stride=2)))
        self.downsample_layers = nn.ModuleList(layers)
        self.stages = nn.ModuleList(nn.Sequential(*[ConvNeXtV2Block(d) for _ in range(n)])
                                    for d, n in zip(dims, depths))
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.out_features = dims[-1]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
        return self.norm(x.mean((-2, -1)))
