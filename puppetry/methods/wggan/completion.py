"""hrh-GAN's networks: Iizuka et al.'s completion network and context discriminators (paper 003, Sec. 4.2).

The completion network (Iizuka et al. 2017, Table 1) is fully convolutional: two stride-2 convolutions
down to a quarter of the side, four dilated convolutions (dilation 2, 4, 8, 16) that give every hole
pixel a wide context, two stride-2 deconvolutions back up; Batch Normalization and ReLU after every
layer but the sigmoid output. Its input is the image with the hole filled by a constant colour (here
each image's mean colour outside the hole) and the hole mask as a fourth channel.

Hierarchical training (003, Sec. 4.2, after Karras et al. 2017) gives each network two resolutions:

- ``resolution = 128``: Iizuka's architecture. The first convolution (``S x S x 4 -> S x S x 64``,
  5 x 5) and the last two layers (``S x S x 64 -> S x S x 32 -> S x S x 3``) surround the trunk.
- ``resolution = 256``: that first convolution is replaced by three
  (``2S x 2S x 4 -> 2S x 2S x 16 -> 2S x 2S x 32 -> S x S x 64``, the last with stride 2) and the output
  layers likewise (``S x S x 64 -> 2S x 2S x 32 -> 2S x 2S x 16 -> 2S x 2S x 3``, the first a stride-2
  deconvolution); the trunk is the same modules.

Both ends exist in every network (the unused pair is a few thousand weights), so checkpoints hold the
same tensors before and after the growth and a run resumes across it. The discriminators grow the same
way: their first stride-2 convolution (``S -> S/2``, 64 channels) is replaced by two (``2S -> S -> S/2``,
32 then 64 channels), and the rest, down to ``4 x 4`` and a 1024-wide fully connected layer, is kept.

The paper's sides are 128 and 256; the networks take any ``base_size`` (a power of two, 32 or more), so
tests train at 32 and 64. Channel counts are Iizuka's times ``width``.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from puppetry.errors import WeightsError, first_line
from puppetry.nn.weights import check_state_dict, read_state_dict
from puppetry.training.config import ConfigError, from_dict
from puppetry.methods.wggan.completion_config import WEIGHTS_FORMAT, HrhGanModel, TemporalSettings

logger = logging.getLogger(__name__)

RESOLUTIONS = (128, 256)
_DISC_CHANNELS = (64, 128, 256, 512, 512, 512, 512, 512)


def _ch(n: int, width: float) -> int:
    return max(1, round(n * width))


def _conv(cin: int, cout: int, k: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """Convolution + BatchNorm + ReLU, padded to keep ``side / stride``."""
    pad = dilation * (k - 1) // 2
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _deconv(cin: int, cout: int) -> nn.Sequential:
    """4 x 4 stride-2 deconvolution (side doubles) + BatchNorm + ReLU."""
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


def _check_resolution(value: int) -> int:
    if value not in RESOLUTIONS:
        raise ValueError(f"resolution must be 128 or 256, got {value}")
    return int(value)


def fill_hole(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The network's input: ``x`` with the hole set to each image's mean colour outside it, and the mask.

    Args:
        x: ``B x 3 x S x S`` in [0, 1] (what is inside the hole is never read).
        mask: ``B x 1 x S x S`` in [0, 1], 1 = hole.

    Returns:
        ``B x 4 x S x S``.
    """
    keep = 1.0 - mask
    mean = (x * keep).sum((2, 3), keepdim=True) / keep.sum((2, 3), keepdim=True).clamp_min(1.0)
    return torch.cat([x * keep + mean * mask, mask], 1)


