"""The clean inputs the harness damages: small real files of every kind puppetry reads, made from
../shared/data once per corpus folder, and the CLI command that reads each kind.

Kinds: images (jpg, png) as a source and as a driving still; videos (mp4 with AAC, mov, mkv, webm
(VP9), avi (MPEG-4), gif) and a folder of frames as driving; landmark motion templates (.npz, ours)
and LivePortrait keypoint templates (.pkl, the release's); speech (wav, m4a, mp3) for ``-a``; our own
weights (``audio2motion.pt``); a prepared dataset's shard (.tar) and sidecar (.json); a training
checkpoint (``last.pt``) resumed; a training config (YAML); with ``liveportrait=True``, LivePortrait's five
release checkpoint files (written by the conformance kit: 500 MB, and a render of 1 frame takes seconds on
a CPU, so the suite's sample leaves them out). The web app's uploads and live-socket frames are abused in
tests/test_app_abuse.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import av
import cv2
import numpy as np

from tests.wav_files import write_wav

ARGS = list[str]
LIVEPORTRAIT_MEMORY_MB = 3072.0
"""LivePortrait's ceiling: a clean 1-frame CPU render peaks at 1.5 GB in a fresh process, and the worker
already holds torch and MediaPipe (about 0.75 GB) from earlier cases."""
TINY_TRAIN = ["--set", "model.channels=16", "--set", "model.dilations=[1,2]", "--set", "train.device=cpu",
              "--set", "train.batch_size=2", "--set", "train.log_every=1", "--set", "train.checkpoint_every=1000",
              "--set", "train.sample_every=1000", "--set", "data.min_seconds=0.5"]


@dataclass
class Kind:
    """One input kind.

    Attributes:
        name: e.g. ``video-mp4``.
        seeds: clean inputs (files, or folders for folder kinds).
        command: ``(damaged input, output path) -> argv`` of ``puppetry``.
        output_suffix: the output file's extension; None for commands that write a run folder.
        inside: for a folder kind, the file inside the folder that is damaged (relative glob); None for files.
        link: copy a folder kind's seed as hard links (large folders the command only reads).
        memory_mb: this kind's memory ceiling when it needs more than the run's.
    """

    name: str
    seeds: list[Path]
    command: Callable[[Path, Path], ARGS]
    output_suffix: str | None = ".mp4"
    inside: str | None = None
    link: bool = False
    memory_mb: float | None = None
    suffix: str = field(default="")

    def __post_init__(self) -> None:
        self.suffix = self.seeds[0].suffix if self.inside is None else ""


def _puppetry(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "puppetry", "-q", *args], check=True, capture_output=True)


def _frames(path: Path, count: int, size: int) -> list[np.ndarray]:
    out = []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            out.append(cv2.resize(frame.to_ndarray(format="rgb24"), (size, size), interpolation=cv2.INTER_AREA))
            if len(out) == count:
                break
    return out


def _encode(path: Path, frames: list[np.ndarray], codec: str, fps: int = 25, pix_fmt: str = "yuv420p") -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], pix_fmt
        for f in frames:
            for packet in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    return path


def _encode_audio(path: Path, samples: np.ndarray, codec: str, rate: int) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=rate)
        s.layout = "mono"
        frame = av.AudioFrame.from_ndarray((samples[None] * 32767).astype(np.int16), format="s16", layout="mono")
        frame.sample_rate = rate
        resampler = av.AudioResampler(format=s.format.name, layout="mono", rate=rate)
        for f in resampler.resample(frame):
            for packet in s.encode(f):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    return path


def build_corpus(root: Path, data: Path, liveportrait: bool = False) -> dict[str, Kind]:
    """Make (or reuse) the clean inputs under ``root`` and return every kind by name (LivePortrait's release
    checkpoints too with ``liveportrait``)."""
    root.mkdir(parents=True, exist_ok=True)
    done = root / ".complete"
    portraits, driving = data / "portraits", data / "driving"
    p = {name: root / f"{name}" for name in ("s1.jpg", "s9.jpg", "s42.png", "d0.mp4", "d20.mp4", "d0.mov",
                                           "d20.mkv", "d0.webm", "d0.avi", "d0.gif", "frames", "motion.npz",
                                           "speech.wav", "speech.m4a", "speech.mp3", "dataset", "run")}
    if not done.exists():
        shutil.rmtree(p["frames"], ignore_errors=True)
        for name, src, size in (("s1.jpg", "s1.jpg", 256), ("s9.jpg", "s9.jpg", 256), ("s42.png", "s42.jpg", 200)):
            image = cv2.imread(str(portraits / src))
            scale = size / max(image.shape[:2])
            cv2.imwrite(str(p[name]), cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
        d0, d20 = _frames(driving / "d0.mp4", 12, 160), _frames(driving / "d20.mp4", 12, 160)
        from puppetry.media.writer import VideoWriter

        for name, frames, audio in (("d0.mp4", d0, None), ("d20.mp4", d20, driving / "d20.mp4"),
                                    ("d0.mov", d0, None), ("d20.mkv", d20, driving / "d20.mp4")):
            with VideoWriter(p[name], fps=25, audio_from=audio) as w:
                for f in frames:
                    w.write(f)
        _encode(p["d0.webm"], d0, "libvpx-vp9")
        _encode(p["d0.avi"], d0, "mpeg4")
        with VideoWriter(p["d0.gif"], fps=10) as w:
            for f in d0[:6]:
                w.write(f)
        p["frames"].mkdir(exist_ok=True)
        for i, f in enumerate(d0[:4]):
            cv2.imwrite(str(p["frames"] / f"{i:04d}.jpg"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        _puppetry("template", str(p["d0.mp4"]), "-o", str(p["motion.npz"]))
        from puppetry.media.audio import read_audio

        speech = read_audio(driving / "d6.mp4").samples[16000:16000 * 3]
        write_wav(p["speech.wav"], speech)
        _encode_audio(p["speech.m4a"], speech, "aac", 16000)
        _encode_audio(p["speech.mp3"], speech, "libmp3lame", 16000)
        for folder in (p["dataset"], p["run"]):
            shutil.rmtree(folder, ignore_errors=True)
        _puppetry("prepare", str(driving / "d6.mp4"), "-o", str(p["dataset"]), "--max-frames", "90",
                  "--landmarks-only")
        _puppetry("train", "audio2motion", "--data", str(p["dataset"]), "-o", str(p["run"]),
                  "--set", "optim.steps=3", *TINY_TRAIN)
        done.write_text("ok\n")

    source = str(p["s1.jpg"])
    weights = str(p["run"] / "audio2motion.pt")
    small = ["--max-size", "256"]

    def drive(frames: int) -> Callable[[Path, Path], ARGS]:
        return lambda f, o: ["animate", "-s", source, "-d", str(f), "--frames", str(frames), *small, "-o", str(o)]

    def train(*extra: str) -> Callable[[Path, Path], ARGS]:
        return lambda f, o: ["train", "audio2motion", *extra_args(f, o, extra), *TINY_TRAIN]

    def extra_args(f: Path, o: Path, extra: tuple[str, ...]) -> ARGS:
        return [a.replace("{f}", str(f)).replace("{o}", str(o)).replace("{data}", str(p["dataset"])) for a in extra]

    shard = next((p["dataset"] / "shards").glob("*.tar")).name
    sidecar = next((p["dataset"] / "shards").glob("*.json")).name
    kinds = [
        Kind("image-jpg", [p["s1.jpg"], p["s9.jpg"]],
             lambda f, o: ["animate", "-s", str(f), "-d", "blink", "--frames", "2", *small, "-o", str(o)]),
        Kind("image-png", [p["s42.png"]],
             lambda f, o: ["animate", "-s", str(f), "-d", "blink", "--frames", "2", *small, "-o", str(o)]),
        Kind("driving-image", [p["s9.jpg"]],
             lambda f, o: ["animate", "-s", source, "-d", str(f), *small, "-o", str(o)], ".png"),
        Kind("video-mp4", [p["d0.mp4"], p["d20.mp4"]], drive(6)),
        Kind("video-mov", [p["d0.mov"]], drive(6)),
        Kind("video-mkv", [p["d20.mkv"]], drive(6)),
        Kind("video-webm", [p["d0.webm"]], drive(6)),
        Kind("video-avi", [p["d0.avi"]], drive(6)),
        Kind("video-gif", [p["d0.gif"]], drive(6)),
        Kind("frame-folder", [p["frames"]], drive(4), inside="*.jpg"),
        Kind("motion-npz", [p["motion.npz"]], drive(4)),
        Kind("keypoints-pkl", [data / "templates" / n for n in ("wink.pkl", "d1.pkl")], drive(4)),
        Kind("audio-wav", [p["speech.wav"]],
             lambda f, o: ["animate", "-s", source, "-a", str(f), "--audio-weights", weights, "--frames", "4",
                           *small, "-o", str(o)]),
        Kind("audio-m4a", [p["speech.m4a"]],
             lambda f, o: ["animate", "-s", source, "-a", str(f), "--audio-weights", weights, "--frames", "4",
                           *small, "-o", str(o)]),
        Kind("audio-mp3", [p["speech.mp3"]],
             lambda f, o: ["animate", "-s", source, "-a", str(f), "--audio-weights", weights, "--frames", "4",
                           *small, "-o", str(o)]),
        Kind("weights-pt", [p["run"] / "audio2motion.pt"],
             lambda f, o: ["animate", "-s", source, "-a", str(p["speech.wav"]), "--audio-weights", str(f),
                           "--frames", "3", *small, "-o", str(o)]),
        Kind("dataset-shard", [p["dataset"]], train("--data", "{f}", "-o", "{o}", "--set", "optim.steps=2"),
             None, inside=f"shards/{shard}"),
        Kind("dataset-sidecar", [p["dataset"]], train("--data", "{f}", "-o", "{o}", "--set", "optim.steps=2"),
             None, inside=f"shards/{sidecar}"),
        Kind("checkpoint", [p["run"]], train("--data", "{data}", "-o", "{f}", "--resume", "--set", "optim.steps=5"),
             None, inside="checkpoints/last.pt"),
        Kind("config-yaml", [p["run"] / "config.yaml"],
             train("--data", "{data}", "-o", "{o}", "--config", "{f}", "--set", "optim.steps=1"), None),
    ]
    if liveportrait:
        release = root / "liveportrait"
        if not (release / ".complete").exists():
            shutil.rmtree(release, ignore_errors=True)
            kit = data.parent / "conformance" / "liveportrait" / "make_checkpoints.py"
            subprocess.run([sys.executable, str(kit), str(release)], check=True, capture_output=True)
            (release / ".complete").write_text("ok\n")
        kinds.append(Kind("liveportrait-weights", [release],
                          lambda f, o: ["animate", "-s", source, "-d", "blink", "--frames", "1", "--engine",
                                        "liveportrait", "--checkpoint-dir", str(f), *small, "-o", str(o)],
                          inside="**/*.pth", link=True, memory_mb=LIVEPORTRAIT_MEMORY_MB))
    return {k.name: k for k in kinds}


def copy_seed(seed: Path, to: Path, link: bool = False) -> Path:
    """A copy of a seed file or folder at ``to``; with ``link`` a folder's files are hard links (for folders
    the command only reads: replace a file there, never write into it, or the seed changes too)."""
    if seed.is_dir():
        shutil.copytree(seed, to, copy_function=os.link if link else shutil.copy2)
    else:
        shutil.copyfile(seed, to)
    return to
