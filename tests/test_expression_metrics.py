"""PSIM and ED (paper 002's pose similarity and expression distance) from real Face Mesh landmarks.

Faces come from ../shared/data: the portrait s10 (head turned ~33 degrees) and its mirror image, and a
few frames of the talking-head video d12 (about 20 detections in all, so the module runs in seconds).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from conftest import DATA
from puppetry.evaluation import face_metrics as fm
from puppetry.face.pose import euler_to_rotation, lip_open_ratio
from puppetry.media import read_image, read_video

VIDEO = DATA / "driving" / "d12.mp4"        # talks: the mouth closes and opens in its first 2 seconds


@pytest.fixture(scope="module")
def turned(detect) -> tuple[np.ndarray, np.ndarray]:
    """``1 x 478 x 3`` landmarks of s10 and of its horizontally mirrored image (yaw and roll flip)."""
    image = read_image(DATA / "portraits" / "s10.jpg")
    return (fm.stack_landmarks([detect(image)[0]]),
            fm.stack_landmarks([detect(np.ascontiguousarray(image[:, ::-1]))[0]]))


@pytest.fixture(scope="module")
def talking(detect) -> np.ndarray:
    """``20 x 478 x 3`` landmarks of every third of the first 60 frames of d12."""
    frames, _ = read_video(VIDEO, 60)
    lms = fm.stack_landmarks([(f[0] if (f := detect(x)) else None) for x in frames[::3]])
    assert fm.found(lms).all()
    return lms


# ----------------------------------------------------------------------------------------- PSIM

def test_psim_of_a_frame_with_itself_is_one(turned, talking):
    face, _ = turned
    both = np.concatenate([face, talking])
    assert fm.pose_similarity(both, both) == pytest.approx(np.ones(len(both)), abs=1e-9)


def test_psim_of_a_mirrored_face_is_lower(turned):
    face, mirror = turned
    angles, mirrored = fm.head_angles(face)[0], fm.head_angles(mirror)[0]       # yaw, pitch, roll
    assert abs(angles[0]) > 20
    assert np.sign(mirrored[[0, 2]]).tolist() == (-np.sign(angles[[0, 2]])).tolist()  # yaw and roll flip
    psim = fm.pose_similarity(mirror, face)[0]
    assert psim < 0.0 < fm.pose_similarity(face, face)[0]
    assert fm.pose_similarity(face, mirror)[0] == pytest.approx(psim)                # symmetric
    # with yaw and roll negated and pitch kept, the cosine is (p^2 - y^2 - r^2) / (p^2 + y^2 + r^2)
    yaw, pitch, roll = np.deg2rad(angles)
    assert psim == pytest.approx((pitch ** 2 - yaw ** 2 - roll ** 2) / (pitch ** 2 + yaw ** 2 + roll ** 2), abs=0.1)


def test_psim_of_all_zero_angles_is_nan_without_warnings(turned, monkeypatch):
    face, _ = turned
    real = fm.head_angles
    # a head exactly level and frontal in the second frame: its rotation vector has no direction
    monkeypatch.setattr(fm, "head_angles", lambda lms: real(lms) * np.array([[1.0], [0.0]]))
    pair = np.concatenate([face, face])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        psim = fm.pose_similarity(pair, pair)
    assert psim[0] == pytest.approx(1.0) and np.isnan(psim[1])


# ----------------------------------------------------------------------------------------- ED

def test_ed_of_a_frame_with_itself_is_zero(turned, talking):
    both = np.concatenate([turned[0], talking])
    assert (fm.expression_distance(both, both) == 0.0).all()


def test_ed_open_mouth_is_farther_than_another_closed_mouth(talking):
    lip = lip_open_ratio(talking)
    order = np.argsort(lip)
    closed_a, closed_b, wide = order[0], order[1], order[-1]
    assert lip[closed_a] < 0.05 and lip[closed_b] < 0.05 and lip[wide] > 0.2
    ed = fm.expression_distance(talking[[closed_a, closed_b, closed_b]], talking[[closed_b, wide, closed_a]])
    assert ed[0] == pytest.approx(ed[2])                                           # symmetric
    assert min(fm.expression_distance(talking[[closed_a, closed_b]], talking[[wide, wide]])) > 2 * ed[0]


def test_expression_features_ignore_position_scale_and_rotation(turned, talking):
    lms = np.concatenate([turned[0], turned[1], talking])
    features = fm.expression_features(lms)
    assert features.shape == (len(lms), len(fm.EXPRESSION_FEATURES)) and np.isfinite(features).all()
    named = dict(zip(fm.EXPRESSION_FEATURES, features.T))
    for name in ("mouth_width", "right_brow_height", "left_brow_height"):            # O(0.1 - 1)
        assert ((named[name] > 0.1) & (named[name] < 1.5)).all(), name
    assert (np.abs(named["smile"]) < 0.5).all()
    spin = euler_to_rotation(0.0, 0.0, 30.0)                                         # in-plane, 30 degrees
    moved = 2.0 * lms @ spin.T + np.array([123.0, -45.0, 6.0])
    assert fm.expression_features(moved) == pytest.approx(features, abs=1e-6)


def test_nan_rows_give_nan(turned, talking):
    lms = fm.stack_landmarks([talking[0], None, turned[0]])
    ref = fm.stack_landmarks([talking[1], talking[2], None])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        features = fm.expression_features(lms)
        ed, psim = fm.expression_distance(lms, ref), fm.pose_similarity(lms, ref)
    assert np.isfinite(features[[0, 2]]).all() and np.isnan(features[1]).all()
    for series in (ed, psim):
        assert np.isfinite(series[0]) and np.isnan(series[1:]).all()


# ----------------------------------------------------------------------------------------- the runner

def test_runner_reports_psim_and_ed(monkeypatch):
    from puppetry.evaluation import METRICS, EvaluateConfig, evaluate, render_html
    from puppetry.evaluation.runner import FRAME_METRICS

    assert {"psim", "ed"} <= set(FRAME_METRICS)
    assert (METRICS["psim"].better, METRICS["ed"].better) == ("higher", "lower")
    monkeypatch.delenv("PUPPETRY_LPIPS_DIR", raising=False)
    monkeypatch.delenv("PUPPETRY_INCEPTION_WEIGHTS", raising=False)
    result = evaluate([VIDEO], config=EvaluateConfig(engines=[], max_frames=4, identity=False, samples=1))
    static = result.data["results"]["self"]["static"]
    assert static["mean"]["ed"]["frames"] == 3 and static["mean"]["ed"]["value"] > 0
    assert -1.0 <= static["mean"]["psim"]["value"] <= 1.0
    assert len(static["pairs"][0]["per_frame"]["psim"]) == 3
    assert "PSIM" in render_html(result) and ">ED" in render_html(result)
