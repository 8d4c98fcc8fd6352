"""``puppetry train liveportrait`` (paper 001, Sec. 3.2-3.3) on a tiny dataset prepared from real driving videos.

The networks are shrunk through ``--set model.*`` so that a step takes well under a second on a CPU;
VGG19 and ArcFace weights are random files in the right layouts (the real ones are never downloaded),
which exercises every loss term.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from puppetry.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.input_size=32", "model.block_expansion=8", "model.max_features=32", "model.reshape_channel=8",
        "model.reshape_depth=4", "model.num_resblocks=1", "model.dense_block_expansion=8",
        "model.dense_max_features=32", "model.dense_num_blocks=2", "model.dense_compress=2",
        "model.motion_depths=[1,1]", "model.motion_dims=[16,32]", "model.stitching_hidden=[16]",
        "model.eyes_hidden=[16]", "model.lip_hidden=[16]", "model.disc_block_expansion=8",
        "model.disc_max_features=32", "model.disc_num_blocks=2", "model.condition_channels=8",
        "train.batch_size=2", "train.device=cpu", "train.log_every=1", "train.sample_every=4",
        "train.checkpoint_every=100"]
STEPS = (6, 4)


pytestmark = pytest.mark.usefixtures("one_thread")     # conftest.py: tiny networks, one thread


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, data) -> Path:
    """Frames, landmarks and label maps of two real driving videos (24 frames each, 64 pixels)."""
    out = tmp_path_factory.mktemp("lp_data") / "dataset"
    videos = [str(data / "driving" / f"{v}.mp4") for v in ("d0", "d20")]
    assert main(["-q", "prepare", *videos, "-o", str(out), "--max-frames", "24", "--size", "64"]) == 0
    return out


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, Path]:
    """Random VGG19 (torchvision layout, with a classifier) and ArcFace IResNet (1-1-1-1 blocks) files."""
    from puppetry.methods.liveportrait.training.arcface import IResNet
    from puppetry.nn.vgg import VGG19Features

    folder = tmp_path_factory.mktemp("lp_weights")
    torch.manual_seed(0)
    vgg = {k: v * 0.5 if k.endswith("weight") else v for k, v in VGG19Features().state_dict().items()}
    vgg["classifier.0.weight"] = torch.zeros(4, 4)
    torch.save(vgg, folder / "vgg19.pth")
    torch.save(IResNet((1, 1, 1, 1)).state_dict(), folder / "arcface.pth")
    return {"vgg": folder / "vgg19.pth", "arcface": folder / "arcface.pth"}


def train(dataset: Path, run: Path, *extra: str, sets: tuple[str, ...] = (), steps=STEPS) -> int:
    options = [f"stage1.steps={steps[0]}", f"stage2.steps={steps[1]}", *TINY, *sets]
    return main(["-q", "train", "liveportrait", "--data", str(dataset), "-o", str(run),
                 *[a for s in options for a in ("--set", s)], *extra])


def with_weights(weights: dict[str, Path]) -> tuple[str, ...]:
    return (f"losses.vgg19_weights={weights['vgg']}", f"losses.arcface_weights={weights['arcface']}")


@pytest.fixture(scope="module")
def trained_run(dataset, tmp_path_factory) -> Path:
    """Both stages without VGG19 / ArcFace weights (their losses off, as without the files)."""
    run = tmp_path_factory.mktemp("lp_run") / "run"
    assert train(dataset, run) == 0
    return run


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def exported(run: Path) -> dict[str, torch.Tensor]:
    out = {}
    for path in sorted((run / "liveportrait").rglob("*.pth")):
        data = torch.load(path, weights_only=True)
        for k, v in data.items():
            for kk, vv in (v.items() if isinstance(v, dict) else [("", v)]):
                out[f"{path.name}/{k}/{kk}"] = vv
    return out


# ------------------------------------------------------------------------------------------------ config
def test_packaged_config_is_the_papers():
    from puppetry.methods.liveportrait.config import LivePortraitConfig
    from puppetry.methods.liveportrait.training.config import LivePortraitTrainConfig, is_release_size, liveportrait_config
    from puppetry.training.config import load_config

    cfg = load_config(LivePortraitTrainConfig, ROOT / "puppetry" / "methods" / "liveportrait" / "configs" / "liveportrait.yaml")
    assert cfg == LivePortraitTrainConfig()
    assert (cfg.model.input_size, cfg.model.output_size, cfg.train.batch_size) == (256, 512, 13)
    assert (cfg.stage1.lr, tuple(cfg.stage1.betas), cfg.stage2.lr) == (2e-4, (0.5, 0.999), 2e-4)
    assert liveportrait_config(cfg.model) == LivePortraitConfig() and is_release_size(cfg.model)
    assert len(cfg.losses.guide_pairs) == 10                              # Eq. 3: N = 10, eyes and lip
    assert cfg.losses.vgg19_weights is None and cfg.losses.arcface_weights is None


def test_config_errors_name_the_problem():
    from puppetry.methods.liveportrait.training.config import LivePortraitTrainConfig
    from puppetry.training.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="max_features .* must equal"):
        load_config(LivePortraitTrainConfig, None, ["model.max_features=100"])
    with pytest.raises(ConfigError, match="multiple of"):
        load_config(LivePortraitTrainConfig, None, ["model.input_size=48"])
    with pytest.raises(ConfigError, match="unknown key config.losses.vgg"):
        load_config(LivePortraitTrainConfig, None, ["losses.vgg=x"])


# -------------------------------------------------------------------------------------------- the losses
def test_wing_loss_values():
    from puppetry.methods.liveportrait.training.losses import wing

    x = torch.tensor([0.0, 2.0, -2.0, 10.0, 20.0])
    c = 10 - 10 * math.log(6)
    expected = torch.tensor([0.0, 10 * math.log(2), 10 * math.log(2), 10 * math.log(6), 20 - c])
    assert torch.allclose(wing(x, 10.0, 2.0), expected, atol=1e-5)
    assert torch.allclose(wing(torch.tensor(10.0 - 1e-4)), wing(torch.tensor(10.0 + 1e-4)), atol=1e-3)   # continuous


def test_guide_loss_is_the_mean_wing_of_eq3():
    from puppetry.methods.liveportrait.training.losses import guide_loss

    pairs = ((0, 5), (1, 7))
    lm = torch.rand(3, 478, 2) * 2 - 1
    x = torch.zeros(3, 21, 3)
    x[:, 0, :2], x[:, 1, :2] = lm[:, 5], lm[:, 7]
    assert guide_loss(x, x, lm, lm, pairs, 10.0, 2.0).abs() < 1e-6
    shifted = x.clone()
    shifted[:, :, 0] += 1 / 128                              # one pixel of a 256-pixel image in x
    assert torch.allclose(guide_loss(shifted, shifted, lm, lm, pairs, 10.0, 2.0), torch.tensor(10 * math.log(1.5)))


def test_hinge_gan_signs_and_feature_matching():
    from puppetry.methods.liveportrait.training.losses import feature_matching, hinge_discriminator, hinge_generator

    feats = [torch.ones(2, 4, 3, 3)]
    sure = [(feats, torch.full((2, 1, 3, 3), 2.0))]
    fooled = [(feats, torch.full((2, 1, 3, 3), -2.0))]
    assert hinge_discriminator(sure, fooled) == 0                  # real >= 1 and fake <= -1: nothing to learn
    assert hinge_discriminator(fooled, sure) == 6                  # (1 + 2) + (1 + 2)
    assert hinge_generator(sure) == -2 and hinge_generator(fooled) == 2   # the generator wants D(fake) high
    assert feature_matching(sure, fooled) == 0
    assert feature_matching(sure, [([f * 0 for f in feats], sure[0][1])]) == 1


def test_masked_l1_identity_and_perceptual_losses(weights):
    from puppetry.methods.liveportrait.training.losses import identity_loss, masked_l1
    from puppetry.nn.vgg import PerceptualLoss, load_vgg19

    a, b = torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    b[..., :2, :] = 1.0                                            # differs on the top half only
    mask = torch.zeros(1, 4, 4)
    assert masked_l1(a, b, mask + 1) == 0.5
    mask[:, 2:] = 1
    assert masked_l1(a, b, mask) == 0                              # only the masked (bottom) half counts
    e = torch.randn(2, 8)
    assert identity_loss(e, e).abs() < 1e-6 and torch.allclose(identity_loss(e, -e), torch.tensor(2.0))
    loss = PerceptualLoss(load_vgg19(weights["vgg"]), (1.0,) * 5, (1.0, 0.5, 0.25, 0.125))
    x = torch.rand(2, 3, 32, 32)
    assert loss(x, x) == 0 and loss(x, x.flip(-1)) > 0             # 32 px: scales 1 and 1/2 only


def test_keypoint_prior_head_pose_and_deformation_prior():
    from puppetry.methods.liveportrait.training.losses import deformation_prior, head_pose_loss, keypoint_prior
    from puppetry.methods.liveportrait.training.stage1 import pose_reference

    spread = torch.tensor([[[-0.5, -0.5, 0.33], [0.5, -0.5, 0.33], [0.0, 0.5, 0.33]]])
    assert keypoint_prior(spread) == 0
    together = spread.clone()
    together[0, 1] = together[0, 0]                                # two keypoints on one spot: 2 x D_t
    assert torch.allclose(keypoint_prior(together), torch.tensor(0.2))
    assert torch.allclose(keypoint_prior(spread - torch.tensor([0, 0, 0.33])), torch.tensor(0.33))
    ypr = torch.tensor([[10.0, -5.0, 2.0]])                       # dataset: yaw, pitch, roll
    assert torch.equal(pose_reference(ypr, (1.0, 1.0, 1.0)), torch.tensor([[-5.0, 10.0, 2.0]]))   # M: pitch, yaw, roll
    assert head_pose_loss(torch.tensor([[-4.0, 12.0, 2.0]]), pose_reference(ypr, (1, 1, 1))) == 3
    assert deformation_prior(torch.tensor([[[0.1, -0.2, 0.3]]])).item() == pytest.approx(0.6)


def test_equivariance_loss_is_zero_for_the_identity_warp(dataset):
    """With both sigmas 0 the warp is the identity: M sees the same image and L_E vanishes; a translation
    moves image content by exactly what ``warp_coordinates`` says."""
    from puppetry.data import open_dataset
    from puppetry.methods.liveportrait.kinematics import KeypointInfo, transform_keypoints
    from puppetry.methods.liveportrait.training.config import ModelSettings
    from puppetry.methods.liveportrait.training.losses import equivariance_loss
    from puppetry.methods.liveportrait.training.networks import build_motion_extractor
    from puppetry.methods.liveportrait.training.warp import RandomWarp

    ds = open_dataset(dataset)
    frame = torch.from_numpy(ds.frame(ds.clips[0].id, 3)).permute(2, 0, 1)[None].float() / 255
    rng = np.random.default_rng(0)
    identity = RandomWarp.sample(rng, 1, 0.0, 0.0, 5, torch.device("cpu"))
    assert (identity.warp_images(frame) - frame).abs().max() < 1e-5
    torch.manual_seed(0)
    m = build_motion_extractor(ModelSettings(input_size=64, dense_num_blocks=2, motion_depths=(1, 1),
                                                 motion_dims=(16, 32)))
    info = KeypointInfo.from_raw(m(torch.cat([frame, identity.warp_images(frame)])))
    x = transform_keypoints(info.kp[:1].expand(2, -1, -1), info.R, info.exp, info.scale, info.t)
    assert equivariance_loss(x[:1], x[1:], identity) < 1e-5
    random = RandomWarp.sample(rng, 1, 0.05, 0.005, 5, torch.device("cpu"))
    assert equivariance_loss(x[:1], x[:1], random) > 1e-3          # keypoints that do not follow the warp

    dot = torch.zeros(1, 1, 64, 64)
    dot[0, 0, 20, 40] = 1.0                                        # pixel (x 40, y 20)
    shift = RandomWarp(torch.tensor([[[1.0, 0.0, 0.25], [0.0, 1.0, -0.125]]]), identity.control_points,
                       torch.zeros(1, 25))
    moved = shift.warp_images(dot)[0, 0]
    y, x = np.unravel_index(int(moved.argmax()), moved.shape)
    assert (int(x), int(y)) == (40 - 8, 20 + 4)                      # b = (0.25, -0.125) = (8, -4) pixels
    centre = torch.tensor([[[(2 * float(x) + 1) / 64 - 1, (2 * float(y) + 1) / 64 - 1]]])
    source = torch.tensor([[[(2 * 40 + 1) / 64 - 1, (2 * 20 + 1) / 64 - 1]]])
    assert torch.allclose(shift.warp_coordinates(centre), source)


def test_power_iteration_gives_torchs_spectral_norm():
    from puppetry.methods.liveportrait.training.networks import attach_power_iteration
    from puppetry.nn.spade import SpectralNormConv2d

    torch.manual_seed(0)
    layer = SpectralNormConv2d(8, 16, 3, padding=1)
    assert attach_power_iteration(layer) == 1
    layer.train()
    for _ in range(20):
        layer(torch.zeros(1, 8, 4, 4))
    assert torch.linalg.matrix_norm(layer.weight().detach().flatten(1), 2).item() == pytest.approx(1.0, abs=1e-3)
    u = layer.weight_u.clone()
    layer.eval()
    layer(torch.zeros(1, 8, 4, 4))
    assert torch.equal(u, layer.weight_u)                          # inference leaves the vectors alone


def test_regions_from_landmarks_and_label_maps(dataset):
    from puppetry.data import open_dataset
    from puppetry.face.parsing import EYES
    from puppetry.methods.liveportrait.training.regions import (Crops, crop, eye_crops, eyes_mask, face_crops, lip_mask,
                                                        normalize_landmarks, shoulder_mask)

    ds = open_dataset(dataset)
    clip = ds.clips[0].id
    lm = normalize_landmarks(torch.from_numpy(ds.landmarks(clip)["landmarks478"][:2, :, :2]), ds.size)
    labels = torch.from_numpy(np.stack([ds.mask(clip, t) for t in range(2)])).long()
    image = torch.rand(2, 3, 64, 64)
    whole = Crops(torch.zeros(2, 2), torch.full((2,), 2.0), torch.zeros(2))
    assert (crop(image, whole, 64) - image).abs().max() < 1e-5
    face = face_crops(lm)
    assert (face.sides > 0.4).all() and (face.sides < 2.0).all() and (face.angles.abs() < 0.5).all()
    eyes = eye_crops(lm)
    assert eyes.centers.shape == (4, 2) and (eyes.angles.abs() < 0.5).all()       # both eyes, level
    assert (eyes.centers[:2, 0] < eyes.centers[2:, 0]).all()                      # subject's right eye on the left
    from_labels = eyes_mask(lm, labels, 64, 0.0)
    assert torch.equal(from_labels, (labels == EYES).float())
    from_landmarks = eyes_mask(lm, None, 64, 0.0)
    assert (from_landmarks * from_labels).sum() > 0.5 * from_labels.sum()       # the two agree on the eyes
    assert lip_mask(lm, None, 64, 0.0).sum() > 0 and lip_mask(lm, labels, 64, 0.0).sum() > 0
    below = shoulder_mask(lm, None, 64)
    assert below[:, -1].all() and not below[:, 0].any()                          # bottom rows, not the top


# ---------------------------------------------------------------------------------------------- training
def test_training_logs_finite_losses_and_exports_the_release_layout(trained_run):
    from puppetry.methods.liveportrait.checkpoints import BASE_FILES, RETARGETING_FILE
    from puppetry.methods.liveportrait.training.export import load_exported

    folder = trained_run / "liveportrait"
    for rel in [*BASE_FILES.values(), RETARGETING_FILE, "training_config.yaml"]:
        assert (folder / rel).is_file(), rel
    rows = metrics(trained_run)
    s1 = [r for r in rows if r["stage"] == "stage1"]
    s2 = [r for r in rows if r["stage"] == "stage2"]
    assert len(s1) == STEPS[0] and len(s2) == STEPS[1]
    assert {"gan", "feature_matching", "equivariance", "keypoint_prior", "head_pose", "deformation_prior", "guide",
            "rec_l1", "loss_D", "loss_C"} <= set(s1[0])
    assert {"L_st", "st_const", "L_eyes", "eyes_cond", "L_lip", "lip_cond", "loss_C"} <= set(s2[0])
    assert all(np.isfinite(v) for r in rows for k, v in r.items() if k != "stage")

    parts = torch.load(folder / RETARGETING_FILE, weights_only=True)
    assert set(parts) == {"retarget_shoulder", "retarget_mouth", "retarget_eye"}
    assert all(k.startswith("module.") for part in parts.values() for k in part)
    models = load_exported(folder)                                 # strict, at the run's sizes
    state = torch.load(trained_run / "checkpoints" / "last.pt", weights_only=True)["modules"]
    assert torch.equal(models.spade_generator.fc.weight, state["G"]["fc.weight"])
    assert torch.equal(models.eyes.mlp[0].weight, state["R_eyes"]["mlp.0.weight"])
    with torch.no_grad():
        out = models.warp_decode(models.appearance(torch.rand(1, 3, 32, 32)), torch.zeros(1, 21, 3),
                                 torch.zeros(1, 21, 3))
    assert out["image"].shape == (1, 3, 64, 64)

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(trained_run / "tensorboard"))
    events.Reload()
    assert {"stage1/source_driving_generated", "stage2/source_driving_generated"} <= set(events.Tags()["images"])
    image = events.Images("stage1/source_driving_generated")[-1]
    assert (image.width, image.height) == (3 * 64, 4 * 64)         # source | driving | generated, 4 pairs


def test_release_sizes_export_loads_with_the_engine_loader(tmp_path):
    from puppetry.methods.liveportrait.models import LivePortraitModels
    from puppetry.methods.liveportrait.training.config import ModelSettings
    from puppetry.methods.liveportrait.training.export import export_release
    from puppetry.methods.liveportrait.training.networks import build_generator

    torch.manual_seed(0)
    nets = build_generator(ModelSettings())
    folder = export_release(nets, ModelSettings(), tmp_path / "liveportrait")
    models = LivePortraitModels.from_checkpoints(folder)           # what --engine liveportrait does
    assert torch.equal(models.motion_extractor.detector.fc_kp.weight, nets["M"].detector.fc_kp.weight)
    assert torch.equal(models.stitching.mlp[0].weight, nets["S"].mlp[0].weight)


def test_overfitting_one_pair_lowers_the_reconstruction_error(dataset, tmp_path):
    """Stage I without the perceptual and GAN terms (pixel L1 instead) on one fixed pair: the error falls."""
    run = tmp_path / "overfit"
    assert train(dataset, run, sets=("data.fixed_pairs=1", "losses.pixel_l1=10", "losses.gan=0",
                                      "losses.feature_matching=0", "train.sample_every=100"), steps=(8, 0)) == 0
    rec = [r["rec_l1"] for r in metrics(run) if r["stage"] == "stage1"]
    assert len(rec) == 8 and rec[-1] < 0.7 * rec[0], rec


def test_perceptual_and_face_id_losses_with_weight_files(dataset, weights, tmp_path):
    run = tmp_path / "weights"
    assert train(dataset, run, sets=with_weights(weights), steps=(2, 1)) == 0
    s1 = [r for r in metrics(run) if r["stage"] == "stage1"]
    assert all(r["perceptual"] > 0 and 0 <= r["face_id"] <= 2 * 10.0 for r in s1)   # lambda (1 - cos)
    assert all(np.isfinite(v) for r in s1 for k, v in r.items() if k != "stage")


def test_resumed_run_equals_the_uninterrupted_one(dataset, trained_run, tmp_path):
    run = tmp_path / "parts"
    assert train(dataset, run, "--stop-after", "3") == 0
    assert not (run / "liveportrait").exists()
    assert train(dataset, run, "--resume", "--stop-after", "5") == 0       # crosses into stage 2
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["stage"] == "stage2"
    assert train(dataset, run, "--resume") == 0
    a, b = exported(trained_run), exported(run)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert metrics(run) == metrics(trained_run)


def test_missing_weights_turn_losses_off_with_a_warning(dataset, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="puppetry"):
        assert train(dataset, tmp_path / "plain", steps=(1, 0)) == 0
    text = caplog.text
    assert text.count("perceptual loss is off") == 1 and text.count("face-id loss is off") == 1
    row = metrics(tmp_path / "plain")[0]
    assert "perceptual" not in row and "face_id" not in row and np.isfinite(row["loss_G"])


def test_bad_weight_files_are_one_line_errors(dataset, tmp_path, capsys):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    wrong = tmp_path / "wrong.pth"
    torch.save({"features.0.weight": torch.zeros(3, 3, 3, 3)}, wrong)
    cases = [(f"losses.vgg19_weights={wrong}", "not VGG19 weights in torchvision's layout: features.0.weight"),
             (f"losses.vgg19_weights={junk}", "cannot read VGG19 weights"),
             (f"losses.vgg19_weights={tmp_path / 'none.pth'}", "does not exist"),
             (f"losses.arcface_weights={wrong}", "not ArcFace IResNet weights"),
             ("init.checkpoint_dir=" + str(tmp_path), "needs the release's network sizes")]
    for setting, expected in cases:
        assert train(dataset, tmp_path / "r", sets=(setting,), steps=(1, 0)) == 2, setting
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("puppetry: error:") and expected in err[0], err
