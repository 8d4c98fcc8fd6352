"""The coloring network's discriminator ``D_C`` and its losses (paper 000, Sec. 3.3, Eq. 7).

``L_col = L_rec + gamma1 L_perc + gamma2 L_GAN(G_C, D_C) + gamma3 L_feat(G_C, D_C)`` (Eq. 7). The paper
names "a multi-scale patch discriminator similar to PatchGAN" with "feature matching loss on all the
discriminators"; its form here is pix2pixHD's (Wang et al. 2018, ours):

- :class:`MultiScaleDiscriminator`: ``cfg.disc_scales`` PatchGANs on ``image | M_j^s`` (``B x (3 + K) x S x S``),
  the ``n``-th on the input average-pooled (3x3, stride 2) ``n`` times. Each PatchGAN::

      conv4x4 s2 -> LReLU                                          width w
      (conv4x4 s2 -> IN -> LReLU) x (disc_layers - 1)              width doubling, capped at 8 w
      conv4x4 s1 -> IN -> LReLU
      conv4x4 s1                                                   1 logit per patch

  Stride-2 layers pad 1 (exact halving), stride-1 layers pad 2 (as pix2pixHD).
- :func:`gan_loss`: least squares, ``mean (D - 1)^2`` for real and ``mean D^2`` for fake, mean over scales.
- :func:`feature_matching_loss`: L1 between the fake's and the (detached) real's intermediate features,
  mean over each PatchGAN's features (the logits excluded) and over scales. pix2pixHD's ``4 / (n + 1)``
  weighted sum over its ``n + 1`` features is 4 times this mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from puppetry.methods.puppeteergan.config import NUM_LABELS, ColorModel
from puppetry.methods.puppeteergan.wasic import resize_mask

Outputs = list[list[torch.Tensor]]
"""A discriminator's output: per scale, every layer's feature map; the last is the ``B x 1 x h x w`` logits."""


class PatchGAN(nn.Module):
    """One patch discriminator: ``B x C_in x H x W`` -> list of ``layers + 2`` feature maps (logits last)."""

    def __init__(self, in_channels: int, width: int, layers: int):
        super().__init__()
        blocks = [nn.Sequential(nn.Conv2d(in_channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2))]
        c_in = width
        for i in range(1, layers + 1):
            c_out = min(width * 2 ** i, width * 8)
            stride = 2 if i < layers else 1
            blocks.append(nn.Sequential(nn.Conv2d(c_in, c_out, 4, stride=stride, padding=1 if stride == 2 else 2),
                                        nn.InstanceNorm2d(c_out), nn.LeakyReLU(0.2)))
            c_in = c_out
        blocks.append(nn.Conv2d(c_in, 1, 4, stride=1, padding=2))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return features


class MultiScaleDiscriminator(nn.Module):
    """``D_C``: ``cfg.disc_scales`` PatchGANs on the image and the target one-hot mask, each at half the
    previous one's size.

    Args:
        cfg: ``disc_width``, ``disc_layers``, ``disc_scales``.
        num_labels: ``K``, channels of the one-hot mask.
    """

    def __init__(self, cfg: ColorModel, num_labels: int = NUM_LABELS):
        super().__init__()
        self.nets = nn.ModuleList(PatchGAN(3 + num_labels, cfg.disc_width, cfg.disc_layers)
                                  for _ in range(cfg.disc_scales))

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> Outputs:
        """Score real or generated portraits in their target geometry.

        Args:
            image: ``B x 3 x S x S`` in [0, 1].
            mask: ``B x K x S x S`` one-hot target mask ``M_j^s`` (any side; resized to ``S``).
        Returns:
            per scale (full size first), every feature map; the last is the patch logits.
        """
        x = torch.cat([image, resize_mask(mask.to(image.dtype), tuple(image.shape[-2:]))], dim=1)
        outputs = []
        for n, net in enumerate(self.nets):
            if n > 0:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(net(x))
        return outputs


def gan_loss(outputs: Outputs, real: bool) -> torch.Tensor:
    """Least-squares GAN loss (pix2pixHD): ``mean (logits - t)^2`` with ``t = 1`` (real) or 0, mean over scales.

    The discriminator takes ``gan_loss(D(real), True) + gan_loss(D(fake.detach()), False)``, the generator
    ``gan_loss(D(fake), True)``.
    """
    target = 1.0 if real else 0.0
    losses = [((features[-1] - target) ** 2).mean() for features in outputs]
    return torch.stack(losses).mean()


def feature_matching_loss(fake_outputs: Outputs, real_outputs: Outputs) -> torch.Tensor:
    """``L_feat``: L1 between the fake's and the real's intermediate features (real detached, logits
    excluded), mean over each scale's features and over scales."""
    losses = []
    for fake, real in zip(fake_outputs, real_outputs):
        per_layer = [F.l1_loss(f, r.detach()) for f, r in zip(fake[:-1], real[:-1])]
        losses.append(torch.stack(per_layer).mean())
    return torch.stack(losses).mean()
