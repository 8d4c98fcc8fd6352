"""``puppetry evaluate`` and its metrics, on the real videos and portraits of ../shared/data.

LPIPS and FID networks get weights built here (random tensors saved in the real files' key layouts),
so the loaders, the networks and the runner are exercised without the real weight files; their values
are then meaningless, only their properties (0 for identical inputs, > 0 otherwise) are checked.
"""

from __future__ import annotations

import base64
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import DATA
from puppetry.cli import main
from puppetry.errors import WeightsError
from puppetry.evaluation import face_metrics as fm
from puppetry.evaluation.fid import fid_from_features
from puppetry.evaluation.inception import FIDInceptionV3, load_inception
from puppetry.evaluation.lpips import LPIPS, load_lpips
from puppetry.evaluation.pixel_metrics import l1_distance, mse, psnr, ssim
from puppetry.face.identity import FaceIdentity, cosine_similarity, embedding_distance
from puppetry.media import read_image, read_video

SELF_VIDEO = DATA / "driving" / "d12.mp4"        # talking head that moves in the frame
CROSS_SOURCE = DATA / "portraits" / "s9.jpg"
FRAMES = 12


@pytest.fixture(scope="module")
def clip() -> list[np.ndarray]:
    frames, _ = read_video(SELF_VIDEO, FRAMES)
    return frames


@pytest.fixture(scope="module")
def lpips_dir(tmp_path_factory) -> Path:
    """A folder like the real one: torchvision's AlexNet state dict (with its classifier) + alex.pth."""
    folder = tmp_path_factory.mktemp("lpips")
    torch.manual_seed(0)
    model = LPIPS()
    trunk = {k: v for k, v in model.state_dict().items() if k.startswith("features.")}
    trunk.update({"classifier.1.weight": torch.zeros(8, 9216), "classifier.1.bias": torch.zeros(8)})
    torch.save(trunk, folder / "alexnet-owt-7be5be79.pth")
    heads = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate((64, 192, 384, 256, 256))}
    torch.save(heads, folder / "alex.pth")
    return folder


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory) -> Path:
    """Random FID Inception weights in pytorch-fid's key layout, without BatchNorm's counters."""
    torch.manual_seed(0)
    model = FIDInceptionV3()
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")   # keeps activations O(1)
    path = tmp_path_factory.mktemp("inception") / "pt_inception-2015-12-05-6726825d.pth"
    torch.save({k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}, path)
    return path


# ----------------------------------------------------------------------------------------- pixel metrics

def test_pixel_metrics_known_values(clip):
    a = clip[0] // 2                                      # room for +51 without clipping
    b = a + 51
    assert l1_distance(a, b) == pytest.approx(51 / 255)
    assert psnr(a, b) == pytest.approx(10 * math.log10(1 / 0.2 ** 2))
    assert psnr(a, a) == math.inf
    assert mse(a, b) == pytest.approx(0.2 ** 2) and mse(a, a) == 0.0
    assert l1_distance(a, a) == 0.0
    assert ssim(a, a) == pytest.approx(1.0)
    assert 0.0 < ssim(clip[0], clip[-1]) < 0.99
    with pytest.raises(ValueError):
        l1_distance(a, a[:-2])


# ----------------------------------------------------------------------------------------- LPIPS, FID

def test_lpips_loads_real_layout_and_measures(lpips_dir, clip):
    model = load_lpips(lpips_dir)
    same = model.distance(clip[:2], clip[:2])
    other = model.distance(clip[:2], clip[-2:])
    assert np.allclose(same, 0.0, atol=1e-7)
    assert (other > 1e-4).all()
    assert (load_lpips([lpips_dir / "alex.pth", lpips_dir / "alexnet-owt-7be5be79.pth"]).distance(
        clip[:1], clip[-2:-1]) == pytest.approx(other[:1], rel=1e-5))


def test_lpips_weights_errors_are_one_line(lpips_dir, tmp_path):
    bad = torch.load(lpips_dir / "alex.pth", weights_only=True)
    bad["lin2.model.1.weight"] = torch.zeros(1, 10, 1, 1)
    torch.save(bad, tmp_path / "alex.pth")
    shutil.copy(lpips_dir / "alexnet-owt-7be5be79.pth", tmp_path)
    with pytest.raises(WeightsError, match=r"lin2\.model\.1\.weight' has shape \(1, 10, 1, 1\)") as err:
        load_lpips(tmp_path)
    assert "\n" not in str(err.value)
    with pytest.raises(WeightsError, match="no LPIPS linear heads"):
        load_lpips(lpips_dir / "alexnet-owt-7be5be79.pth")
    with pytest.raises(WeightsError, match="do not exist"):
        load_lpips(tmp_path / "missing")


