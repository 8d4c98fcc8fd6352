"""Talking portraits from speech (LivePortrait App. C): features, targets, training (loss falls, resume, DDP,
held-out report), ``puppetry animate -a`` end to end with weights the tests train themselves (output as long
as the audio, audio kept, silence closes the mouth) and the one-line errors of bad audio.

The speech model is trained by the session fixture ``speech_weights`` (conftest.py) on two real talking
driving videos, d6 and d20 (held out). The alignment of audio in prepared shards is tested in
test_prepare.py (a click at a known frame lands there).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from puppetry.cli import main
from puppetry.media.audio import Audio, read_audio
from puppetry.methods.audio2motion.evaluation import sync_scores
from puppetry.methods.audio2motion.features import frame_rows, frames_in, loudness_db, speech_features
from puppetry.methods.audio2motion.speech import generate_blinks, generate_sway, speech_driving, speech_gate
from puppetry.methods.audio2motion.targets import MOUTH_POINTS, lips_open, mouth_targets
from puppetry.motion.controls import Controls
from puppetry.training.curves import read_metrics
from tests.wav_files import write_wav

ROOT = Path(__file__).resolve().parents[1]
RATE = 16000


@pytest.fixture(scope="module")
def speech(data) -> np.ndarray:
    """2 s of d6's speech (from 1 s in) at 16 kHz."""
    audio = read_audio(data / "driving" / "d6.mp4")
    return audio.samples[RATE:3 * RATE]


@pytest.fixture(scope="module")
def quiet_talk_quiet(tmp_path_factory, speech) -> Path:
    """1 s of silence, 2 s of d6's speech, 1 s of silence."""
    silence = np.zeros(RATE, np.float32)
    return write_wav(tmp_path_factory.mktemp("speech") / "qtq.wav", np.concatenate([silence, speech, silence]))


def output_facts(path: Path) -> tuple[int, float, float | None]:
    """Frames, video seconds and audio seconds (None without an audio stream) of a written video."""
    with av.open(str(path)) as c:
        frames = sum(1 for _ in c.decode(video=0))
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        a = c.streams.audio[0] if c.streams.audio else None
        audio_s = float(a.duration * a.time_base) if a is not None and a.duration else None
        return frames, frames / float(v.average_rate), audio_s


def mouth_series(path: Path, detect) -> np.ndarray:
    """Lip-open (the ``lips`` control's scale) of the first face in every frame of a video."""
    from puppetry.face.pose import decompose

    out = []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            faces = detect(frame.to_ndarray(format="rgb24"))
            out.append(float(lips_open(decompose(faces[0]).expression)) if faces else np.nan)
    return np.array(out)


# ---------------------------------------------------------------------------------------- features, targets
def test_features_are_on_the_video_clock():
    tone = 0.1 * np.sin(2 * np.pi * 440 * np.arange(int(1.5 * RATE)) / RATE).astype(np.float32)
    audio = Audio(tone, RATE)
    mel = speech_features(audio)
    assert mel.shape == (151, 80) and np.isfinite(mel).all()          # a row every 10 ms, both ends included
    level = loudness_db(audio, 25.0, frames_in(audio, 25.0))
    assert level.shape == (38,)
    assert np.allclose(level[:37], 20 * np.log10(0.1 / np.sqrt(2)), atol=0.2)   # -23 dBFS for a 0.1 sine
    assert list(frame_rows(4, 25.0, 151)) == [0, 4, 8, 12]
    assert frame_rows(400, 25.0, 151).max() == 150


def test_targets_measure_a_real_talking_mouth(data):
    from puppetry.data.dataset import open_dataset  # noqa: F401  (targets come from any landmarks)
    from puppetry.face import DetectorConfig, FaceMeshDetector
    from puppetry.media.video import VideoReader

    with FaceMeshDetector("video", DetectorConfig(max_faces=1)) as det, \
            VideoReader(data / "driving" / "d6.mp4", max_frames=60) as reader:
        landmarks = np.stack([det.detect(f)[0] for f in reader])
    t = mouth_targets(landmarks)
    assert t.lips.shape == (60,) and t.shape.shape == (60, len(MOUTH_POINTS), 2) and t.rest.shape == (478, 3)
    assert 0 <= t.lips.min() and t.lips.max() <= 1 and t.lips.std() > 0.05      # d6 talks
    closed = t.lips <= np.quantile(t.lips, 0.1)
    assert np.abs(t.shape[closed]).mean() < np.abs(t.shape[~closed]).mean()     # rest is the closed mouth
    assert np.isfinite(t.angles).all() and t.eyes.max() <= 1.5


def test_sync_scores_find_a_shift():
    rng = np.random.default_rng(0)
    real = np.convolve(rng.standard_normal(300), np.ones(5) / 5, mode="same")
    late = np.concatenate([np.zeros(3), real[:-3]])                          # the prediction lags 3 frames
    scores = sync_scores(late, real)
    assert scores["offset"] == 3 and scores["r_best"] > 0.99 and scores["r"] < scores["r_best"]
    assert sync_scores(real, real) == {"r": pytest.approx(1.0), "offset": 0.0, "r_best": pytest.approx(1.0)}


