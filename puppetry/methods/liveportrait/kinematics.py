"""Keypoint algebra of LivePortrait (paper 001): head pose, Eq. 2, Eq. 7, Eq. 8 and stitching.

Conventions of the release (and of its motion templates): keypoints are row vectors, ``K x 3``,
multiplied on the right by the rotation, ``x_c @ R``; ``R = (R_z(roll) R_y(yaw) R_x(pitch))^T``
with angles in degrees; only the x and y of the translation are applied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

BIN_DEGREES = 3.0
BIN_OFFSET = 97.5


def bins_to_degrees(logits: torch.Tensor) -> torch.Tensor:
    """Expected angle of 66 bin logits: ``sum(softmax(logits) * [0..65]) * 3 - 97.5``. ``B x 66 -> B``."""
    idx = torch.arange(logits.shape[-1], dtype=logits.dtype, device=logits.device)
    return (F.softmax(logits, dim=-1) * idx).sum(-1) * BIN_DEGREES - BIN_OFFSET


def rotation_matrix(pitch: torch.Tensor, yaw: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """``R = (R_z R_y R_x)^T`` from angles in degrees (each ``B``); returns ``B x 3 x 3``."""
    x, y, z = (a.reshape(-1) * (math.pi / 180) for a in (pitch, yaw, roll))
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    rx = torch.stack([one, zero, zero, zero, x.cos(), -x.sin(), zero, x.sin(), x.cos()], -1).view(-1, 3, 3)
    ry = torch.stack([y.cos(), zero, y.sin(), zero, one, zero, -y.sin(), zero, y.cos()], -1).view(-1, 3, 3)
    rz = torch.stack([z.cos(), -z.sin(), zero, z.sin(), z.cos(), zero, zero, zero, one], -1).view(-1, 3, 3)
    return (rz @ ry @ rx).transpose(1, 2)


@dataclass
class KeypointInfo:
    """M's outputs for a batch, in usable form.

    Attributes:
        kp: canonical keypoints x_c, ``B x K x 3``.
        R: head rotation, ``B x 3 x 3`` (row-vector convention).
        exp: expression deformation delta, ``B x K x 3``.
        t: translation, ``B x 3``.
        scale: ``B x 1``.
        angles: ``B x 3`` pitch, yaw, roll in degrees.
    """

    kp: torch.Tensor
    R: torch.Tensor
    exp: torch.Tensor
    t: torch.Tensor
    scale: torch.Tensor
    angles: torch.Tensor

    @classmethod
    def from_raw(cls, raw: dict[str, torch.Tensor]) -> "KeypointInfo":
        """From :class:`~puppetry.methods.liveportrait.motion_extractor.MotionExtractor` outputs (float32)."""
        raw = {k: v.float() for k, v in raw.items()}
        b = raw["kp"].shape[0]
        pitch, yaw, roll = (bins_to_degrees(raw[k]) for k in ("pitch", "yaw", "roll"))
        return cls(kp=raw["kp"].view(b, -1, 3), R=rotation_matrix(pitch, yaw, roll),
                   exp=raw["exp"].view(b, -1, 3), t=raw["t"], scale=raw["scale"].view(b, 1),
                   angles=torch.stack([pitch, yaw, roll], -1))

    def __getitem__(self, i) -> "KeypointInfo":
        sl = slice(i, i + 1) if isinstance(i, int) else i
        return KeypointInfo(self.kp[sl], self.R[sl], self.exp[sl], self.t[sl], self.scale[sl], self.angles[sl])


def transform_keypoints(kp: torch.Tensor, R: torch.Tensor, exp: torch.Tensor, scale: torch.Tensor,
                        t: torch.Tensor) -> torch.Tensor:
    """Eq. 2: ``x = s (x_c R + delta) + t`` with t's z dropped. Shapes ``B x K x 3`` (kp, exp),
    ``B x 3 x 3`` (R), ``B x 1`` (scale), ``B x 3`` (t); returns ``B x K x 3``."""
    x = scale.view(-1, 1, 1) * (kp @ R + exp)
    t_xy = torch.cat([t[:, :2], torch.zeros_like(t[:, 2:])], dim=1)
    return x + t_xy[:, None, :]


def source_keypoints(info: KeypointInfo) -> torch.Tensor:
    """x_s of Eq. 7 (Eq. 2 applied to the source's own motion)."""
    return transform_keypoints(info.kp, info.R, info.exp, info.scale, info.t)


def apply_stitching(x_d: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """Algorithm 1, lines 5-7: add S's output to x_d. ``delta`` is ``B x (3K + 2)``: a ``K x 3``
    offset and a (dx, dy) shared by every keypoint."""
    b, k, _ = x_d.shape
    out = x_d + delta[:, : 3 * k].view(b, k, 3)
    shift = torch.cat([delta[:, 3 * k: 3 * k + 2], torch.zeros_like(delta[:, :1])], dim=1)
    return out + shift[:, None, :]
