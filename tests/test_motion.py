"""Motion transfer: the math, and end to end on real driving videos through the CLI."""

import subprocess
import sys

import av
import numpy as np
import pytest

import puppetry
from puppetry.face import FaceMeshDetector, decompose, euler_to_rotation, eye_open_ratio, lip_open_ratio
from puppetry.face import rotation_to_euler
from puppetry.face import topology as T
from puppetry.media import VideoReader, probe_video
from puppetry.motion import MOTIONS, Controls, MotionSequence, TransferOptions, procedural_motion, transfer_motion
from puppetry.motion.sequence import TEMPLATE_FORMAT
from puppetry.errors import MotionError


@pytest.fixture(scope="module")
def d3_faces(data):
    """Two driving frames of d3 (neutral start and an open mouth) and the source face of s1."""
    from puppetry.face import DetectorConfig
    with VideoReader(data / "driving" / "d3.mp4", max_frames=354) as r:
        frames = list(r)
    with FaceMeshDetector("video") as det:
        lms = [det.detect(f) for f in frames]
    lips = [lip_open_ratio(l[0]) if l else 0 for l in lms]
    k = int(np.argmax(lips))
    with FaceMeshDetector("image", DetectorConfig()) as det:
        src = det.detect(puppetry.media.read_image(data / "portraits" / "s1.jpg"))[0]
    return decompose(src), decompose(lms[0][0]), decompose(lms[k][0])


def test_relative_transfer_without_change_is_the_source(d3_faces):
    src, ref, _ = d3_faces
    out = transfer_motion(src, ref, ref)
    # s1's mouth is a little less open than d3's first frame: the mouth takes the driver's opening
    # (puppetry.motion.transfer, lids and lips); everything else is the source's
    from puppetry.motion.controls import jaw_weights, lip_gap, upper_lip_weights
    assert lip_gap(src.expression) < lip_gap(ref.expression)
    np.testing.assert_allclose(lip_gap(out.expression), lip_gap(ref.expression), atol=1e-3)
    still = (jaw_weights(src.expression) == 0) & (upper_lip_weights(src.expression) == 0)
    still[np.concatenate([T.LIP_UPPER_BODY, T.LIP_LOWER_BODY])] = False     # the lips' rows move with their lip
    np.testing.assert_allclose(out.compose()[still], src.compose()[still], atol=1e-9)
    closed = transfer_motion(src, ref, ref, TransferOptions(region="eyes"))
    np.testing.assert_allclose(closed.compose(), src.compose(), atol=1e-9)


def test_relative_transfer_is_normalised_for_size_rotation_and_position(d3_faces):
    src, ref, drv = d3_faces
    base = transfer_motion(src, drv, ref).compose()
    # The same driving video, three times bigger, tilted 25 degrees and shifted: same result.
    rot = euler_to_rotation(0.0, 0.0, 25.0)
    def warp(p):
        pts = p.compose()
        return decompose(3.0 * (pts - ref.center) @ rot.T + ref.center + [300.0, 100.0, 0.0])
    np.testing.assert_allclose(transfer_motion(src, warp(drv), warp(ref)).compose(), base, atol=1e-6)