def test_inception_loads_strictly_and_fid(inception_file, clip, tmp_path):
    model = load_inception(inception_file)
    real = model.features(clip[:3])
    other = model.features(clip[-3:])
    assert real.shape == (3, 2048) and np.isfinite(real).all() and real.std() > 1e-3
    assert fid_from_features(real, real) == pytest.approx(0.0, abs=1e-6 * float((real ** 2).sum()))
    assert fid_from_features(real, other) > 1e-3
    state = torch.load(inception_file, weights_only=True)
    state.pop("Mixed_7c.branch_pool.conv.weight")
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match="missing tensor.*Mixed_7c.branch_pool.conv.weight"):
        load_inception(tmp_path / "bad.pth")


# ----------------------------------------------------------------------------------------- face metrics

def test_identity_same_face_and_other_person(detect):
    identity = FaceIdentity()
    s1, s9 = read_image(DATA / "portraits" / "s1.jpg"), read_image(DATA / "portraits" / "s9.jpg")
    e1, e1b = identity.embed(s1, detect(s1)[0]), identity.embed(s1)          # MediaPipe box, dlib detector
    e9 = identity.embed(s9, detect(s9)[0])
    assert e1.shape == (128,)
    assert cosine_similarity(e1, e1b) > 0.999
    assert cosine_similarity(e1, e9) < 0.95
    assert embedding_distance(e1, e9) > 0.6 > embedding_distance(e1, e1b)   # dlib's same-person threshold
    assert identity.embed(np.zeros((256, 256, 3), np.uint8)) is None


def test_apd_and_gaze_on_a_mirrored_face(detect):
    image = read_image(DATA / "portraits" / "s10.jpg")                        # head turned ~33 degrees
    face = fm.stack_landmarks([detect(image)[0]])
    mirror = fm.stack_landmarks([detect(np.ascontiguousarray(image[:, ::-1]))[0]])
    yaw = fm.head_angles(face)[0, 0]
    assert abs(yaw) > 20
    assert np.sign(fm.head_angles(mirror)[0, 0]) == -np.sign(yaw)
    err = fm.pose_error(mirror, face)[0]
    assert err[0] == pytest.approx(2 * abs(yaw), rel=0.15)                   # yaw flips
    assert err[1] < 5                                                         # pitch does not
    assert fm.gaze_error(face, face)[0] == pytest.approx(0.0, abs=1e-5)
    assert fm.keypoint_distance(face, face)[0] == 0.0
    eyes = read_image(DATA / "portraits" / "s8.jpg")                          # eyes turned sideways
    g, gm = (fm.gaze_vectors(fm.stack_landmarks([detect(x)[0]]))[0]
             for x in (eyes, np.ascontiguousarray(eyes[:, ::-1])))
    assert g[0] * gm[0] < 0 and abs(g[0]) > 0.1
    assert fm.gaze_error(fm.stack_landmarks([detect(eyes)[0]]),
                         fm.stack_landmarks([detect(np.ascontiguousarray(eyes[:, ::-1]))[0]]))[0] > 10


def test_mkr_is_one_for_blank_frames(detect, clip):
    truth = fm.stack_landmarks([(f[0] if (f := detect(x)) else None) for x in clip[:3]])
    blank = fm.stack_landmarks([(f[0] if (f := detect(np.zeros_like(x))) else None) for x in clip[:3]])
    assert fm.found(truth).all() and not fm.found(blank).any()
    assert fm.missing_keypoint_rate(blank, truth) == 1.0
    assert fm.missing_keypoint_rate(truth, truth) == 0.0
    assert np.isnan(fm.keypoint_distance(blank, truth)).all()


# ----------------------------------------------------------------------------------------- the command

