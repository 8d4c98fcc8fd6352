"""Pixel-level reconstruction metrics: L1, PSNR and SSIM between a generated frame and its ground truth.

They apply to self-reenactment only, where the driving frame is the ground truth. Every function takes
two ``H x W x 3`` uint8 RGB frames of the same size and works on values scaled to ``[0, 1]``.
"""

from __future__ import annotations

import math

import numpy as np
from skimage.metrics import structural_similarity

SSIM_SIGMA = 1.5
"""Standard deviation of SSIM's Gaussian window (Wang et al. 2004), in pixels."""


def _as_unit(image: np.ndarray) -> np.ndarray:
    """``H x W x C`` uint8 (or float in [0, 1]) as float64 in [0, 1]."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    return image.astype(np.float64)


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"frames differ in size: {a.shape} and {b.shape}")


def l1_distance(generated: np.ndarray, truth: np.ndarray) -> float:
    """Mean absolute difference over pixels and channels, values in [0, 1] (0: identical, lower is better).

    Args:
        generated, truth: ``H x W x 3`` uint8 RGB frames of one size.
    """
    _check_pair(generated, truth)
    return float(np.abs(_as_unit(generated) - _as_unit(truth)).mean())


def mse(generated: np.ndarray, truth: np.ndarray) -> float:
    """Mean squared difference over pixels and channels, values in [0, 1] (0: identical, lower is better).

    Args:
        generated, truth: ``H x W x 3`` uint8 RGB frames of one size.
    """
    _check_pair(generated, truth)
    return float(((_as_unit(generated) - _as_unit(truth)) ** 2).mean())


def psnr(generated: np.ndarray, truth: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(1 / MSE)`` on [0, 1] values (higher is better).

    Identical frames have no noise: the result is ``math.inf``.

    Args:
        generated, truth: ``H x W x 3`` uint8 RGB frames of one size.
    """
    error = mse(generated, truth)
    if error == 0.0:
        return math.inf
    return 10.0 * math.log10(1.0 / error)


def ssim(generated: np.ndarray, truth: np.ndarray) -> float:
    """Structural similarity (Wang et al. 2004), in [-1, 1], 1 for identical frames (higher is better).

    Gaussian-weighted 11 x 11 window (sigma 1.5), K1 = 0.01, K2 = 0.03, population covariances, on
    [0, 1] values; computed per RGB channel and averaged (scikit-image's ``structural_similarity``).

    Args:
        generated, truth: ``H x W x 3`` uint8 RGB frames of one size (at least 7 x 7).
    """
    _check_pair(generated, truth)
    return float(structural_similarity(_as_unit(generated), _as_unit(truth), data_range=1.0, channel_axis=-1,
                                       gaussian_weights=True, sigma=SSIM_SIGMA, use_sample_covariance=False))


__all__ = ["l1_distance", "mse", "psnr", "ssim", "SSIM_SIGMA"]
