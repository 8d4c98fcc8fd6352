"""Training framework and LD-Net on landmarks prepared from the real driving videos in ../shared/data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from puppetry.cli import main

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ["d0", "d11", "d12", "d18", "d19", "d20"]
TINY = ["model.hidden=64", "model.layers=3", "train.log_every=10", "train.checkpoint_every=20",
        "train.sample_every=40", "data.holdout=2", "train.device=cpu"]


@pytest.fixture(scope="module")
def landmark_dataset(tmp_path_factory, data) -> Path:
    """Landmarks of six real driving videos (48 frames each), one identity per video."""
    out = tmp_path_factory.mktemp("ldnet_data") / "dataset"
    videos = [str(data / "driving" / f"{v}.mp4") for v in VIDEOS]
    assert main(["-q", "prepare", *videos, "-o", str(out), "--landmarks-only", "--max-frames", "48",
                 "--identity", "video"]) == 0
    return out


def train(dataset: Path, run: Path, *extra: str, steps=(120, 60)) -> int:
    sets = [f"stage1.steps={steps[0]}", f"stage2.steps={steps[1]}", *TINY]
    return main(["-q", "train", "ldnet", "--data", str(dataset), "-o", str(run),
                 *[a for s in sets for a in ("--set", s)], *extra])


@pytest.fixture(scope="module")
def trained_run(landmark_dataset, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("ldnet_run") / "run"
    assert train(landmark_dataset, run) == 0
    return run


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def weights(path: Path) -> dict[str, torch.Tensor]:
    data = torch.load(path, weights_only=True)
    return {f"{m}.{k}": v for m in ("E_P", "E_I", "G") for k, v in data[m].items()}


# ------------------------------------------------------------------------------------------------ config
def test_packaged_config_is_the_papers():
    from puppetry.methods.ldnet.config import LDNetConfig
    from puppetry.training.config import load_config

    cfg = load_config(LDNetConfig, ROOT / "puppetry" / "methods" / "ldnet" / "configs" / "ldnet.yaml")
    assert cfg == LDNetConfig()
    assert (cfg.model.hidden, cfg.model.layers, cfg.model.pose_code, cfg.model.identity_code) == (512, 10, 64, 128)
    assert (cfg.stage1.lr, cfg.stage1.steps, cfg.stage1.lambda_rec, cfg.stage1.lambda_c) == (1e-4, 400_000, 1000, 0.1)
    assert (cfg.stage2.lr, cfg.stage2.steps, cfg.stage2.lambda_cont, cfg.stage2.lambda_d) == (5e-5, 1_000_000, 0.01, 0.1)
    assert cfg.train.batch_size == 32


def test_config_errors_name_the_problem(tmp_path):
    from puppetry.methods.ldnet.config import LDNetConfig
    from puppetry.training.config import ConfigError, load_config

    bad = tmp_path / "bad.yaml"
    bad.write_text("stage1:\n  stpes: 10\n")
    with pytest.raises(ConfigError, match="unknown key config.stage1.stpes; config.stage1 has: steps"):
        load_config(LDNetConfig, bad)
    with pytest.raises(ConfigError, match="must be a number"):
        load_config(LDNetConfig, None, ["stage1.lr=fast"])
    with pytest.raises(ConfigError, match="must be one of"):
        load_config(LDNetConfig, None, ["model.landmarks=dlib5"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(LDNetConfig, tmp_path / "missing.yaml")
    assert load_config(LDNetConfig, None, ["stage2.steps=7", "train.precision=bf16"]).stage2.steps == 7


def test_a_section_given_in_part_keeps_the_recipes_own_defaults():
    """``--set train.log_every=N`` once reset FD-GAN's batch of 4 (and PuppeteerGAN's 16) to TrainSettings' 32."""
    from puppetry.methods.fdgan.config import FDGanConfig
    from puppetry.methods.puppeteergan.config import PuppeteerGanConfig
    from puppetry.training.config import load_config

    assert load_config(FDGanConfig, None, ["train.log_every=5"]).train.batch_size == 4
    cfg = load_config(PuppeteerGanConfig, None, ["train.log_every=5", "color_model.width=8"])
    assert (cfg.train.batch_size, cfg.train.log_every, cfg.color_model.width, cfg.color_model.size) == (16, 5, 8, 256)


