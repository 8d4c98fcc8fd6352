"""The random thin-plate-spline warp of the equivariance loss L_E (face vid2vid, after FOMM).

A warp ``T`` maps normalised coordinates ``p`` of the *warped* image to the original image:
``T(p) = A p + b + sum_k w_k phi(|p - c_k|)`` with ``phi(r) = r^2 log r`` on a regular grid of control
points ``c_k``; the warped image is the original sampled at ``T(p)``. ``A = I + noise`` and
``b``, ``w_k`` are Gaussian (FOMM / face vid2vid: sigma 0.05 for the affine part, 0.005 for the TPS
weights, a 5 x 5 grid). With both sigmas 0 the warp is the identity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from puppetry.methods.liveportrait.training.regions import pixel_grid


@dataclass
class RandomWarp:
    """A batch of warps.

    Attributes:
        theta: ``B x 2 x 3`` affine part ``[A | b]``.
        control_points: ``P x 2`` TPS centres.
        weights: ``B x P`` TPS weights.
    """

    theta: torch.Tensor
    control_points: torch.Tensor
    weights: torch.Tensor

    @classmethod
    def sample(cls, rng: np.random.Generator, batch: int, sigma_affine: float, sigma_tps: float, points: int,
               device: torch.device) -> "RandomWarp":
        """Random warps drawn from ``rng`` (device-independent and reproducible)."""
        theta = np.eye(2, 3)[None] + rng.normal(0.0, sigma_affine, (batch, 2, 3)) if sigma_affine else \
            np.repeat(np.eye(2, 3)[None], batch, 0)
        axis = np.linspace(-1.0, 1.0, points)
        gy, gx = np.meshgrid(axis, axis, indexing="ij")
        centers = np.stack([gx.ravel(), gy.ravel()], -1)
        weights = rng.normal(0.0, sigma_tps, (batch, points * points)) if sigma_tps else \
            np.zeros((batch, points * points))
        as_t = lambda a: torch.as_tensor(a, dtype=torch.float32, device=device)  # noqa: E731
        return cls(as_t(theta), as_t(centers), as_t(weights))

    def warp_coordinates(self, points: torch.Tensor) -> torch.Tensor:
        """``T(p)``: ``B x N x 2`` coordinates in the warped image -> the original image's."""
        theta = self.theta.to(points.dtype)
        out = points @ theta[:, :, :2].transpose(1, 2) + theta[:, None, :, 2]
        r = (points[:, :, None, :] - self.control_points.to(points.dtype)[None, None]).norm(dim=-1)
        phi = r.square() * torch.log(r + 1e-6)
        return out + (phi * self.weights.to(points.dtype)[:, None, :]).sum(-1, keepdim=True)

    def warp_images(self, images: torch.Tensor) -> torch.Tensor:
        """The warped images: ``B x C x H x W`` sampled at ``T`` of each pixel centre (reflection at borders)."""
        b, _, h, w = images.shape
        grid = pixel_grid(h, images).reshape(1, h * w, 2).expand(b, -1, -1)
        grid = self.warp_coordinates(grid).view(b, h, w, 2)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
