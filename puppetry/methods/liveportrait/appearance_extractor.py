"""Appearance feature extractor F (paper 001, Sec. 3.1): source image -> 3D feature volume f_s."""

from __future__ import annotations

import torch
from torch import nn

from puppetry.methods.liveportrait.config import AppearanceConfig
from puppetry.nn.blocks import DownBlock2d, ResBlock3d, SameBlock2d


class AppearanceFeatureExtractor(nn.Module):
    """F: ``B x 3 x 256 x 256`` RGB in [0, 1] -> f_s, ``B x 32 x 16 x 64 x 64``.

    A 2D encoder (same block, two down blocks, 1x1 conv to 512 channels) whose channels are
    reshaped into ``reshape_channel x reshape_depth``, then 3D residual blocks.
    """

    def __init__(self, cfg: AppearanceConfig = AppearanceConfig()):
        super().__init__()
        self.cfg = cfg
        self.first = SameBlock2d(cfg.image_channel, cfg.block_expansion)
        blocks, c_out = [], cfg.block_expansion
        for i in range(cfg.num_down_blocks):
            c_in = min(cfg.max_features, cfg.block_expansion * 2 ** i)
            c_out = min(cfg.max_features, cfg.block_expansion * 2 ** (i + 1))
            blocks.append(DownBlock2d(c_in, c_out))
        self.down_blocks = nn.ModuleList(blocks)
        self.second = nn.Conv2d(c_out, cfg.max_features, 1)
        self.resblocks_3d = nn.Sequential()
        for i in range(cfg.num_resblocks):
            self.resblocks_3d.add_module(f"3dr{i}", ResBlock3d(cfg.reshape_channel))

    def forward(self, x_s: torch.Tensor) -> torch.Tensor:
        out = self.first(x_s)
        for block in self.down_blocks:
            out = block(out)
        out = self.second(out)
        b, _, h, w = out.shape
        f_s = out.view(b, self.cfg.reshape_channel, self.cfg.reshape_depth, h, w)
        return self.resblocks_3d(f_s)
