"""The device an engine runs on, from its ``--device`` value (one-line errors for a device that is not there)."""

from __future__ import annotations

import torch

from puppetry.errors import WeightsError


def engine_device(name: str) -> torch.device:
    """``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N`` as a device.

    Raises:
        WeightsError: an unknown name, or CUDA asked for where this torch build sees no GPU.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise WeightsError(f"--device {name}: unknown device; use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise WeightsError(f"--device {name}: this torch build sees no CUDA GPU (use cpu or auto)")
    return device
