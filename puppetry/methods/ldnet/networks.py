"""LD-Net's networks (paper 002, Sec. 3.1, Fig. 3): all multi-layer perceptrons on landmark coordinates.

- ``E_P``: pose/expression encoder, landmarks ``B x 2N`` -> code ``B x 64``.
- ``N_I``: one-layer identity network (Stage 1), one-hot label ``B x K`` -> identity code ``B x 128``.
- ``E_I``: identity encoder (Stage 2), landmarks -> identity code.
- ``G``: generator, ``[pose code, identity code]`` -> landmarks ``B x 2N``.
- ``C``: identity classifier, landmarks -> ``B x K`` logits over the training identities.
- ``D``: least-squares discriminator, landmarks -> ``B`` scores.
"""

from __future__ import annotations

import torch
from torch import nn

from puppetry.methods.ldnet.config import LDNetModel
from puppetry.nn.mlp import mlp


class LandmarkMLP(nn.Module):
    """An MLP that takes landmarks ``B x N x 2`` (or flat ``B x 2N``) and returns ``B x out``."""

    def __init__(self, num_points: int, out_features: int, cfg: LDNetModel):
        super().__init__()
        self.net = mlp(2 * num_points, out_features, cfg.hidden, cfg.layers)

    def forward(self, landmarks: torch.Tensor) -> torch.Tensor:
        return self.net(landmarks.flatten(1))


class Generator(nn.Module):
    """``G``: landmarks ``B x N x 2`` from a pose/expression code ``B x P`` and an identity code ``B x I``."""

    def __init__(self, cfg: LDNetModel):
        super().__init__()
        self.num_points = cfg.num_points
        self.net = mlp(cfg.pose_code + cfg.identity_code, 2 * cfg.num_points, cfg.hidden, cfg.layers)

    def forward(self, pose_code: torch.Tensor, identity_code: torch.Tensor) -> torch.Tensor:
        out = self.net(torch.cat([pose_code, identity_code], dim=1))
        return out.view(-1, self.num_points, 2)


class IdentityTable(nn.Module):
    """``N_I``: the one-layer network of Stage 1, one-hot identity ``k`` -> code (a linear map, no bias).

    Takes integer labels ``B`` (the one-hot product is an index into the weight)."""

    def __init__(self, num_identities: int, cfg: LDNetModel):
        super().__init__()
        self.linear = nn.Linear(num_identities, cfg.identity_code, bias=False)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        return self.linear.weight.t()[labels]


class Discriminator(nn.Module):
    """``D``: one least-squares score per landmark set (Eq. 3)."""

    def __init__(self, cfg: LDNetModel):
        super().__init__()
        self.net = LandmarkMLP(cfg.num_points, 1, cfg)

    def forward(self, landmarks: torch.Tensor) -> torch.Tensor:
        return self.net(landmarks).squeeze(1)


def build_networks(cfg: LDNetModel, num_identities: int) -> nn.ModuleDict:
    """All six LD-Net modules, freshly initialised (names as in the paper)."""
    n = cfg.num_points
    return nn.ModuleDict({
        "E_P": LandmarkMLP(n, cfg.pose_code, cfg),
        "E_I": LandmarkMLP(n, cfg.identity_code, cfg),
        "N_I": IdentityTable(num_identities, cfg),
        "G": Generator(cfg),
        "C": LandmarkMLP(n, num_identities, cfg),
        "D": Discriminator(cfg),
    })