def test_blinks_and_sway_are_generated_from_the_seed():
    rng = np.random.default_rng(1)
    eyes = generate_blinks(25 * 60, 25.0, 18.0, rng)
    starts = ((eyes[1:] < 0.5) & (eyes[:-1] >= 0.5)).sum()
    assert 8 <= starts <= 30 and eyes.min() < 0.05 and eyes.max() == 1.0        # about 18 a minute
    a = generate_sway(250, 25.0, np.array([2.0, 1.5, 1.0]), np.ones(250), np.random.default_rng(2))
    b = generate_sway(250, 25.0, np.array([2.0, 1.5, 1.0]), np.ones(250), np.random.default_rng(2))
    assert np.array_equal(a, b) and np.allclose(a.std(0), [2.0, 1.5, 1.0], rtol=0.01)
    assert np.abs(np.diff(a, axis=0)).max() < 0.5                               # slow: under half a degree a frame
    gate = speech_gate(np.array([-100.0] * 20 + [-20.0] * 20 + [-100.0] * 20), 25.0)
    assert gate[:15].max() == 0 and gate[22:38].min() > 0.999 and gate[45:].max() == 0


# ---------------------------------------------------------------------------------------------- training
def test_window_correlation_scores_timing_not_level():
    from puppetry.methods.audio2motion.recipe import window_correlation

    t = torch.linspace(0, 6.28, 50)
    real = torch.stack([0.3 + 0.2 * torch.sin(t), torch.full_like(t, 0.4)])        # the second mouth is still
    mask = torch.ones(2, 50)
    assert window_correlation(3 * real + 1, real, mask).item() == pytest.approx(1.0, abs=1e-5)
    assert window_correlation(-real, real, mask).item() == pytest.approx(-1.0, abs=1e-5)
    mask[0, 25:] = 0                                                              # only the first half counts
    assert window_correlation(torch.where(mask > 0, real, 5.0), real, mask).item() == pytest.approx(1.0, abs=1e-5)


def test_training_lowers_the_loss_and_reports_the_held_out_speaker(speech_weights):
    run = speech_weights.parent
    rows = [r for r in read_metrics(run) if "lip_l1" in r]
    assert len(rows) == 60                                                      # 30 + 30 after the resume
    first = np.mean([r["lip_l1"] for r in rows[:10]])
    last = np.mean([r["lip_l1"] for r in rows[-10:]])
    assert last < 0.7 * first, (first, last)
    report = json.loads((run / "audio2motion_report.json").read_text())
    assert report["split"] == "held-out" and {c["identity"][:11] for c in report["clips"]} == {"driving_d20"}
    for key in ("model", "baseline"):
        assert np.isfinite(report[key]["r"]) and 0 <= report[key]["abs_offset"] <= 10
    assert (run / "samples_lips.png").is_file()


