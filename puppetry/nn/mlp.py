"""The multilayer perceptron that landmark networks share (LD-Net's encoders, PuppeteerGAN's E_L and D_I)."""

from __future__ import annotations

from torch import nn


def mlp(in_features: int, out_features: int, hidden: int, layers: int) -> nn.Sequential:
    """``layers`` hidden linear layers of ``hidden`` features, each followed by LeakyReLU(0.2), then a linear
    output layer: ``B x in_features -> B x out_features``."""
    modules: list[nn.Module] = []
    width = in_features
    for _ in range(layers):
        modules += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
        width = hidden
    modules.append(nn.Linear(width, out_features))
    return nn.Sequential(*modules)
