"""Motion transfer from a driving face to a source face (landmark form of 001, Eq. 7).

Relative (default): the source keeps its own face and takes the driving frame's *change* since the
driving reference frame, measured in the pose-free unit-size face frame, so a small face in the
driving video moves a large face in the source by the same amount:

    E_t = E_s + m * mask * (E_d - E_d0)
    R_t = R_s R_d0^T R_d,    s_t = s_s * s_d / s_d0,    c_t = c_s + R_s R_d0^T (c_d - c_d0) * s_s / s_d0

Unlike Eq. 7, which composes the rotation change in the camera's frame (``R_d R_d0^T R_s``), the change
is taken in the head's own frame, so a nod stays a nod and a video filmed with a tilted camera drives
the same motion as a level one: the result does not depend on the driving face's size, rotation or
position, only on how it moved.

Absolute: the source takes the driving expression and rotation themselves (``E_t = E_d``, ``R_t = R_d``)
and keeps its own size and position.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from puppetry.face.pose import FacePose
from puppetry.motion.regions import REGIONS, expression_mask, region_moves_pose


@dataclass(frozen=True)
class TransferOptions:
    """How driving motion maps onto the source.

    Attributes:
        relative: relative (True) or absolute (False) transfer.
        region: "all", "expression", "pose", "eyes" or "lips".
        multiplier: scales the transferred expression change (LivePortrait's driving multiplier).
    """

    relative: bool = True
    region: str = "all"
    multiplier: float = 1.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.multiplier) and abs(self.multiplier) <= 10):
            raise ValueError(f"--multiplier must be a finite number between -10 and 10, got {self.multiplier}")
        if self.region not in REGIONS:
            raise ValueError(f"unknown region {self.region!r}; choose from {', '.join(REGIONS)}")


def transfer_motion(source: FacePose, driving: FacePose, reference: FacePose,
                    options: TransferOptions = TransferOptions()) -> FacePose:
    """Target face for one driving frame.

    Args:
        source: the source face (unbatched, ``478 x 3`` expression).
        driving: the driving face at this frame.
        reference: the driving face at its first frame (relative mode).
        options: transfer settings.
    Returns:
        The target :class:`FacePose` in source pixels.
    """
    mask = expression_mask(options.region, source.expression)[:, None] * options.multiplier
    if options.relative:
        expression = source.expression + mask * (driving.expression - reference.expression)
    else:
        expression = source.expression + mask * (driving.expression - source.expression)
    if not region_moves_pose(options.region):
        return FacePose(expression, source.rotation, source.scale, source.center)
    if options.relative:
        to_source = np.asarray(source.rotation) @ np.asarray(reference.rotation).T
        rotation = to_source @ driving.rotation
        ratio = float(source.scale) / float(reference.scale)
        scale = float(source.scale) * float(driving.scale) / float(reference.scale)
        center = source.center + (to_source @ (np.asarray(driving.center) - reference.center)) * ratio
    else:
        rotation, scale, center = np.asarray(driving.rotation, dtype=np.float64), source.scale, source.center
    return FacePose(expression, rotation, scale, center)
