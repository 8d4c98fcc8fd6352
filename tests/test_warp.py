"""The warp engine on real portraits: geometry, controls, background, mouth, group photos."""

import cv2
import numpy as np
import pytest

from puppetry.engines import DrivingFrame, SourceFaces
from puppetry.methods.registry import create_engine
from puppetry.face import decompose, eye_open_ratio, lip_open_ratio, rotation_to_euler
from puppetry.face import topology as T
from puppetry.geometry import Box, MeshWarp, triangulate
from puppetry.media import read_image
from puppetry.motion import Controls


def _grid_mesh(size=200):
    rng = np.random.default_rng(1)
    inner = rng.uniform(40, size - 40, (60, 2))
    t = np.linspace(0, size - 1, 6)
    border = np.concatenate([np.stack([t, np.zeros(6)], 1), np.stack([t, np.full(6, size - 1)], 1),
                             np.stack([np.zeros(4), t[1:-1]], 1), np.stack([np.full(4, size - 1), t[1:-1]], 1)])
    pts = np.concatenate([inner, border])
    return pts, len(inner)


def test_mesh_warp_identity_and_translation():
    pts, n = _grid_mesh()
    rng = np.random.default_rng(2)
    image = cv2.GaussianBlur(rng.integers(0, 255, (200, 200, 3), np.uint8), (0, 0), 2)
    mesh = MeshWarp(pts, triangulate(pts), Box(0, 0, 200, 200), field_max_pixels=10**6)
    np.testing.assert_array_equal(mesh.warp(image, pts), image)
    moved = pts.copy()
    moved[:n] += [4.0, 0.0]
    out = mesh.warp(image, moved)
    # Inside the moved cloud the image is the source shifted right by 4 pixels.
    lo, hi = np.ceil(pts[:n].min(0)).astype(int) + 12, np.floor(pts[:n].max(0)).astype(int) - 12
    diff = np.abs(out[lo[1]:hi[1], lo[0] + 4:hi[0]].astype(int) - image[lo[1]:hi[1], lo[0]:hi[0] - 4])
    assert diff.mean() < 1.0


@pytest.fixture(scope="module")
def s1_state(s1, detect):
    engine = create_engine("warp")
    faces = detect(s1)
    return engine, engine.prepare(SourceFaces(s1, faces)), faces[0]


def _render(engine_state, controls):
    engine, state, _ = engine_state
    return engine.render(state, DrivingFrame(0, controls=controls))


def test_no_motion_leaves_the_portrait_unchanged(s1, s1_state):
    out = _render(s1_state, Controls())
    assert np.abs(out.astype(int) - s1).mean() < 0.5


def test_blink_closes_the_eyes_fully(s1, s1_state, detect):
    out = _render(s1_state, Controls(eyes=0.0))
    before = eye_open_ratio(s1_state[2])
    after = eye_open_ratio(detect(out)[0])
    # Face Mesh reads a closed eye's lash line as a slit (about 0.1 on real closed eyes in the driving
    # videos); an open eye here reads 0.25-0.33.
    assert (before > 0.2).all() and (after < 0.15).all() and (after < 0.55 * before).all(), (before, after)


def test_lips_open_and_mouth_is_filled(s1, s1_state, detect):
    out = _render(s1_state, Controls(lips=0.8))
    pts = detect(out)[0]
    assert lip_open_ratio(pts) > 0.25
    # The opening is darker than the lips around it: filled, not smeared lip colour.
    inner = np.zeros(out.shape[:2], np.uint8)
    cv2.fillPoly(inner, [pts[T.INNER_MOUTH, :2].astype(np.int32)], 1)
    lips = np.zeros_like(inner)
    cv2.fillPoly(lips, [pts[T.OUTER_MOUTH, :2].astype(np.int32)], 1)
    lips &= 1 - inner
    gray = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY).astype(float)
    assert gray[inner > 0].mean() < gray[lips > 0].mean() - 25


@pytest.mark.parametrize("angle", ["yaw", "pitch", "roll"])
def test_head_angle_controls_turn_the_head(s1_state, detect, angle):
    base = rotation_to_euler(decompose(s1_state[2]).rotation)
    k = ["yaw", "pitch", "roll"].index(angle)
    for sign in (1, -1):
        out = _render(s1_state, Controls(**{angle: sign * 12.0}))
        got = rotation_to_euler(decompose(detect(out)[0]).rotation)
        assert sign * (got[k] - base[k]) > 4.0, (angle, sign, got - base)


def test_background_away_from_the_head_is_untouched(data, detect):
    image = read_image(data / "portraits" / "s0.jpg")            # full figure, small face
    engine = create_engine("warp")
    faces = detect(image)
    state = engine.prepare(SourceFaces(image, faces))
    out = engine.render(state, DrivingFrame(0, controls=Controls(yaw=15, lips=0.6, eyes=0.0)))
    box = state.mesh.box
    outside = np.ones(image.shape[:2], bool)
    outside[box.y0:box.y1, box.x0:box.x1] = False
    assert outside.mean() > 0.5
    np.testing.assert_array_equal(out[outside], image[outside])
    # Inside the region the face moved.
    assert np.abs(out.astype(int) - image).max() > 50


def test_each_face_of_a_group_photo_moves(data, detect):
    a = read_image(data / "portraits" / "s1.jpg")
    b = cv2.resize(read_image(data / "portraits" / "s42.jpg"), (a.shape[0], a.shape[0]))
    group = np.concatenate([a, b], axis=1)
    engine = create_engine("warp")
    faces = detect(group)
    state = engine.prepare(SourceFaces(group, faces))
    out = engine.render(state, DrivingFrame(0, controls=Controls(eyes=0.0)))
    after = detect(out)
    assert len(after) == 2
    assert all((eye_open_ratio(f) < 0.16).all() for f in after)


@pytest.mark.parametrize("name", ["s7.jpg", "s9.jpg", "s5.jpg"])   # 3D cartoon, Mona Lisa, painting
def test_cartoons_and_paintings_animate(data, detect, name):
    image = read_image(data / "portraits" / name)
    engine = create_engine("warp")
    faces = detect(image)
    assert faces
    state = engine.prepare(SourceFaces(image, faces))
    out = engine.render(state, DrivingFrame(0, controls=Controls(lips=0.7)))
    assert lip_open_ratio(detect(out)[0]) > lip_open_ratio(faces[0]) + 0.15
