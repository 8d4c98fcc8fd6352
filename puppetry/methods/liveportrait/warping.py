"""Warping module W (paper 001, Sec. 3.1): warps f_s by the motion from x_s to x_d.

The dense motion network turns the keypoints into a 3D flow and an occlusion map; the flow samples
f_s, the volume is flattened to 2D (``32 x 16 -> 512`` channels), refined by two convolutions and
multiplied by the occlusion map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from puppetry.methods.liveportrait.config import WarpingConfig
from puppetry.methods.liveportrait.dense_motion import DenseMotionNetwork
from puppetry.nn.blocks import SameBlock2d


class WarpingNetwork(nn.Module):
    """W: ``(f_s B x 32 x 16 x 64 x 64, x_s B x K x 3, x_d B x K x 3)`` -> warped features."""

    def __init__(self, cfg: WarpingConfig = WarpingConfig()):
        super().__init__()
        self.cfg = cfg
        dm = cfg.dense_motion
        self.dense_motion_network = DenseMotionNetwork(
            cfg.num_kp, cfg.reshape_channel, dm.block_expansion, dm.max_features, dm.num_blocks,
            dm.reshape_depth, dm.compress, cfg.estimate_occlusion_map)
        channels = cfg.block_expansion * 2 ** cfg.num_down_blocks
        self.third = SameBlock2d(cfg.max_features, channels, lrelu=True)
        self.fourth = nn.Conv2d(channels, channels, 1)

    def forward(self, f_s: torch.Tensor, kp_source: torch.Tensor, kp_driving: torch.Tensor) -> dict[str, torch.Tensor]:
        """Returns ``out`` ``B x 256 x 64 x 64`` (input of G), ``deformation`` ``B x 16 x 64 x 64 x 3``
        and ``occlusion_map`` ``B x 1 x 64 x 64``."""
        motion = self.dense_motion_network(f_s, kp_driving=kp_driving, kp_source=kp_source)
        warped = F.grid_sample(f_s, motion["deformation"], align_corners=False)
        b, c, d, h, w = warped.shape
        out = self.fourth(self.third(warped.view(b, c * d, h, w)))
        occlusion = motion.get("occlusion_map")
        if occlusion is not None:
            out = out * occlusion
        return {"out": out, "deformation": motion["deformation"], "occlusion_map": occlusion}