def test_ddp_keeps_both_processes_in_step(speech_data, speech_tiny, tmp_path):
    """Two CPU processes (gloo) train on different windows and end with the same weights."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(ROOT / "tests" / "ddp_worker.py"), "train_recipe", "audio2motion", str(tmp_path / "run"),
           str(speech_data), "-", "0", "optim.steps=5", *speech_tiny]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / "run" / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert set(r0) == {"net"}
    for k in r0["net"]:
        assert torch.equal(r0["net"][k], r1["net"][k]), k
    assert (tmp_path / "run" / "audio2motion.pt").is_file()


def test_a_dataset_without_speech_is_one_line(tmp_path, data):
    out = tmp_path / "silent"
    assert main(["-q", "prepare", str(data / "driving" / "d3.mp4"), "-o", str(out), "--max-frames", "40",
                 "--landmarks-only"]) == 0                                 # d3's soundtrack is digital silence
    r = subprocess.run([sys.executable, "-m", "puppetry", "train", "audio2motion", "--data", str(out), "-o",
                        str(tmp_path / "run")], capture_output=True, text=True)
    lines = r.stderr.strip().splitlines()           # why each clip is unused, then the error
    assert r.returncode == 2 and "no clip with speech" in lines[-1] and "Traceback" not in r.stderr
    assert "silent soundtrack" in lines[0] and len(lines) == 2


# ------------------------------------------------------------------------------------------------- animate
def test_animate_with_speech_end_to_end(speech_weights, quiet_talk_quiet, data, tmp_path, detect):
    """A 4 s recording gives 100 frames at 25 fps carrying the audio; the mouth opens while the speech
    plays and is closed in the silences around it."""
    out = tmp_path / "talk.mp4"
    assert main(["-q", "animate", "-s", str(data / "portraits" / "s1.jpg"), "-a", str(quiet_talk_quiet),
                 "--audio-weights", str(speech_weights), "-o", str(out)]) == 0
    frames, video_s, audio_s = output_facts(out)
    assert frames == 100 and audio_s is not None and abs(audio_s - 4.0) < 0.05 and abs(video_s - 4.0) < 0.05
    lips = mouth_series(out, detect)
    silent = np.concatenate([lips[:22], lips[78:]])
    talking = lips[27:73]
    assert np.nanmax(silent) < 0.05, silent
    assert np.nanmax(talking) > np.nanmax(silent) + 0.1, talking


def test_silence_closes_an_open_mouth(speech_weights, data, tmp_path, detect):
    """An open-mouthed portrait (s1 opened by the lips control) is closed by a silent recording."""
    opened = tmp_path / "open.png"
    assert main(["-q", "animate", "-s", str(data / "portraits" / "s1.jpg"), "-d", str(data / "portraits" / "s1.jpg"),
                 "--lips", "0.7", "-o", str(opened)]) == 0
    from puppetry.face.pose import decompose
    from puppetry.media.image import read_image

    wide = float(lips_open(decompose(detect(read_image(opened))[0]).expression))
    assert wide > 0.3
    silence = write_wav(tmp_path / "silence.wav", np.zeros(RATE, np.float32))
    frames, _ = speech_driving(silence, speech_weights, 25.0, Controls())
    frames = list(frames)
    assert len(frames) == 25 and all(f.controls.lips == 0.0 for f in frames)
    out = tmp_path / "closed.mp4"
    assert main(["-q", "animate", "-s", str(opened), "-a", str(silence), "--audio-weights", str(speech_weights),
                 "-o", str(out)]) == 0
    # the warp engine's closed mouth, as the lips control draws it: a narrow seam stays where the open
    # mouth's dark inside was squeezed, which Face Mesh reads as a little open
    shut = tmp_path / "shut.png"
    assert main(["-q", "animate", "-s", str(opened), "-d", str(opened), "--lips", "0", "-o", str(shut)]) == 0
    closed = float(lips_open(decompose(detect(read_image(shut))[0]).expression))
    assert closed < 0.2
    lips = mouth_series(out, detect)                # the generated head sway moves the seam a little
    assert np.nanmedian(lips) < closed + 0.05 and np.nanmax(lips) < 0.5 * wide, (lips, closed, wide)


def test_speech_from_a_video_soundtrack_and_the_environment(speech_weights, data, tmp_path, monkeypatch):
    """-a takes a video's soundtrack; the weights come from $PUPPETRY_AUDIO_WEIGHTS; --frames stops early."""
    monkeypatch.setenv("PUPPETRY_AUDIO_WEIGHTS", str(speech_weights))
    out = tmp_path / "d20.mp4"
    assert main(["-q", "animate", "-a", str(data / "driving" / "d20.mp4"), "--frames", "12", "-o", str(out)]) == 0
    frames, video_s, audio_s = output_facts(out)
    assert frames == 12 and audio_s is not None and abs(audio_s - video_s) < 0.05


BAD = {
    "corrupt": lambda p: p.with_suffix(".wav").write_bytes(os.urandom(4000)) or p.with_suffix(".wav"),
    "empty": lambda p: write_wav(p.with_suffix(".wav"), np.zeros(0, np.float32)),
    "text": lambda p: p.with_suffix(".txt").write_text("hello") or p.with_suffix(".txt"),
}


@pytest.mark.parametrize("kind", [*BAD, "image", "silent video", "missing", "folder"])
def test_bad_audio_is_one_line_and_no_output(kind, speech_weights, data, tmp_path):
    if kind in BAD:
        audio = BAD[kind](tmp_path / "bad")
    else:
        audio = {"image": data / "portraits" / "s1.jpg", "silent video": data / "driving" / "d0.mp4",
                 "missing": tmp_path / "nothing.wav", "folder": tmp_path}[kind]
    out = tmp_path / "out.mp4"
    r = subprocess.run([sys.executable, "-m", "puppetry", "animate", "-a", str(audio), "--audio-weights",
                        str(speech_weights), "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "Traceback" not in r.stderr and "unexpected" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


@pytest.mark.parametrize("args, words", [
    (["-d", "blink"], "not both"),
    (["--absolute"], "relative"),
    (["--engine", "perturbed_masks", "--pm-weights", "x.pt"], None),
    ([], "--audio-weights"),
])
def test_speech_option_errors_are_one_line(args, words, quiet_talk_quiet, speech_weights, tmp_path, monkeypatch):
    monkeypatch.delenv("PUPPETRY_AUDIO_WEIGHTS", raising=False)
    weights = [] if words == "--audio-weights" else ["--audio-weights", str(speech_weights)]
    out = tmp_path / "out.mp4"
    r = subprocess.run([sys.executable, "-m", "puppetry", "animate", "-a", str(quiet_talk_quiet), *weights, *args,
                        "-o", str(out)], capture_output=True, text=True, timeout=120,
                       env={k: v for k, v in os.environ.items() if k != "PUPPETRY_AUDIO_WEIGHTS"})
    assert r.returncode != 0 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    if words:
        assert words in r.stderr
    assert not out.exists()