def test_multiplier_region_and_absolute(d3_faces):
    src, ref, drv = d3_faces
    one = transfer_motion(src, drv, ref, TransferOptions(region="expression")).expression - src.expression
    two = transfer_motion(src, drv, ref, TransferOptions(region="expression", multiplier=2.0)).expression
    body = np.zeros(len(one), bool)
    body[np.concatenate([T.LIP_UPPER_BODY, T.LIP_LOWER_BODY])] = True
    np.testing.assert_allclose((two - src.expression)[~body], 2 * one[~body], atol=1e-12)
    # each lip's body keeps its height over the inner contour within half to 1.5 times the source's
    # (transfer docstring, lip thickness)
    doubled = transfer_motion(src, drv, ref, TransferOptions(region="expression", multiplier=2.0)).expression

    def height(e, body, inner):
        order = np.argsort(e[inner, 0])
        return e[body, 1] - np.interp(e[body, 0], e[inner, 0][order], e[inner, 1][order])

    for body, inner in ((T.LIP_UPPER_BODY, T.LIP_UPPER_INNER), (T.LIP_LOWER_BODY, T.LIP_LOWER_INNER)):
        share = height(doubled, body, inner) / height(src.expression, body, inner)
        assert share.min() >= 0.5 - 1e-9 and share.max() <= 1.5 + 1e-9
    eyes = transfer_motion(src, drv, ref, TransferOptions(region="eyes"))
    moved = np.abs(eyes.expression - src.expression).max(1) > 0
    assert set(np.flatnonzero(moved)) <= set(T.EYES) and np.allclose(eyes.rotation, src.rotation)
    lips = transfer_motion(src, drv, ref, TransferOptions(region="lips"))
    assert lip_open_ratio(lips.compose()) > lip_open_ratio(src.compose()) + 0.1
    pose = transfer_motion(src, drv, ref, TransferOptions(region="pose"))
    np.testing.assert_allclose(pose.expression, src.expression)
    absolute = transfer_motion(src, drv, ref, TransferOptions(relative=False))
    np.testing.assert_allclose(absolute.expression, drv.expression, atol=1e-12)
    np.testing.assert_allclose(absolute.rotation, drv.rotation)
    assert absolute.scale == src.scale
    with pytest.raises(ValueError):
        TransferOptions(region="ears")


def test_procedural_motions():
    for name in MOTIONS:
        frames = procedural_motion(name, fps=25)
        assert len(frames) > 25 and all(isinstance(c, Controls) for c in frames)
    blink = [c.eyes for c in procedural_motion("blink")]
    assert min(blink) < 0.05 and max(blink) > 0.99
    shake = [c.yaw for c in procedural_motion("shake")]
    assert min(shake) < -10 and max(shake) > 10
    assert len(procedural_motion("talk", fps=30, duration=2.0)) == 60
    with pytest.raises(MotionError, match="dance"):
        procedural_motion("dance")


