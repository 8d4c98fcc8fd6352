"""Driving keypoints for a source face: Eq. 7 (relative), absolute motion, regions, Eq. 8, multiplier.

All functions are batched over faces (``B``) and work on torch tensors in LivePortrait's
conventions (see :mod:`puppetry.methods.liveportrait.kinematics`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from puppetry.methods.liveportrait.kinematics import KeypointInfo, rotation_matrix, transform_keypoints

# Keypoints that carry the eyes and the lips in the release's 21 implicit keypoints (as its
# inference code uses them for the "eyes" and "lip" regions).
EYE_KEYPOINTS = (11, 13, 15, 16, 18)
LIP_KEYPOINTS = (6, 12, 14, 17, 19, 20)
# Absolute motion copies only these expression entries from the driving face (the rest of the
# deformation stays the source's, which keeps its identity): whole keypoints, then single axes.
ABSOLUTE_KEYPOINTS = (1, 2, 6, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20)
ABSOLUTE_AXES = ((3, 1), (4, 1), (5, 2), (8, 2), (9, 1), (9, 2))


@dataclass
class DrivingMotion:
    """One driving frame's motion (M's outputs, or a template's), batch of 1 or B.

    Attributes: ``R`` ``B x 3 x 3``, ``exp`` ``B x K x 3``, ``t`` ``B x 3``, ``scale`` ``B x 1``.
    """

    R: torch.Tensor
    exp: torch.Tensor
    t: torch.Tensor
    scale: torch.Tensor

    @classmethod
    def from_info(cls, info: KeypointInfo) -> "DrivingMotion":
        return cls(info.R, info.exp, info.t, info.scale)


def expression_weights(region: str, num_kp: int, absolute: bool, like: torch.Tensor) -> torch.Tensor:
    """``K x 3`` weights of the driving's expression change that ``region`` transfers."""
    w = torch.zeros(num_kp, 3, dtype=like.dtype, device=like.device)
    if region in ("all", "expression"):
        if absolute:
            w[list(ABSOLUTE_KEYPOINTS)] = 1
            for k, axis in ABSOLUTE_AXES:
                w[k, axis] = 1
        else:
            w[:] = 1
    elif region == "eyes":
        w[list(EYE_KEYPOINTS)] = 1
    elif region == "lips":
        w[list(LIP_KEYPOINTS)] = 1
    elif region != "pose":
        raise ValueError(f"unknown region {region!r}")
    return w


def driving_keypoints(s: KeypointInfo, d: DrivingMotion, d0: DrivingMotion | None, region: str = "all",
                      relative: bool = True, exp_d: torch.Tensor | None = None,
                      extra: torch.Tensor | None = None) -> torch.Tensor:
    """x_d for source faces ``s`` driven by ``d``.

    Relative (Eq. 7): ``R = R_d R_d0^T R_s``, ``delta = delta_s + delta_d - delta_d0``,
    ``scale = s_s s_d / s_d0``, ``t = t_s + t_d - t_d0``. Absolute: the driving's own R, t and
    expression (at the release's expression entries); the source's scale.
    The region decides what moves: "all"; "pose" (R, t); "expression", "eyes", "lips" (the
    expression, or that part of it). The z of t is always dropped.

    Args:
        s: source faces, batch B.
        d: driving motion, batch 1 or B.
        d0: the driving's first frame (relative motion), batch 1 or B.
        exp_d: replaces ``d.exp`` (Eq. 8 passes the mean of two frames' expressions).
        extra: ``1 x 3 x 3`` extra head rotation from :func:`extra_rotation` (controls), or None.
    Returns:
        ``B x K x 3``.
    """
    exp_d = d.exp if exp_d is None else exp_d
    pose = region in ("all", "pose")
    weights = expression_weights(region, s.kp.shape[1], not relative, s.exp)
    if relative:
        if d0 is None:
            raise ValueError("relative motion needs the driving's first frame")
        R = d.R @ d0.R.transpose(1, 2) @ s.R if pose else s.R
        exp = s.exp + weights * (exp_d - d0.exp)
        scale = s.scale * d.scale / d0.scale if region == "all" else s.scale
        t = s.t + (d.t - d0.t) if pose else s.t
    else:
        R = d.R.expand_as(s.R) if pose else s.R
        exp = s.exp + weights * (exp_d - s.exp)
        scale = s.scale
        t = d.t.expand_as(s.t) if pose else s.t
    if extra is not None:
        R = extra @ R
    return transform_keypoints(s.kp, R, exp, scale, t)


def extra_rotation(yaw: float, pitch: float, roll: float, like: torch.Tensor) -> torch.Tensor | None:
    """``1 x 3 x 3`` rotation by extra head angles in degrees (controls), or None when all are 0.

    Applied in the head's own frame: ``x_c R_extra R`` (the canonical face is turned first).
    """
    if not (yaw or pitch or roll):
        return None
    one = torch.ones(1, dtype=like.dtype, device=like.device)
    return rotation_matrix(one * pitch, one * yaw, one * roll)


def amplify(x_s: torch.Tensor, x_d: torch.Tensor, multiplier: float) -> torch.Tensor:
    """The driving multiplier: ``x_s + (x_d - x_s) * multiplier``."""
    return x_d if multiplier == 1.0 else x_s + (x_d - x_s) * multiplier


def eyes_condition(c_s_eyes: torch.Tensor, c_d_now: float, c_d_first: float) -> torch.Tensor:
    """Sec. 4.3: ``c_d,eyes,i = mean(c_s,eyes) * mean(c'_d,eyes,i) / mean(c'_d,eyes,0)``.

    ``c_s_eyes``: ``B x 2`` source conditions; returns the R_eyes input tail ``B x 3``.
    """
    c_d = c_s_eyes.mean(1, keepdim=True) * (c_d_now / max(c_d_first, 1e-3))
    return torch.cat([c_s_eyes, c_d.clamp(0.0, 0.8)], dim=1)


def lip_condition(c_s_lip: torch.Tensor, c_d: torch.Tensor | float) -> torch.Tensor:
    """R_lip input tail ``B x 2``: ``[c_s,lip, c_d,lip]``; ``c_s_lip`` is ``B x 1``."""
    c_d = torch.as_tensor(c_d, dtype=c_s_lip.dtype, device=c_s_lip.device).reshape(-1, 1).expand_as(c_s_lip)
    return torch.cat([c_s_lip, c_d], dim=1)
