"""Scores of the sketching network on held-out clips (the effect of ``lambda1`` and ``lambda2``, Eq. 5).

Two settings, both on clips the network did not train on:

- **self** (frames ``i``, ``j`` of one clip): ``L~_j = G_R(E_L(L_j), E_M(M_i))`` against ``L_j`` (landmark error,
  pixels at 256) and ``M~_j`` against ``M_j`` (pixel accuracy and the mean IoU over the labels present);
- **cross** (source mask ``M_i^a`` of person ``a``, driving landmarks ``L_j^b`` of person ``b``): how much of the
  output's face shape is the source's. Each person's *shape* is the mean of their clip's landmarks after
  similarity (Procrustes) alignment to a common frame; the output is aligned the same way and its distances
  ``d_a`` to ``a``'s shape and ``d_b`` to ``b``'s are compared: ``identity share = d_b / (d_a + d_b)``, 1 when the
  output has the source's shape, 0 when it keeps the driver's, 0.5 when it is halfway. The driver's own
  landmarks score the baseline (what feeding them unchanged would give).

The coloring network's scores are the paper's Table 1 metrics through ``puppetry evaluate`` (SSIM, FID, PSNR,
CSIM, MSE).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from puppetry.methods.puppeteergan.data import VideoPairs


def align(points: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``N x P x 2`` point sets each mapped onto ``P x 2`` ``target`` by its least-squares similarity."""
    p = points - points.mean(1, keepdims=True)
    t = target - target.mean(0)
    # Complex form of a 2D similarity: t ~ z * p with z = sum(conj(p) t) / sum(|p|^2).
    pc = p[..., 0] + 1j * p[..., 1]
    tc = t[:, 0] + 1j * t[:, 1]
    z = (np.conj(pc) * tc).sum(1) / np.maximum((np.abs(pc) ** 2).sum(1), 1e-12)
    out = z[:, None] * pc
    return np.stack([out.real, out.imag], -1) + target.mean(0)


def mean_shape(points: np.ndarray, iterations: int = 3) -> np.ndarray:
    """Generalised Procrustes mean of ``N x P x 2`` landmarks (scale fixed by the first set)."""
    shape = points[0]
    for _ in range(iterations):
        shape = align(points, shape).mean(0)
    return shape


@dataclass
class SketchScores:
    """Means over the scored pairs (see the module docstring)."""

    landmark_px: float
    seg_accuracy: float
    seg_miou: float
    identity_share: float
    identity_share_driver: float
    pairs: int


def _miou(pred: np.ndarray, truth: np.ndarray, num_labels: int) -> float:
    """Mean IoU over the labels present in the prediction or the truth (``N x S x S`` each)."""
    values = []
    for k in range(num_labels):
        union = np.logical_or(pred == k, truth == k).sum()
        if union:
            values.append(np.logical_and(pred == k, truth == k).sum() / union)
    return float(np.mean(values))


def _share(points: np.ndarray, source_shape: np.ndarray, driver_shape: np.ndarray) -> float:
    a = np.linalg.norm(align(points, source_shape) - source_shape, axis=-1).mean(1)
    b = np.linalg.norm(align(points, driver_shape) - driver_shape, axis=-1).mean(1)
    return float(np.mean(b / np.maximum(a + b, 1e-12)))


@torch.no_grad()
def score_sketching(sketch, pairs: VideoPairs, mask_size: int, count: int = 64, seed: int = 0) -> SketchScores:
    """Self and cross scores of ``sketch`` (a :class:`~puppetry.methods.puppeteergan.sketching.SketchingNetwork`)
    on ``count`` pairs of ``pairs``' clips (at least two people among them)."""
    rng = np.random.default_rng(seed)
    sketch = sketch.eval()
    chosen = pairs.draw(rng, count)
    b = pairs.color_batch(rng, count, mask_size, pairs=chosen)
    points, labels = sketch.retarget(b.points_t, b.labels_s)
    landmark_px = float((points - b.points_t).norm(dim=-1).mean()) * 128.0
    pred, truth = labels.numpy(), b.labels_t.numpy()
    accuracy = float((pred == truth).mean())
    miou = _miou(pred, truth, sketch.num_labels)
    shapes = {c: mean_shape(pairs.points[c]) for c in pairs.clips}
    people = sorted({pairs.identity[c] for c in pairs.clips})
    if len(people) < 2:
        raise ValueError("the cross setting needs clips of two people")
    sources, drivers = [], []
    for c, i, _ in chosen:
        others = [o for o in pairs.clips if pairs.identity[o] != pairs.identity[c]]
        o = others[int(rng.integers(len(others)))]
        sources.append((c, i))
        drivers.append((o, int(rng.integers(len(pairs.points[o])))))
    src = pairs.color_batch(rng, count, mask_size, pairs=[(c, i, i) for c, i in sources])
    drv = torch.from_numpy(np.stack([pairs.points[o][t] for o, t in drivers])).float()
    out, _ = sketch.retarget(drv, src.labels_s)
    out = out.numpy()
    share = np.mean([_share(out[n:n + 1], shapes[c], shapes[o]) for n, ((c, _), (o, _)) in
                     enumerate(zip(sources, drivers))])
    base = np.mean([_share(drv.numpy()[n:n + 1], shapes[c], shapes[o]) for n, ((c, _), (o, _)) in
                    enumerate(zip(sources, drivers))])
    return SketchScores(landmark_px, accuracy, miou, float(share), float(base), count)
