"""Motion extractor M (paper 001, Sec. 3.2): one image -> canonical keypoints and motion.

M is a ConvNeXt-V2-tiny backbone with linear heads for the canonical keypoints x_c (``K x 3``),
head pose as 66 bins per angle (pitch, yaw, roll; 3 degrees per bin from -97.5), translation t,
expression deformation delta (``K x 3``) and scale s.
"""

from __future__ import annotations

import torch
from torch import nn

from puppetry.methods.liveportrait.config import MotionConfig
from puppetry.nn.convnext import ConvNeXtV2


class _Detector(ConvNeXtV2):
    """The backbone plus the heads, under the release's parameter prefix ``detector``."""

    def __init__(self, cfg: MotionConfig):
        super().__init__()
        dim = self.out_features
        self.fc_kp = nn.Linear(dim, 3 * cfg.num_kp)
        self.fc_scale = nn.Linear(dim, 1)
        self.fc_pitch = nn.Linear(dim, cfg.num_bins)
        self.fc_yaw = nn.Linear(dim, cfg.num_bins)
        self.fc_roll = nn.Linear(dim, cfg.num_bins)
        self.fc_t = nn.Linear(dim, 3)
        self.fc_exp = nn.Linear(dim, 3 * cfg.num_kp)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.forward_features(x)
        return {"pitch": self.fc_pitch(h), "yaw": self.fc_yaw(h), "roll": self.fc_roll(h),
                "t": self.fc_t(h), "exp": self.fc_exp(h), "scale": self.fc_scale(h), "kp": self.fc_kp(h)}


class MotionExtractor(nn.Module):
    """M: ``B x 3 x 256 x 256`` RGB in [0, 1] -> raw head outputs.

    Returns a dict of ``B x 66`` logits ``pitch``, ``yaw``, ``roll``; ``B x 3`` ``t``;
    ``B x 3K`` ``exp`` and ``kp``; ``B x 1`` ``scale``. :mod:`puppetry.methods.liveportrait.kinematics` turns
    them into degrees, rotations and keypoints.
    """

    def __init__(self, cfg: MotionConfig = MotionConfig()):
        super().__init__()
        self.cfg = cfg
        self.detector = _Detector(cfg)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.detector(x)
