"""Coordinate grids and keypoint heatmaps over 3D feature volumes (batched, torch).

Conventions (those of grid_sample with ``align_corners=False`` inputs used by face-vid2vid and
LivePortrait): coordinates are normalised to [-1, 1] per axis with ``-1`` at the first voxel centre and
``+1`` at the last; the last grid axis holds ``(x, y, z)`` = (width, height, depth).
"""

from __future__ import annotations

import torch


def coordinate_grid_3d(depth: int, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """``D x H x W x 3`` grid of normalised ``(x, y, z)`` voxel coordinates (dtype/device of ``like``)."""
    def axis(n: int) -> torch.Tensor:
        return 2 * (torch.arange(n, dtype=like.dtype, device=like.device) / (n - 1)) - 1

    z, y, x = torch.meshgrid(axis(depth), axis(height), axis(width), indexing="ij")
    return torch.stack([x, y, z], dim=-1)


def keypoint_gaussians(kp: torch.Tensor, spatial: tuple[int, int, int], variance: float) -> torch.Tensor:
    """Gaussian blobs at keypoints: ``exp(-|p - kp|^2 / (2 variance))``.

    Args:
        kp: ``B x K x 3`` keypoints in normalised ``(x, y, z)``.
        spatial: ``(D, H, W)`` of the volume.
        variance: blob variance in normalised units.
    Returns:
        ``B x K x D x H x W`` heatmaps.
    """
    grid = coordinate_grid_3d(*spatial, like=kp)
    diff = grid[None, None] - kp[:, :, None, None, None, :]
    return torch.exp(-0.5 * diff.pow(2).sum(-1) / variance)
