"""SPADE normalisation (Park et al. 2019) and its residual block, with spectral-norm convolutions.

The convolutions of :class:`SPADEResBlock` keep the parameter layout of
``torch.nn.utils.spectral_norm`` (``weight_orig``, ``weight_u``, ``weight_v``) so that checkpoints saved
from such models load as they are. At inference the stored vectors are used as they are (no power
iteration), exactly what ``spectral_norm`` does in evaluation mode:
``W = W_orig / sigma`` with ``sigma = u . (W_orig.reshape(C_out, -1) v)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from puppetry.nn.upsampled_conv import conv3x3_of_upsampled


class SpectralNormConv2d(nn.Module):
    """2D convolution whose weight is divided by its spectral norm estimate ``sigma``.

    Args:
        in_channels, out_channels, kernel_size, padding: as ``nn.Conv2d``.
        bias: whether the convolution has a bias.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0, bias: bool = True):
        super().__init__()
        self.padding = padding
        self.weight_orig = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.register_buffer("weight_u", torch.empty(out_channels))
        self.register_buffer("weight_v", torch.empty(in_channels * kernel_size * kernel_size))
        nn.init.kaiming_uniform_(self.weight_orig, a=5 ** 0.5)
        nn.init.normal_(self.weight_u)
        nn.init.normal_(self.weight_v)

    def weight(self) -> torch.Tensor:
        """The normalised weight ``W_orig / sigma`` (``C_out x C_in x k x k``)."""
        w = self.weight_orig
        sigma = torch.dot(self.weight_u, torch.mv(w.flatten(1), self.weight_v))
        return w / sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight().to(x.dtype), None if self.bias is None else self.bias.to(x.dtype),
                        padding=self.padding)


class SPADE(nn.Module):
    """Spatially-adaptive denormalisation: ``IN(x) * (1 + gamma(seg)) + beta(seg)``.

    ``x``: ``B x norm_nc x H x W``; ``seg``: ``B x label_nc x h x w``, resized (nearest) to ``H x W``. When
    ``H x W`` is an integer multiple of ``h x w``, the shared convolution runs on ``seg`` itself
    (:func:`~puppetry.nn.upsampled_conv.conv3x3_of_upsampled`, same result, 2.25-5.8x fewer multiply-adds).
    """

    def __init__(self, norm_nc: int, label_nc: int, hidden: int = 128):
        super().__init__()
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, hidden, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, norm_nc, 3, padding=1)
        self.mlp_beta = nn.Conv2d(hidden, norm_nc, 3, padding=1)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        normalized = F.instance_norm(x, eps=1e-5)
        actv = self.label_features(seg, (x.shape[2], x.shape[3]))
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


    def label_features(self, seg: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """``mlp_shared`` of ``seg`` resized (nearest) to ``size``: ``B x hidden x size``."""
        h, w = seg.shape[2:]
        if (h, w) == size:
            return self.mlp_shared(seg)
        scale = size[0] // h
        conv = self.mlp_shared[0]
        if (scale * h, scale * w) == size:
            return F.relu(conv3x3_of_upsampled(seg, conv.weight, conv.bias, scale))
        return self.mlp_shared(F.interpolate(seg, size=size, mode="nearest"))


class SPADEResBlock(nn.Module):
    """Residual block with SPADE before each spectral-norm convolution (leaky ReLU 0.2).

    ``B x fin x H x W -> B x fout x H x W``; a learned 1x1 shortcut when ``fin != fout``.
    """

    def __init__(self, fin: int, fout: int, label_nc: int):
        super().__init__()
        self.learned_shortcut = fin != fout
        fmiddle = min(fin, fout)
        self.conv_0 = SpectralNormConv2d(fin, fmiddle, 3, padding=1)
        self.conv_1 = SpectralNormConv2d(fmiddle, fout, 3, padding=1)
        self.norm_0 = SPADE(fin, label_nc)
        self.norm_1 = SPADE(fmiddle, label_nc)
        if self.learned_shortcut:
            self.conv_s = SpectralNormConv2d(fin, fout, 1, bias=False)
            self.norm_s = SPADE(fin, label_nc)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        x_s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return x_s + dx
