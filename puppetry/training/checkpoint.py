"""Training checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint holds the method's modules and optimisers, the AMP gradient scaler, the stage and step, the
config it was trained with and the random-number states. It is written by rank 0 to a temporary name
and renamed, so an interrupted write never leaves a broken ``last.pt``. Files are plain tensors and
containers, read back with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from puppetry.errors import WeightsError, first_line

logger = logging.getLogger(__name__)

LAST = "last.pt"


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch random states as tensors and plain containers."""
    py = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)), *map(float, np_state[2:])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (plain data only)."""
    if not path.is_file():
        raise WeightsError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:           # truncated, not a torch file, or holds objects
        reason = first_line(exc)[:200]
        raise WeightsError(f"cannot read checkpoint {path}: {reason}") from None


def step_name(stage: str, step: int) -> str:
    return f"{stage}-{step:08d}.pt"


def prune(directory: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` step checkpoints (``last.pt`` is never deleted)."""
    steps = sorted((p for p in directory.glob("*-*.pt")), key=lambda p: p.stat().st_mtime)
    for old in steps[:max(len(steps) - keep, 0)]:
        old.unlink(missing_ok=True)
