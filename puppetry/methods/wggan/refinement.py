"""wg-GAN's networks (paper 003, Sec. 4.1, Fig. 3) and its trained refiner at inference.

:class:`RefinementNetwork` ``R(x_w, M)``: the warped face ``x_w`` (``B x 3 x S x S``, [0, 1]) and its
displacement map ``M`` (``B x 2 x S x S``) in, a refined face out::

    e1 = LReLU(conv7x7 s1 (x_w | M))                  S,    w1
    e2 = LReLU(conv5x5 s2 e1)                          S/2,  w2
    e3 = LReLU(conv3x3 s2 e2)                          S/4,  w3   ("only downsample to 1/4")
    r  = four residual blocks (e3)                     S/4,  w3
    d1 = LReLU(conv3x3 upsample2(r))                   S/2,  w2   resize-convolution
    d2 = LReLU(conv3x3 upsample2(d1 | e2))             S,    w1   resize-convolution, skip from e2
    R  = sigmoid(conv7x7 (d2 | e1))                    S,    3    skip from e1

so the last two convolutions see the first two's features at the same resolution (Isola et al. 2017).
Output pixels outside the face mask are discarded: ``forward(x_w, M, mask)`` returns
``mask * R + (1 - mask) * x_w``.

:class:`Critic` ``D(x, M)``: six convolutions (7x7, 5x5, then 3x3; stride 2 where they downsize), LReLU,
flattened (``128 x 16 x 16 = 32 768`` features at S = 256 with the default widths) into one fully
connected layer with no activation: a Wasserstein critic's score ``B``.

:func:`load_refiner` reads ``RUN/wggan.pt`` (written by ``puppetry train wggan``) into a
:class:`RefinementModel`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from puppetry.errors import WeightsError, first_line
from puppetry.nn.weights import check_state_dict, read_state_dict
from puppetry.training.config import ConfigError, from_dict
from puppetry.methods.wggan.displacement import PartStatistics
from puppetry.methods.wggan.refinement_config import WEIGHTS_FORMAT, WgGanModel


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride, padding=k // 2)


class ResidualBlock(nn.Module):
    """``x + conv3x3(LReLU(conv3x3(x)))`` followed by LReLU (He et al. 2016), ``B x C x H x W``."""

    def __init__(self, channels: int, slope: float):
        super().__init__()
        self.conv1 = _conv(channels, channels, 3)
        self.conv2 = _conv(channels, channels, 3)
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.leaky_relu(self.conv1(x), self.slope))
        return F.leaky_relu(x + y, self.slope)


class RefinementNetwork(nn.Module):
    """The face refinement network R (see the module docstring).

    Args:
        width: channels ``(w1, w2, w3)`` of the three encoder convolutions.
        res_blocks: residual blocks at 1/4 resolution (4 in the paper).
        slope: LReLU negative slope.
    """

    def __init__(self, width: tuple[int, int, int] = (32, 64, 128), res_blocks: int = 4, slope: float = 0.2):
        super().__init__()
        w1, w2, w3 = width
        self.slope = slope
        self.enc1 = _conv(5, w1, 7)
        self.enc2 = _conv(w1, w2, 5, 2)
        self.enc3 = _conv(w2, w3, 3, 2)
        self.blocks = nn.Sequential(*[ResidualBlock(w3, slope) for _ in range(res_blocks)])
        self.up1 = _conv(w3, w2, 3)
        self.up2 = _conv(2 * w2, w1, 3)
        self.out = _conv(2 * w1, 3, 7)

    def refine(self, warped: torch.Tensor, displacement: torch.Tensor) -> torch.Tensor:
        """``R(x_w, M)``: ``B x 3 x S x S`` in [0, 1], everywhere (no mask)."""
        def act(x: torch.Tensor) -> torch.Tensor:
            return F.leaky_relu(x, self.slope)

        e1 = act(self.enc1(torch.cat([warped, displacement], 1)))
        e2 = act(self.enc2(e1))
        r = self.blocks(act(self.enc3(e2)))
        d1 = act(self.up1(F.interpolate(r, scale_factor=2.0, mode="nearest")))
        d2 = act(self.up2(F.interpolate(torch.cat([d1, e2], 1), scale_factor=2.0, mode="nearest")))
        return torch.sigmoid(self.out(torch.cat([d2, e1], 1)))

    def forward(self, warped: torch.Tensor, displacement: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The refined face with the output outside the mask discarded.

        Args:
            warped: ``B x 3 x S x S`` ``x_w`` in [0, 1] (S a multiple of 4).
            displacement: ``B x 2 x S x S`` ``M``.
            mask: ``B x 1 x S x S`` (or ``B x S x S``) face mask in [0, 1].
        Returns:
            ``B x 3 x S x S``: ``mask * R(x_w, M) + (1 - mask) * x_w``.
        """
        if mask.dim() == 3:
            mask = mask[:, None]
        return mask * self.refine(warped, displacement) + (1 - mask) * warped


