"""Stitching and retargeting MLPs (paper 001, Sec. 3.3): small MLPs on implicit keypoints.

- stitching S: ``[x_s, x_d]`` (126) -> 65 = a ``21 x 3`` offset of x_d plus a shared (dx, dy);
- eyes retargeting R_eyes: ``[x_s, c_s,eyes (2), c_d,eyes (1)]`` (66) -> ``21 x 3`` offset;
- lip retargeting R_lip: ``[x_s, c_s,lip (1), c_d,lip (1)]`` (65) -> ``21 x 3`` offset.
"""

from __future__ import annotations

import torch
from torch import nn


class RetargetingMLP(nn.Module):
    """Linear layers with ReLU between them; sizes e.g. ``(126, 128, 128, 64, 65)``. ``B x in -> B x out``."""

    def __init__(self, sizes: tuple[int, ...]):
        super().__init__()
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            if i:
                layers.append(nn.ReLU())
            layers.append(nn.Linear(a, b))
        self.mlp = nn.Sequential(*layers)
        self.sizes = tuple(sizes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)
