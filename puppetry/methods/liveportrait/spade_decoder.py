"""SPADE decoder G (paper 001, Sec. 3.1): warped features -> 512 x 512 image.

The warped features are both the input and the SPADE label map. Six residual blocks at 64x64, two
upsampling blocks (128, 256), then a 3x3 conv to 12 channels and a PixelShuffle to 512x512.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from puppetry.methods.liveportrait.config import DecoderConfig
from puppetry.nn.spade import SPADEResBlock


class SPADEDecoder(nn.Module):
    """G: ``B x 256 x 64 x 64`` -> ``B x 3 x 512 x 512`` RGB in [0, 1]."""

    def __init__(self, cfg: DecoderConfig = DecoderConfig(), out_channels: int = 64):
        super().__init__()
        self.cfg = cfg
        c = min(cfg.max_features, cfg.block_expansion * 2 ** cfg.num_down_blocks)   # 256
        self.fc = nn.Conv2d(c, 2 * c, 3, padding=1)
        for i in range(6):
            self.add_module(f"G_middle_{i}", SPADEResBlock(2 * c, 2 * c, c))
        self.up_0 = SPADEResBlock(2 * c, c, c)
        self.up_1 = SPADEResBlock(c, out_channels, c)
        if cfg.upscale > 1:
            self.conv_img = nn.Sequential(nn.Conv2d(out_channels, 3 * cfg.upscale ** 2, 3, padding=1),
                                          nn.PixelShuffle(cfg.upscale))
        else:
            self.conv_img = nn.Conv2d(out_channels, 3, 3, padding=1)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        seg = feature
        device = feature.device.type
        if torch.is_autocast_enabled(device):      # cast the label map once, not in each of its 18 convs
            seg = feature.to(torch.get_autocast_dtype(device))
        x = self.fc(feature)
        for i in range(6):
            x = getattr(self, f"G_middle_{i}")(x, seg)
        x = self.up_0(F.interpolate(x, scale_factor=2.0, mode="nearest"), seg)
        x = self.up_1(F.interpolate(x, scale_factor=2.0, mode="nearest"), seg)
        return torch.sigmoid(self.conv_img(F.leaky_relu(x, 0.2)))
