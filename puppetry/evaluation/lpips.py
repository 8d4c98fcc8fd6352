"""LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric"),
AlexNet trunk with the v0.1 linear heads, and the loading of its two weight files.

The distance between two images: both go through AlexNet's five conv stages (after each ReLU), each
feature map is unit-normalised along channels, the squared difference is weighted per channel by a
learned 1x1 convolution (the "linear head"), averaged over space and summed over the five stages.
0 for identical images, larger is more different (typically 0.0-0.7).

Weights are never downloaded; give them from files:

* the trunk: torchvision's ImageNet AlexNet state dict (``alexnet-owt-7be5be79.pth``: keys
  ``features.0.weight`` ... ``features.10.bias``; its ``classifier.*`` tensors are ignored), or a whole
  ``lpips.LPIPS`` state dict (``net.slice1.0.weight`` ...);
* the heads: the lpips package's ``lpips/weights/v0.1/alex.pth`` (keys ``lin0.model.1.weight`` ...
  ``lin4.model.1.weight``, shapes ``1 x C x 1 x 1``).

Both are read with ``torch.load(weights_only=True)`` on the CPU and loaded strictly: a missing,
unexpected or mis-shaped tensor is a one-line :class:`~puppetry.errors.WeightsError`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from puppetry.errors import WeightsError
from puppetry.nn.weights import check_state_dict
from puppetry.nn.weights import read_state_dict as read_weights

logger = logging.getLogger(__name__)

ENV_VAR = "PUPPETRY_LPIPS_DIR"
CHANNELS = (64, 192, 384, 256, 256)
CONV_INDICES = (0, 3, 6, 8, 10)          # conv layers of torchvision's ``alexnet().features``
TAP_INDICES = (1, 4, 7, 9, 11)           # the ReLUs whose outputs LPIPS compares
SLICES = {1: (0, 1), 2: (2, 3, 4), 3: (5, 6, 7), 4: (8, 9), 5: (10, 11)}   # lpips.pretrained_networks.alexnet
SHIFT = (-0.030, -0.088, -0.188)         # lpips v0.1 ScalingLayer: ImageNet statistics in [-1, 1] units
SCALE = (0.458, 0.448, 0.450)
MAX_FILE_BYTES = 1_000_000_000


def _alexnet_features() -> nn.Sequential:
    """torchvision's AlexNet ``features`` up to the last ReLU, same indices (so the same keys)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
    )


class LinearHead(nn.Module):
    """A 1x1 convolution to one channel, behind a dropout (kept for the key name ``model.1.weight``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, kernel_size=1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LPIPS(nn.Module):
    """LPIPS v0.1 with an AlexNet trunk.

    State-dict keys: ``features.{0,3,6,8,10}.{weight,bias}`` and ``lin{0..4}.model.1.weight``.
    """

    def __init__(self):
        super().__init__()
        self.features = _alexnet_features()
        for i, c in enumerate(CHANNELS):
            self.add_module(f"lin{i}", LinearHead(c))
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in TAP_INDICES:
                out.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Distances of ``B x 3 x H x W`` images in [0, 1] (pairs of one size); returns ``B``."""
        a = ((2 * a - 1) - self.shift) / self.scale
        b = ((2 * b - 1) - self.shift) / self.scale
        total = torch.zeros(a.shape[0], dtype=a.dtype, device=a.device)
        for i, (fa, fb) in enumerate(zip(self._taps(a), self._taps(b))):
            total = total + getattr(self, f"lin{i}")((fa - fb) ** 2).mean(dim=(1, 2, 3))
        return total

    @torch.inference_mode()
    def distance(self, generated: Sequence[np.ndarray], truth: Sequence[np.ndarray], batch: int = 8) -> np.ndarray:
        """LPIPS of frame pairs.

        Args:
            generated, truth: equally long lists of ``H x W x 3`` uint8 RGB frames, pairwise of one size.
            batch: pairs per forward pass.
        Returns:
            ``N`` float distances.
        """
        out = []
        for start in range(0, len(generated), batch):
            a = _to_tensor(generated[start:start + batch])
            b = _to_tensor(truth[start:start + batch])
            out.append(self(a, b).numpy())
        return np.concatenate(out) if out else np.zeros(0)


def _to_tensor(frames: Sequence[np.ndarray]) -> torch.Tensor:
    """``N x H x W x 3`` uint8 frames as an ``N x 3 x H x W`` float tensor in [0, 1]."""
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255.0


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """``torch.load(weights_only=True)`` on the CPU; any failure is a one-line WeightsError."""
    state = read_weights(path, "weights", MAX_FILE_BYTES)
    if not all(isinstance(k, str) for k in state):
        raise WeightsError(f"weights '{path}' are not a state dict (its keys are not names)")
    return state


