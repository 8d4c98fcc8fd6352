"""How well predicted lips follow speech: correlation with the real lip-open and the lip-sync offset.

For a held-out clip the model's lip-open series is compared with the one tracked on the video. The
baseline opens the mouth with the audio's loudness envelope (per-frame RMS in dB, the obvious rule
without a model). Both are scored the same way:

* ``r``: Pearson correlation with the real lip-open at zero offset;
* ``offset``: the shift in frames (within ``MAX_LAG``) at which the cross-correlation peaks; positive when
  the prediction lags behind the video (0 is in sync);
* ``r_best``: the correlation at that shift.
"""

from __future__ import annotations

import numpy as np

MAX_LAG = 10


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denominator) if denominator > 1e-12 else 0.0


def sync_scores(predicted: np.ndarray, real: np.ndarray, max_lag: int = MAX_LAG) -> dict[str, float]:
    """``r``, ``offset`` and ``r_best`` of a predicted series against the real one (module docstring)."""
    predicted, real = np.asarray(predicted, np.float64), np.asarray(real, np.float64)
    n = min(len(predicted), len(real))
    predicted, real = predicted[:n], real[:n]
    lags = range(-min(max_lag, n - 2), min(max_lag, n - 2) + 1)
    # lag k compares prediction frame t + k with real frame t
    corr = [_pearson(predicted[max(k, 0):n + min(k, 0)], real[max(-k, 0):n - max(k, 0)]) for k in lags]
    best = int(np.argmax(corr))
    return {"r": _pearson(predicted, real), "offset": float(list(lags)[best]), "r_best": float(corr[best])}


def summarise(rows: list[dict], key: str) -> dict[str, float]:
    """Frame-weighted mean ``r`` and ``r_best`` and mean absolute ``offset`` of ``rows[i][key]``
    (``rows[i]["frames"]`` the weights)."""
    w = np.array([r["frames"] for r in rows], np.float64)
    get = lambda name: np.array([r[key][name] for r in rows], np.float64)   # noqa: E731
    return {"r": float((get("r") * w).sum() / w.sum()), "r_best": float((get("r_best") * w).sum() / w.sum()),
            "abs_offset": float((np.abs(get("offset")) * w).sum() / w.sum())}