class CompletionNetwork(nn.Module):
    """Iizuka et al.'s completion network with hrh-GAN's two resolutions (see the module docstring).

    Args:
        width: factor on Iizuka's channel counts (1.0: 64 / 128 / 256).
        resolution: 128 (Iizuka's layers) or 256 (the grown input and output layers); changeable later
            through the attribute of the same name.
    """

    def __init__(self, width: float = 1.0, resolution: int = 128):
        super().__init__()
        c16, c32, c64, c128, c256 = (_ch(n, width) for n in (16, 32, 64, 128, 256))
        self.width = width
        self.resolution = _check_resolution(resolution)
        self.head128 = _conv(4, c64, 5)
        self.head256 = nn.Sequential(_conv(4, c16, 5), _conv(c16, c32, 3), _conv(c32, c64, 3, stride=2))
        self.trunk = nn.Sequential(
            _conv(c64, c128, 3, 2), _conv(c128, c128, 3),
            _conv(c128, c256, 3, 2), _conv(c256, c256, 3), _conv(c256, c256, 3),
            *[_conv(c256, c256, 3, dilation=d) for d in (2, 4, 8, 16)],
            _conv(c256, c256, 3), _conv(c256, c256, 3),
            _deconv(c256, c128), _conv(c128, c128, 3),
            _deconv(c128, c64))
        self.tail128 = nn.Sequential(_conv(c64, c32, 3), nn.Conv2d(c32, 3, 3, 1, 1), nn.Sigmoid())
        self.tail256 = nn.Sequential(_deconv(c64, c32), _conv(c32, c16, 3), nn.Conv2d(c16, 3, 3, 1, 1), nn.Sigmoid())

    @property
    def factor(self) -> int:
        """Input sides must be multiples of this."""
        return 4 if self.resolution == 128 else 8

    def ends(self, resolution: int | None = None) -> tuple[nn.Module, nn.Module]:
        """The input and output layers used at ``resolution`` (default: the current one)."""
        r = self.resolution if resolution is None else _check_resolution(resolution)
        return (self.head128, self.tail128) if r == 128 else (self.head256, self.tail256)

    def raw(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The network's output ``B x 3 x S x S`` in (0, 1) everywhere (not composited)."""
        if x.shape[-1] % self.factor or x.shape[-2] % self.factor:
            raise ValueError(f"image sides must be multiples of {self.factor} at resolution {self.resolution}, "
                             f"got {tuple(x.shape[-2:])}")
        head, tail = self.ends()
        return tail(self.trunk(head(fill_hole(x, mask))))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Fill the hole.

        Args:
            x: ``B x 3 x S x S`` RGB in [0, 1].
            mask: ``B x 1 x S x S``, 1 inside the hole (soft edges allowed).

        Returns:
            ``B x 3 x S x S``: ``mask * out + (1 - mask) * x``, so pixels outside the hole are ``x``'s exactly.
        """
        out = self.raw(x, mask)
        return mask * out + (1.0 - mask) * x


class _Discriminator(nn.Module):
    """Stride-2 5 x 5 convolutions from ``size`` down to 4 x 4, then a fully connected layer of 1024.

    ``size`` is the input side at resolution 128; at 256 the input is twice as large and the first
    convolution is replaced by two (see the module docstring).
    """

    def __init__(self, size: int, width: float, resolution: int):
        super().__init__()
        n = round(math.log2(size)) - 2                          # convolutions from size to 4 at resolution 128
        if 2 ** (n + 2) != size or n < 2:
            raise ConfigError(f"discriminator input side must be a power of two of 16 or more, got {size}")
        chans = [_ch(c, width) for c in _DISC_CHANNELS[:n]]
        self.size = size
        self.resolution = _check_resolution(resolution)
        self.head128 = _conv(3, chans[0], 5, 2)
        self.head256 = nn.Sequential(_conv(3, _ch(32, width), 5, 2), _conv(_ch(32, width), chans[0], 5, 2))
        self.body = nn.Sequential(*[_conv(a, b, 5, 2) for a, b in itertools.pairwise(chans)])
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(chans[-1] * 16, _ch(1024, width)), nn.ReLU(inplace=True))

    @property
    def features(self) -> int:
        return self.fc[1].out_features

    @property
    def input_side(self) -> int:
        return self.size if self.resolution == 128 else 2 * self.size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``B x 3 x s x s`` (``s = input_side``) -> ``B x 1024·width`` features."""
        if x.shape[-2:] != (self.input_side, self.input_side):
            raise ValueError(f"{type(self).__name__} at resolution {self.resolution} takes "
                             f"{self.input_side} x {self.input_side} inputs, got {tuple(x.shape[-2:])}")
        head = self.head128 if self.resolution == 128 else self.head256
        return self.fc(self.body(head(x)))


class GlobalDiscriminator(_Discriminator):
    """Iizuka's global discriminator: the whole ``base_size`` (or ``2 base_size``) face crop."""

    def __init__(self, base_size: int = 128, width: float = 1.0, resolution: int = 128):
        super().__init__(base_size, width, resolution)


class LocalDiscriminator(_Discriminator):
    """Iizuka's local discriminator: a patch of half the side, centred on the hole (the mouth)."""

    def __init__(self, base_size: int = 128, width: float = 1.0, resolution: int = 128):
        super().__init__(base_size // 2, width, resolution)


class ContextDiscriminator(nn.Module):
    """Global and local discriminators, their 1024-vectors concatenated, one fully connected output.

    ``forward(image, patch)`` takes ``B x 3 x S x S`` and ``B x 3 x S/2 x S/2`` and returns ``B x 1``
    logits (the probability of being real is their sigmoid; Iizuka et al., Sec. 3.2).
    """

    def __init__(self, base_size: int = 128, width: float = 1.0, resolution: int = 128):
        super().__init__()
        self.global_d = GlobalDiscriminator(base_size, width, resolution)
        self.local_d = LocalDiscriminator(base_size, width, resolution)
        self.out = nn.Linear(self.global_d.features + self.local_d.features, 1)

    @property
    def resolution(self) -> int:
        return self.global_d.resolution

    @resolution.setter
    def resolution(self, value: int) -> None:
        self.global_d.resolution = self.local_d.resolution = _check_resolution(value)

    def heads(self, resolution: int) -> list[nn.Module]:
        """The input layers used at ``resolution`` (both discriminators')."""
        name = "head128" if _check_resolution(resolution) == 128 else "head256"
        return [getattr(self.global_d, name), getattr(self.local_d, name)]

    def forward(self, image: torch.Tensor, patch: torch.Tensor) -> torch.Tensor:
        return self.out(torch.cat([self.global_d(image), self.local_d(patch)], 1))


def crop_patches(images: torch.Tensor, corners: torch.Tensor, side: int) -> torch.Tensor:
    """Square patches of a batch, each at its own corner, by one gather (no loop over the batch).

    Args:
        images: ``B x C x S x S``.
        corners: ``B x 2`` integer ``(x, y)`` top-left corners, patches inside the image.
        side: patch side.

    Returns:
        ``B x C x side x side``.
    """
    r = torch.arange(side, device=images.device)
    rows = (corners[:, 1:2] + r)[:, :, None]                      # B x side x 1
    cols = (corners[:, 0:1] + r)[:, None, :]                      # B x 1 x side
    b = torch.arange(images.shape[0], device=images.device)[:, None, None]
    return images.permute(0, 2, 3, 1)[b, rows, cols].permute(0, 3, 1, 2)


# ------------------------------------------------------------------------------------------- inference
@dataclass
class CompletionModel:
    """A trained completion network ready for inference (in eval mode, no gradients).

    Attributes:
        network: the :class:`CompletionNetwork`.
        size: the crop side it was trained at (256 in the paper): cut face crops at this size.
        temporal: the temporal blending settings it was trained with
            (:class:`puppetry.methods.wggan.temporal.MouthBlender`).
    """

    network: CompletionNetwork
    size: int
    temporal: TemporalSettings = field(default_factory=TemporalSettings)

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    def __call__(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``B x 3 x S x S`` in [0, 1] and ``B x 1 x S x S`` hole -> ``B x 3 x S x S`` completed (composited)."""
        with torch.no_grad():
            return self.network(x.to(self.device), mask.to(self.device))

    def complete(self, crop: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """One face: ``S x S x 3`` uint8 RGB crop and ``S x S`` float hole -> ``S x S x 3`` uint8 completed."""
        x = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)[None].float() / 255.0
        m = torch.from_numpy(np.ascontiguousarray(hole, dtype=np.float32))[None, None]
        out = self(x, m)[0].permute(1, 2, 0).cpu().numpy()
        return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)


def weights_payload(network: CompletionNetwork, model: HrhGanModel, size: int,
                    temporal: TemporalSettings) -> dict:
    """What ``hrhgan.pt`` holds: format tag, model config, size, resolution, temporal settings, weights."""
    from puppetry.training.config import to_dict
    return {"format": WEIGHTS_FORMAT, "model": to_dict(model), "size": int(size),
            "resolution": int(network.resolution), "temporal": to_dict(temporal),
            "state_dict": {k: v.detach().cpu() for k, v in network.state_dict().items()}}


def load_completer(path: str | Path, device: str | torch.device = "cpu") -> CompletionModel:
    """Read ``hrhgan.pt`` (written by ``puppetry train hrhgan``).

    Raises:
        WeightsError: the file is missing, unreadable, not an hrh-GAN file or its tensors do not match.
    """
    path = Path(path)
    what = "hrh-GAN weights"
    if not path.is_file():
        raise WeightsError(f"{what} not found: {path} (train them with 'puppetry train hrhgan')")
    data = read_state_dict(path, what)
    if data.get("format") != WEIGHTS_FORMAT:
        raise WeightsError(f"'{path}' is not an hrh-GAN weights file (format {data.get('format')!r}, "
                           f"expected {WEIGHTS_FORMAT!r})")
    try:
        model = from_dict(HrhGanModel, dict(data["model"]), "model")
        temporal = from_dict(TemporalSettings, dict(data.get("temporal", {})), "temporal")
        size, resolution = int(data["size"]), int(data["resolution"])
        network = CompletionNetwork(model.width, resolution)
        state = data["state_dict"]
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise WeightsError(f"'{path}' is a damaged hrh-GAN weights file: {first_line(exc)[:200]}") from None
    if not isinstance(state, dict):
        raise WeightsError(f"'{path}' is a damaged hrh-GAN weights file: no state dict")
    check_state_dict(state, network.state_dict(), f"'{path}'")
    network.load_state_dict(state)
    network.eval().requires_grad_(False)
    return CompletionModel(network.to(device), size, temporal)
