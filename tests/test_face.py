"""Face analysis on real portraits: landmarks, 68-point view, pose, ratios, smoothing, crops."""

import cv2
import numpy as np

from puppetry.face import (OneEuroFilter, crop_image, decompose, euler_to_rotation, eye_open_ratio,
                           lip_open_ratio, paste_back, rotation_to_euler, square_crop_box, to_ibug68)
from puppetry.media import read_image


def test_landmarks_on_a_photo(s1, detect):
    faces = detect(s1)
    assert len(faces) == 1
    pts = faces[0]
    assert pts.shape == (478, 3)
    h, w = s1.shape[:2]
    assert (pts[:, 0] > 0).all() and (pts[:, 0] < w).all() and (pts[:, 1] > 0).all() and (pts[:, 1] < h).all()
    # Iris centres sit between their eye corners.
    for iris, a, b in ((468, 33, 133), (473, 263, 362)):
        lo, hi = sorted((pts[a, 0], pts[b, 0]))
        assert lo < pts[iris, 0] < hi


def test_every_face_of_a_group_photo(data, detect):
    a = read_image(data / "portraits" / "s1.jpg")
    b = read_image(data / "portraits" / "s42.jpg")
    b = cv2.resize(b, (a.shape[0], a.shape[0]))
    group = np.concatenate([a, b], axis=1)
    faces = detect(group)
    assert len(faces) == 2
    centres = sorted(f[:, 0].mean() for f in faces)
    assert centres[0] < a.shape[1] < centres[1]


def test_ibug68_layout(s1, detect):
    p = to_ibug68(detect(s1)[0])
    assert p.shape == (68, 3)
    # Jaw runs left to right, the nose tip lies between the eyes' centres, the mouth below the nose.
    assert p[0, 0] < p[8, 0] < p[16, 0]
    assert p[36:42, 0].mean() < p[30, 0] < p[42:48, 0].mean()
    assert p[48:68, 1].mean() > p[30, 1] > p[36:48, 1].mean()


def test_decompose_round_trip_and_invariance(s1, detect):
    pts = detect(s1)[0].astype(np.float64)
    pose = decompose(pts)
    np.testing.assert_allclose(pose.compose(), pts, atol=1e-6)
    # A bigger, rotated, shifted copy of the face has the same expression and the applied rotation.
    rot = euler_to_rotation(15.0, -8.0, 20.0)
    moved = 2.5 * (pts - pose.center) @ rot.T + pose.center + [40.0, -25.0, 0.0]
    other = decompose(moved)
    np.testing.assert_allclose(other.expression, pose.expression, atol=1e-6)
    np.testing.assert_allclose(other.scale, 2.5 * pose.scale, rtol=1e-6)
    np.testing.assert_allclose(other.rotation @ pose.rotation.T, rot, atol=1e-6)


def test_euler_round_trip():
    angles = np.array([[10.0, -20.0, 5.0], [-30.0, 15.0, -12.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(rotation_to_euler(euler_to_rotation(*angles.T)), angles, atol=1e-9)


def test_frontal_portrait_has_small_angles(data, detect):
    pts = detect(read_image(data / "portraits" / "s42.jpg"))[0]
    yaw, pitch, roll = rotation_to_euler(decompose(pts).rotation)
    assert abs(yaw) < 8 and abs(pitch) < 8 and abs(roll) < 8


def test_eye_and_lip_ratios(s1, detect):
    pts = detect(s1)[0]
    eyes = eye_open_ratio(pts)
    assert eyes.shape == (2,) and (eyes > 0.18).all() and (eyes < 0.5).all()
    assert 0.0 <= lip_open_ratio(pts) < 0.15
    # Pull the lower lid to the upper one: the ratio goes to zero.
    from puppetry.face import topology as T
    closed = pts.copy()
    closed[T.RIGHT_EYE_LOWER] = closed[T.RIGHT_EYE_UPPER]
    assert eye_open_ratio(closed)[0] < 0.01 < eye_open_ratio(closed)[1]


def test_one_euro_filter_removes_jitter_and_follows_motion():
    rng = np.random.default_rng(0)
    f = OneEuroFilter(30.0)
    # Tracking jitter of about half a pixel on a 100-pixel face: 0.005 face units.
    still = np.array([f(np.array([1.0, 2.0]) + rng.normal(0, 0.005, 2)) for _ in range(120)])
    assert still[30:].std(0).max() < 0.005 / 2.5
    f.reset()
    step = np.array([f(np.array([0.0 if i < 10 else 1.0])) for i in range(40)])[:, 0]
    assert step[9] == 0.0 and step[-1] > 0.95


def test_crop_and_paste_back(s1, detect):
    pts = detect(s1)[0]
    box = square_crop_box(pts, scale=2.0)
    crop, m = crop_image(s1, box, 256)
    assert crop.shape == (256, 256, 3)
    # The landmarks land inside the crop.
    mapped = cv2.transform(pts[None, :, :2].astype(np.float64), m)[0]
    assert (mapped > 0).all() and (mapped < 256).all()
    # Pasting the untouched crop back changes (almost) nothing; a white crop changes only its footprint.
    same = paste_back(s1, crop, m)
    assert np.abs(same.astype(int) - s1).mean() < 1.0
    white = paste_back(s1, np.full_like(crop, 255), m)
    changed = np.abs(white.astype(int) - s1).max(2) > 0
    ys, xs = np.nonzero(changed)
    half = box.size / 2
    assert xs.min() >= box.cx - half - 2 and xs.max() <= box.cx + half + 2
    assert ys.min() >= box.cy - half - 2 and ys.max() <= box.cy + half + 2
    assert (white[int(box.cy), int(box.cx)] == 255).all()


def test_landmark_array_reads_the_message_bytes_exactly():
    from mediapipe.framework.formats import landmark_pb2

    from puppetry.face.landmarks import landmark_array

    points = np.random.default_rng(0).normal(0.5, 0.3, (478, 3)).astype(np.float32)
    points[7] = (0.0, -0.0, 1.0)                            # zeros are written too (set optional fields)
    message = landmark_pb2.NormalizedLandmarkList()
    for x, y, z in points:
        message.landmark.add(x=x, y=y, z=z)
    np.testing.assert_array_equal(landmark_array(message), points)
    message.landmark[3].visibility = 0.9                    # another layout: read point by point
    out = landmark_array(message)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, points)
