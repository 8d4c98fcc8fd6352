"""Conformance of the LivePortrait networks with the reference implementation (issue 3, item 2).

../shared/conformance/liveportrait holds a script that writes checkpoint files in the release's
layout (deterministic untrained weights) and golden.npz, what the reference computed from them.
Each module alone and the whole chain must agree within spec.md's tolerance: 1e-3 absolute or
1e-3 relative per element, and the final image within one grey level.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from puppetry.methods.liveportrait.kinematics import KeypointInfo, rotation_matrix, source_keypoints, transform_keypoints

CONFORMANCE = Path(__file__).resolve().parents[1].parent / "shared" / "conformance" / "liveportrait"

ATOL = RTOL = 1e-3


@pytest.fixture(scope="session")
def golden() -> dict[str, np.ndarray]:
    with np.load(CONFORMANCE / "golden.npz") as g:
        return {k: g[k] for k in g.files}


def image_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1)[None]


def agree(name: str, ours, ref: np.ndarray) -> None:
    ours = ours.detach().cpu().numpy() if isinstance(ours, torch.Tensor) else np.asarray(ours)
    ours = ours.reshape(ref.shape)
    err = np.abs(ours.astype(np.float64) - ref)
    bad = err > np.maximum(ATOL, RTOL * np.abs(ref))
    assert not bad.any(), (f"{name}: {bad.sum()} of {bad.size} values out of tolerance, "
                           f"max abs error {err.max():.3g}")


@pytest.fixture(scope="session")
def motion(models, golden) -> KeypointInfo:
    batch = torch.cat([image_tensor(golden[k]) for k in ("source_rgb", "driving0_rgb", "driving1_rgb")])
    return models.motion(batch)


def test_release_layout_loads_through_parent_folders(release_dir):
    from puppetry.methods.liveportrait.checkpoints import find_checkpoint_dir
    assert find_checkpoint_dir(release_dir) == release_dir
    assert find_checkpoint_dir(release_dir.parent.parent) == release_dir     # pretrained_weights/liveportrait


def test_motion_extractor_raw_outputs(models, golden):
    batch = torch.cat([image_tensor(golden[k]) for k in ("source_rgb", "driving0_rgb", "driving1_rgb")])
    with torch.inference_mode():
        raw = models.motion_extractor(batch)
    for key in ("pitch", "yaw", "roll", "t", "exp", "scale", "kp"):
        agree(f"M.{key}", raw[key], golden[f"M.{key}"])


def test_head_pose_rotation_and_keypoints(motion, golden):
    for i, who in enumerate(("source", "driving0", "driving1")):
        for j, angle in enumerate(("pitch", "yaw", "roll")):
            agree(f"{who}.{angle}_deg", motion.angles[i, j], golden[f"{who}.{angle}_deg"])
    agree("source.R", motion.R[:1], golden["source.R"])
    s = motion[0]
    agree("x_s", source_keypoints(s), golden["x_s"])


def test_eq7_relative_motion(motion, golden):
    s, d0, d1 = motion[0], motion[1], motion[2]
    R_new = d1.R @ d0.R.transpose(1, 2) @ s.R
    exp_new = s.exp + d1.exp - d0.exp
    scale_new = s.scale * d1.scale / d0.scale
    t_new = s.t + d1.t - d0.t
    agree("x_d", transform_keypoints(s.kp, R_new, exp_new, scale_new, t_new), golden["x_d"])


def test_appearance_extractor(models, golden):
    agree("F.out", models.appearance(image_tensor(golden["source_rgb"])), golden["F.out"])


def test_stitching_and_retargeting_mlps(models, golden):
    with torch.inference_mode():
        agree("S.out", models.stitching(torch.from_numpy(golden["S.in"])), golden["S.out"])
        agree("R_eye.out", models.eyes(torch.from_numpy(golden["R_eye.in"])), golden["R_eye.out"])
        agree("R_lip.out", models.lip(torch.from_numpy(golden["R_lip.in"])), golden["R_lip.out"])
    x_s, x_d = torch.from_numpy(golden["x_s"]), torch.from_numpy(golden["x_d"])
    agree("S.in", torch.cat([x_s.flatten(1), x_d.flatten(1)], 1), golden["S.in"])
    agree("x_d_stitched", models.stitch(x_s, x_d), golden["x_d_stitched"])
    eyes = models.retarget_eyes(x_s, torch.tensor([[0.30, 0.32, 0.05]]))
    agree("R_eyes(x_s)", eyes.flatten(1), golden["R_eye.out"])
    lip = models.retarget_lip(x_s, torch.tensor([[0.02, 0.40]]))
    agree("R_lip(x_s)", lip.flatten(1), golden["R_lip.out"])


def test_warping_and_decoder_alone(models, golden):
    f_s = torch.from_numpy(golden["F.out"])
    out = models.warp_decode(f_s, torch.from_numpy(golden["x_s"]), torch.from_numpy(golden["x_d_stitched"]))
    agree("W.occlusion_map", out["occlusion_map"], golden["W.occlusion_map"])
    agree("W.deformation", out["deformation"], golden["W.deformation"])
    agree("W.out", out["out"], golden["W.out"])
    agree("G.out", out["image"], golden["G.out"])
    with torch.inference_mode():
        agree("G.out (from golden W.out)", models.spade_generator(torch.from_numpy(golden["W.out"])), golden["G.out"])


def test_whole_chain_from_pixels(models, golden):
    """Algorithm 1 with stitching, from the three uint8 images to the uint8 result."""
    batch = torch.cat([image_tensor(golden[k]) for k in ("source_rgb", "driving0_rgb", "driving1_rgb")])
    info = models.motion(batch)
    s, d0, d1 = info[0], info[1], info[2]
    f_s = models.appearance(batch[:1])
    x_s = source_keypoints(s)
    x_d = transform_keypoints(s.kp, d1.R @ d0.R.transpose(1, 2) @ s.R, s.exp + d1.exp - d0.exp,
                              s.scale * d1.scale / d0.scale, s.t + d1.t - d0.t)
    x_d = models.stitch(x_s, x_d)
    agree("x_d_stitched (chain)", x_d, golden["x_d_stitched"])
    out = models.warp_decode(f_s, x_s, x_d)
    agree("G.out (chain)", out["image"], golden["G.out"])
    rgb = (out["image"][0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    diff = np.abs(rgb.astype(int) - golden["result_rgb"].astype(int))
    assert diff.max() <= 1, f"result_rgb differs by up to {diff.max()} grey levels"


def test_rotation_matrix_convention():
    """R = (Rz Ry Rx)^T: a pure yaw of +90 degrees maps the row vector x to -z."""
    R = rotation_matrix(torch.tensor([0.0]), torch.tensor([90.0]), torch.tensor([0.0]))
    out = torch.tensor([[1.0, 0.0, 0.0]]) @ R[0]
    assert torch.allclose(out, torch.tensor([[0.0, 0.0, -1.0]]), atol=1e-6)
