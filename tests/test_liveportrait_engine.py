"""The LivePortrait engine on real portraits and driving videos, with the conformance kit's weights.

The weights are untrained (the real ones cannot be downloaded here), so these tests check the
pipeline's geometry and algebra rather than the look of the faces: Eq. 7, regions, the multiplier,
controls, stitching, retargeting, batching, paste-back, group photos, templates and strict loading.
"""

from __future__ import annotations

import os
import pickle
import shutil

import numpy as np
import pytest
import torch

from puppetry.engines.base import DrivingFrame, SourceFaces
from puppetry.errors import WeightsError
from puppetry.methods.liveportrait.checkpoints import find_checkpoint_dir
from puppetry.methods.liveportrait.engine import LivePortraitConfig, LivePortraitEngine
from puppetry.methods.liveportrait.kinematics import transform_keypoints
from puppetry.methods.liveportrait.models import LivePortraitModels
from puppetry.motion.keypoint_template import load_pickle_template
from puppetry.methods.liveportrait.transfer import (EYE_KEYPOINTS, LIP_KEYPOINTS, DrivingMotion, driving_keypoints,
                                            extra_rotation)
from puppetry.media import VideoReader
from puppetry.motion.controls import Controls
from puppetry.motion.transfer import TransferOptions

@pytest.fixture(scope="module")
def source(s1, detect) -> SourceFaces:
    return SourceFaces(image=s1, landmarks=detect(s1), name="s1")


@pytest.fixture(scope="module")
def d0_frames(data, detect) -> list[DrivingFrame]:
    frames = []
    with VideoReader(data / "driving" / "d0.mp4", max_frames=40) as reader:
        for i, rgb in enumerate(reader):
            if i in (0, 20, 39):
                frames.append(DrivingFrame(index=i, image=rgb, landmarks=detect(rgb)[0]))
    return frames


def engine_with(models, **kw) -> LivePortraitEngine:
    transfer = TransferOptions(**{k: kw.pop(k) for k in ("relative", "region", "multiplier") if k in kw})
    return LivePortraitEngine(transfer, LivePortraitConfig(**kw), models=models)


def motion_of(info, i: int) -> DrivingMotion:
    return DrivingMotion.from_info(info[i])


def test_relative_motion_of_the_first_frame_is_the_source(models, source, d0_frames):
    eng = engine_with(models, stitching=False, normalize_lip=False)
    state = eng.prepare(source)
    drive = eng._driving_motions(state, d0_frames[:1])[0]
    x_d = eng._target(state, d0_frames[0], drive)
    assert torch.allclose(x_d, state.x_s, atol=1e-5)
    later = eng._target(state, d0_frames[2], eng._driving_motions(state, d0_frames[2:])[0])
    assert (later - state.x_s).abs().max() > 1e-3


def test_regions_move_only_their_part(models, source):
    eng = engine_with(models)
    state = eng.prepare(source)
    s = state.info
    g = torch.Generator().manual_seed(0)
    d0 = DrivingMotion(s.R.clone(), s.exp.clone(), s.t.clone(), s.scale.clone())
    d = DrivingMotion(s.R @ extra_rotation(15.0, 5.0, 0.0, s.R), s.exp + 0.05 * torch.randn(s.exp.shape, generator=g),
                      s.t + 0.1, s.scale * 1.1)
    x_s = state.x_s
    pose_only = driving_keypoints(s, d, d0, "pose")
    expected = transform_keypoints(s.kp, d.R, s.exp, s.scale, s.t + 0.1)
    assert torch.allclose(pose_only, expected, atol=1e-5)
    for region, moved in (("eyes", EYE_KEYPOINTS), ("lips", LIP_KEYPOINTS)):
        x = driving_keypoints(s, d, d0, region)
        change = (x - x_s).abs().sum(-1)[0]
        still = [k for k in range(21) if k not in moved]
        assert change[still].max() < 1e-6 and change[list(moved)].min() > 1e-4, region
    everything = driving_keypoints(s, d, d0, "all")
    assert (everything - x_s).abs().sum(-1).min() > 1e-4


def test_multiplier_scales_the_motion(models, source, d0_frames):
    outs = {}
    for m in (1.0, 2.0):
        eng = engine_with(models, multiplier=m)
        state = eng.prepare(source)
        drives = eng._driving_motions(state, d0_frames)
        eng._target(state, d0_frames[0], drives[0])
        outs[m] = eng._target(state, d0_frames[2], drives[2]) - state.x_s
    assert torch.allclose(outs[2.0], 2 * outs[1.0], atol=1e-5)


