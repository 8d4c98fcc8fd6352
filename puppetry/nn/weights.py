"""Reading weight files safely and checking them against a network, for every loader in puppetry.

Files are read with ``torch.load(weights_only=True)`` (tensors and plain containers only), and a state
dict is checked tensor by tensor before it is loaded, so a wrong file stops with one line that names
the first offending tensors instead of a traceback or a silently half-loaded network.
"""

from __future__ import annotations

from pathlib import Path

import torch

from puppetry.errors import WeightsError, first_line

MAX_FILE_BYTES = 2 * 1024 ** 3


def read_state_dict(path: Path, what: str = "checkpoint", max_bytes: int = MAX_FILE_BYTES) -> dict:
    """``torch.load`` with ``weights_only=True`` on the CPU; any failure is a one-line WeightsError.

    Args:
        path: the file.
        what: how messages name the file ("checkpoint", "weights", ...).
        max_bytes: larger files are refused before reading.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise WeightsError(f"cannot read {what} '{path}': {exc.strerror or exc}") from None
    if size > max_bytes:
        raise WeightsError(f"{what} '{path}' is {size / 1e9:.1f} GB, larger than any file it could be")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or hostile files
        first = first_line(exc)
        raise WeightsError(f"cannot read {what} '{path}': {first[:200]}") from None
    if not isinstance(obj, dict):
        raise WeightsError(f"{what} '{path}' is not a state dict (it holds a {type(obj).__name__})")
    return obj


def _listed(names: list, limit: int = 5) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(map(str, names[:limit])) + more


def check_state_dict(state: dict, expected: dict[str, torch.Tensor], where: str) -> None:
    """Every expected tensor present, nothing extra, each a tensor of the expected shape.

    Raises:
        WeightsError naming the first offending tensors and ``where`` they came from.
    """
    missing = [k for k in expected if k not in state]
    if missing:
        raise WeightsError(f"{where}: missing tensor(s) {_listed(missing)}")
    extra = [k for k in state if k not in expected]
    if extra:
        raise WeightsError(f"{where}: unexpected tensor(s) {_listed(extra)}")
    for name, ref in expected.items():
        value = state[name]
        if not isinstance(value, torch.Tensor):
            raise WeightsError(f"{where}: '{name}' is a {type(value).__name__}, not a tensor")
        if tuple(value.shape) != tuple(ref.shape):
            raise WeightsError(f"{where}: '{name}' has shape {tuple(value.shape)}, expected {tuple(ref.shape)}")
