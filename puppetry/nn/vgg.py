"""VGG19 features and the multi-scale perceptual loss (FOMM / face vid2vid; paper 001's L_P,cascade;
paper 004's Eq. 9), shared by the methods that train with it.

The network is VGG19's convolutional part up to relu5_1, with torchvision's module indices, so its
weights load from a torchvision ``vgg19`` state dict (``features.0.weight`` ...; the classifier and
deeper layers in the file are ignored). Weights come from a path only (each recipe's
``losses.vgg19_weights``); nothing is downloaded.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from puppetry.errors import WeightsError
from puppetry.nn.weights import read_state_dict

logger = logging.getLogger(__name__)

# torchvision's VGG19 ("E") up to relu5_1: channels per conv, "M" for max pooling.
_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512)
TAPS = (1, 6, 11, 20, 29)               # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1
MIN_SIDE = 16                           # four poolings before relu5_1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG19Features(nn.Module):
    """``B x 3 x H x W`` RGB in [0, 1] -> [relu1_1, relu2_1, relu3_1, relu4_1, relu5_1] feature maps."""

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for item in _LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, int(item), 3, padding=1), nn.ReLU()]
                c_in = int(item)
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in TAPS:
                out.append(x)
        return out


def load_vgg19(path: str | Path) -> VGG19Features:
    """VGG19 features with weights from ``path`` (torchvision layout), frozen, in evaluation mode.

    Raises:
        WeightsError: the file is missing, unreadable, or not VGG19 weights in torchvision's layout (one line).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsError(f"losses.vgg19_weights: '{path}' does not exist (torchvision VGG19 weights are needed)")
    state = read_state_dict(path, "VGG19 weights")
    net = VGG19Features()
    own = net.state_dict()
    for name, ref in own.items():
        value = state.get(name)
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != tuple(ref.shape):
            found = "missing" if value is None else f"shape {tuple(getattr(value, 'shape', ()))}"
            raise WeightsError(f"'{path}' is not VGG19 weights in torchvision's layout: {name} is {found}, "
                               f"expected shape {tuple(ref.shape)}")
    net.load_state_dict({k: state[k].float() for k in own})
    logger.info("perceptual loss: VGG19 weights from %s", path)
    return net.eval().requires_grad_(False)


class PerceptualLoss(nn.Module):
    """``sum_scale sum_layer w_layer mean |VGG(fake) - VGG(real)|`` over an image pyramid.

    Scales whose image would be under 16 pixels (too small for relu5_1) are skipped.

    Args:
        vgg: :class:`VGG19Features` (frozen).
        layer_weights: weights of the five taps.
        scales: pyramid scales (FOMM: 1, 0.5, 0.25, 0.125).
    """

    def __init__(self, vgg: VGG19Features, layer_weights: tuple[float, ...], scales: tuple[float, ...]):
        super().__init__()
        self.vgg = vgg
        self.layer_weights = tuple(layer_weights)
        self.scales = tuple(scales)

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """``fake``, ``real``: ``B x 3 x H x W`` in [0, 1]; returns a scalar."""
        total = fake.new_zeros(())
        b = fake.shape[0]
        for scale in self.scales:
            side = int(fake.shape[-1] * scale)
            if side < MIN_SIDE:
                continue
            both = torch.cat([fake, real.detach()])
            if scale != 1:
                both = F.interpolate(both, size=(side, side), mode="bilinear", align_corners=False, antialias=True)
            for w, f in zip(self.layer_weights, self.vgg(both)):
                if w:
                    f = f.float()                    # features may come from autocast; differences in float32
                    total = total + w * (f[:b] - f[b:].detach()).abs().mean()
        return total