# ------------------------------------------------------------------------------------------ LD-Net math
def test_same_pose_pairs_reproduce_a_frame_of_the_same_identity(landmark_dataset):
    """Giving identity B its own expression change and rotation gives back B's frame (the pair builder)."""
    from puppetry.methods.ldnet.evaluation import same_pose_landmarks
    from puppetry.methods.ldnet.landmarks import load_corpus, normalize

    corpus = load_corpus(landmark_dataset, "mediapipe478")
    assert len(corpus.identities) == len(VIDEOS)
    t = np.array([5, 30])
    out = same_pose_landmarks(corpus, np.array([1, 3]), np.array([1, 3]), t)
    expected = np.stack([corpus.raw[1][5][:, :2], corpus.raw[3][30][:, :2]])
    # Same shape, at the reference frame's size and place (LD-Net normalises both away).
    np.testing.assert_allclose(normalize(out)[0], normalize(expected)[0], atol=1e-4)
    other = same_pose_landmarks(corpus, np.array([0]), np.array([1]), np.array([5]))
    assert np.abs(normalize(other)[0] - normalize(expected[:1])[0]).max() > 0.03   # another identity's shape


def test_normalisation_spans_the_unit_box():
    from puppetry.methods.ldnet.landmarks import denormalize, normalize

    pts = np.random.default_rng(0).uniform(100, 300, (3, 478, 2))
    n, c, h = normalize(pts)
    assert np.allclose(np.abs(n).max(axis=(1, 2)), 1.0)
    np.testing.assert_allclose(denormalize(n, c, h), pts, atol=1e-9)


# ------------------------------------------------------------------------------------------- training
def test_training_writes_checkpoints_logs_weights_and_report(trained_run):
    run = trained_run
    for name in ("ldnet.pt", "checkpoints/last.pt", "config.yaml", "ldnet_report.json", "ldnet_report.html"):
        assert (run / name).is_file(), name
    rows = metrics(run)
    s1 = [r["rec"] for r in rows if r["stage"] == "stage1"]
    s2 = [r for r in rows if r["stage"] == "stage2"]
    assert len(s1) == 12 and len(s2) == 6
    assert s1[-1] < 0.5 * s1[0], s1                      # the reconstruction loss (Eq. 2) falls
    assert {"rec", "cont", "adv_D", "adv_C", "loss_D", "loss_C"} <= set(s2[0])
    report = json.loads((run / "ldnet_report.json").read_text())
    table = report["table1"]
    assert len(table["heldout_identities"]) == 2
    values = [table[space][k] for space in ("E_I", "E_P") for k in ("same_identity", "same_pose", "both_different")]
    assert all(np.isfinite(values)) and all(v > 0 for v in values)
    html = (run / "ldnet_report.html").read_text()
    assert "Table 1" in html and "data:image/png;base64," in html

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert "stage1/rec" in events.Tags()["scalars"] and "stage2/landmarks" in events.Tags()["images"]
    assert len(events.Scalars("stage1/rec")) == 12


