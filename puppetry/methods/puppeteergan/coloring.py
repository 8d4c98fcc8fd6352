"""The coloring network ``G_C`` of PuppeteerGAN (paper 000, Sec. 3.3, Fig. 3 right).

``G_C(I_i^s, M_i^s, M_j^s, L_i^s, L_j^s) -> I~_j^s``: the source portrait ``I_i^s`` recoloured into the target
geometry given by the target mask ``M_j^s`` (from the sketching network at inference). A U-Net whose
single convolutions are residual blocks; the decoder normalises with SPADE on ``M_j^s`` instead of batch
norm; the shallow levels are joined by WASIC (Eq. 6, :mod:`puppetry.methods.puppeteergan.wasic`). With
``L = cfg.levels``, ``w_l = min(cfg.width * 2^l, cfg.max_width)`` and ``S`` the image side::

    e_0 = conv3x3(I_i^s | M_i^s)                                S,        w_0
    e_l = ResDown(e_(l-1))              l = 1 .. L              S / 2^l,  w_l
    d_L = SPADEResBlock(ResBlock(e_L); M_j^s)                   S / 2^L,  w_L
    d_l = SPADEResBlock(up2(d_(l+1)); M_j^s)   l = L-1 .. 0     S / 2^l,  w_l
    d_l = WASIC_l(e_l, d_l, M_i^s, M_j^s, theta)   for l < cfg.wasic_levels (the shallowest)
    I~_j^s = sigmoid(conv3x3(LReLU(d_0)))                      S,        3

``theta`` (``B x G x 2 x 3``) holds one map per transform group, fitted once per forward from ``L_j^s`` to
``L_i^s`` (:func:`~puppetry.methods.puppeteergan.wasic.part_thetas`); without landmarks (still images under
geometry dropout, Sec. 3.3) every map is the identity. The network is fully convolutional: the same weights
run at any ``S`` that is a multiple of ``2^L`` (256 px training, 512 px for high-resolution stills).

Ours (the paper gives no sizes): the widths and depth, one residual block at the bottleneck, instance norm
in the encoder's residual blocks, nearest upsampling, leaky ReLU 0.2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from puppetry.methods.puppeteergan.config import NUM_LABELS, ColorModel
from puppetry.methods.puppeteergan.wasic import WASIC, identity_thetas, part_thetas, resize_mask
from puppetry.nn.spade import SPADEResBlock


class ResBlock(nn.Module):
    """Pre-activation residual block, optionally halving the size (He et al. 2016).

    ``B x fin x H x W -> B x fout x H/s x W/s`` (``s`` = 2 when ``down``)::

        out = shortcut(x) + conv3x3(LReLU(IN(conv3x3_s(LReLU(IN(x))))))
        shortcut(x) = conv1x1(avgpool_s(x))   (x itself when nothing changes)
    """

    def __init__(self, fin: int, fout: int, down: bool = False):
        super().__init__()
        self.down = down
        self.norm_0 = nn.InstanceNorm2d(fin, affine=True)
        self.conv_0 = nn.Conv2d(fin, fout, 3, stride=2 if down else 1, padding=1)
        self.norm_1 = nn.InstanceNorm2d(fout, affine=True)
        self.conv_1 = nn.Conv2d(fout, fout, 3, padding=1)
        self.conv_s = nn.Conv2d(fin, fout, 1, bias=False) if (fin != fout or down) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dx = self.conv_0(F.leaky_relu(self.norm_0(x), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx), 0.2))
        shortcut = x
        if self.down:
            shortcut = F.avg_pool2d(shortcut, 2)
        if self.conv_s is not None:
            shortcut = self.conv_s(shortcut)
        return shortcut + dx


class ColoringNetwork(nn.Module):
    """``G_C``: source image, source and target one-hot masks, landmarks -> target portrait in [0, 1].

    Args:
        cfg: sizes (:class:`~puppetry.methods.puppeteergan.config.ColorModel`).
        num_labels: ``K``, channels of the one-hot masks.
    """

    def __init__(self, cfg: ColorModel, num_labels: int = NUM_LABELS):
        super().__init__()
        self.levels = cfg.levels
        self.wasic_levels = cfg.wasic_levels
        widths = [min(cfg.width * 2 ** level, cfg.max_width) for level in range(cfg.levels + 1)]
        self.widths = widths

        self.stem = nn.Conv2d(3 + num_labels, widths[0], 3, padding=1)
        self.down = nn.ModuleList(ResBlock(widths[level - 1], widths[level], down=True)
                                  for level in range(1, cfg.levels + 1))
        self.bottleneck = ResBlock(widths[-1], widths[-1])
        self.head = SPADEResBlock(widths[-1], widths[-1], num_labels)
        # up[l] makes d_l (level l, l = 0 .. L-1) from d_(l+1).
        self.up = nn.ModuleList(SPADEResBlock(widths[level + 1], widths[level], num_labels)
                                for level in range(cfg.levels))
        self.wasic = nn.ModuleList(WASIC(cfg.mu_init) for _ in range(cfg.wasic_levels))
        self.out = nn.Conv2d(widths[0], 3, 3, padding=1)

    def forward(self, image_s: torch.Tensor, mask_s: torch.Tensor, mask_t: torch.Tensor,
                points_s: torch.Tensor | None = None, points_t: torch.Tensor | None = None) -> torch.Tensor:
        """Synthesise the target portrait ``I~_j^s``.

        Args:
            image_s: ``B x 3 x S x S`` source image ``I_i^s`` in [0, 1].
            mask_s: ``B x K x S x S`` one-hot source mask ``M_i^s`` (any side; resized to ``S``).
            mask_t: ``B x K x S x S`` one-hot target mask ``M_j^s`` (any side).
            points_s: ``B x P x 2`` source landmarks ``L_i^s`` (iBUG-68, normalised) or None.
            points_t: ``B x P x 2`` target landmarks ``L_j^s`` or None (both None: identity maps).
        Returns:
            ``B x 3 x S x S`` in [0, 1].
        """
        b, _, h, w = image_s.shape
        if h % 2 ** self.levels or w % 2 ** self.levels:
            raise ValueError(f"image side must be a multiple of {2 ** self.levels}, got {h} x {w}")
        if (points_s is None) != (points_t is None):
            raise ValueError("give both points_s and points_t, or neither")
        if points_s is None:
            thetas = identity_thetas(b, image_s.device, image_s.dtype)
        else:
            thetas = part_thetas(points_s, points_t).to(image_s.dtype)
        mask_s = mask_s.to(image_s.dtype)
        mask_t = mask_t.to(image_s.dtype)

        features = [self.stem(torch.cat([image_s, resize_mask(mask_s, (h, w))], dim=1))]   # e_0 .. e_L
        for block in self.down:
            features.append(block(features[-1]))

        d = self.head(self.bottleneck(features[-1]), mask_t)
        for level in reversed(range(self.levels)):
            d = self.up[level](F.interpolate(d, scale_factor=2, mode="nearest"), mask_t)
            if level < self.wasic_levels:
                d = self.wasic[level](features[level], d, mask_s, mask_t, thetas)
        return torch.sigmoid(self.out(F.leaky_relu(d, 0.2)))


def build_coloring(cfg: ColorModel) -> ColoringNetwork:
    """The coloring network for ``cfg`` with :data:`~puppetry.methods.puppeteergan.config.NUM_LABELS` labels."""
    return ColoringNetwork(cfg, NUM_LABELS)
