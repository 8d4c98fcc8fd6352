"""LivePortrait's rotation-aligned face crop on real portraits: geometry, round trips and paste-back."""

import math
import time

import cv2
import numpy as np
import pytest

from puppetry.face.topology import CHIN, FACE_OVAL, FOREHEAD, IRIS_CENTERS
from puppetry.methods.liveportrait.crop import (LEFT_EYE_RING, RIGHT_EYE_RING, AlignedCrop, align_crop, paste_back,
                                        paste_mask)
from puppetry.media import read_image


def eye_line_degrees(pts: np.ndarray) -> float:
    d = pts[LEFT_EYE_RING, :2].mean(0) - pts[RIGHT_EYE_RING, :2].mean(0)
    return math.degrees(math.atan2(d[1], d[0]))


def footprint(crop: AlignedCrop, shape: tuple, grow: int = 0) -> np.ndarray:
    """Boolean ``H x W`` mask of the crop's rotated square in the image, grown by ``grow`` pixels."""
    m = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(m, np.round(crop.corners() - 0.5).astype(np.int32), 1)
    if grow:
        m = cv2.dilate(m, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    return m.astype(bool)


@pytest.fixture(scope="module")
def s1_lm(s1, detect):
    return detect(s1)[0]


def test_crop_of_a_frontal_photo(s1, s1_lm):
    crop = align_crop(s1_lm)
    p = crop.landmarks_in_crop(s1_lm, 512) / 512
    oval = p[FACE_OVAL]
    width = np.ptp(oval[:, 0])
    assert 0.40 < width < 0.48                        # measured 0.439 (s1), 0.43-0.44 on s0/s2/s9
    assert abs(oval[:, 0].mean() - 0.5) < 0.03        # centred horizontally
    assert 0.27 < p[FOREHEAD, 1] < 0.37               # room for the forehead and hair above (0.329)
    assert 0.78 < p[CHIN, 1] < 0.88                   # chin in the lower part, neck below (0.828)
    assert abs(eye_line_degrees(p)) < 2.0             # the face's 4.5 degree tilt is removed
    # rotate=False gives an axis-aligned crop of about the same size.
    flat = align_crop(s1_lm, rotate=False)
    assert flat.angle == 0.0 and flat.size == pytest.approx(crop.size, rel=0.05)
    # Larger scale, smaller face; vy_ratio moves the crop up in the face's frame.
    assert align_crop(s1_lm, scale=3.0).size == pytest.approx(crop.size * 3.0 / 2.3)
    lower = align_crop(s1_lm, vy_ratio=0.0)
    assert lower.landmarks_in_crop(s1_lm, 512)[FOREHEAD, 1] < p[FOREHEAD, 1] * 512


def test_rotation_is_removed(s1, s1_lm, detect):
    h, w = s1.shape[:2]
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), 20.0, 1.0)
    turned = cv2.warpAffine(s1, rot, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    lm = detect(turned)[0]
    assert abs(eye_line_degrees(lm)) > 15
    crop = align_crop(lm)
    assert math.degrees(align_crop(s1_lm).angle - crop.angle) == pytest.approx(20.0, abs=1.5)
    assert abs(eye_line_degrees(crop.landmarks_in_crop(lm, 512))) < 2.0
    again = detect(crop.cut(turned, 512))[0]          # measured on the pixels, not only the mapped points
    assert abs(eye_line_degrees(again)) < 2.0


def test_matrix_inverse_and_landmarks_in_crop(s1, s1_lm, detect):
    crop = align_crop(s1_lm)
    for size in (256, 512):
        m = np.vstack([crop.matrix(size), [0, 0, 1]])
        inv = np.vstack([crop.inverse(size), [0, 0, 1]])
        np.testing.assert_allclose(m @ inv, np.eye(3), atol=1e-9)
    # The crop's corners map to the corners of its pixel grid (half-pixel convention).
    np.testing.assert_allclose(crop.landmarks_in_crop(crop.corners(), 512),
                               [[-0.5, -0.5], [511.5, -0.5], [511.5, 511.5], [-0.5, 511.5]], atol=1e-9)
    image = crop.cut(s1, 512)
    found = detect(image)[0][:, :2]
    err = np.linalg.norm(found - crop.landmarks_in_crop(s1_lm, 512), axis=1)
    assert np.median(err) < 3.0 and err[IRIS_CENTERS].max() < 3.0   # measured ~1 px at 512
    # A 256 crop is the 512 crop shrunk 2x.
    diff = np.abs(cv2.resize(image, (256, 256), interpolation=cv2.INTER_AREA).astype(int) - crop.cut(s1, 256))
    assert diff.mean() < 1.5


def test_paste_mask():
    m = paste_mask(512)
    assert m.shape == (512, 512) and m.dtype == np.float32
    yy, xx = np.mgrid[:512, :512] - 255.5
    assert m[np.hypot(xx, yy) < 0.36 * 512].min() == 1.0           # plateau over face, hair and neck
    ring = np.ones_like(m, bool)
    ring[15:-15, 15:-15] = False                                  # margin 0.03 x 512 = 15.4 px
    assert m[ring].max() == 0.0                                    # zero well before the border
    row = m[256, :256]
    assert (np.diff(row) >= 0).all()                               # monotone fade
    np.testing.assert_array_equal(m, m[::-1])
    np.testing.assert_array_equal(m, m.T)
    assert m[60, 60] < m[60, 256]                                  # rounded corners
    # The reference template's shape: 1 up to 16 px from the border.
    ref = paste_mask(512, margin=0.0, feather=16 / 512, radius=0.0)
    assert ref[16:-16, 16:-16].min() == 1.0 and ref[0, 256] < 0.01 and 0.4 < ref[8, 256] < 0.6


def test_paste_back_round_trip(s1, s1_lm):
    crop = align_crop(s1_lm)
    inside, near = footprint(crop, s1.shape), footprint(crop, s1.shape, grow=2)
    out = paste_back(s1, crop.cut(s1, 512), crop)
    assert out.shape == s1.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[~near], s1[~near])
    diff = np.abs(out.astype(int) - s1)
    assert diff[inside].mean() < 1.5                               # only the two resamplings' blur (~0.5)
    # An edited crop changes pixels inside the footprint only, and the face takes the edit.
    edited = 255 - crop.cut(s1, 512)
    out = paste_back(s1, edited, crop)
    changed = (out != s1).any(-1)
    assert not changed[~near].any()
    cx, cy = int(crop.cx), int(crop.cy)
    np.testing.assert_allclose(out[cy, cx].astype(int), 255 - s1[cy, cx].astype(int), atol=8)
    # A custom mask is honoured: zero mask, no change.
    np.testing.assert_array_equal(paste_back(s1, edited, crop, mask=np.zeros((512, 512))), s1)


