"""Which landmarks a region of motion transfer moves (``--region``)."""

from __future__ import annotations

from typing import Literal

import numpy as np

from puppetry.face import topology as T

Region = Literal["all", "expression", "pose", "eyes", "lips"]
REGIONS: tuple[str, ...] = ("all", "expression", "pose", "eyes", "lips")


def region_moves_pose(region: str) -> bool:
    """Whether head rotation, size and position are transferred."""
    return region in ("all", "pose")


def expression_mask(region: str, expression: np.ndarray) -> np.ndarray:
    """Per-landmark weights (``478``) of the expression change that a region transfers.

    Args:
        region: one of :data:`REGIONS`.
        expression: ``478 x 3`` source expression (pose-free), used to find the lower face.
    """
    mask = np.zeros(T.NUM_LANDMARKS, dtype=np.float64)
    if region in ("all", "expression"):
        mask[:] = 1.0
    elif region == "eyes":
        mask[T.EYES] = 1.0
    elif region == "lips":
        # The mouth and everything that moves with the jaw: below the base of the nose.
        nose_base = expression[2, 1]
        mask[expression[:, 1] > nose_base] = 1.0
        mask[T.LIPS] = 1.0
    elif region != "pose":
        raise ValueError(f"unknown region {region!r}; choose from {', '.join(REGIONS)}")
    return mask
