"""Loss terms of LivePortrait's Stage I (paper 001, Eq. 3-4) and Stage II (Eq. 5-6).

Keypoints are ``B x K x 3`` in normalised image coordinates (x right, y down, z depth). The terms that
the paper takes from face vid2vid (Wang et al. 2021, Sec. 3.3) follow that paper's definitions:

- L_E, equivariance: ``mean |x_d[:2] - T(x_w[:2])|`` where ``x_w`` are the keypoints of the driving image
  warped by ``T^-1`` (:mod:`.warp`); only x and y are compared.
- L_L, keypoint prior: ``sum_{i != j} max(0, D_t - |x_i - x_j|^2) + |mean_k z_k - z_t|`` (batch mean);
  face vid2vid's sum also runs over ``i = j``, which only adds the constant ``K D_t``.
- L_H, head pose: ``sum_angle mean |angle - angle_ref|`` in degrees.
- L_Delta, deformation prior: ``mean_k |delta_k|_1``.
- hinge GAN: ``L_D = mean relu(1 - D(real)) + mean relu(1 + D(fake))``, ``L_G = -mean D(fake)``, summed
  over discriminator scales; feature matching ``sum mean |f_real - f_fake|`` over layers and scales.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from puppetry.methods.liveportrait.training.discriminator import Output as DiscriminatorOutput
from puppetry.methods.liveportrait.training.warp import RandomWarp

GUIDE_PIXELS = 128.0      # L_guide measures errors in pixels of a 256-pixel image (half-side 128)


def wing(x: torch.Tensor, w: float = 10.0, epsilon: float = 2.0) -> torch.Tensor:
    """Wing loss of errors ``x`` (Feng et al. 2018), element-wise:
    ``w ln(1 + |x| / epsilon)`` for ``|x| < w``, else ``|x| - C`` with ``C = w - w ln(1 + w / epsilon)``."""
    a = x.abs()
    c = w - w * math.log1p(w / epsilon)
    return torch.where(a < w, w * torch.log1p(a / epsilon), a - c)


def guide_loss(x_s: torch.Tensor, x_d: torch.Tensor, lm_s: torch.Tensor, lm_d: torch.Tensor,
               pairs: tuple[tuple[int, int], ...], w: float, epsilon: float) -> torch.Tensor:
    """L_guide, Eq. 3: ``1 / 2N sum_i (Wing(l_i, x_s,i,:2) + Wing(l_i, x_d,i,:2))``, batch mean.

    Args:
        x_s, x_d: ``B x K x 3`` source and driving keypoints.
        lm_s, lm_d: ``B x 478 x 2`` normalised landmarks of the source and driving images.
        pairs: N (keypoint index, landmark index) pairs.
        w, epsilon: Wing parameters in pixels of a 256-pixel image; the Wing of a point is the sum over x, y.
    """
    kp = torch.as_tensor([p[0] for p in pairs], device=x_s.device)
    lm = torch.as_tensor([p[1] for p in pairs], device=x_s.device)
    err_s = (x_s[:, kp, :2] - lm_s[:, lm]) * GUIDE_PIXELS
    err_d = (x_d[:, kp, :2] - lm_d[:, lm]) * GUIDE_PIXELS
    per_point = wing(err_s, w, epsilon).sum(-1) + wing(err_d, w, epsilon).sum(-1)      # B x N
    return per_point.sum(1).mean() / (2 * len(pairs))


def equivariance_loss(x_d: torch.Tensor, x_w: torch.Tensor, warp: RandomWarp) -> torch.Tensor:
    """L_E: keypoints found in the warped image, mapped back by the warp, must equal the driving's."""
    return (x_d[..., :2] - warp.warp_coordinates(x_w[..., :2])).abs().mean()


def keypoint_prior(x: torch.Tensor, distance: float = 0.1, depth: float = 0.33) -> torch.Tensor:
    """L_L on keypoints ``B x K x 3``: keypoints spread at least ``sqrt(distance)`` apart, mean depth ``depth``."""
    d2 = torch.cdist(x, x).square()                                       # B x K x K
    off = ~torch.eye(x.shape[1], dtype=torch.bool, device=x.device)
    spread = (F.relu(distance - d2) * off).sum((1, 2)).mean()
    return spread + (x[..., 2].mean(1) - depth).abs().mean()


def head_pose_loss(angles: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """L_H: ``angles`` and ``reference`` ``B x 3`` in degrees; sum over angles of the mean L1."""
    return (angles - reference).abs().mean(0).sum()


def deformation_prior(exp: torch.Tensor) -> torch.Tensor:
    """L_Delta: mean over keypoints of ``|delta_k|_1``; ``exp`` ``B x K x 3``."""
    return exp.abs().sum(-1).mean()


def hinge_discriminator(real: DiscriminatorOutput, fake: DiscriminatorOutput) -> torch.Tensor:
    """Hinge loss of the discriminator, summed over scales."""
    return sum(F.relu(1 - r[1]).mean() + F.relu(1 + f[1]).mean() for r, f in zip(real, fake))


def hinge_generator(fake: DiscriminatorOutput) -> torch.Tensor:
    """Hinge loss of the generator: ``-mean D(fake)``, summed over scales."""
    return sum(-f[1].mean() for f in fake)


def feature_matching(real: DiscriminatorOutput, fake: DiscriminatorOutput) -> torch.Tensor:
    """``sum mean |f_real - f_fake|`` over the discriminator's layers and scales (real features detached)."""
    return sum((a.detach() - b).abs().mean() for r, f in zip(real, fake) for a, b in zip(r[0], f[0]))


def masked_l1(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean ``|a - b|`` over the pixels where ``mask`` is 1: ``a``, ``b`` ``B x 3 x H x W``, ``mask`` ``B x H x W``."""
    diff = (a - b).abs().mean(1) * mask
    return diff.sum() / mask.sum().clamp_min(1.0)


def identity_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """L_faceid: ``1 - cos(a, b)`` of face embeddings ``B x D``, batch mean (``b`` is the reference, detached)."""
    return (1 - F.cosine_similarity(a, b.detach(), dim=1)).mean()