def _weight_files(spec: str | os.PathLike | Sequence[str | os.PathLike] | None) -> tuple[list[Path], bool]:
    """Files named by ``spec`` (folders expand to their ``.pth``/``.pt`` files); True when from a folder."""
    if spec is None or (isinstance(spec, (list, tuple)) and not spec):
        env = os.environ.get(ENV_VAR)
        if not env:
            raise WeightsError(f"no LPIPS weights given (--lpips-weights or ${ENV_VAR}: torchvision's "
                               "alexnet-owt-7be5be79.pth and the lpips package's v0.1 alex.pth)")
        spec = env
    items = [spec] if isinstance(spec, (str, os.PathLike)) else list(spec)
    paths = [Path(p).expanduser() for item in items for p in os.fspath(item).split(",") if p.strip()]
    files, from_folder = [], False
    for p in paths:
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix in (".pth", ".pt"))
            if not found:
                raise WeightsError(f"LPIPS weights folder '{p}' holds no .pth file")
            files.extend(found)
            from_folder = True
        elif p.is_file():
            files.append(p)
        else:
            raise WeightsError(f"LPIPS weights '{p}' do not exist")
    return files, from_folder


def _trunk_from(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
    """The ``features.N.*`` tensors of a torchvision AlexNet or an lpips.LPIPS state dict, else None."""
    if "features.0.weight" in state:
        return {k: v for k, v in state.items() if k.startswith("features.")}
    if "net.slice1.0.weight" in state:
        return {f"features.{k.split('.', 3)[2]}.{k.split('.', 3)[3]}": v
                for k, v in state.items() if k.startswith("net.slice")}
    return None


def load_lpips(spec: str | os.PathLike | Sequence[str | os.PathLike] | None = None) -> LPIPS:
    """Build :class:`LPIPS` and load its weights.

    Args:
        spec: a folder holding both files, the two files (a list or one comma-separated string), or
            None for ``$PUPPETRY_LPIPS_DIR``.
    Raises:
        WeightsError: no weights given, a file missing or unreadable, the trunk or the heads not found,
            or a tensor missing, unexpected or of the wrong shape.
    """
    files, from_folder = _weight_files(spec)
    model = LPIPS()
    expected = model.state_dict()
    trunk_ref = {k: v for k, v in expected.items() if k.startswith("features.")}
    heads_ref = {k: v for k, v in expected.items() if k.startswith("lin")}
    trunk = heads = None
    for path in files:
        state = read_state_dict(path)
        found = _trunk_from(state)
        if found is not None and trunk is None:
            check_state_dict(found, trunk_ref, f"AlexNet trunk '{path}'")
            rest = {k for k in state if not k.startswith(("features.", "net.", "classifier.", "lin",
                                                          "scaling_layer."))}
            if rest:
                raise WeightsError(f"AlexNet trunk '{path}': unexpected tensor(s) {', '.join(sorted(rest)[:5])}")
            trunk = found
        lin = {k: v for k, v in state.items() if k.startswith("lin")}
        if lin and heads is None:
            check_state_dict(lin, heads_ref, f"LPIPS heads '{path}'")
            if found is None and len(lin) != len(state):
                extra = sorted(k for k in state if not k.startswith("lin"))
                raise WeightsError(f"LPIPS heads '{path}': unexpected tensor(s) {', '.join(extra[:5])}")
            heads = lin
        if found is None and not lin and not from_folder:
            raise WeightsError(f"'{path}' is neither an AlexNet state dict (features.N.*) nor LPIPS heads "
                               "(lin0.model.1.weight ...)")
    if trunk is None:
        raise WeightsError("no AlexNet trunk among the LPIPS weights (torchvision's alexnet-owt-7be5be79.pth, "
                           "keys features.N.*)")
    if heads is None:
        raise WeightsError("no LPIPS linear heads among the LPIPS weights (the lpips package's "
                           "weights/v0.1/alex.pth, keys lin0.model.1.weight ...)")
    model.load_state_dict({**trunk, **heads}, strict=True)
    logger.info("LPIPS (AlexNet, v0.1) loaded from %s", ", ".join(str(f) for f in files))
    return model


__all__ = ["LPIPS", "load_lpips", "read_state_dict", "ENV_VAR"]
