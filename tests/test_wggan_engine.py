"""``--engine wggan`` end to end: warp + wg-GAN refinement + hrh-GAN mouth, with weights this module trains.

Both networks are trained for a few steps on real frames of d10.mp4 (tiny widths, 64-pixel crops), so the
checkpoints are real outputs of ``puppetry train wggan`` / ``puppetry train hrhgan``; their quality is
not the point here (tests/test_wggan.py and tests/test_hrhgan.py check that training learns).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from puppetry.cli import main
from puppetry.media.video import VideoReader, probe_video
from puppetry.pipeline.animate import AnimateOptions, Animator
from puppetry.methods.wggan.face_crop import rectify

WG = ["model.size=64", "model.width=[8,16,16]", "model.res_blocks=2", "model.disc_channels=[8,16,16,16,16,8]",
      "train.batch_size=2", "train.device=cpu", "train.log_every=1", "train.sample_every=1000",
      "train.checkpoint_every=1000", "data.every=5", "training.steps=6"]
HRH = ["model.width=0.25", "model.base_size=32", "train.batch_size=2", "train.device=cpu", "train.log_every=1",
       "train.sample_every=1000", "train.checkpoint_every=1000", "schedule.mse128=3", "schedule.discriminator128=1",
       "schedule.joint128=1", "schedule.grow256=3", "schedule.discriminator256=1", "schedule.finetune256=2"]


pytestmark = pytest.mark.usefixtures("one_thread")     # conftest.py: tiny networks, one thread


def _sets(options: list[str]) -> list[str]:
    return [a for s in options for a in ("--set", s)]


@pytest.fixture(scope="module")
def weights(tmp_path_factory, data) -> Path:
    """A folder holding wggan.pt and hrhgan.pt, each written by its training command."""
    root = tmp_path_factory.mktemp("wggan_engine")
    dataset = root / "dataset"
    assert main(["-q", "prepare", str(data / "driving" / "d10.mp4"), "-o", str(dataset), "--max-frames", "16",
                 "--size", "96"]) == 0
    assert main(["-q", "train", "wggan", "--data", str(dataset), "-o", str(root / "wg"), *_sets(WG)]) == 0
    assert main(["-q", "train", "hrhgan", "--data", str(dataset), "-o", str(root / "hrh"), *_sets(HRH)]) == 0
    folder = root / "weights"
    folder.mkdir()
    shutil.copy(root / "wg" / "wggan.pt", folder / "wggan.pt")
    shutil.copy(root / "hrh" / "hrhgan.pt", folder / "hrhgan.pt")
    return folder


def _frames(path: Path, n: int) -> list[np.ndarray]:
    with VideoReader(str(path), max_frames=n) as reader:
        return list(reader)


def test_engine_changes_only_the_faces(weights, data):
    """Against the warp without its mouth fill: identical outside the face crops, changed inside the face."""
    source = str(data / "portraits" / "s1.jpg")
    driving = _frames(data / "driving" / "d10.mp4", 12)
    wg = Animator(source, AnimateOptions(engine="wggan", max_size=384, engine_options={"weights_dir": str(weights)}))
    plain = Animator(source, AnimateOptions(engine="warp", max_size=384, engine_options={"mouth_fill": False}))
    for frame in driving:
        a, b = wg.render(frame), plain.render(frame)
    assert a.shape == b.shape and a.dtype == np.uint8
    # The source face's crop, grown by 40 px for the head's motion: nothing outside it may change.
    face = rectify(wg.source.landmarks[0], 64)
    corners = np.array([[0, 0], [64, 0], [0, 64], [64, 64]], float) @ face.inverse[:, :2].T + face.inverse[:, 2]
    lo = np.maximum(np.floor(corners.min(0)).astype(int) - 40, 0)
    hi = np.ceil(corners.max(0)).astype(int) + 40
    outside = np.ones(a.shape[:2], bool)
    outside[lo[1]:hi[1], lo[0]:hi[0]] = False
    diff = np.abs(a.astype(int) - b.astype(int)).max(-1)
    assert outside.any() and diff[outside].max() == 0
    inner = rectify(wg.source.landmarks[0], 64)
    centre = inner.inverse[:, :2] @ np.array([32, 36.0]) + inner.inverse[:, 2]
    y, x = np.round(centre[::-1]).astype(int)
    assert diff[y - 20:y + 20, x - 20:x + 20].mean() > 2.0          # the refinement network drew the face


def test_cli_animates_with_wggan_and_explains_missing_weights(weights, data, tmp_path, capsys, monkeypatch):
    out = tmp_path / "wggan.mp4"
    assert main(["-q", "animate", "-s", str(data / "portraits" / "s1.jpg"), "-d", str(data / "driving" / "d0.mp4"),
                 "--engine", "wggan", "--wggan-weights", str(weights / "wggan.pt"), "--hrhgan-weights",
                 str(weights / "hrhgan.pt"), "--frames", "6", "--max-size", "256", "-o", str(out)]) == 0
    info = probe_video(str(out))
    assert info.num_frames == 6 and max(info.width, info.height) == 256
    frames = _frames(out, 6)
    assert len(frames) == 6 and np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 0.1

    monkeypatch.delenv("PUPPETRY_WGGAN_WEIGHTS", raising=False)
    monkeypatch.delenv("PUPPETRY_HRHGAN_WEIGHTS", raising=False)
    capsys.readouterr()
    missing = tmp_path / "missing.mp4"
    rc = main(["animate", "-s", str(data / "portraits" / "s1.jpg"), "-d", "demo", "--engine", "wggan",
               "-o", str(missing)])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("puppetry: error")]
    assert rc == 2 and not missing.exists()
    assert len(err) == 1 and "--wggan-weights" in err[0] and "puppetry train wggan" in err[0], err
    rc = main(["animate", "-s", str(data / "portraits" / "s1.jpg"), "-d", "demo", "--engine", "wggan",
               "--wggan-weights", str(weights / "hrhgan.pt"), "--hrhgan-weights", str(weights / "hrhgan.pt"),
               "-o", str(missing)])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("puppetry: error")]
    assert rc == 2 and not missing.exists() and len(err) == 1 and "wg-GAN" in err[0], err
    rc = main(["animate", "-s", str(data / "portraits" / "s1.jpg"), "-d", "demo", "--wggan-weights",
               str(weights / "wggan.pt"), "-o", str(missing)])
    assert rc == 2 and "apply to --engine wggan" in capsys.readouterr().err


def test_bench_times_wggan_with_its_weights_flags(weights, data, capsys):
    """``puppetry bench`` takes the engine's own weights flags (it named them in its error and had none)."""
    rc = main(["-q", "bench", "--engine", "wggan", "-s", str(data / "portraits" / "s1.jpg"),
               "-d", str(data / "driving" / "d0.mp4"), "--frames", "3", "--wggan-weights", str(weights / "wggan.pt"),
               "--hrhgan-weights", str(weights / "hrhgan.pt")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "3 frames" in out and "frames per second" in out
    stages = {line.split()[0]: float(line.split()[1]) for line in out.splitlines()
              if "ms/frame" in line and not line.strip().startswith("floor")}
    assert stages["refine"] > 0 and stages["landmarks"] > 0 and stages["loop"] > 0, out


def test_web_app_renders_with_a_weights_folder(weights, data):
    from puppetry.app.sessions import PreviewCache, RenderSettings, render_preview, slider_controls

    cache = PreviewCache(max_size=256)
    source = str(data / "portraits" / "s1.jpg")
    rest = render_preview(cache, source, RenderSettings(engine="wggan", weights_dir=str(weights)))
    open_mouth = render_preview(cache, source, RenderSettings(engine="wggan", weights_dir=str(weights),
                                                              controls=slider_controls(1, 0.8, 0, 0, 0)))
    assert rest.shape == open_mouth.shape and np.abs(rest.astype(int) - open_mouth.astype(int)).mean() > 0.1
