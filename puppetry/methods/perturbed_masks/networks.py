"""The four networks of image animation with perturbed masks (paper 004, Sec. 3) and their test-time use.

    m_s = m(D(s))                              mask of the source (Eq. 1, ``m`` on the 64 x 64 image)
    m_d = r(D(s), m_s, P_test(m(D(d))))        the driver's mask with the source's shape (Eq. 2)
    c   = l(D(s), m_s, m_d)                    the coarse frame, 64 x 64 in, 256 x 256 out (Eq. 3)
    f   = h(s, U(m_s), U(m_d), c)              the final frame (Eq. 4)

``D`` and ``U`` are bilinear resizes between the frame size (256) and the mask size (64). ``m``, ``r`` and
``h`` share one encoder-decoder (five encoder blocks conv3x3-ReLU-BN-avgpool, five decoder blocks
upsample-conv3x3-BN-ReLU, a 7x7 convolution and a sigmoid); ``h`` alone has U-Net skips. ``l`` is a
7x7 convolution, residual blocks, two upsampling blocks, a 7x7 convolution and a sigmoid. Frames are
``B x 3 x S x S`` RGB in [0, 1]; masks ``B x 1 x s x s`` in [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from puppetry.methods.perturbed_masks.config import PMModel, PerturbSettings
from puppetry.methods.perturbed_masks.perturbations import perturb_test


def resize(x: torch.Tensor, side: int) -> torch.Tensor:
    """``D`` (down) or ``U`` (up): bilinear resize of ``B x C x H x W`` to ``side x side`` (Eq. 1-4)."""
    if x.shape[-1] == side and x.shape[-2] == side:
        return x
    return F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False,
                         antialias=side < x.shape[-1])


class EncoderBlock(nn.Module):
    """conv3x3 -> ReLU -> BatchNorm -> 2x2 average pooling (the paper's order); halves the side."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.norm(F.relu(self.conv(x))), 2)


class DecoderBlock(nn.Module):
    """2x upsampling -> conv3x3 -> BatchNorm -> ReLU; doubles the side."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))))


class EncoderDecoder(nn.Module):
    """``blocks`` encoder blocks, as many decoder blocks, and (``skips``) U-Net concatenations.

    Encoder block ``i`` has ``min(width * 2^i, max_width)`` channels; the decoder mirrors it, ending at
    ``width`` channels at the input's side. With skips, each decoder block also reads the encoder
    features of its own side, and the input itself is concatenated to the output.

    ``B x c_in x S x S`` -> ``B x out_channels x S x S`` (``S`` a multiple of ``2^blocks``).
    """

    def __init__(self, c_in: int, width: int, blocks: int, max_width: int, skips: bool):
        super().__init__()
        chans = [min(width * 2 ** i, max_width) for i in range(blocks)]
        self.skips = skips
        self.down = nn.ModuleList(EncoderBlock(c_in if i == 0 else chans[i - 1], chans[i]) for i in range(blocks))
        up = []
        for j in range(blocks):
            c_from = chans[blocks - 1] if j == 0 else chans[blocks - 1 - j]
            if skips and j > 0:
                c_from += chans[blocks - 1 - j]              # encoder features of the same side
            c_to = chans[blocks - 2 - j] if j < blocks - 1 else width
            up.append(DecoderBlock(c_from, c_to))
        self.up = nn.ModuleList(up)
        self.out_channels = width + (c_in if skips else 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = []
        y = x
        for block in self.down:
            y = block(y)
            feats.append(y)
        y = feats[-1]
        for j, block in enumerate(self.up):
            if self.skips and j > 0:
                y = torch.cat([y, feats[len(feats) - 1 - j]], 1)
            y = block(y)
        return torch.cat([y, x], 1) if self.skips else y


class MaskHead(nn.Module):
    """An encoder-decoder, a 7x7 convolution to one channel and ``sigmoid(logit / temperature)``."""

    def __init__(self, c_in: int, width: int, config: PMModel):
        super().__init__()
        self.body = EncoderDecoder(c_in, width, config.blocks, config.max_width, skips=False)
        self.out = nn.Conv2d(self.body.out_channels, 1, 7, padding=3)
        self.temperature = config.temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.out(self.body(x)) / self.temperature)


class MaskGenerator(MaskHead):
    """``m``: ``D(x)`` ``B x 3 x s x s`` -> mask ``B x 1 x s x s`` (Eq. 1)."""

    def __init__(self, config: PMModel):
        super().__init__(3, config.mask_width, config)


class MaskRefiner(MaskHead):
    """``r``: ``D(s)``, ``m_s`` and a perturbed driver mask (``B x 5 x s x s`` together) -> ``m_d`` (Eq. 2)."""

    def __init__(self, config: PMModel):
        super().__init__(5, config.refine_width, config)

    def forward(self, small_source: torch.Tensor, mask_source: torch.Tensor,  # type: ignore[override]
                perturbed: torch.Tensor) -> torch.Tensor:
        return super().forward(torch.cat([small_source, mask_source, perturbed], 1))


class ResBlock(nn.Module):
    """BN -> ReLU -> conv3x3 -> BN -> ReLU -> conv3x3, added to the input."""

    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1),
                                  nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class LowResGenerator(nn.Module):
    """``l``: ``D(s)``, ``m_s``, a driver mask (``B x 5 x s x s``) -> ``c`` ``B x 3 x 4s x 4s`` (Eq. 3)."""

    def __init__(self, config: PMModel):
        super().__init__()
        w = config.low_width
        self.stem = nn.Sequential(nn.Conv2d(5, w, 7, padding=3), nn.BatchNorm2d(w), nn.ReLU())
        self.res = nn.Sequential(*[ResBlock(w) for _ in range(config.low_blocks)])
        self.up = nn.Sequential(DecoderBlock(w, max(w // 2, 1)), DecoderBlock(max(w // 2, 1), max(w // 4, 1)))
        self.out = nn.Conv2d(max(w // 4, 1), 3, 7, padding=3)

    def forward(self, small_source: torch.Tensor, mask_source: torch.Tensor,
                mask_driving: torch.Tensor) -> torch.Tensor:
        x = self.stem(torch.cat([small_source, mask_source, mask_driving], 1))
        return torch.sigmoid(self.out(self.up(self.res(x))))


class HighResGenerator(nn.Module):
    """``h``: ``s``, ``U(m_s)``, ``U(m_d)`` and ``c`` (``B x 8 x S x S``) -> ``f`` ``B x 3 x S x S`` (Eq. 4)."""

    def __init__(self, config: PMModel):
        super().__init__()
        self.body = EncoderDecoder(8, config.high_width, config.blocks, config.max_width, skips=True)
        self.out = nn.Conv2d(self.body.out_channels, 3, 7, padding=3)

    def forward(self, source: torch.Tensor, mask_source: torch.Tensor, mask_driving: torch.Tensor,
                coarse: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.out(self.body(torch.cat([source, mask_source, mask_driving, coarse], 1))))


class PerturbedMasks(nn.Module):
    """``m``, ``r``, ``l`` and ``h`` together, with the test-time path of Eq. 1-4."""

    def __init__(self, config: PMModel, perturb: PerturbSettings = PerturbSettings()):
        super().__init__()
        self.config = config
        self.perturb = perturb
        self.m = MaskGenerator(config)
        self.r = MaskRefiner(config)
        self.l = LowResGenerator(config)
        self.h = HighResGenerator(config)

    def down(self, x: torch.Tensor) -> torch.Tensor:
        """``D``: frame side -> mask side."""
        return resize(x, self.config.mask_size)

    def up(self, x: torch.Tensor) -> torch.Tensor:
        """``U``: mask side -> frame side."""
        return resize(x, self.config.size)

    def source_mask(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(D(s), m_s)`` of source frames ``B x 3 x S x S`` (Eq. 1); computed once per source."""
        small = self.down(source)
        return small, self.m(small)

    def animate(self, source: torch.Tensor, driving: torch.Tensor,
                prepared: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Eq. 1-4 at test time. ``source``, ``driving``: ``B x 3 x S x S``; ``prepared``: the source's
        :meth:`source_mask` (its batch may be 1 for any number of driving frames).

        Returns ``mask_source``, ``mask_raw`` (``m(D(d))``), ``mask_driving`` (``m_d``, Eq. 2), ``coarse``
        (``c``) and ``final`` (``f``).
        """
        small, mask_source = prepared if prepared is not None else self.source_mask(source)
        b = driving.shape[0]
        if small.shape[0] != b:
            small, mask_source = small.expand(b, -1, -1, -1), mask_source.expand(b, -1, -1, -1)
            source = source.expand(b, -1, -1, -1)
        mask_raw = self.m(self.down(driving))
        mask_driving = self.r(small, mask_source, perturb_test(mask_raw, self.perturb.test_shrink))
        coarse = self.l(small, mask_source, mask_driving)
        final = self.h(source, self.up(mask_source), self.up(mask_driving), coarse)
        return {"mask_source": mask_source, "mask_raw": mask_raw, "mask_driving": mask_driving,
                "coarse": coarse, "final": final}


def build_model(config: PMModel, perturb: PerturbSettings = PerturbSettings()) -> PerturbedMasks:
    """The four networks, freshly initialised (uniform constructor, as for every method)."""
    return PerturbedMasks(config, perturb)