class Critic(nn.Module):
    """The conditional Wasserstein critic D(x, M) (see the module docstring).

    Args:
        size: side S of its inputs (fixes the fully connected layer).
        channels: output channels of the six convolutions.
        strides: their strides.
        slope: LReLU negative slope.
    """

    KERNELS = (7, 5, 3, 3, 3, 3)

    def __init__(self, size: int = 256, channels: tuple[int, ...] = (32, 64, 128, 256, 256, 128),
                 strides: tuple[int, ...] = (2, 2, 2, 2, 1, 1), slope: float = 0.2):
        super().__init__()
        self.slope = slope
        cins = (5, *channels[:-1])
        self.convs = nn.ModuleList(_conv(i, o, k, s) for i, o, k, s in zip(cins, channels, self.KERNELS, strides))
        side = size
        for s in strides:
            side = (side - 1) // s + 1
        self.features = int(channels[-1] * side * side)
        self.fc = nn.Linear(self.features, 1)

    def forward(self, image: torch.Tensor, displacement: torch.Tensor) -> torch.Tensor:
        """Scores ``B`` of images ``B x 3 x S x S`` with their maps ``B x 2 x S x S`` (higher: more real)."""
        x = torch.cat([image, displacement], 1)
        for conv in self.convs:
            x = F.leaky_relu(conv(x), self.slope)
        return self.fc(x.flatten(1))[:, 0]


def build_networks(model: WgGanModel) -> tuple[RefinementNetwork, Critic]:
    """``R`` and ``D`` for a model config."""
    r = RefinementNetwork(tuple(model.width), model.res_blocks, model.slope)
    d = Critic(model.size, tuple(model.disc_channels), tuple(model.disc_strides), model.slope)
    return r, d


@dataclass
class RefinementModel:
    """A trained refinement network at inference.

    Attributes:
        network: R, in eval mode on ``device``.
        statistics: the part statistics its displacement maps must be normalised with.
        size: crop side S it was trained at.
        model: its network config.
        device: where it runs.
    """

    network: RefinementNetwork
    statistics: PartStatistics
    size: int
    model: WgGanModel
    device: torch.device

    @torch.no_grad()
    def __call__(self, warped: torch.Tensor, displacement: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Refine a batch: ``B x 3 x S x S`` [0, 1], ``B x 2 x S x S``, ``B x 1 x S x S`` -> ``B x 3 x S x S``."""
        dev = self.device
        return self.network(warped.to(dev), displacement.to(dev), mask.to(dev)).clamp(0, 1)

    def refine_crop(self, warped: np.ndarray, displacement: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Refine one crop: ``S x S x 3`` uint8, ``2 x S x S`` float32, ``S x S`` float32 -> ``S x S x 3`` uint8."""
        x = torch.from_numpy(np.ascontiguousarray(warped, np.float32) / 255.0).permute(2, 0, 1)[None]
        m = torch.from_numpy(np.ascontiguousarray(displacement, np.float32))[None]
        k = torch.from_numpy(np.ascontiguousarray(mask, np.float32))[None, None]
        out = self(x, m, k)[0].permute(1, 2, 0).cpu().numpy()
        return (out * 255 + 0.5).astype(np.uint8)


def load_refiner(path: str | os.PathLike, device: str | torch.device = "cpu") -> RefinementModel:
    """Read ``wggan.pt`` (``puppetry train wggan``) into a :class:`RefinementModel`.

    Raises:
        WeightsError: the file is missing, unreadable, of another method or does not match its config
            (one line).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"wg-GAN weights not found: {path}")
    data = read_state_dict(path, "wg-GAN weights")
    if data.get("format") != WEIGHTS_FORMAT:
        raise WeightsError(f"{path} is not a wg-GAN weights file (write one with puppetry train wggan)")
    try:
        model = from_dict(WgGanModel, data["model"], "model")
        statistics = PartStatistics.from_dict(data["statistics"])
        state = data["refiner"]
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise WeightsError(f"{path}: malformed wg-GAN weights file: {first_line(exc)[:160]}") from None
    network = RefinementNetwork(tuple(model.width), model.res_blocks, model.slope)
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: malformed wg-GAN weights file: 'refiner' is not a state dict")
    check_state_dict(state, network.state_dict(), str(path))
    network.load_state_dict(state)
    dev = torch.device(device)
    return RefinementModel(network.to(dev).eval(), statistics, int(model.size), model, dev)
