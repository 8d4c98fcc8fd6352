"""FD-GAN's networks (paper 002, Sec. 3.2, Fig. 4; supplementary Sec. 6): the extractor ``E``, the translator,
their composition ``T(x_T, l_T, l'_T)`` and the patch discriminator ``D`` and identity classifier ``C``.

With ``L`` levels of widths ``w_1 .. w_L`` (finest first) on ``S x S`` inputs:

- down-convolution module (:class:`DownPath`, shared by every network): per level a stride-2 4x4
  convolution to ``w_l`` then a flat 3x3 convolution; level ``l`` is at ``S / 2^l``;
- extractor (:class:`Extractor`) on ``x_T | l_T`` (``B x (3 + C) x S x S``): down path, then up from the
  coarsest level; per level the U-Net skip is added, a :class:`~.dictionary.DictionaryWriter` writes
  dictionary ``l`` (``rows_l x w_l``), then a flat 3x3 and a stride-2 4x4 up-convolution lead to the next
  level. The finest level ends at its writer (its convolutions would feed nothing);
- translator (:class:`Translator`) on ``l'_T`` (``B x C x S x S``): the same, with a
  :class:`~.dictionary.DictionaryReader` in place of each writer (the values read are added to the
  features), every level up-convolved, and a 3x3 convolution with tanh drawing ``B x 3 x S x S`` in [-1, 1];
- ``D`` and ``C`` (:class:`PatchNetwork`): the down path on an image, then a 1x1 convolution to one score
  (``D``) or one logit per training identity (``C``) per patch, ``B x out x S/2^L x S/2^L``.

Every convolution is followed by LeakyReLU(0.2) except the heads; nothing is normalised (ours: a norm
would rescale away the appearance the translator reads from the dictionary).
"""

from __future__ import annotations

import torch
from torch import nn

from puppetry.methods.fdgan.conditions import channels
from puppetry.methods.fdgan.config import FDGanModel
from puppetry.methods.fdgan.dictionary import DictionaryReader, DictionaryWriter


def _act() -> nn.Module:
    return nn.LeakyReLU(0.2)


class DownPath(nn.Module):
    """``B x C_in x S x S`` -> features per level, finest first: ``B x w_l x S/2^l x S/2^l``."""

    def __init__(self, in_channels: int, widths: tuple[int, ...]):
        super().__init__()
        levels, c = [], in_channels
        for w in widths:
            levels.append(nn.Sequential(nn.Conv2d(c, w, 4, stride=2, padding=1), _act(),
                                        nn.Conv2d(w, w, 3, padding=1), _act()))
            c = w
        self.levels = nn.ModuleList(levels)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for level in self.levels:
            x = level(x)
            features.append(x)
        return features


def _up(c_in: int, c_out: int) -> nn.Module:
    """Flat 3x3, then a stride-2 4x4 up-convolution (doubles the side)."""
    return nn.Sequential(nn.Conv2d(c_in, c_in, 3, padding=1), _act(),
                         nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), _act())


class Extractor(nn.Module):
    """``E``: source image and its condition -> one dictionary per level (finest first), ``B x rows_l x w_l``."""

    def __init__(self, model: FDGanModel):
        super().__init__()
        w = model.widths
        self.down = DownPath(3 + channels(model.condition), w)
        self.writers = nn.ModuleList(DictionaryWriter(w[l], model.rows[l], model.tag_length, w[l])
                                     for l in range(model.levels))
        self.ups = nn.ModuleList(_up(w[l], w[l - 1]) for l in range(1, model.levels))   # level l -> l - 1

    def forward(self, image: torch.Tensor, condition: torch.Tensor) -> list[torch.Tensor]:
        """``B x 3 x S x S`` in [-1, 1] and ``B x C x S x S`` -> dictionaries, finest first."""
        skips = self.down(torch.cat([image, condition], 1))
        h = skips[-1]
        dictionaries = [None] * len(skips)
        for l in range(len(skips) - 1, -1, -1):
            if l < len(skips) - 1:
                h = h + skips[l]
            dictionaries[l] = self.writers[l](h)
            if l > 0:
                h = self.ups[l - 1](h)
        return dictionaries


class Translator(nn.Module):
    """Target condition and the source's dictionaries -> ``B x 3 x S x S`` image in [-1, 1]."""

    def __init__(self, model: FDGanModel):
        super().__init__()
        w = model.widths
        self.down = DownPath(channels(model.condition), w)
        self.readers = nn.ModuleList(DictionaryReader(w[l], model.rows[l], model.tag_length)
                                     for l in range(model.levels))
        self.ups = nn.ModuleList(_up(w[l], w[max(l - 1, 0)]) for l in range(model.levels))
        self.head = nn.Conv2d(w[0], 3, 3, padding=1)

    def forward(self, condition: torch.Tensor, dictionaries: list[torch.Tensor]) -> torch.Tensor:
        skips = self.down(condition)
        h = skips[-1]
        for l in range(len(skips) - 1, -1, -1):
            if l < len(skips) - 1:
                h = h + skips[l]
            h = self.readers[l](h, dictionaries[l])
            h = self.ups[l](h)
        return torch.tanh(self.head(h))


class FDGan(nn.Module):
    """``T(x_T, l_T, l'_T)``: the extractor and the translator joined by the dictionaries."""

    def __init__(self, model: FDGanModel):
        super().__init__()
        self.model = model
        self.extractor = Extractor(model)
        self.translator = Translator(model)

    def forward(self, image: torch.Tensor, condition: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``B x 3 x S x S`` source in [-1, 1], its ``B x C x S x S`` condition and the target's -> ``B x 3 x S x S``."""
        return self.translator(target, self.extractor(image, condition))


class PatchNetwork(nn.Module):
    """``D`` (``out=1``) or ``C`` (``out`` identities): ``B x 3 x S x S`` -> ``B x out x S/2^L x S/2^L``."""

    def __init__(self, model: FDGanModel, out: int):
        super().__init__()
        self.down = DownPath(3, model.widths)
        self.head = nn.Conv2d(model.widths[-1], out, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.down(image)[-1])


def build_fdgan(model: FDGanModel) -> FDGan:
    """The extractor-translator of ``model``."""
    return FDGan(model)
