"""The LivePortrait engine through the pipeline and the CLI: templates recorded from M, official
templates, portrait video editing (Eq. 8), the streaming Animator, and the benchmark."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from puppetry.engines.base import DrivingFrame, SourceFaces
from puppetry.methods.liveportrait.engine import LivePortraitConfig, LivePortraitEngine
from puppetry.methods.liveportrait.recording import record_template
from puppetry.motion.keypoint_template import load_template, save_template
from puppetry.media import VideoReader, probe_video
from puppetry.pipeline.animate import AnimateOptions, Animator, animate


def lp_options(release_dir, **kw) -> AnimateOptions:
    return AnimateOptions(engine="liveportrait", progress=False,
                          engine_options={"checkpoint_dir": str(release_dir), **kw.pop("engine_options", {})}, **kw)


def test_recorded_template_reproduces_the_video_motion(models, data, s1, detect, tmp_path):
    engine = LivePortraitEngine(config=LivePortraitConfig(), models=models)
    template = record_template(data / "driving" / "d0.mp4", engine, max_frames=6)
    assert len(template) == 6 and template.c_eyes.shape == (6, 2) and template.c_lip.shape == (6,)
    save_template(template, tmp_path / "d0.npz")
    again = load_template(tmp_path / "d0.npz")
    np.testing.assert_array_equal(again.exp, template.exp)
    # the template drives the engine exactly as M on the frames themselves
    state = engine.prepare(SourceFaces(image=s1, landmarks=detect(s1)))
    with VideoReader(data / "driving" / "d0.mp4", max_frames=6) as reader:
        rgb = list(reader)
    live = [DrivingFrame(index=i, image=rgb[i], landmarks=detect(rgb[i])[0]) for i in (0, 5)]
    from_video = [engine._target(state, f, d) for f, d in zip(live, engine._driving_motions(state, live))]
    engine.reset_reference(state)
    recorded = [DrivingFrame(index=i, keypoints=template.frame(i)) for i in (0, 5)]
    from_template = [engine._target(state, f, d) for f, d in zip(recorded, engine._driving_motions(state, recorded))]
    # landmarks in the recording were smoothed; M's inputs are the same square frames
    assert torch.allclose(from_video[1], from_template[1], atol=1e-4)


def test_eq8_averages_the_next_driving_expression(models, s1, detect, data):
    engine = LivePortraitEngine(config=LivePortraitConfig(stitching=False, normalize_lip=False), models=models)
    faces = SourceFaces(image=s1, landmarks=detect(s1))
    with VideoReader(data / "driving" / "d0.mp4", max_frames=40) as reader:
        rgb = [f for i, f in enumerate(reader) if i in (0, 20, 39)]
    frames = [DrivingFrame(index=i, image=im, landmarks=detect(im)[0]) for i, im in enumerate(rgb)]
    frames[0].lookahead, frames[1].lookahead = frames[1], frames[2]
    state = engine.prepare_next(None, faces)
    x0 = engine._target(state, frames[0], engine._eq8(state, frames[0], engine._driving_motions(state, frames[:1])[0]))
    state = engine.prepare_next(state, faces)
    x1 = engine._target(state, frames[1], engine._eq8(state, frames[1], engine._driving_motions(state, frames[1:2])[0]))
    m = [d[0] for d in engine._driving_motions(state, frames)]
    s = state.info
    from puppetry.methods.liveportrait.kinematics import transform_keypoints
    expect = transform_keypoints(s.kp, m[1].R @ m[0].R.transpose(1, 2) @ s.R,
                                 s.exp + 0.5 * (m[1].exp + m[2].exp) - m[0].exp,
                                 s.scale * m[1].scale / m[0].scale, s.t + m[1].t - m[0].t)
    assert torch.allclose(x1, expect, atol=1e-5)
    assert not torch.allclose(x0, state.x_s)     # frame 0 is itself averaged with frame 1


def test_portrait_video_editing_end_to_end(release_dir, data, tmp_path):
    out = tmp_path / "edited.mp4"
    result = animate(data / "portraits" / "s20.mp4", data / "driving" / "d0.mp4", out,
                     lp_options(release_dir, max_frames=2))
    info = probe_video(out)
    assert result.frames == 2 and info.num_frames == 2
    assert (info.width, info.height) == (480, 908) and info.has_audio       # the source's size and audio
    with VideoReader(out) as r, VideoReader(data / "portraits" / "s20.mp4", max_frames=2) as src:
        for edited, original in zip(r, src):
            diff = np.abs(edited.astype(int) - original.astype(int)).max(-1)
            assert (diff > 40).mean() > 0.02                     # the face was replaced
            assert np.median(diff[:100]) < 6                     # the top rows (outside the crop) were not


def test_official_template_through_the_cli(release_dir, data, tmp_path):
    out = tmp_path / "wink.mp4"
    proc = subprocess.run([sys.executable, "-m", "puppetry", "-q", "animate", "-s", str(data / "portraits" / "s9.jpg"),
                           "-d", str(data / "templates" / "wink.pkl"), "--engine", "liveportrait",
                           "--checkpoint-dir", str(release_dir), "--frames", "2", "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = probe_video(out)
    assert info.num_frames == 2 and info.fps == 25


def test_animator_streams_and_resets(release_dir, data):
    with VideoReader(data / "driving" / "d0.mp4", max_frames=2) as reader:
        rgb = list(reader)
    with Animator(data / "portraits" / "s1.jpg", lp_options(release_dir)) as animator:
        first = animator.render(rgb[0])
        assert animator.state.d0 is not None
        animator.reset()
        assert animator.state.d0 is None
        again = animator.render(rgb[0])
    assert np.abs(first.astype(int) - again.astype(int)).max() <= 1


def test_benchmark_reports_every_module(release_dir, data):
    from puppetry.benchmark import run_benchmark
    result = run_benchmark(str(data / "portraits" / "s1.jpg"), str(data / "driving" / "d0.mp4"), 1, "liveportrait",
                           {"checkpoint_dir": str(release_dir)})
    for module in ("M", "W", "G", "S", "paste"):
        assert result.ms_per_frame[module] > 0, module
    assert result.ms_per_frame["W"] + result.ms_per_frame["G"] > 100      # the heavy part, timed for real
    assert "frames per second" in result.table()


def test_video_source_needs_an_engine_that_edits_video(data, tmp_path):
    from puppetry.errors import MediaError
    with pytest.raises(MediaError, match="--engine liveportrait"):
        animate(data / "portraits" / "s20.mp4", "blink", tmp_path / "x.mp4", AnimateOptions(progress=False))