def test_head_angle_controls_turn_the_keypoints(models, source):
    eng = engine_with(models, stitching=False, normalize_lip=False)
    state = eng.prepare(source)
    x_s = state.x_s[0]
    for yaw, sign in ((20.0, 1), (-20.0, -1)):
        x_d = eng._target(state, DrivingFrame(index=0, controls=Controls(yaw=yaw)), None)[0]
        # turning the head moves the near half of the face sideways: mean x of the keypoints with
        # z in front of the centre moves one way, the far ones the other
        front = x_s[:, 2] < x_s[:, 2].median()
        shift = (x_d[:, 0] - x_s[:, 0])
        assert torch.sign(shift[front].mean() - shift[~front].mean()) != 0
        assert (x_d - x_s).abs().max() > 1e-2
    none = eng._target(state, DrivingFrame(index=0), None)
    assert torch.allclose(none, state.x_s)


def test_eyes_and_lips_controls_use_retargeting(models, source):
    eng = engine_with(models, stitching=False, normalize_lip=False)
    state = eng.prepare(source)
    closed = eng._target(state, DrivingFrame(index=0, controls=Controls(eyes=0.0)), None)
    delta = models.retarget_eyes(state.x_s, torch.cat([state.c_s_eyes, torch.zeros(1, 1)], 1))
    assert torch.allclose(closed, state.x_s + delta, atol=1e-6)
    opened = eng._target(state, DrivingFrame(index=0, controls=Controls(lips=1.0)), None)
    delta = models.retarget_lip(state.x_s, torch.cat([state.c_s_lip, torch.full((1, 1), 0.5)], 1))
    assert torch.allclose(opened, state.x_s + delta, atol=1e-6)


def test_algorithm1_retargeting_and_stitching(models, source, d0_frames):
    eng = engine_with(models, eyes_retargeting=True, lip_retargeting=True, stitching=True)
    state = eng.prepare(source)
    drives = eng._driving_motions(state, d0_frames)
    eng._target(state, d0_frames[0], drives[0])
    x_d = eng._target(state, d0_frames[2], drives[2])
    _, c_eyes, c_lip = drives[2]
    c0_eyes, c0_lip = state.c_d0
    c_d_eyes = state.c_s_eyes.mean(1, keepdim=True) * c_eyes / c0_eyes
    c_d_lip = state.c_s_lip * c_lip / max(c0_lip, 1e-2)
    delta = (models.retarget_eyes(state.x_s, torch.cat([state.c_s_eyes, c_d_eyes.clamp(0, 0.8)], 1))
             + models.retarget_lip(state.x_s, torch.cat([state.c_s_lip, c_d_lip.clamp(0, 0.8)], 1)))
    assert torch.allclose(x_d, models.stitch(state.x_s, state.x_s + delta), atol=1e-5)


def test_render_pastes_back_into_the_full_image(models, source, d0_frames):
    eng = engine_with(models)
    state = eng.prepare(source)
    out = eng.render_batch(state, d0_frames[:2])
    crop = state.crops[0]
    footprint = np.zeros(source.image.shape[:2], np.uint8)
    import cv2
    cv2.fillConvexPoly(footprint, np.round(crop.corners()).astype(np.int32), 1)
    for img in out:
        assert img.shape == source.image.shape and img.dtype == np.uint8
        changed = np.any(img != source.image, axis=-1)
        assert not changed[footprint == 0].any()
        assert changed[footprint == 1].mean() > 0.3
    single = eng.render(state, d0_frames[1])
    assert np.abs(single.astype(int) - out[1].astype(int)).max() <= 1       # batched == one by one
    crop_only = engine_with(models, paste_back=False)
    assert crop_only.render(crop_only.prepare(source), d0_frames[0]).shape == (512, 512, 3)


def test_group_photo_animates_every_face(models, data, detect):
    from puppetry.media import read_image
    import cv2
    a = cv2.resize(read_image(data / "portraits" / "s1.jpg"), (400, 560))
    b = cv2.resize(read_image(data / "portraits" / "s9.jpg"), (400, 560))
    group = np.concatenate([a, b], axis=1)
    faces = detect(group)
    assert len(faces) == 2
    eng = engine_with(models)
    state = eng.prepare(SourceFaces(image=group, landmarks=faces))
    assert state.x_s.shape[0] == 2
    out = eng.render(state, DrivingFrame(index=0, controls=Controls(yaw=10)))
    for x0, x1 in ((0, 400), (400, 800)):
        assert np.any(out[:, x0:x1] != group[:, x0:x1])