def test_face_near_the_border(s1, s1_lm, detect):
    shifted = np.ascontiguousarray(s1[100:, 380:])       # the crop reaches past the left and top edges
    lm = detect(shifted)[0]
    crop = align_crop(lm)
    c = crop.corners()
    assert c[:, 0].min() < 0 and c[:, 1].min() < 0
    image = crop.cut(shifted, 512)
    assert image.shape == (512, 512, 3)
    out = paste_back(shifted, 255 - image, crop)
    near = footprint(crop, shifted.shape, grow=2)
    assert out.shape == shifted.shape
    np.testing.assert_array_equal(out[~near], shifted[~near])
    # Entirely outside the image: nothing to do.
    away = AlignedCrop(-1000.0, -1000.0, 300.0, 0.3)
    np.testing.assert_array_equal(paste_back(shifted, image, away), shifted)


def test_large_image_small_face(data, detect):
    big = read_image(data / "portraits" / "s2.jpg")                # 2048 x 2048
    lm = detect(big)[0]
    crop = align_crop(lm)
    image = crop.cut(big, 512)
    out = paste_back(big, image, crop)
    near = footprint(crop, big.shape, grow=2)
    np.testing.assert_array_equal(out[~near], big[~near])
    # The 964 px face loses detail in the 512 crop and in two bilinear resamplings (measured 2.8).
    assert np.abs(out.astype(int) - big)[near].mean() < 3.5
    # A 150 px face in the 2048 image: the 512 crop is area-shrunk before pasting, and only its
    # footprint's bounding box is processed.
    small = AlignedCrop(1500.0, 400.0, 150.0, 0.2)
    tile = small.cut(big, 512)
    start = time.perf_counter()
    out = paste_back(big, tile, small)
    elapsed = time.perf_counter() - start
    near = footprint(small, big.shape, grow=2)
    np.testing.assert_array_equal(out[~near], big[~near])
    assert np.abs(out.astype(int) - big)[near].mean() < 2.0
    assert elapsed < 0.25                                # ~10 ms here; a per-pixel loop takes seconds


def test_full_figure(data, detect):
    figure = read_image(data / "portraits" / "s0.jpg")
    lm = detect(figure)[0]
    crop = align_crop(lm)
    assert crop.size < 0.5 * min(figure.shape[:2])                 # the head, not the figure
    p = crop.landmarks_in_crop(lm, 512) / 512
    assert 0.40 < np.ptp(p[FACE_OVAL, 0]) < 0.48
    out = paste_back(figure, crop.cut(figure, 512), crop)
    assert np.abs(out.astype(int) - figure).mean() < 0.5