def _cli(*args):
    proc = subprocess.run([sys.executable, "-m", "puppetry", *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def _series(frames):
    eyes, lips, yaw = [], [], []
    with FaceMeshDetector("video") as det:
        for f in frames:
            faces = det.detect(f)
            if not faces:
                eyes.append(np.nan), lips.append(np.nan), yaw.append(np.nan)
                continue
            eyes.append(eye_open_ratio(faces[0]).mean())
            lips.append(lip_open_ratio(faces[0]))
            yaw.append(rotation_to_euler(decompose(faces[0]).rotation)[0])
    return np.array(eyes), np.array(lips), np.array(yaw)


@pytest.fixture(scope="module")
def d3_run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("d3") / "s1_d3.mp4"
    _cli("-q", "animate", "-s", str(data / "portraits" / "s1.jpg"), "-d", str(data / "driving" / "d3.mp4"),
         "-o", str(out))
    with VideoReader(data / "driving" / "d3.mp4") as r:
        driving = list(r)
    with VideoReader(out) as r:
        result = list(r)
    return out, driving, result


def test_video_keeps_frame_count_rate_and_audio(d3_run, data):
    out, driving, result = d3_run
    info, src = probe_video(out), probe_video(data / "driving" / "d3.mp4")
    assert info.num_frames == src.num_frames == len(result) == 354
    assert abs(info.fps - 30.0) < 1e-3
    assert info.has_audio
    with av.open(str(out)) as c:
        audio = c.streams.audio[0]
        assert audio.codec_context.name == "aac"
        assert abs(float(audio.duration * audio.time_base) - 354 / 30) < 0.2


def test_motion_really_transfers(d3_run):
    _, driving, result = d3_run
    de, dl, dy = _series(driving)
    oe, ol, oy = _series(result)
    ok = ~(np.isnan(de) | np.isnan(oe))
    assert ok.mean() > 0.95
    assert np.corrcoef(dl[ok], ol[ok])[0, 1] > 0.9, "lip opening does not follow the driving video"
    assert np.corrcoef(de[ok], oe[ok])[0, 1] > 0.8, "eye opening does not follow the driving video"
    # Head turns go the same way: where the driver turned more than 6 degrees, so does the result.
    turn_d, turn_o = dy - dy[0], oy - oy[0]
    big = ok & (np.abs(turn_d) > 6)
    assert big.sum() > 20
    assert (np.sign(turn_d[big]) == np.sign(turn_o[big])).mean() > 0.95


def test_template_round_trip_drives_like_the_video(data, tmp_path):
    template = tmp_path / "d0.npz"
    _cli("-q", "template", str(data / "driving" / "d0.mp4"), "-o", str(template))
    seq = MotionSequence.load(template)
    assert len(seq) == 78 and seq.fps == 25 and seq.expression.shape == (78, 478, 3)
    from_template = puppetry.animate(data / "portraits" / "s1.jpg", template,
                                     options=puppetry.AnimateOptions(progress=False)).images
    from_video = puppetry.animate(data / "portraits" / "s1.jpg", data / "driving" / "d0.mp4",
                                  options=puppetry.AnimateOptions(progress=False)).images
    assert len(from_template) == len(from_video) == 78
    _, lt, _ = _series(from_template)
    _, lv, _ = _series(from_video)
    ok = ~(np.isnan(lt) | np.isnan(lv))
    assert np.corrcoef(lt[ok], lv[ok])[0, 1] > 0.95
    # A damaged template is refused with a clear error, and pickles are never loaded.
    bad = tmp_path / "bad.npz"
    np.savez(bad, format=np.array(TEMPLATE_FORMAT), version=np.array(1), expression=np.zeros((2, 3)))
    with pytest.raises(MotionError):
        MotionSequence.load(bad)


def test_blink_motion_closes_and_reopens_the_eyes(s1):
    frames = puppetry.animate(s1, "blink", options=puppetry.AnimateOptions(progress=False)).images
    eyes, _, _ = _series(frames)
    assert np.nanmin(eyes) < 0.15 and np.nanmax(eyes) > 0.25


def test_driving_image_concat_and_gif(data, tmp_path):
    gif = tmp_path / "out.gif"
    _cli("-q", "animate", "-s", str(data / "portraits" / "s9.jpg"), "-d", str(data / "driving" / "d0.mp4"),
         "--frames", "20", "--concat", "-o", str(gif))
    with VideoReader(gif) as r:
        frames = list(r)
    src = puppetry.media.read_image(data / "portraits" / "s9.jpg")
    h = src.shape[0]
    assert len(frames) == 20 and frames[0].shape[0] in (h, h - 1)
    assert abs(frames[0].shape[1] - (h + 2 * src.shape[1])) <= 2     # driving (square) | source | result
    still = tmp_path / "still.png"
    _cli("-q", "animate", "-s", str(data / "portraits" / "s1.jpg"), "-d", str(data / "driving" / "d12.jpg"),
         "-o", str(still))
    assert still.exists()


def test_streaming_animator_follows_a_live_feed(data):
    with VideoReader(data / "driving" / "d6.mp4", max_frames=240) as r:
        feed = list(r)
    with puppetry.Animator(data / "portraits" / "s1.jpg", fps=30) as animator:
        frames = [animator.render(f) for f in feed]
        still = animator.render(controls=Controls(lips=0.8))
    _, dl, _ = _series(feed)
    _, ol, _ = _series(frames)
    ok = ~(np.isnan(dl) | np.isnan(ol))
    assert np.corrcoef(dl[ok], ol[ok])[0, 1] > 0.9
    assert lip_open_ratio(FaceMeshDetector("image").detect(still)[0]) > 0.25