def test_resumed_run_continues_exactly_where_it_stopped(landmark_dataset, trained_run, tmp_path):
    run = tmp_path / "run"
    assert train(landmark_dataset, run, "--stop-after", "50") == 0
    assert not (run / "ldnet.pt").exists()
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["step"] == 50
    assert train(landmark_dataset, run, "--resume", "--stop-after", "100") == 0      # crosses into stage 2
    assert train(landmark_dataset, run, "--resume") == 0
    a, b = weights(trained_run / "ldnet.pt"), weights(run / "ldnet.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert metrics(run) == metrics(trained_run)


def test_training_errors_are_one_line(landmark_dataset, trained_run, tmp_path, capsys):
    cases = [
        (["train", "ldnet", "--data", str(landmark_dataset), "-o", str(trained_run)], "--resume"),
        (["train", "ldnet", "--data", str(landmark_dataset), "-o", str(tmp_path / "new"), "--resume"], "nothing to resume"),
        (["train", "warp", "--data", str(landmark_dataset), "-o", str(tmp_path / "w")], "training-free"),
        (["train", "stylegan", "--data", str(landmark_dataset), "-o", str(tmp_path / "s")], "trainable methods: ldnet"),
        (["train", "ldnet", "--data", str(tmp_path / "nodata"), "-o", str(tmp_path / "n")], str(tmp_path / "nodata")),
        (["train", "ldnet", "--data", str(landmark_dataset), "-o", str(tmp_path / "f"), "--set", "train.precision=fp16",
          "--set", "train.device=cpu"], "fp16 needs a CUDA device"),
        (["train", "ldnet", "--data", str(landmark_dataset), "-o", str(tmp_path / "k"), "--set", "stage3.steps=1"],
         "unknown key config.stage3"),
    ]
    for argv, expected in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("puppetry: error:") and expected in err[0], err


# ---------------------------------------------------------------------------------- distributed (gloo)
def torchrun(*args: str) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(ROOT / "tests" / "ddp_worker.py"), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_ddp_averages_gradients_over_two_processes(tmp_path):
    torchrun("grads", str(tmp_path))
    results = [json.loads((tmp_path / f"grads{r}.json").read_text()) for r in (0, 1)]
    for r in results:
        assert r["world_size"] == 2
        assert r["ddp_vs_mean"] < 1e-7 * max(r["grad_scale"], 1.0)     # DDP's gradient is the mean
        assert r["local_vs_mean"] > 1e-3 * r["grad_scale"]               # and each process's own differs


def test_ddp_training_stays_in_sync_and_resumes_exactly(landmark_dataset, tmp_path):
    sets = ["stage1.steps=30", "stage2.steps=20", *TINY]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    torchrun("train", str(whole), str(landmark_dataset), "-", "0", *sets)
    torchrun("train", str(parts), str(landmark_dataset), "35", "0", *sets)
    assert not (parts / "ldnet.pt").exists()
    torchrun("train", str(parts), str(landmark_dataset), "-", "1", *sets)
    r0, r1 = (torch.load(whole / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    p0 = torch.load(parts / "rank0.pt", weights_only=True)
    for m in r0:
        for k in r0[m]:
            assert torch.equal(r0[m][k], r1[m][k]), (m, k)       # both processes hold the same weights
            assert torch.equal(r0[m][k], p0[m][k]), (m, k)       # the resumed run equals the whole one
    single = tmp_path / "single"
    assert train(landmark_dataset, single, steps=(30, 20)) == 0
    a, b = weights(single / "ldnet.pt"), weights(whole / "ldnet.pt")
    assert any(not torch.equal(a[k], b[k]) for k in a)          # the second process's data counted


# ------------------------------------------------------------------------------ --retarget ldnet (warp)
def test_warp_engine_retargets_driving_landmarks_with_ldnet(trained_run, data, s1, detect):
    from puppetry.methods.ldnet.inference import LDNet, LandmarkRetargeter
    from puppetry.pipeline.animate import AnimateOptions, animate

    net = LDNet(trained_run / "ldnet.pt")
    retargeter = LandmarkRetargeter(net)
    from puppetry.media import read_image
    s9 = read_image(data / "portraits" / "s9.jpg")
    source_a, source_b = detect(s1)[0], detect(s9)[0]
    drive = detect(read_image(data / "driving" / "d12.jpg"))[0]
    out_a = retargeter.retarget(drive, retargeter.identity(source_a))
    out_b = retargeter.retarget(drive, retargeter.identity(source_b))
    assert out_a.shape == (478, 3) and np.isfinite(out_a).all()
    np.testing.assert_allclose(out_a[:, 2], drive[:, 2])                       # depth is the driver's
    assert np.abs(out_a[:, :2] - drive[:, :2]).mean() < 0.15 * np.ptp(drive[:, 0])  # a face where the driver's is
    assert np.abs(out_a - out_b).max() > 0.1                                   # the identity code is used

    options = dict(max_frames=6, progress=False)
    plain = animate(s1, data / "driving" / "d0.mp4", None, AnimateOptions(**options))
    ld = animate(s1, data / "driving" / "d0.mp4", None, AnimateOptions(
        **options, engine_options={"retarget": "ldnet", "ldnet_weights": str(trained_run / "ldnet.pt")}))
    assert len(ld.images) == len(plain.images) == 6
    assert np.abs(ld.images[3].astype(int) - plain.images[3].astype(int)).mean() > 0.05
    assert np.abs(ld.images[3].astype(int) - s1.astype(int)).mean() < 20        # still the source portrait


def test_retarget_errors_are_one_line(tmp_path, capsys):
    bogus = tmp_path / "ldnet.pt"
    bogus.write_bytes(b"not a checkpoint")
    for argv, expected in [(["--ldnet-weights", str(tmp_path / "none.pt")], "not found"),
                           (["--ldnet-weights", str(bogus)], "cannot read LD-Net weights"),
                           (["--ldnet-weights", str(bogus), "--engine", "liveportrait"], "apply to --engine warp")]:
        rc = main(["animate", "--retarget", "ldnet", *argv, "-o", str(tmp_path / "o.mp4")])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and expected in err[0], err
        assert not (tmp_path / "o.mp4").exists()


def test_evaluate_compares_warp_with_and_without_ldnet(trained_run, data, tmp_path):
    out = tmp_path / "eval"
    rc = main(["-q", "evaluate", "--cross-sources", str(data / "portraits" / "s9.jpg"), "--cross-driving",
               str(data / "driving" / "d12.mp4"), "--engine", "warp,warp+ldnet", "--ldnet-weights",
               str(trained_run / "ldnet.pt"), "--max-frames", "6", "--max-size", "512", "--no-identity",
               "-o", str(out)])
    assert rc == 0
    results = json.loads((out / "metrics.json").read_text())["results"]["cross"]
    assert set(results) >= {"static", "warp", "warp+ldnet"}
    akd = [results[e]["mean"]["akd"]["value"] for e in ("warp", "warp+ldnet")]
    assert all(np.isfinite(akd)) and akd[0] != akd[1]
