"""ArcFace face embeddings for the face-id loss L_faceid (paper 001, Sec. 3.2; Deng et al. 2019).

The network is insightface's IResNet (``arcface_torch`` backbones: r18/r34/r50/r100, 112 x 112 RGB in
[-1, 1] -> 512-d embedding); its depth is read from the weights file, whose tensor names are the
backbone's (``conv1.weight``, ``layer1.0.bn1.weight``, ..., ``fc.weight``, ``features.weight``).
Weights come from a path only (``losses.arcface_weights``); nothing is downloaded.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch
from torch import nn

from puppetry.errors import WeightsError
from puppetry.methods.liveportrait.checkpoints import read_checkpoint, strip_prefix

logger = logging.getLogger(__name__)

INPUT_SIZE = 112
WIDTHS = (64, 128, 256, 512)


class IBasicBlock(nn.Module):
    """``bn1, conv1 3x3, bn2, prelu, conv2 3x3 (stride), bn3`` plus a shortcut; ``B x C_in x H x W`` in."""

    def __init__(self, inplanes: int, planes: int, stride: int, downsample: nn.Module | None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-5)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-5)
        self.prelu = nn.PReLU(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-5)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + (x if self.downsample is None else self.downsample(x))


class IResNet(nn.Module):
    """``B x 3 x 112 x 112`` in [-1, 1] -> ``B x 512`` embeddings. ``layers``: blocks per stage (r50: 3, 4, 14, 3)."""

    def __init__(self, layers: tuple[int, int, int, int], num_features: int = 512):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
        self.prelu = nn.PReLU(64)
        inplanes = 64
        for i, (planes, count) in enumerate(zip(WIDTHS, layers)):
            down = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=2, bias=False), nn.BatchNorm2d(planes, eps=1e-5))
            blocks = [IBasicBlock(inplanes, planes, 2, down)] + [IBasicBlock(planes, planes, 1, None)
                                                                  for _ in range(count - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            inplanes = planes
        self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
        self.fc = nn.Linear(512 * 7 * 7, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.features(self.fc(torch.flatten(self.bn2(x), 1)))


def load_arcface(path: str | Path) -> IResNet:
    """IResNet with weights from ``path`` (depth from the file), frozen, in evaluation mode.

    Raises:
        WeightsError: missing or unreadable file, or not an ``arcface_torch`` IResNet (one line).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsError(f"losses.arcface_weights: '{path}' does not exist (ArcFace IResNet weights are needed)")
    state = strip_prefix(read_checkpoint(path))
    blocks = [0, 0, 0, 0]
    for key in state:
        m = re.match(r"layer([1-4])\.(\d+)\.", str(key))
        if m:
            blocks[int(m.group(1)) - 1] = max(blocks[int(m.group(1)) - 1], int(m.group(2)) + 1)
    if min(blocks) < 1 or not isinstance(state.get("fc.weight"), torch.Tensor):
        raise WeightsError(f"'{path}' is not ArcFace IResNet weights (insightface arcface_torch layout)")
    net = IResNet(tuple(blocks), num_features=int(state["fc.weight"].shape[0]))
    own = net.state_dict()
    for name, ref in own.items():
        value = state.get(name)
        if value is None and name.endswith("num_batches_tracked"):
            state[name] = ref
            continue
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != tuple(ref.shape):
            raise WeightsError(f"'{path}' is not ArcFace IResNet weights: {name} is "
                               f"{'missing' if value is None else tuple(value.shape)}, expected {tuple(ref.shape)}")
    net.load_state_dict({k: state[k].to(own[k].dtype) for k in own})
    logger.info("face-id loss: ArcFace IResNet (%s blocks) from %s", "-".join(map(str, blocks)), path)
    return net.eval().requires_grad_(False)


def embed(net: IResNet, faces: torch.Tensor) -> torch.Tensor:
    """Embeddings of aligned ``B x 3 x 112 x 112`` face crops in [0, 1] -> ``B x 512``."""
    return net(faces * 2 - 1)
