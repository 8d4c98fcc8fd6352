"""Image animation with perturbed masks (paper 004): perturbation operators, networks, whole-frame data,
training on real frames, and the engine on sources with no human face (a cat, a monkey).

Training runs through ``puppetry train perturbed-masks`` on whole frames of three real videos, with the
networks shrunk (64-pixel frames, 16-pixel masks) instead of the paper's 256 and 64.
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
from puppetry.data.whole_frames import open_frame_clips, square_frame, unsquare_frame
from puppetry.media.image import read_image
from puppetry.media.video import read_video
from puppetry.methods.perturbed_masks.config import PerturbSettings, PMModel
from puppetry.methods.perturbed_masks.perturbations import augment, median_threshold, perturb_test, perturb_train

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.size=64", "model.mask_size=16", "model.blocks=3", "model.mask_width=8", "model.refine_width=8",
        "model.high_width=8", "model.max_width=32", "model.low_width=16", "model.low_blocks=2",
        "train.batch_size=4", "train.device=cpu", "train.log_every=1", "train.sample_every=1000",
        "train.checkpoint_every=1000", "optim.steps_per_epoch=40", "optim.epochs=4", "optim.lr=1e-3"]

pytestmark = pytest.mark.usefixtures("one_thread")     # conftest.py: tiny networks, one thread


@pytest.fixture(scope="module")
def person_masks(data) -> torch.Tensor:
    """Real soft masks: MediaPipe's person probability of four portraits at 64 x 64, on a 96 x 96 canvas so
    that no mask touches the border (``4 x 1 x 96 x 96``)."""
    from puppetry.face.parsing import PersonSegmenter

    masks = []
    with PersonSegmenter() as seg:
        for name in ("s1", "s5", "s12", "s42"):
            p = seg.probability(read_image(data / "portraits" / f"{name}.jpg"))
            masks.append(cv2.resize(p, (64, 64), interpolation=cv2.INTER_AREA))
    return torch.nn.functional.pad(torch.from_numpy(np.stack(masks))[:, None].float(), (16, 16, 16, 16))


def _box(mask: np.ndarray) -> tuple[float, float]:
    """Width and height of the non-zero part of a ``H x W`` mask."""
    ys, xs = np.nonzero(mask > 0)
    return float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)


# --------------------------------------------------------------------------------------------- operators
def test_p_test_zeroes_below_the_median_and_shrinks_by_a_quarter(person_masks):
    thresholded = median_threshold(person_masks)
    for m, t in zip(person_masks, thresholded):
        median = float(m.flatten().median())
        assert torch.all(t[m < median] == 0) and torch.equal(t[m >= median], m[m >= median])
    out = perturb_test(person_masks, 0.25)
    for t, o in zip(thresholded, out):
        (w0, h0), (w1, h1) = _box(t[0].numpy() > 0.5), _box(o[0].numpy() > 0.5)
        assert abs(w1 / w0 - 0.75) < 0.06 and abs(h1 / h0 - 0.75) < 0.06
        assert abs(float(o.sum() / t.sum()) - 0.75 ** 2) < 0.03          # area scales by 0.75^2
    assert torch.equal(perturb_test(person_masks, 0.0), thresholded)


def test_p_train_changes_the_shape_both_ways_within_the_stated_range(person_masks):
    settings = PerturbSettings()
    binary = (person_masks > 0.5).float()
    g = torch.Generator().manual_seed(0)
    ratios, widths, heights = [], [], []
    for _ in range(25):
        out = perturb_train(binary, settings, g, noise=False)
        ratios += (out.sum((1, 2, 3)) / binary.sum((1, 2, 3))).tolist()
        for b, o in zip(binary, out):
            (w0, h0), (w1, h1) = _box(b[0].numpy()), _box(o[0].numpy())
            widths.append(w1 / w0)
            heights.append(h1 / h0)
    ratios = np.array(ratios)
    # Each pass scales area by a strip-weighted factor and a global one, both in [0.75, 1.25]; two passes.
    assert ratios.min() >= 0.75 ** 4 - 0.02 and ratios.max() <= 1.25 ** 4 + 0.02
    assert ratios.std() > 0.1 and ratios.min() < 0.8 and ratios.max() > 1.2     # it really perturbs
    assert np.std(widths) > 0.05 and np.std(heights) > 0.05                     # in both directions
    noisy = perturb_train(binary, settings, torch.Generator().manual_seed(1))
    clean = perturb_train(binary, settings, torch.Generator().manual_seed(1), noise=False)
    inside = (clean > 0.3) & (clean < 0.7)                                     # away from the [0, 1] clip
    noise = (noisy - clean)[inside] * 255
    assert abs(float(noise.mean())) < 1.0 and abs(float(noise.std()) - 20.5) < 1.5   # Poisson(20), random sign


def test_augment_stays_within_its_ranges_on_a_real_frame(s1):
    x = torch.from_numpy(cv2.resize(s1, (64, 64))).permute(2, 0, 1)[None].float().div(255).repeat(8, 1, 1, 1)
    g = torch.Generator().manual_seed(0)
    out = augment(x, PerturbSettings(), g)
    assert not torch.allclose(out, x) and (out - x).abs().mean() < 0.1
    only = PerturbSettings(brightness=(1.1, 1.1), contrast=(1, 1), saturation=(1, 1), hue=(0, 0))
    assert torch.allclose(augment(x, only, g), (x * 1.1).clamp(0, 1), atol=1e-5)
    full_turn = PerturbSettings(brightness=(1, 1), contrast=(1, 1), saturation=(1, 1), hue=(1.0, 1.0))
    assert torch.allclose(augment(x, full_turn, g), x, atol=1e-5)


# ---------------------------------------------------------------------------------------------- networks
def test_networks_have_the_papers_shapes():
    from puppetry.methods.perturbed_masks.networks import build_model

    net = build_model(PMModel()).eval()                   # the paper's sizes: 256 frames, 64 masks
    s = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        small, mask = net.source_mask(s)
    assert small.shape == (1, 3, 64, 64) and mask.shape == (1, 1, 64, 64)
    with torch.no_grad():
        small, mask = net.source_mask(s)
        out = net.animate(s, torch.rand(2, 3, 256, 256), (small, mask))
    assert out["coarse"].shape == out["final"].shape == (2, 3, 256, 256)
    assert out["mask_driving"].shape == (2, 1, 64, 64)
    for key in ("mask_source", "mask_driving", "coarse", "final"):
        assert 0 <= float(out[key].min()) and float(out[key].max()) <= 1, key
    assert net.r.body.down[0].conv.in_channels == 5 and net.l.stem[0].in_channels == 5
    assert net.h.body.down[0].conv.in_channels == 8 and net.h.body.skips and not net.m.body.skips
    assert len(net.m.body.down) == len(net.m.body.up) == 5 and len(net.l.res) == 6


# --------------------------------------------------------------------------------------------------- data
def test_whole_frame_datasets_and_fomm_folders(data, tmp_path):
    out = tmp_path / "objects"
    video = data / "portraits" / "s13.mp4"            # a full figure, 16:9: padded to a square
    assert main(["-q", "prepare", str(video), "-o", str(out), "--whole-frames", "pad", "--size", "96",
                 "--max-frames", "30"]) == 0
    clips = open_frame_clips(out, 96)
    frames, _ = read_video(video, 30)
    assert len(clips) == 1 and clips.num_frames(0) == 30
    expected = square_frame(frames[7], 96, "pad")
    assert np.abs(clips.frame(0, 7).astype(int) - expected).mean() < 3          # JPEG only
    h, w = frames[0].shape[:2]
    back = unsquare_frame(expected, w, h, "pad")
    assert back.shape == frames[0].shape
    # A FOMM layout: train/ with a video, a folder of frames and a strip of frames side by side.
    root = tmp_path / "fomm"
    (root / "train" / "clip_b").mkdir(parents=True)
    (root / "test").mkdir()
    (root / "train" / "a.mp4").symlink_to(data / "driving" / "d0.mp4")
    for i, f in enumerate(frames[:5]):
        cv2.imwrite(str(root / "train" / "clip_b" / f"{i:03d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    strip = np.concatenate([cv2.resize(f, (64, 64)) for f in frames[:4]], 1)
    cv2.imwrite(str(root / "train" / "c.png"), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
    (root / "test" / "d.mp4").symlink_to(data / "driving" / "d11.mp4")
    broken = (data / "driving" / "d3.mp4").read_bytes()
    (root / "train" / "e.mp4").write_bytes(broken[:2000])                    # a truncated download
    train = open_frame_clips(root, 64, "train")
    assert [c.name for c in train.clips] == ["a.mp4", "c.png", "clip_b", "e.mp4"]
    assert [train.num_frames(i) for i in range(4)] == [78, 4, 5, 0]         # counted without decoding
    assert not train._cache                                                 # nothing decoded yet
    assert train.frame(1, 2).shape == (64, 64, 3)
    assert [c.name for c in open_frame_clips(root, 64, "test").clips] == ["d.mp4"]


# ----------------------------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def trained_run(data, tmp_path_factory) -> Path:
    """Tiny networks trained for 160 steps on whole frames of three real videos (r from step 40)."""
    root = tmp_path_factory.mktemp("pm")
    dataset = root / "dataset"
    videos = [str(data / "driving" / "d0.mp4"), str(data / "driving" / "d10.mp4"), str(data / "portraits" / "s13.mp4")]
    assert main(["-q", "prepare", *videos, "-o", str(dataset), "--whole-frames", "pad", "--size", "64",
                 "--max-frames", "40"]) == 0
    run = root / "run"
    assert main(["-q", "train", "perturbed-masks", "--data", str(dataset), "-o", str(run),
                 *[a for s in TINY for a in ("--set", s)]]) == 0
    return run


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_both_losses_fall_on_real_frames(trained_run):
    rows = metrics(trained_run)
    assert len(rows) == 160

    def mean(key, lo, hi):
        return float(np.mean([r[key] for r in rows[lo:hi]]))

    for key in ("loss_coarse", "loss_final", "l1_final"):
        assert mean(key, 130, 160) < 0.8 * mean(key, 0, 30), key
    assert mean("loss_mask", 130, 160) < 0.8 * mean("loss_mask", 40, 70)       # r trains from the 2nd epoch
    assert rows[0]["lr"] == pytest.approx(1e-3)
    assert (trained_run / "loss_curves.png").is_file()
    strip = read_image(trained_run / "samples_reconstruction.png")
    assert strip.shape[1] == 7 * 64 and strip.std() > 10


def test_the_engine_animates_a_cat_and_keeps_its_size(trained_run, data, tmp_path):
    weights = trained_run / "perturbed_masks.pt"
    out = tmp_path / "monkey.mp4"
    monkey = data / "portraits" / "s22.jpg"              # a monkey, 1050 x 700: no human face needed
    driving = tmp_path / "driving"                       # a face close-up, then a whole figure
    driving.mkdir()
    for i, (video, t) in enumerate(((data / "driving" / "d0.mp4", 0), (data / "portraits" / "s13.mp4", 20))):
        frame = square_frame(read_video(video, t + 1)[0][t], 512, "pad")
        cv2.imwrite(str(driving / f"{i}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    assert main(["-q", "animate", "-s", str(monkey), "-d", str(driving), "-o", str(out),
                 "--engine", "perturbed_masks", "--pm-weights", str(weights)]) == 0
    frames, _ = read_video(out)
    assert len(frames) == 2 and frames[0].shape == (700, 1050, 3)
    assert np.abs(frames[0].astype(int) - frames[1]).mean() > 0.5               # the driving frame matters
    assert np.abs(frames[0].astype(int) - read_image(monkey)).mean() > 1         # generated, not the source
    from puppetry.engines.base import SourceFaces
    from puppetry.methods.registry import create_engine

    engine = create_engine("perturbed_masks", weights=str(weights))
    state = engine.prepare(SourceFaces(read_image(monkey), [], "monkey"))
    masks = []
    for name in ("0.png", "1.png"):
        with torch.no_grad():
            x = engine._tensor(read_image(driving / name))
            masks.append(engine.model.animate(state.source, x, state.prepared)["mask_raw"][0, 0].numpy())
    assert np.abs(masks[0] - masks[1]).mean() > 0.05                       # m(d) sees the driver's shape
    from puppetry.pipeline.animate import AnimateOptions, Animator

    options = AnimateOptions(engine="perturbed_masks", engine_options={"weights": str(weights)})
    with Animator(str(data / "portraits" / "s41.jpg"), options) as animator:  # a cat, in the live API
        still = animator.render(read_image(data / "driving" / "d12.jpg"))
    assert still.shape == read_image(data / "portraits" / "s41.jpg").shape


def test_missing_or_wrong_weights_and_a_motion_driving_fail_in_one_line(trained_run, data, tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "puppetry", "animate", "-s", str(data / "portraits" / "s41.jpg"),
                               "--engine", "perturbed_masks", *args], capture_output=True, text=True, cwd=tmp_path)

    out = tmp_path / "o.mp4"
    video = str(data / "driving" / "d0.mp4")
    r = run("-d", video, "-o", str(out))
    assert r.returncode == 2 and "--pm-weights" in r.stderr and "puppetry train perturbed-masks" in r.stderr
    wrong = tmp_path / "wrong.pt"
    torch.save({"format": "puppetry-wggan", "refiner": {}}, wrong)
    r = run("-d", video, "-o", str(out), "--pm-weights", str(wrong))
    assert r.returncode == 2 and "not a perturbed-masks weights file" in r.stderr
    good = torch.load(trained_run / "perturbed_masks.pt", weights_only=True)
    key = next(k for k in good["net"] if k.endswith("weight"))
    good["net"][key] = torch.zeros(3, 3)
    torch.save(good, wrong)                                        # a tensor of the wrong shape
    r = run("-d", video, "-o", str(out), "--pm-weights", str(wrong))
    assert r.returncode == 2 and "--pm-weights" in r.stderr and "shape" in r.stderr
    assert "puppetry train perturbed-masks" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run("-d", "talk", "-o", str(out), "--pm-weights", str(trained_run / "perturbed_masks.pt"))
    assert r.returncode == 2 and "driving video" in r.stderr
    for r_ in (r,):
        assert len(r_.stderr.strip().splitlines()) == 1 and "Traceback" not in r_.stderr
    assert not out.exists()


# --------------------------------------------------------------------------------------------- evaluation
def test_body_keypoint_metrics_on_a_real_figure(data):
    from puppetry.evaluation.body_metrics import BodyKeypoints, body_keypoint_distance, body_missing_rate

    frames = read_video(data / "portraits" / "s13.mp4", 3)[0]
    shifted = [np.roll(f, 12, axis=1) for f in frames]                 # the figure 12 px to the right
    with BodyKeypoints() as pose:
        ref, moved, empty = pose(frames), pose(shifted), pose([np.zeros_like(frames[0])])
    assert np.isfinite(ref).all() and (ref[..., 2] > 0.5).sum() > 20
    assert np.all(body_keypoint_distance(ref, ref) == 0) and body_missing_rate(ref, ref) == 0
    assert np.allclose(body_keypoint_distance(moved, ref), 12, atol=3)
    assert np.isnan(empty).all() and body_missing_rate(np.repeat(empty, 3, 0), ref) == 1.0


def test_reconstruction_scores_a_face_video_against_the_static_baseline(trained_run, data):
    from puppetry.methods.perturbed_masks.engine import load_model
    from puppetry.methods.perturbed_masks.evaluation import evaluate_video

    model = load_model(trained_run / "perturbed_masks.pt")
    scores = evaluate_video(model, data / "driving" / "d3.mp4", "face", max_frames=6)
    assert scores.frames == 5 and 0 < scores.l1 < 1 and 0 < scores.static_l1 < 1
    assert scores.l1 != scores.static_l1 and np.isfinite(scores.mkr)


def test_the_web_app_renders_a_cat_with_the_weights_folder(trained_run, data, tmp_path):
    from puppetry.app.sessions import AppConfig, RenderSettings, run_render

    settings = RenderSettings(engine="perturbed_masks", weights_dir=str(trained_run))   # holds perturbed_masks.pt
    out = run_render(str(data / "portraits" / "s41.jpg"), str(data / "driving" / "d0.mp4"), settings,
                     AppConfig(output_dir=str(tmp_path), max_frames=3))
    frames, _ = read_video(out)
    assert len(frames) == 3 and frames[0].shape == read_image(data / "portraits" / "s41.jpg").shape
