"""The history of refined images the critic learns from (Shrivastava et al. 2017, Sec. 2.3; 003, Sec. 4.1).

A critic that only sees the refiner's latest images forgets the artefacts of older ones, and the refiner
can bring them back. So every critic batch of ``B`` refined images takes a share (half by default) from a
buffer of past refined images, the rest from the current mini-batch; afterwards as many random buffer
entries are replaced by current images. Each image keeps its displacement map (the critic is conditional).

The buffer is a module with fixed-size tensor buffers (images as uint8, maps as float16), so it travels
in training checkpoints and a resumed run continues with the same history. Random choices come from the
step's generator, so runs are reproducible.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class ImageHistory(nn.Module):
    """A fixed-size buffer of refined images and their displacement maps.

    Args:
        capacity: images kept (0: no history, :meth:`mix` returns the current images).
        size: crop side S.
        share: share of each critic batch drawn from the history once it holds enough images.
    """

    def __init__(self, capacity: int, size: int, share: float = 0.5):
        super().__init__()
        self.capacity, self.share = int(capacity), float(share)
        self.register_buffer("images", torch.zeros(self.capacity, 3, size, size, dtype=torch.uint8))
        self.register_buffer("maps", torch.zeros(self.capacity, 2, size, size, dtype=torch.float16))
        self.register_buffer("filled", torch.zeros((), dtype=torch.int64))

    def __len__(self) -> int:
        return int(self.filled)

    def mix(self, images: torch.Tensor, maps: torch.Tensor,
            rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """A critic batch of refined images, then the history updated with the current ones.

        Args:
            images: ``B x 3 x S x S`` current refined images in [0, 1] (detached).
            maps: ``B x 2 x S x S`` their displacement maps.
            rng: the step's generator.
        Returns:
            ``B x 3 x S x S`` images and ``B x 2 x S x S`` maps: ``B - k`` current ones (the first rows) and
            ``k = round(share * B)`` from the history (fewer while it holds fewer than ``k``).
        """
        b = images.shape[0]
        images, maps = images.detach(), maps.detach()
        k = min(round(self.share * b), len(self)) if self.capacity else 0
        out_images, out_maps = images, maps
        if k > 0:
            old = torch.from_numpy(rng.choice(len(self), k, replace=False)).to(self.images.device)
            past_images = self.images[old].to(images.device, images.dtype) / 255.0
            past_maps = self.maps[old].to(maps.device, maps.dtype)
            out_images = torch.cat([images[:b - k], past_images])
            out_maps = torch.cat([maps[:b - k], past_maps])
        self.push(images, maps, rng)
        return out_images, out_maps

    @torch.no_grad()
    def push(self, images: torch.Tensor, maps: torch.Tensor, rng: np.random.Generator) -> None:
        """Store current images: fill free slots first, then replace random entries."""
        if not self.capacity:
            return
        n = min(images.shape[0], self.capacity)
        images, maps = images[:n], maps[:n]
        free = self.capacity - len(self)
        new = min(free, n)
        slots = np.arange(len(self), len(self) + new)
        if n > new:
            slots = np.concatenate([slots, rng.choice(len(self), n - new, replace=False)])
        index = torch.from_numpy(slots).to(self.images.device)
        self.images[index] = (images.clamp(0, 1) * 255).round().to(self.images.device, torch.uint8)
        self.maps[index] = maps.to(self.maps.device, torch.float16)
        self.filled.fill_(len(self) + new)
