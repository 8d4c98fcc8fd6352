"""The driving body under the face (issue 13, item 4): tracked with optical flow against the reference
frame, and followed by the warp engine's neck and shoulders while the background stays still.

The driving videos in ../shared/data are face crops whose bodies barely move (d13, the one uncropped
video, not at all in its first frames), so the tests move d13's body themselves: the region under the
chin is shifted by a known amount in otherwise real frames."""

import numpy as np
import pytest

from puppetry.engines.base import DrivingFrame
from puppetry.face import FaceMeshDetector, decompose
from puppetry.face import topology as T
from puppetry.media import VideoReader
from puppetry.methods.warp.engine import WarpConfig, WarpEngine
from puppetry.motion.body import BodyConfig, BodyMotion, body_region
from puppetry.pipeline.source import find_source_faces, load_source_image


def _shift_body(frame: np.ndarray, box, dx: int, dy: int) -> np.ndarray:
    """``frame`` with everything below the top of ``box`` moved by (dx, dy) pixels (edges repeated)."""
    import cv2
    out = frame.copy()
    y0 = box[1]
    below = frame[y0 - 40:]
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    moved = cv2.warpAffine(below, m, (below.shape[1], below.shape[0]), borderMode=cv2.BORDER_REPLICATE)
    out[y0:] = moved[40:]
    return out


@pytest.fixture(scope="module")
def d13(data):
    """d13's first frame (720 x 1280, shoulders in view), its landmarks and body box."""
    with VideoReader(data / "driving" / "d13.mp4", max_frames=1) as r:
        frame = next(iter(r))
    with FaceMeshDetector("image") as det:
        lm = det.detect(frame)[0]
    return frame, lm, body_region(lm, frame.shape[:2])


def test_body_motion_measures_a_known_shift_and_needs_a_body(d13, data):
    frame, lm, box = d13
    assert box is not None
    width = float(np.ptp(lm[T.FACE_OVAL, 0]))
    body = BodyMotion(config=BodyConfig(smoothing=None))
    body.reset(frame, lm)
    assert body.tracking
    np.testing.assert_allclose(body(frame), 0.0, atol=1e-3)
    for dx, dy in ((12, 0), (-8, 6)):
        got = body(_shift_body(frame, box, dx, dy)) * width
        np.testing.assert_allclose(got, [dx, dy], atol=0.6)
    # a face crop that ends at the chin has no body to track, and reports no motion
    with VideoReader(data / "driving" / "d3.mp4", max_frames=1) as r:
        crop = next(iter(r))
    with FaceMeshDetector("image") as det:
        crop_lm = det.detect(crop)[0]
    body.reset(crop, crop_lm)
    assert not body.tracking and (body(crop) == 0).all()


def test_warp_engine_moves_the_shoulders_with_the_body_and_keeps_the_background(d13, data, tmp_path):
    frame, lm, box = d13
    image, name = load_source_image(data / "portraits" / "s9.jpg", 512)
    faces = find_source_faces(image, name, max_faces=1)
    pose = decompose(lm.astype(np.float64))
    dx = 30
    frames = [DrivingFrame(i, image=f, landmarks=lm, pose=pose, reference=pose)
              for i, f in enumerate([frame, frame, _shift_body(frame, box, dx, 0)])]
    engine = WarpEngine(config=WarpConfig(body=BodyConfig(smoothing=None)))
    state = engine.prepare(faces)
    points = [engine.control_points(state, f)[1][:, :2] for f in frames]
    weight = state.body_weight
    assert weight is not None and (weight > 0).sum() >= 3
    rest = state.mesh.source
    centre = faces.landmarks[0][T.FACE_OVAL, :2].mean(0)
    # the moved vertices are under the face; none above it
    assert (rest[weight > 0, 1] > centre[1]).all()
    np.testing.assert_allclose(points[1], points[0], atol=1e-9)           # no body motion, nothing moves
    step = points[2] - points[1]
    s_width = float(np.ptp(faces.landmarks[0][T.FACE_OVAL, 0]))
    d_width = float(np.ptp(lm[T.FACE_OVAL, 0]))
    expected = weight * dx / d_width
    np.testing.assert_allclose(step[:, 0], expected, atol=0.05 * s_width * dx / d_width)
    assert expected.max() > 0.5 * s_width * dx / d_width                  # a shoulder point moves the full shift
    np.testing.assert_allclose(step[weight == 0], 0.0, atol=1e-6)        # face, hair and background stay
    # without a body in the driving frames (a face crop), or with following off, nothing moves
    off = WarpEngine(config=WarpConfig(follow_body=False))
    s_off = off.prepare(faces)
    a, b = (off.control_points(s_off, f)[1] for f in (frames[0], frames[2]))
    np.testing.assert_allclose(a, b, atol=1e-9)
    out = engine.render(state, frames[2])
    still = engine.render(state, frames[1])
    changed = np.abs(out.astype(int) - still.astype(int)).max(-1) > 8
    ys = np.nonzero(changed)[0]
    assert changed.any() and ys.min() > centre[1]                         # only below the face changed