@pytest.fixture(scope="module")
def report(tmp_path_factory, lpips_dir):
    """One real run: self d12 + cross (s9 and a face-less image) x d12, warp + static, a corrupt video
    and a LivePortrait without weights among the inputs; LPIPS weights given, Inception weights not."""
    tmp = tmp_path_factory.mktemp("evaluate")
    corrupt = tmp / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    faceless = tmp / "wall.png"
    import cv2
    cv2.imwrite(str(faceless), np.full((256, 256, 3), 180, np.uint8))
    out = tmp / "report"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("PUPPETRY_INCEPTION_WEIGHTS", raising=False)
        mp.delenv("PUPPETRY_LIVEPORTRAIT_DIR", raising=False)
        code = main(["-q", "evaluate", "--self", str(SELF_VIDEO), str(corrupt),
                     "--cross-sources", str(CROSS_SOURCE), str(faceless), "--cross-driving", str(SELF_VIDEO),
                     "--engine", "warp", "--engine", "liveportrait", "--checkpoint-dir", str(tmp / "no_weights"),
                     "--max-frames", str(FRAMES), "--max-size", "512", "--lpips-weights", str(lpips_dir),
                     "-o", str(out)])
    assert code == 0
    return out


def test_report_json(report):
    data = json.loads((report / "metrics.json").read_text())
    selfm = {name: e["mean"] for name, e in data["results"]["self"].items()}
    cross = {name: e["mean"] for name, e in data["results"]["cross"].items()}
    assert set(selfm) == {"static", "warp"}
    assert data["engines"]["liveportrait"]["status"] == "skipped"
    assert "checkpoint" in data["engines"]["liveportrait"]["reason"]
    # Inception weights missing: reported, not guessed
    for setting in (selfm, cross):
        assert setting["warp"]["fid"] == {"value": None, "status": "unavailable",
                                          "reason": data["status"]["inception"]["reason"]}
    assert "--inception-weights" in data["status"]["inception"]["reason"]
    assert selfm["static"]["lpips"]["value"] > 0 and selfm["warp"]["lpips"]["frames"] == FRAMES - 1
    # the warp engine follows the talking, moving head; the static source does not
    assert selfm["warp"]["akd"]["value"] < 0.5 * selfm["static"]["akd"]["value"]
    assert selfm["warp"]["l1"]["value"] < selfm["static"]["l1"]["value"]
    assert selfm["warp"]["psnr"]["value"] > selfm["static"]["psnr"]["value"]
    assert 0 < selfm["warp"]["mse"]["value"] < selfm["static"]["mse"]["value"]        # MSE: PuppeteerGAN's table
    assert selfm["warp"]["mse"]["value"] <= selfm["warp"]["l1"]["value"]               # squares of values in [0, 1]
    assert selfm["warp"]["akd"]["frames"] == FRAMES - 1
    assert selfm["static"]["csim"]["value"] == pytest.approx(1.0)        # the source frame itself
    assert 0.9 < selfm["warp"]["csim"]["value"] <= 1.0
    assert selfm["warp"]["aed"]["value"] < 0.6                          # still the same person
    assert selfm["warp"]["mkr"]["value"] == 0.0
    assert "l1" not in cross["warp"] and cross["warp"]["akd"]["frames"] == FRAMES
    assert cross["warp"]["csim"]["value"] > 0.9
    skipped = {Path(p["driving"]).name if p["setting"] == "self" else Path(p["source"]).name: p["reason"]
               for p in data["skipped_pairs"]}
    assert set(skipped) == {"corrupt.mp4", "wall.png"}
    assert "no face" in skipped["wall.png"]
    pair = data["results"]["self"]["warp"]["pairs"][0]
    assert len(pair["per_frame"]["akd"]) == FRAMES - 1


def test_lip_and_eye_correlation_per_pair(report):
    data = json.loads((report / "metrics.json").read_text())
    selfm = {name: e["mean"] for name, e in data["results"]["self"].items()}
    # the static source never moves its mouth: no correlation is defined, and none is made up
    assert selfm["static"]["lip_corr"]["value"] is None and selfm["static"]["lip_corr"]["status"] == "no_data"
    lip = selfm["warp"]["lip_corr"]
    assert lip["pairs"] == 1 and 0.5 < lip["value"] <= 1.0          # d12 talks; the warp follows it
    pair = data["results"]["self"]["warp"]["pairs"][0]
    assert pair["mean"]["lip_corr"]["value"] == pytest.approx(lip["value"])


