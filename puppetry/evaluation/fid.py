"""Fréchet Inception Distance (Heusel et al. 2017) between two sets of Inception pool3 features.

Each set is summarised by a Gaussian (mean ``mu``, covariance ``sigma``);
``FID = |mu1 - mu2|^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))``. Lower is better; 0 for identical
sets. FID is strongly biased upward when a set has fewer samples than feature dimensions (2048): the
numbers of a short evaluation are comparable only with each other, at the same frame counts.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
from scipy import linalg

logger = logging.getLogger(__name__)

RELIABLE_SAMPLES = 2048
"""Below this many frames per set the covariance is rank-deficient and FID is biased."""


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``D`` and covariance ``D x D`` (unbiased, N - 1) of ``N x D`` features (N >= 2)."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"FID needs at least 2 feature vectors, got shape {features.shape}")
    return features.mean(0), np.cov(features, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Fréchet distance between the Gaussians ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    The matrix square root is taken with ``scipy.linalg.sqrtm``; when the product is singular (few
    samples) ``eps`` is added to both diagonals first. Tiny imaginary parts from rounding are dropped.
    """
    diff = mu1 - mu2
    covmean = _real_sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = _real_sqrtm((sigma1 + offset) @ (sigma2 + offset))
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))
    return max(value, 0.0)


def _real_sqrtm(matrix: np.ndarray) -> np.ndarray:
    """``scipy.linalg.sqrtm`` without the rounding-level imaginary part (warns when it is not tiny)."""
    with warnings.catch_warnings():      # singular (rank-deficient) products are expected with few frames
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(matrix)
    if np.iscomplexobj(root):
        imag = np.abs(root.imag).max()
        if imag > 1e-3 * max(1.0, np.abs(root.real).max()):
            logger.warning("FID: the covariance square root has an imaginary part of %.3g", imag)
        root = root.real
    return root


def _trace_sqrt_product(generated: np.ndarray, real: np.ndarray) -> float:
    """``Tr((sigma1 sigma2)^(1/2))`` from the samples themselves, exact and fast when a set is small.

    With centred, scaled samples ``A`` (``N x D``, ``sigma1 = A^T A``) and ``B`` (``sigma2 = B^T B``), the
    non-zero eigenvalues of ``sigma1 sigma2`` are those of the ``N x N`` matrix ``(A B^T)(A B^T)^T``, so
    the trace is that of its square root (``scipy.linalg.sqrtm`` on N x N instead of D x D).
    """
    a = (generated - generated.mean(0)) / np.sqrt(len(generated) - 1)
    b = (real - real.mean(0)) / np.sqrt(len(real) - 1)
    cross = a @ b.T
    small = cross @ cross.T if len(a) <= len(b) else cross.T @ cross
    return float(np.trace(_real_sqrtm(small)))


def fid_from_features(generated: np.ndarray, real: np.ndarray) -> float:
    """FID between ``N x D`` generated and ``M x D`` real features (warns when N or M < 2048).

    With fewer samples than dimensions the trace term is computed exactly from the samples (see
    :func:`_trace_sqrt_product`), seconds faster than a ``D x D`` square root; otherwise by
    :func:`frechet_distance`.
    """
    n = min(len(generated), len(real))
    if n < RELIABLE_SAMPLES:
        logger.warning("FID over %d and %d frames is biased upward (reliable from about %d frames); "
                       "compare it only across engines of this run", len(generated), len(real), RELIABLE_SAMPLES)
    generated = np.asarray(generated, dtype=np.float64)
    real = np.asarray(real, dtype=np.float64)
    mu1, sigma1 = feature_statistics(generated)
    mu2, sigma2 = feature_statistics(real)
    if n >= generated.shape[1]:
        return frechet_distance(mu1, sigma1, mu2, sigma2)
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * _trace_sqrt_product(generated, real)
    return max(float(value), 0.0)


__all__ = ["feature_statistics", "frechet_distance", "fid_from_features", "RELIABLE_SAMPLES"]
