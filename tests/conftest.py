"""Shared fixtures: the real test data in ../shared/data and a cached face detector."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CONFORMANCE = DATA.parent / "conformance" / "liveportrait"


def pytest_configure(config):
    if not DATA.is_dir():
        raise pytest.UsageError(f"test data not found at {DATA}; the tests need ../shared/data beside the repo")


@pytest.fixture(scope="session")
def data() -> Path:
    return DATA


@pytest.fixture(scope="session")
def detect():
    """``detect(rgb) -> list of 478 x 3`` landmark arrays (image mode, up to 4 faces)."""
    from puppetry.face import DetectorConfig, FaceMeshDetector

    det = FaceMeshDetector("image", DetectorConfig(max_faces=4))
    yield det.detect
    det.close()


@pytest.fixture(scope="session")
def s1(data) -> np.ndarray:
    from puppetry.media import read_image

    return read_image(data / "portraits" / "s1.jpg")


@pytest.fixture(scope="session")
def release_dir(tmp_path_factory) -> Path:
    """The five checkpoint files, written by the conformance kit's own script (about 500 MB)."""
    out = tmp_path_factory.mktemp("liveportrait_release") / "pretrained_weights" / "liveportrait"
    subprocess.run([sys.executable, str(CONFORMANCE / "make_checkpoints.py"), str(out)], check=True)
    return out


@pytest.fixture(scope="session")
def models(release_dir):
    """LivePortrait networks loaded from :func:`release_dir` (strict loading)."""
    from puppetry.methods.liveportrait.models import LivePortraitModels

    return LivePortraitModels.from_checkpoints(release_dir)


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One intra-op torch thread for a module of tiny networks: they run thousands of small ops, and on a
    busy 2-core machine several threads mostly wait on each other (a many-fold slowdown)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def group_photo(tmp_path_factory, data) -> Path:
    """Two people side by side (s1 | s42, each 320 x 400): a 640 x 400 PNG for engines that draw every face."""
    import cv2

    from puppetry.media.image import read_image

    a = cv2.resize(read_image(data / "portraits" / "s1.jpg"), (320, 400), interpolation=cv2.INTER_AREA)
    b = cv2.resize(read_image(data / "portraits" / "s42.jpg"), (320, 400), interpolation=cv2.INTER_AREA)
    path = tmp_path_factory.mktemp("group") / "group.png"
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate([a, b], 1), cv2.COLOR_RGB2BGR))
    return path


SPEECH_TINY = ["model.channels=32", "model.dilations=[1,2,4]", "model.dropout=0.0", "train.device=cpu",
               "train.batch_size=8", "train.log_every=1", "train.sample_every=1000", "train.checkpoint_every=1000",
               "optim.lr=3e-3"]
"""A speech model small enough to train in seconds (``puppetry train audio2motion --set ...``)."""


@pytest.fixture(scope="session")
def speech_tiny() -> list[str]:
    """:data:`SPEECH_TINY`, for tests that train the speech model themselves."""
    return list(SPEECH_TINY)


@pytest.fixture(scope="session")
def speech_data(tmp_path_factory, data) -> Path:
    """Landmarks and soundtracks of two real talking driving videos (d6: 6 s, 30 fps; d20: 25 fps)."""
    from puppetry.cli import main

    out = tmp_path_factory.mktemp("speech_data") / "dataset"
    videos = [str(data / "driving" / f"{v}.mp4") for v in ("d6", "d20")]
    assert main(["-q", "prepare", *videos, "-o", str(out), "--max-frames", "180", "--landmarks-only"]) == 0
    return out


@pytest.fixture(scope="session")
def speech_weights(speech_data, tmp_path_factory) -> Path:
    """``audio2motion.pt`` trained by the test itself: 60 steps of the tiny model on :func:`speech_data` with d20
    held out, stopped after 30 and resumed."""
    import torch

    from puppetry.cli import main

    run = tmp_path_factory.mktemp("speech_run") / "run"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        args = ["-q", "train", "audio2motion", "--data", str(speech_data), "-o", str(run),
                *[a for s in ("optim.steps=60", "data.holdout=[driving_d20]", *SPEECH_TINY) for a in ("--set", s)]]
        assert main([*args, "--stop-after", "30"]) == 0
        assert not (run / "audio2motion.pt").exists()
        assert main([*args, "--resume"]) == 0
    finally:
        torch.set_num_threads(before)
    return run / "audio2motion.pt"