def test_open_ratio_correlation_on_real_landmarks(detect):
    frames, _ = read_video(str(SELF_VIDEO), max_frames=FRAMES)
    lms = fm.stack_landmarks([(f[0] if (f := detect(img)) else None) for img in frames])
    same = fm.open_ratio_correlation(lms, lms)
    assert same["lip_corr"] == pytest.approx(1.0) and same["eye_corr"] == pytest.approx(1.0)
    assert fm.open_ratio_correlation(lms, lms[::-1])["lip_corr"] < 0.99
    still = np.repeat(lms[:1], len(lms), axis=0)
    assert math.isnan(fm.open_ratio_correlation(still, lms)["lip_corr"])


def test_report_html(report):
    page = (report / "report.html").read_text()
    assert "<table class='means'>" in page and "static (baseline)" in page and "unavailable" in page
    assert not re.search(r"(src|href)=['\"]https?:", page)                     # self-contained
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert len(images) >= 4                                                     # 2 plots + 2 strips
    strip = base64.b64decode(images[-1])
    assert strip[:8] == b"\x89PNG\r\n\x1a\n"
    Path("/tmp/evaluate_strip.png").write_bytes(strip)                         # for a look by eye
    assert not list(report.glob("*.tmp"))


def test_fid_through_the_runner(inception_file, monkeypatch):
    from puppetry.evaluation import EvaluateConfig, evaluate

    monkeypatch.delenv("PUPPETRY_LPIPS_DIR", raising=False)
    result = evaluate([SELF_VIDEO], config=EvaluateConfig(max_frames=4, inception_weights=str(inception_file),
                                                          identity=False, samples=1))
    means = {name: e["mean"] for name, e in result.data["results"]["self"].items()}
    assert means["warp"]["fid"]["value"] > 0 and means["warp"]["fid"]["frames"] == 3
    assert means["static"]["fid"]["value"] > means["warp"]["fid"]["value"]      # one repeated frame
    assert "biased" in means["warp"]["fid"]["note"]
    assert means["warp"]["csim"]["status"] == "unavailable"
    assert result.data["status"]["lpips"]["status"] == "unavailable"


def test_cli_missing_video_is_one_line(tmp_path):
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "puppetry", "evaluate", "--self", str(tmp_path / "nope.mp4"),
                           "-o", str(out)], capture_output=True, text=True, timeout=120)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith(("W0000", "I0000"))]
    assert proc.returncode == 2
    assert lines == [f"puppetry: error: '{tmp_path / 'nope.mp4'}' does not exist"]
    assert not out.exists()


def test_cli_every_pair_bad_and_unknown_engine(tmp_path, capsys):
    faceless = tmp_path / "wall.png"
    import cv2
    cv2.imwrite(str(faceless), np.full((128, 128, 3), 90, np.uint8))
    out = tmp_path / "report"
    code = main(["-q", "evaluate", "--cross-sources", str(faceless), "--cross-driving", str(SELF_VIDEO),
                 "--max-frames", "3", "--no-identity", "-o", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("puppetry: error: no pair could be evaluated")
    assert "Traceback" not in "\n".join(err) and not out.exists()
    assert main(["evaluate", "--self", str(SELF_VIDEO), "--engine", "warp,nosuch", "-o", str(out)]) == 2
    assert "unknown engine 'nosuch'" in capsys.readouterr().err


def test_liveportrait_is_evaluated_and_missing_weights_skip_it(release_dir, tmp_path, monkeypatch):
    """LivePortrait on the conformance weights (untrained: only that it runs and is scored), and an
    engine without weights reported as skipped while the others are still evaluated."""
    from puppetry.evaluation import EvaluateConfig, evaluate

    monkeypatch.delenv("PUPPETRY_LIVEPORTRAIT_DIR", raising=False)
    config = EvaluateConfig(engines=["liveportrait"], max_frames=3, max_size=512, identity=False,
                            engine_options={"liveportrait": {"checkpoint_dir": str(release_dir)}})
    data = evaluate([SELF_VIDEO], config=config).data
    lp = data["results"]["self"]["liveportrait"]
    assert lp["mean"]["psnr"]["value"] not in (None, "inf") and math.isfinite(lp["mean"]["l1"]["value"])
    skipped = evaluate([SELF_VIDEO], config=EvaluateConfig(engines=["warp", "liveportrait"], max_frames=3,
                                                           max_size=512, identity=False)).data
    assert skipped["engines"]["liveportrait"]["status"] == "skipped"
    assert "weights" in skipped["engines"]["liveportrait"]["reason"].lower()
    assert skipped["results"]["self"]["warp"]["mean"]["akd"]["value"] is not None
