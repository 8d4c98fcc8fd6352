"""FD-GAN (paper 002, Sec. 3.2): the feature dictionary's equations, landmark images, training on real frames
with resume, the engine end to end (with and without LD-Net, the API and the web app), ``puppetry synthesize``
and their errors.

Training runs through ``puppetry train fdgan`` on three real driving videos prepared at 64 pixels, with the
networks shrunk and drawn at 32 pixels.
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
TINY = ["model.size=32", "model.widths=[8,16,16,32]", "model.rows=[32,16,16,8]", "model.tag_length=8",
        "train.device=cpu", "train.log_every=1", "train.sample_every=1000", "train.checkpoint_every=1000",
        "optim.lr=5e-4", "optim.lr_disc=5e-4", "optim.lr_class=5e-4"]
STEPS = 80

pytestmark = pytest.mark.usefixtures("one_thread")     # conftest.py: tiny networks, one thread


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, data) -> Path:
    """Frames, landmarks and label maps of three real driving videos (three people), 64 pixels."""
    out = tmp_path_factory.mktemp("fd_data") / "dataset"
    videos = [str(data / "driving" / f"{v}.mp4") for v in ("d0", "d10", "d3")]
    assert main(["-q", "prepare", *videos, "-o", str(out), "--max-frames", "30", "--size", "64"]) == 0
    return out


def train(dataset: Path, run: Path, *sets: str, extra: tuple[str, ...] = ()) -> int:
    return main(["-q", "train", "fdgan", "--data", str(dataset), "-o", str(run),
                 *[a for s in (f"optim.steps={STEPS}", *TINY, *sets) for a in ("--set", s)], *extra])


@pytest.fixture(scope="module")
def trained_run(dataset, tmp_path_factory) -> Path:
    """Landmark-conditioned, interrupted and resumed."""
    run = tmp_path_factory.mktemp("fd_run") / "run"
    assert train(dataset, run, extra=("--stop-after", "50")) == 0
    assert not (run / "fdgan.pt").exists()
    assert train(dataset, run, extra=("--resume",)) == 0
    return run


@pytest.fixture(scope="module")
def labels_run(dataset, tmp_path_factory) -> Path:
    """Label-map conditioned (semantic synthesis), a few steps."""
    run = tmp_path_factory.mktemp("fd_labels") / "run"
    assert train(dataset, run, "model.condition=labels", "optim.steps=5") == 0
    return run


@pytest.fixture(scope="module")
def ldnet_weights(dataset, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("fd_ldnet") / "run"
    sets = ["stage1.steps=20", "stage2.steps=10", "model.hidden=32", "model.layers=2", "data.holdout=1",
            "train.device=cpu", "train.sample_every=1000"]
    assert main(["-q", "train", "ldnet", "--data", str(dataset), "-o", str(run),
                 *[a for s in sets for a in ("--set", s)]]) == 0
    return run / "ldnet.pt"


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


# ------------------------------------------------------------------------------------------ dictionary
def test_dictionary_write_and_read_shapes():
    from puppetry.methods.fdgan.dictionary import DictionaryReader, DictionaryWriter

    writer, reader = DictionaryWriter(16, rows=12, tag_length=5, value_length=16), DictionaryReader(16, 12, 5)
    x = torch.randn(3, 16, 8, 6)
    d = writer(x)
    assert d.shape == (3, 12, 16)
    y = reader(torch.randn(3, 16, 4, 5), d)
    assert y.shape == (3, 16, 4, 5)


def test_a_read_returns_what_was_written_under_the_same_tag():
    """Eq. 8-9: location j's key matches row i's write tag only, so row i holds x_j; a read key matching row i's
    read tag returns it."""
    from puppetry.methods.fdgan.dictionary import dictionary_read, dictionary_write

    rows, locations, m_t, m_v = 6, 6, 6, 4
    tags = torch.eye(rows, m_t)                                      # row i's tag: unit vector i
    values = torch.randn(2, m_v, 2, 3)                                # 6 locations
    keys = 40.0 * torch.eye(m_t)[:, torch.tensor([3, 0, 5, 1, 4, 2])].reshape(1, m_t, 2, 3).repeat(2, 1, 1, 1)
    d = dictionary_write(keys, values, tags)                          # B x rows x m_v
    flat = values.flatten(2)                                          # location k holds key of row order[k]
    for k, row in enumerate((3, 0, 5, 1, 4, 2)):
        assert torch.allclose(d[:, row], flat[:, :, k], atol=1e-5)
    queries = 40.0 * torch.eye(m_t)[:, torch.tensor([2, 2, 4, 0])].reshape(1, m_t, 2, 2).repeat(2, 1, 1, 1)
    y = dictionary_read(queries, d, tags).flatten(2)                  # B x m_v x 4
    for j, row in enumerate((2, 2, 4, 0)):
        assert torch.allclose(y[:, :, j], d[:, row], atol=1e-5)
    mixed = dictionary_read(torch.zeros(2, m_t, 1, 1), d, tags)       # no preference: the mean of the rows
    assert torch.allclose(mixed[:, :, 0, 0], d.mean(1), atol=1e-6)
    assert locations == rows


# -------------------------------------------------------------------------------------- landmark images
def test_landmark_images_draw_each_part_in_its_channel_and_flip(data, detect):
    from puppetry.face import topology as T
    from puppetry.methods.fdgan.conditions import FLIP_CHANNELS, flip_condition, landmark_image

    rgb = cv2.resize(read_image(data / "portraits" / "s1.jpg"), (128, 128), interpolation=cv2.INTER_AREA)
    points = detect(rgb)[0]
    image = landmark_image(points, 128)
    assert image.shape == (8, 128, 128) and image.dtype == np.float32 and 0 <= image.min() and image.max() <= 1
    for c, idx in ((1, T.RIGHT_BROW), (2, T.LEFT_BROW), (6, T.OUTER_MOUTH)):
        x, y = np.round(points[idx[0], :2]).astype(int)
        assert image[c, y - 1:y + 2, x - 1:x + 2].max() > 0.3, c          # the part's first point is on its line
        assert image[c].sum() < 0.2 * image.sum()
    assert image[1, :, : int(points[T.RIGHT_BROW, 0].min()) - 2].max() == 0      # nothing left of the right brow
    mirrored = landmark_image(detect(np.ascontiguousarray(rgb[:, ::-1]))[0], 128)
    flipped = flip_condition(image, "landmarks")
    assert sorted(FLIP_CHANNELS) == list(range(8))
    agree = [np.minimum(flipped[c], mirrored[c]).sum() / mirrored[c].sum() for c in range(8)]
    swapped = [np.minimum(image[c][:, ::-1], mirrored[c]).sum() / mirrored[c].sum() for c in (1, 3)]
    assert min(agree) > 0.3 and max(swapped) < 0.1, (agree, swapped)


# ---------------------------------------------------------------------------------------------- config
def test_packaged_config_is_the_papers():
    from puppetry.methods.fdgan.config import FDGanConfig
    from puppetry.training.config import ConfigError, load_config

    cfg = load_config(FDGanConfig, ROOT / "puppetry" / "methods" / "fdgan" / "configs" / "fdgan.yaml")
    assert cfg == FDGanConfig()
    assert (cfg.model.widths, cfg.model.rows, cfg.model.tag_length, cfg.model.size) == \
        ((32, 64, 128, 256), (512, 256, 128, 64), 32, 256)
    assert (cfg.losses.rec_weight, cfg.losses.gan_weight, cfg.losses.class_weight) == (50, 1, 1)
    assert (cfg.optim.lr, cfg.train.batch_size, cfg.optim.steps) == (2e-5, 4, 1_000_000)
    with pytest.raises(ConfigError, match="condition"):
        load_config(FDGanConfig, None, ["model.condition=sketch"])
    with pytest.raises(ConfigError, match="one entry per level"):
        load_config(FDGanConfig, None, ["model.rows=[1,2]"])


# -------------------------------------------------------------------------------------------- training
def test_training_on_real_frames_resumes_and_its_losses_fall(trained_run):
    rows = metrics(trained_run)
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))            # resumed, nothing repeated
    head = np.mean([r["rec"] for r in rows[:10]])
    tail = np.mean([r["rec"] for r in rows[-10:]])
    assert tail < 0.75 * head, (head, tail)
    assert all(np.isfinite([r["gan"], r["cls"], r["loss_d"], r["loss_c"]]).all() for r in rows)
    for name in ("fdgan.pt", "loss_curves.png", "samples_fdgan.png"):
        assert (trained_run / name).stat().st_size > 0
    assert read_image(trained_run / "samples_fdgan.png").shape == (4 * 32, 5 * 32, 3)


def test_the_classifier_needs_two_identities(dataset, tmp_path):
    r = subprocess.run([sys.executable, "-m", "puppetry", "train", "fdgan", "--data", str(dataset), "-o",
                        str(tmp_path / "run"), "--set", "data.holdout=2", *[a for s in TINY for a in ("--set", s)]],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "at least two" in r.stderr and "Traceback" not in r.stderr


def test_ddp_keeps_both_processes_in_step(dataset, tmp_path):
    """Two CPU processes (gloo): T, D and C hold the same weights after training on different pairs."""
    import os

    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(ROOT / "tests" / "ddp_worker.py"), "train_recipe", "fdgan", str(tmp_path / "run"), str(dataset), "-",
           "0", "optim.steps=6", *TINY]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / "run" / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert set(r0) == {"T", "D", "C"}
    for m in r0:
        for k in r0[m]:
            assert torch.equal(r0[m][k], r1[m][k]), (m, k)
    assert (tmp_path / "run" / "fdgan.pt").is_file()


# ---------------------------------------------------------------------------------------------- engine
def test_the_engine_redraws_every_face_and_keeps_the_rest(trained_run, data, tmp_path, group_photo):
    weights = trained_run / "fdgan.pt"
    group = group_photo                                                  # two people side by side
    out = tmp_path / "group.mp4"
    assert main(["-q", "animate", "-s", str(group), "-d", str(data / "driving" / "d3.mp4"), "-o", str(out),
                 "--engine", "fdgan", "--fdgan-weights", str(weights), "--frames", "3"]) == 0
    frames, _ = read_video(out)
    assert len(frames) == 3 and frames[0].shape == (400, 640, 3)
    source = read_image(group).astype(int)
    for half in (slice(0, 320), slice(320, 640)):                      # both faces were redrawn
        assert np.abs(frames[0][:, half].astype(int) - source[:, half]).mean() > 1
    assert np.abs(frames[0][:4, :4].astype(int) - source[:4, :4]).mean() < 3     # outside the crops: the source

    from puppetry.pipeline.animate import AnimateOptions, Animator

    options = AnimateOptions(engine="fdgan", engine_options={"weights": str(weights)})
    with Animator(str(data / "portraits" / "s7.jpg"), options) as animator:         # a cartoon, live API
        still = animator.render(read_image(data / "driving" / "d12.jpg"))
    assert still.shape == read_image(data / "portraits" / "s7.jpg").shape


def test_ldnet_gives_the_driving_landmarks_the_sources_identity_first(trained_run, ldnet_weights, data, tmp_path):
    from puppetry.engines.base import SourceFaces
    from puppetry.methods.fdgan.engine import FDGanEngine, FDGanEngineConfig
    from puppetry.pipeline.source import find_source_faces

    weights = str(trained_run / "fdgan.pt")
    source = find_source_faces(read_image(data / "portraits" / "s9.jpg"), "s9")
    driving = find_source_faces(read_image(data / "driving" / "d12.jpg"), "d12")
    from puppetry.engines.base import DrivingFrame
    from puppetry.face.pose import decompose
    from puppetry.motion.transfer import TransferOptions

    pose = decompose(driving.landmarks[0])
    frame = DrivingFrame(0, pose=pose, reference=pose)
    absolute = TransferOptions(relative=False)
    plain = FDGanEngine(absolute, FDGanEngineConfig(weights=weights))
    ld = FDGanEngine(absolute, FDGanEngineConfig(weights=weights, retarget="ldnet", ldnet_weights=str(ldnet_weights)))
    sp, sl = plain.prepare(SourceFaces(source.image, source.landmarks)), ld.prepare(SourceFaces(source.image, source.landmarks))
    t_plain, t_ld = plain._target(sp, 0, frame), ld._target(sl, 0, frame)
    assert np.abs(t_plain - t_ld)[:, :2].mean() > 0.1                    # LD-Net moved the landmarks
    assert ld.render(sl, frame).shape == source.image.shape
    out = tmp_path / "ld.mp4"
    assert main(["-q", "animate", "-s", str(data / "portraits" / "s9.jpg"), "-d", str(data / "driving" / "d0.mp4"),
                 "-o", str(out), "--engine", "fdgan", "--fdgan-weights", weights, "--retarget", "ldnet",
                 "--ldnet-weights", str(ldnet_weights), "--frames", "2"]) == 0
    assert len(read_video(out)[0]) == 2


def test_missing_or_wrong_weights_fail_in_one_line(trained_run, labels_run, data, tmp_path):
    out = tmp_path / "o.mp4"

    def run(*args):
        return subprocess.run([sys.executable, "-m", "puppetry", "animate", "-s", str(data / "portraits" / "s1.jpg"),
                               "-d", str(data / "driving" / "d0.mp4"), "-o", str(out), "--engine", "fdgan", *args],
                              capture_output=True, text=True, cwd=tmp_path)

    checks = [((), "--fdgan-weights"), (("--fdgan-weights", str(tmp_path / "none.pt")), "does not exist")]
    wrong = tmp_path / "wrong.pt"
    torch.save({"format": "puppetry-wggan", "refiner": {}}, wrong)
    checks.append((("--fdgan-weights", str(wrong)), "not FD-GAN weights"))
    bad = tmp_path / "bad.pt"
    good = torch.load(trained_run / "fdgan.pt", weights_only=True)
    good["T"][next(k for k in good["T"] if k.endswith("weight"))] = torch.zeros(3, 3)
    torch.save(good, bad)
    checks.append((("--fdgan-weights", str(bad)), "shape"))
    checks.append((("--fdgan-weights", str(labels_run / "fdgan.pt")), "label maps"))
    checks.append((("--fdgan-weights", str(trained_run / "fdgan.pt"), "--ldnet-weights", "x.pt"), "--retarget"))
    for args, words in checks:
        r = run(*args)
        assert r.returncode == 2 and words in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    r = run()
    assert "puppetry train fdgan" in r.stderr
    assert not out.exists()


def test_the_web_app_renders_with_the_weights_folder(trained_run, data, tmp_path):
    from puppetry.app.sessions import AppConfig, RenderSettings, run_render

    settings = RenderSettings(engine="fdgan", weights_dir=str(trained_run))          # holds fdgan.pt
    out = run_render(str(data / "portraits" / "s9.jpg"), str(data / "driving" / "d0.mp4"), settings,
                     AppConfig(output_dir=str(tmp_path), max_frames=2))
    frames, _ = read_video(out)
    assert len(frames) == 2 and frames[0].shape[:2] == read_image(data / "portraits" / "s9.jpg").shape[:2]


# ------------------------------------------------------------------------------------------- synthesize
def test_synthesize_draws_a_label_map_in_a_portraits_style(labels_run, trained_run, data, detect, tmp_path):
    from puppetry.face.parsing import PersonSegmenter, colorize, face_parsing

    rgb = cv2.resize(read_image(data / "portraits" / "s42.jpg"), (96, 120), interpolation=cv2.INTER_AREA)
    with PersonSegmenter() as seg:
        labels = face_parsing(rgb, detect(rgb)[0], seg.segment(rgb))
    gray, colour = tmp_path / "gray.png", tmp_path / "colour.png"
    cv2.imwrite(str(gray), labels)
    cv2.imwrite(str(colour), cv2.cvtColor(colorize(labels), cv2.COLOR_RGB2BGR))
    weights = str(labels_run / "fdgan.pt")
    outs = []
    for i, m in enumerate((gray, colour)):
        out = tmp_path / f"out{i}.png"
        assert main(["-q", "synthesize", "--map", str(m), "--style", str(data / "portraits" / "s1.jpg"), "-o",
                     str(out), "--fdgan-weights", weights]) == 0
        outs.append(read_image(out))
    assert outs[0].shape == (120, 96, 3) and np.array_equal(outs[0], outs[1])     # both map forms are one map
    assert outs[0].std() > 0

    def run(*args):
        return subprocess.run([sys.executable, "-m", "puppetry", "synthesize", *args], capture_output=True, text=True)

    painted = tmp_path / "painted.png"
    cv2.imwrite(str(painted), np.full((20, 20, 3), (10, 200, 30), np.uint8))
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((64, 64, 3), 128, np.uint8))
    base = ["--style", str(data / "portraits" / "s1.jpg"), "-o", str(tmp_path / "x.png")]
    for args, words in ((["--map", str(painted), *base, "--fdgan-weights", weights], "neither a label value"),
                        (["--map", str(gray), *base, "--fdgan-weights", str(trained_run / "fdgan.pt")],
                         "model.condition=labels"),
                        (["--map", str(gray), "--style", str(blank), "-o", str(tmp_path / "x.png"),
                          "--fdgan-weights", weights], "no face"),
                        (["--map", str(gray), *base], "--fdgan-weights")):
        r = run(*args)
        assert r.returncode == 2 and words in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not (tmp_path / "x.png").exists()


def test_speech_drives_fdgan(trained_run, speech_weights, data, tmp_path):
    """``animate -a`` feeds FD-GAN the same landmark frames as the warp engine: a 1 s recording gives 25
    frames carrying its audio."""
    import av

    from tests.wav_files import write_wav

    from puppetry.media.audio import read_audio

    speech = read_audio(data / "driving" / "d6.mp4").samples[16000:32000]
    wav = write_wav(tmp_path / "speech.wav", speech)
    out = tmp_path / "talk.mp4"
    assert main(["-q", "animate", "-s", str(data / "portraits" / "s1.jpg"), "-a", str(wav), "--audio-weights",
                 str(speech_weights), "--engine", "fdgan", "--fdgan-weights", str(trained_run / "fdgan.pt"),
                 "--max-size", "256", "-o", str(out)]) == 0
    with av.open(str(out)) as c:
        assert c.streams.audio and sum(1 for _ in c.decode(video=0)) == 25
