"""PuppeteerGAN (paper 000): training data (video pairs, stills in two layouts), both training stages on real
frames with resume, the engine end to end (sizes, a group photo, the API and the web app), and its errors.

Training runs through ``puppetry train puppeteergan`` on three real driving videos prepared at 64 pixels,
with the networks shrunk; the networks' own tests are in test_puppeteergan_sketching.py and
test_puppeteergan_coloring.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from puppetry.cli import main
from puppetry.media.image import read_image
from puppetry.media.video import read_video

ROOT = Path(__file__).resolve().parents[1]
TINY = ["sketch_model.mask_size=32", "sketch_model.seg_blocks=3", "sketch_model.landmark_features=32",
        "sketch_model.landmark_hidden=64", "sketch_model.seg_width=8", "sketch_model.max_width=32",
        "sketch_model.disc_hidden=32", "color_model.size=64", "color_model.width=8", "color_model.max_width=32",
        "color_model.levels=3", "color_model.wasic_levels=2", "color_model.disc_width=8",
        "color_model.disc_layers=2", "train.batch_size=4", "train.device=cpu", "train.log_every=1",
        "train.sample_every=1000", "train.checkpoint_every=1000", "sketch.lr=1e-3", "color.lr=1e-3"]
SKETCH_STEPS, COLOR_STEPS = 80, 60

pytestmark = pytest.mark.usefixtures("one_thread")     # conftest.py: tiny networks, one thread


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, data) -> Path:
    """Frames, landmarks and label maps of three real driving videos (three people), 64 pixels."""
    out = tmp_path_factory.mktemp("pg_data") / "dataset"
    videos = [str(data / "driving" / f"{v}.mp4") for v in ("d0", "d10", "d3")]
    assert main(["-q", "prepare", *videos, "-o", str(out), "--max-frames", "30", "--size", "64"]) == 0
    return out


@pytest.fixture(scope="module")
def stills(tmp_path_factory, data, detect) -> Path:
    """Four real portraits with our label maps, written in CelebAMask-HQ's layout (one PNG per part)."""
    from puppetry.face.parsing import PersonSegmenter, face_parsing
    from puppetry.methods.puppeteergan.data import CELEBAMASK_PARTS

    root = tmp_path_factory.mktemp("pg_stills")
    (root / "CelebA-HQ-img").mkdir()
    truth = {}
    with PersonSegmenter() as seg:
        for i, name in enumerate(("s1", "s5", "s12", "s42")):
            rgb = cv2.resize(read_image(data / "portraits" / f"{name}.jpg"), (128, 128), interpolation=cv2.INTER_AREA)
            labels = face_parsing(rgb, detect(rgb)[0], seg.segment(rgb))
            truth[i] = labels
            cv2.imwrite(str(root / "CelebA-HQ-img" / f"{i}.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            group = root / "CelebAMask-HQ-mask-anno" / "0"
            group.mkdir(parents=True, exist_ok=True)
            written = set()
            for part, label in CELEBAMASK_PARTS:       # the first CelebAMask-HQ part of each of our labels
                if label in written:
                    continue
                written.add(label)
                cv2.imwrite(str(group / f"{i:05d}_{part}.png"), (labels == label).astype(np.uint8) * 255)
    np.save(root / "truth.npy", np.stack([truth[i] for i in range(4)]))
    return root


@pytest.fixture(scope="module")
def trained_run(dataset, stills, tmp_path_factory) -> Path:
    """Both stages, interrupted inside the sketching stage and resumed; stills mixed into the coloring batches."""
    run = tmp_path_factory.mktemp("pg_run") / "run"
    sets = [f"sketch.steps={SKETCH_STEPS}", f"color.steps={COLOR_STEPS}", f"data.stills={stills}", *TINY]
    args = ["-q", "train", "puppeteergan", "--data", str(dataset), "-o", str(run),
            *[a for s in sets for a in ("--set", s)]]
    assert main([*args, "--stop-after", "50"]) == 0
    assert not (run / "puppeteergan.pt").exists()
    assert main([*args, "--resume"]) == 0
    return run


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------------------------------------- config
def test_packaged_config_is_the_default():
    from puppetry.methods.puppeteergan.config import PuppeteerGanConfig
    from puppetry.training.config import ConfigError, load_config

    path = ROOT / "puppetry" / "methods" / "puppeteergan" / "configs" / "puppeteergan.yaml"
    assert load_config(PuppeteerGanConfig, path) == PuppeteerGanConfig()
    with pytest.raises(ConfigError, match="dropout.parts"):
        load_config(PuppeteerGanConfig, None, ["dropout.parts=[ears]"])
    with pytest.raises(ConfigError, match="multiple of 16"):
        load_config(PuppeteerGanConfig, None, ["color_model.size=200"])


# ------------------------------------------------------------------------------------------------ data
def test_flip_mirrors_real_landmarks(data, detect):
    from puppetry.methods.puppeteergan.data import FLIP68
    from puppetry.methods.puppeteergan.landmarks import normalize

    assert sorted(FLIP68) == list(range(68)) and np.array_equal(FLIP68[FLIP68], np.arange(68))
    rgb = cv2.resize(read_image(data / "portraits" / "s1.jpg"), (256, 256), interpolation=cv2.INTER_AREA)
    points = normalize(detect(rgb)[0], 256)
    mirrored = normalize(detect(np.ascontiguousarray(rgb[:, ::-1]))[0], 256)
    flipped = points[FLIP68].copy()
    flipped[:, 0] *= -1
    err = np.abs(flipped - mirrored).mean() * 128                        # in pixels at 256
    assert err < 2.0, err
    assert np.abs(points - mirrored).mean() * 128 > 4 * err                # the permutation matters


def test_video_pairs_hold_two_frames_of_one_clip_and_another_person(dataset):
    from puppetry.methods.puppeteergan.data import VideoPairs

    pairs = VideoPairs(dataset, min_gap=3, flip=False)
    rng = np.random.default_rng(0)
    b = pairs.sketch_batch(rng, 8, 32)
    assert b.points_i.shape == (8, 68, 2) and b.labels_i.shape == (8, 32, 32) and b.labels_i.dtype == torch.int64
    assert b.points_i.abs().max() < 1.2 and int(b.labels_j.max()) < 9
    c = pairs.color_batch(rng, 3, 48)
    assert c.image_s.shape == (3, 3, 48, 48) and 0 <= float(c.image_s.min()) and float(c.image_s.max()) <= 1
    assert (c.image_s - c.image_t).abs().mean() > 0.002                   # two different frames
    same_clip_gap = (b.points_i - b.points_j).abs().mean()
    other = (b.points_other - b.points_j).abs().mean()
    assert other > same_clip_gap                                          # another face is further away
    with pytest.raises(Exception, match="two people|one identity"):
        VideoPairs(dataset, clips=[0], others=[0])


def test_stills_in_celebamask_layout_map_to_our_labels(stills):
    from puppetry.methods.puppeteergan.data import StillImages

    s = StillImages(stills)
    truth = np.load(stills / "truth.npy")
    assert s.layout == "celebamask-hq" and len(s) == 4
    for i in range(4):
        rgb, labels = s.sample(i, 128)
        assert rgb.shape == (128, 128, 3) and np.array_equal(labels, truth[i])
    ours = stills / "ours"
    (ours / "images").mkdir(parents=True)
    (ours / "labels").mkdir()
    rgb, labels = s.sample(2, 128)
    cv2.imwrite(str(ours / "images" / "a.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(ours / "labels" / "a.png"), labels)
    mine = StillImages(ours)
    assert mine.layout == "ours" and np.array_equal(mine.sample(0, 128)[1], truth[2])
    cv2.imwrite(str(ours / "labels" / "a.png"), np.full((8, 8), 40, np.uint8))
    with pytest.raises(Exception, match="our labels are 0-8"):
        mine.sample(0, 64)


# -------------------------------------------------------------------------------------------- training
def test_both_stages_train_and_their_losses_fall(trained_run):
    rows = metrics(trained_run)
    sketch = [r for r in rows if r["stage"] == "sketch"]
    color = [r for r in rows if r["stage"] == "color"]
    assert [r["step"] for r in sketch] == list(range(1, SKETCH_STEPS + 1))         # resumed, nothing repeated
    assert len(color) == COLOR_STEPS

    def fell(rows_, key, share=0.8):
        head = np.mean([r[key] for r in rows_[:10]])
        tail = np.mean([r[key] for r in rows_[-10:]])
        assert tail < share * head, (key, head, tail)

    fell(sketch, "loss_ld")
    fell(sketch, "loss_seg")
    fell(color, "l1")
    assert all(0 < r["mu_0"] < 1 for r in color)
    for name in ("puppeteergan.pt", "loss_curves.png", "samples_sketch.png", "samples_color.png"):
        assert (trained_run / name).stat().st_size > 0
    strip = read_image(trained_run / "samples_color.png")
    assert strip.shape == (4 * 64, 5 * 64, 3)


def test_identity_share_tells_the_source_face_shape_from_the_drivers(dataset, trained_run):
    from puppetry.methods.puppeteergan.data import VideoPairs
    from puppetry.methods.puppeteergan.evaluation import _share, align, mean_shape, score_sketching
    from puppetry.methods.puppeteergan.engine import load_model

    pairs = VideoPairs(dataset, flip=False)
    a, b = pairs.clips[0], pairs.clips[1]
    theta = np.deg2rad(20)
    rot = 1.3 * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    moved = pairs.points[a][:5] @ rot.T + np.array([0.2, -0.1])
    assert np.allclose(align(moved, pairs.points[a][0]), align(pairs.points[a][:5], pairs.points[a][0]), atol=1e-5)
    shape_a, shape_b = mean_shape(pairs.points[a]), mean_shape(pairs.points[b])
    assert _share(pairs.points[a], shape_a, shape_b) > 0.7                 # a's own frames look like a
    assert _share(pairs.points[b], shape_a, shape_b) < 0.3                 # b's frames do not
    model = load_model(trained_run / "puppeteergan.pt")
    scores = score_sketching(model.sketch, pairs, model.sketch_model.mask_size, count=16)
    assert 0 < scores.landmark_px < 64 and 0 < scores.seg_accuracy <= 1 and 0 < scores.seg_miou <= 1
    assert 0 <= scores.identity_share <= 1 and scores.identity_share_driver < 0.5


# ---------------------------------------------------------------------------------------------- engine
def test_the_engine_animates_every_face_at_256_and_512(trained_run, data, tmp_path, group_photo):
    weights = trained_run / "puppeteergan.pt"
    group = group_photo                                                  # two people side by side
    out = tmp_path / "group.mp4"
    assert main(["-q", "animate", "-s", str(group), "-d", str(data / "driving" / "d3.mp4"), "-o", str(out),
                 "--engine", "puppeteergan", "--pg-weights", str(weights), "--frames", "3"]) == 0
    frames, _ = read_video(out)
    assert len(frames) == 3 and frames[0].shape == (400, 640, 3)
    source = read_image(group).astype(int)
    for half in (slice(0, 320), slice(320, 640)):                      # both faces were redrawn
        assert np.abs(frames[0][:, half].astype(int) - source[:, half]).mean() > 1
    assert np.abs(frames[0][:4, :4].astype(int) - source[:4, :4]).mean() < 3     # outside the crops: the source
    out512 = tmp_path / "big.mp4"
    assert main(["-q", "animate", "-s", str(data / "portraits" / "s6.jpg"), "-d", str(data / "driving" / "d0.mp4"),
                 "-o", str(out512), "--engine", "puppeteergan", "--pg-weights", str(weights), "--pg-size", "512",
                 "--frames", "2", "--absolute"]) == 0
    assert len(read_video(out512)[0]) == 2

    from puppetry.pipeline.animate import AnimateOptions, Animator

    options = AnimateOptions(engine="puppeteergan", engine_options={"weights": str(weights)})
    with Animator(str(data / "portraits" / "s7.jpg"), options) as animator:         # a cartoon, live API
        still = animator.render(read_image(data / "driving" / "d12.jpg"))
    assert still.shape == read_image(data / "portraits" / "s7.jpg").shape


def test_missing_or_wrong_weights_fail_in_one_line(trained_run, data, tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "puppetry", "animate", "-s", str(data / "portraits" / "s1.jpg"),
                               "-d", str(data / "driving" / "d0.mp4"), "-o", str(out), "--engine", "puppeteergan",
                               *args], capture_output=True, text=True, cwd=tmp_path)

    out = tmp_path / "o.mp4"
    r = run()
    assert r.returncode == 2 and "--pg-weights" in r.stderr and "puppetry train puppeteergan" in r.stderr
    wrong = tmp_path / "wrong.pt"
    torch.save({"format": "puppetry-wggan", "refiner": {}}, wrong)
    r = run("--pg-weights", str(wrong))
    assert r.returncode == 2 and "not PuppeteerGAN weights" in r.stderr
    good = torch.load(trained_run / "puppeteergan.pt", weights_only=True)
    key = next(k for k in good["color"] if k.endswith("weight"))
    good["color"][key] = torch.zeros(3, 3)
    torch.save(good, wrong)
    r = run("--pg-weights", str(wrong))
    assert r.returncode == 2 and "shape" in r.stderr
    for r_ in (r,):
        assert len(r_.stderr.strip().splitlines()) == 1 and "Traceback" not in r_.stderr
    assert not out.exists()


def test_the_web_app_renders_with_the_weights_folder(trained_run, data, tmp_path):
    from puppetry.app.sessions import AppConfig, RenderSettings, run_render

    settings = RenderSettings(engine="puppeteergan", weights_dir=str(trained_run))   # holds puppeteergan.pt
    out = run_render(str(data / "portraits" / "s9.jpg"), str(data / "driving" / "d0.mp4"), settings,
                     AppConfig(output_dir=str(tmp_path), max_frames=2))
    frames, _ = read_video(out)
    assert len(frames) == 2 and frames[0].shape[:2] == read_image(data / "portraits" / "s9.jpg").shape[:2]


def test_evaluate_reports_the_papers_table_1_metrics_beside_the_warp(trained_run, data, tmp_path):
    out = tmp_path / "evaluation"
    assert main(["-q", "evaluate", "--self", str(data / "driving" / "d0.mp4"), "--engine", "puppeteergan",
                 "--engine", "warp", "--pg-weights", str(trained_run / "puppeteergan.pt"), "--max-frames", "4",
                 "-o", str(out)]) == 0
    results = json.loads((out / "metrics.json").read_text())["results"]["self"]
    ours, warp = results["puppeteergan"]["mean"], results["warp"]["mean"]
    for metric in ("ssim", "psnr", "csim", "mse"):                   # FID needs --inception-weights
        assert np.isfinite(ours[metric]["value"]) and ours[metric]["frames"] == 3
    assert ours["mse"]["value"] > warp["mse"]["value"] > 0           # a 64-pixel model from 60 steps is no match