def test_official_template_drives_the_engine(models, source, data):
    template = load_pickle_template(data / "templates" / "d1.pkl")
    eng = engine_with(models, stitching=False, normalize_lip=False)
    state = eng.prepare(source)
    frames = [DrivingFrame(index=i, keypoints=template.frame(i)) for i in (0, len(template) - 1)]
    drives = eng._driving_motions(state, frames)
    first = eng._target(state, frames[0], drives[0])
    assert torch.allclose(first, state.x_s, atol=1e-5)
    last = eng._target(state, frames[1], drives[1])
    R = torch.from_numpy(template.R[-1])[None] @ torch.from_numpy(template.R[0]).T[None] @ state.info.R
    exp = state.info.exp + torch.from_numpy(template.exp[-1] - template.exp[0])[None]
    scale = state.info.scale * float(template.scale[-1] / template.scale[0])
    t = state.info.t + torch.from_numpy(template.t[-1] - template.t[0])[None]
    assert torch.allclose(last, transform_keypoints(state.info.kp, R, exp, scale, t), atol=1e-4)


def test_strict_loading_names_the_bad_tensor(release_dir, tmp_path):
    copy = tmp_path / "liveportrait"
    shutil.copytree(release_dir, copy)
    path = copy / "base_models" / "warping_module.pth"
    state = torch.load(path, weights_only=True)
    original = dict(state)
    del state["fourth.bias"]
    torch.save(state, path)
    with pytest.raises(WeightsError, match="missing tensor.*fourth.bias"):
        LivePortraitModels.from_checkpoints(copy)
    state = dict(original, extra_thing=torch.zeros(2))
    torch.save(state, path)
    with pytest.raises(WeightsError, match="unexpected tensor.*extra_thing"):
        LivePortraitModels.from_checkpoints(copy)
    state = dict(original, **{"fourth.bias": torch.zeros(3)})
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"fourth.bias.*shape \(3,\)"):
        LivePortraitModels.from_checkpoints(copy)
    shutil.copy(release_dir / "base_models" / "warping_module.pth", path)
    stitch = copy / "retargeting_models" / "stitching_retargeting_module.pth"
    parts = torch.load(stitch, weights_only=True)
    del parts["retarget_eye"]
    torch.save(parts, stitch)
    with pytest.raises(WeightsError, match="retarget_eye"):
        LivePortraitModels.from_checkpoints(copy)


def test_a_hostile_checkpoint_is_not_executed(release_dir, tmp_path):
    copy = tmp_path / "liveportrait"
    shutil.copytree(release_dir, copy)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(copy / "base_models" / "spade_generator.pth", "wb") as f:
        pickle.dump({"fc.weight": Evil()}, f)
    with pytest.raises(WeightsError, match="spade_generator.pth"):
        LivePortraitModels.from_checkpoints(copy)
    assert not marker.exists()


def test_missing_weights_explain_what_is_needed(tmp_path, monkeypatch):
    monkeypatch.delenv("PUPPETRY_LIVEPORTRAIT_DIR", raising=False)
    with pytest.raises(WeightsError, match="--checkpoint-dir"):
        find_checkpoint_dir(None)
    (tmp_path / "base_models").mkdir()
    with pytest.raises(WeightsError, match="lacks base_models/appearance_feature_extractor.pth"):
        find_checkpoint_dir(tmp_path)
    monkeypatch.setenv("PUPPETRY_LIVEPORTRAIT_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(WeightsError, match="does not exist"):
        find_checkpoint_dir(None)


def test_absolute_motion_uses_the_driving_pose(models, source, d0_frames):
    eng = engine_with(models, relative=False, stitching=False, normalize_lip=False)
    state = eng.prepare(source)
    drive = eng._driving_motions(state, d0_frames[1:2])[0]
    x_d = eng._target(state, d0_frames[1], drive)
    d = drive[0]
    s = state.info
    exp = s.exp.clone()
    for k in (1, 2, 6, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20):      # the release's absolute entries
        exp[:, k] = d.exp[:, k]
    for k, axis in ((3, 1), (4, 1), (5, 2), (8, 2), (9, 1), (9, 2)):
        exp[:, k, axis] = d.exp[:, k, axis]
    assert torch.allclose(x_d, transform_keypoints(s.kp, d.R, exp, s.scale, d.t), atol=1e-6)
    assert not torch.allclose(exp, s.exp)


def test_device_and_precision_are_checked():
    from puppetry.methods.liveportrait.models import RuntimeOptions
    assert RuntimeOptions().resolved_device().type == "cpu"
    with pytest.raises(WeightsError, match="needs a CUDA device"):
        RuntimeOptions("cpu", "fp16").resolved_device()
    with pytest.raises(WeightsError, match="unknown precision"):
        RuntimeOptions("cpu", "fp8").resolved_device()
    with pytest.raises(WeightsError, match="unknown device"):
        RuntimeOptions("tpu").resolved_device()
    if not torch.cuda.is_available():
        with pytest.raises(WeightsError, match="no CUDA GPU"):
            RuntimeOptions("cuda").resolved_device()
