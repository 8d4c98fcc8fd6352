"""Lips and eyes in step with the driver (issue 13, item 3): the causes found and fixed, each tested on
real landmarks from ../shared/data, and the end result on the pairs that lagged most.

Causes: (1) the tracker's One Euro filter lagged blinks and syllables; (2) relative transfer crossed the
lips (or left eyes half open) when the driver started more (less) open than the source; (3) a
downturned mouth (s5) gave the jaw no weight, so the lips could not be re-set; (4) the inner-mouth fill
copied a closed driving mouth (lips) into an open target mouth; (5) a long-faced driver's grin, added in
his own proportions, lifted a short-faced source's mouth into her nose and wiped out her upper lip.
"""

import numpy as np
import pytest

from puppetry.face import FaceMeshDetector, decompose, eye_open_ratio, lip_open_ratio
from puppetry.face import topology as T
from puppetry.face.smoothing import FaceMotionFilter, OneEuroConfig, OneEuroFilter
from puppetry.media import VideoReader
from puppetry.motion import Controls, apply_controls, transfer_motion
from puppetry.motion.controls import eye_gaps, jaw_weights, lip_gap
from puppetry.pipeline.source import find_source_faces, load_source_image


def _pearson(a, b):
    return float(np.corrcoef(a, b)[0, 1])


@pytest.fixture(scope="module")
def d3_track(data):
    """d3's first 150 frames: Face Mesh in video mode, raw (``F x 478 x 3``), and image mode (the truth)."""
    from puppetry.face import DetectorConfig
    with VideoReader(data / "driving" / "d3.mp4", max_frames=150) as r:
        frames = list(r)
    with FaceMeshDetector("video") as det:
        raw = np.stack([det.detect(f)[0] for f in frames]).astype(np.float64)
    with FaceMeshDetector("image", DetectorConfig(max_faces=1)) as det:
        truth = np.stack([det.detect(f)[0] for f in frames]).astype(np.float64)
    return raw, truth


def _source(data, name):
    image, label = load_source_image(data / "portraits" / name, 512)
    return decompose(find_source_faces(image, label, max_faces=1).landmarks[0])


def test_face_filter_follows_lids_and_lips_without_the_jitter(d3_track):
    raw, truth = d3_track
    unit = float(decompose(raw[0]).scale)
    old = OneEuroFilter(30.0, OneEuroConfig())
    before = np.stack([old(p / unit) * unit for p in raw])
    new = FaceMotionFilter(30.0, OneEuroConfig())
    after = np.stack([new(p) for p in raw])
    lip = lambda x: lip_open_ratio(x)                       # noqa: E731
    eye = lambda x: eye_open_ratio(x).mean(-1)              # noqa: E731
    # The old filter in image space lagged the eyes (0.93 on these frames); the face-frame filter keeps
    # what the raw landmarks carry (0.99 lips, 0.99 eyes measured).
    assert _pearson(eye(after), eye(truth)) > 0.96 > _pearson(eye(before), eye(truth))
    assert _pearson(lip(after), lip(truth)) > 0.98
    # ... and still smooths: frame-to-frame acceleration of the points well under the raw landmarks'.
    jerk = lambda x: np.abs(np.diff(x[:, :, :2], 2, axis=0)).mean()   # noqa: E731
    assert jerk(after) < 0.6 * jerk(raw)
    # the head pose passes through unbiased: a still head stays where the raw landmarks put it
    np.testing.assert_allclose(after.mean(0)[T.RIGID], raw.mean(0)[T.RIGID], atol=0.02 * unit)


def test_lips_open_and_close_with_the_driver_and_never_cross(data, d3_track):
    raw, _ = d3_track
    faces = decompose(raw)
    gaps = lip_gap(faces.expression)
    ref, shut = int(np.argmin(np.abs(gaps - 0.07))), int(np.argmin(gaps))
    assert gaps[ref] > 0.05 and gaps[shut] < 0.01                     # d3 starts talking, later closes
    for name in ("s5.jpg", "s9.jpg"):                                  # closed source mouths, s5 downturned
        src = _source(data, name)
        g_s = lip_gap(src.expression)
        assert abs(g_s) < 0.005
        # the additive rule alone crosses the lips by the driver's whole reference gap when it closes ...
        assert g_s + gaps[shut] - gaps[ref] < -0.04
        # ... and leaves the mouth shut through every syllable below the reference's opening; now the
        # closed source mouth matches the driver's closed mouth and follows every frame's opening
        target = np.array([lip_gap(transfer_motion(src, faces[i], faces[ref]).expression) for i in range(len(gaps))])
        g_r = max(min(gaps[ref], g_s), 0.0)                            # the module docstring's rule
        rule = np.where((gaps < g_r) & (g_r > 1e-6), g_s * np.maximum(gaps, 0.0) / max(g_r, 1e-6), g_s + gaps - g_r)
        np.testing.assert_allclose(target, rule, atol=1e-4)
        assert target.min() > min(g_s, 0.0) - 0.004                    # never crossed beyond the source's own
    # a source more open than the driver's reference keeps the relative rule above it and closes the
    # same share of the way below it
    src = _source(data, "s10.jpg")
    g_s = lip_gap(src.expression)
    low = int(np.argmin(np.abs(gaps - 0.03)))
    assert g_s > gaps[ref] > gaps[low]
    wide = int(np.argmax(gaps))
    np.testing.assert_allclose(lip_gap(transfer_motion(src, faces[wide], faces[ref]).expression),
                               g_s + gaps[wide] - gaps[ref], atol=1e-3)
    np.testing.assert_allclose(lip_gap(transfer_motion(src, faces[low], faces[ref]).expression),
                               g_s * gaps[low] / gaps[ref], atol=1e-3)
    np.testing.assert_allclose(lip_gap(transfer_motion(src, faces[shut], faces[ref]).expression),
                               g_s * max(gaps[shut], 0) / gaps[ref], atol=1e-3)


def test_a_full_blink_closes_a_wide_eyed_source(data, d3_track):
    raw, truth = d3_track
    faces = decompose(raw)
    blink = int(np.argmin(eye_open_ratio(truth).mean(-1)))
    src = _source(data, "s10.jpg")                                     # wider eyes than d3's reference
    additive = src.expression + faces[blink].expression - faces[0].expression
    out = transfer_motion(src, faces[blink], faces[0]).expression
    share = eye_gaps(faces[blink].expression) / eye_gaps(faces[0].expression)
    assert (share < 0.5).all()                                         # the driver's lids close most of the way
    # additively, one lid crosses the other and the other eye stays twice as open as the driver's share
    assert eye_gaps(additive).min() < 0 and eye_gaps(additive).max() > 2 * share.max() * eye_gaps(src.expression).max()
    # the target closes the same share of the way: no crossing, no half-open eye
    np.testing.assert_allclose(eye_gaps(out), np.clip(share, 0, None) * eye_gaps(src.expression), atol=2e-3)
    # with eyes as open as the reference, nothing changes
    same = transfer_motion(src, faces[0], faces[0])
    np.testing.assert_allclose(same.expression, src.expression, atol=1e-12)


def test_a_long_faced_grin_keeps_the_mouth_below_the_nose_and_its_upper_lip(data, tmp_path):
    from puppetry.media import write_image
    from puppetry.methods.registry import create_engine
    from puppetry.pipeline.driving import open_driving
    from puppetry.pipeline.source import find_source_faces

    image, label = load_source_image(data / "portraits" / "s1.jpg", 512)
    faces = find_source_faces(image, label, max_faces=1)
    src = decompose(faces.landmarks[0])
    below = lambda e: (e[T.MOUTH_CORNERS, 1] - e[T.SUBNASALE, 1]).min()                   # noqa: E731
    upper = lambda e: (e[T.LIP_UPPER_INNER[3:6], 1] - e[T.LIP_UPPER_OUTER[3:6], 1]).mean()  # noqa: E731
    engine = create_engine("warp")
    state = engine.prepare(faces)
    grin = None
    for frame in open_driving(str(data / "driving" / "d9.mp4"), keep_pixels=False, source_pose=src, max_frames=330):
        if grin is None or below(frame.pose.expression) < below(grin.pose.expression):
            grin = frame
    ref, drv = grin.reference.expression, grin.pose.expression
    assert below(drv) < 0.5 * below(ref)                  # d9 grins: a corner rises by 2/3 of his nose distance
    additive = src.expression + drv - ref
    assert below(additive) < 0.1 * below(src.expression)  # added in his proportions: her corners reach her nose
    out = transfer_motion(src, grin.pose, grin.reference).expression
    # in proportion instead: her corners rise by the same share of her own nose distance (0.07 vs 0.21)
    assert below(out) >= 0.9 * below(src.expression) * below(drv) / below(ref)
    assert upper(out) >= 0.5 * upper(src.expression) - 1e-9
    write_image(str(tmp_path / f"s1_d9_{grin.index}.png"), engine.render(state, grin))


def test_lips_control_opens_a_downturned_mouth(data):
    src = _source(data, "s5.jpg")                          # mouth corners below the lips' middle
    e = src.expression
    assert e[T.MOUTH_CORNERS, 1].mean() > e[T.LIP_LOWER_INNER[4], 1]
    assert jaw_weights(e)[T.LIP_LOWER_INNER[4]] > 0.9 and jaw_weights(e)[T.LIP_UPPER_INNER].max() == 0
    out = apply_controls(src, src, Controls(lips=0.6))
    # lips = 0.6 asks for an inner gap of 0.3 mouth widths; before the fix s5 opened to 0.045
    assert abs(lip_open_ratio(out.compose()) - 0.3) < 0.03


def test_mouth_fill_is_shaded_along_the_lip_line(s1, detect):
    import cv2

    from puppetry.methods.warp.mouth import MouthConfig, MouthFiller
    lm = detect(s1)[0]
    opened = apply_controls(decompose(lm), decompose(lm), Controls(lips=0.6)).compose()[:, :2]
    flat, shaded = s1.copy(), s1.copy()
    MouthFiller(s1, lm, MouthConfig(rim=0.0)).fill(flat, opened)
    MouthFiller(s1, lm).fill(shaded, opened)
    inner = np.zeros(s1.shape[:2], np.uint8)
    cv2.fillPoly(inner, [np.round(opened[T.INNER_MOUTH]).astype(np.int32)], 1)
    depth = cv2.distanceTransform(inner, cv2.DIST_L2, 3)
    width = float(np.linalg.norm(opened[T.MOUTH_CORNERS[1]] - opened[T.MOUTH_CORNERS[0]]))
    edge = (depth > 1) & (depth < 0.03 * width)
    core = depth > 0.12 * width
    gray = lambda im: im.astype(float).mean(-1)              # noqa: E731
    # darker by about the shade at the lip line, the same deep inside
    assert gray(shaded)[edge].mean() < 0.8 * gray(flat)[edge].mean()
    np.testing.assert_allclose(gray(shaded)[core].mean(), gray(flat)[core].mean(), atol=1.0)


def test_mouth_fill_takes_a_closed_driving_mouth_for_no_picture_of_an_open_one(data, s1, detect):
    from puppetry.methods.warp.mouth import MouthFiller
    lm = detect(s1)[0]
    filler = MouthFiller(s1, lm)
    opened = apply_controls(decompose(lm), decompose(lm), Controls(lips=0.6)).compose()
    closed_driver = apply_controls(decompose(lm), decompose(lm), Controls(lips=0.0)).compose()
    assert filler.driving_share(opened, closed_driver) == 0.0
    assert filler.driving_share(opened, opened) == 1.0
    # a closed driving mouth paints the synthetic cavity (dark), not the driver's lips
    out_closed, out_synth = s1.copy(), s1.copy()
    filler.fill(out_closed, opened[:, :2], s1, closed_driver)
    filler.fill(out_synth, opened[:, :2])
    np.testing.assert_array_equal(out_closed, out_synth)


def test_a_dark_driving_mouth_keeps_its_depth_where_the_source_has_less_contrast(data, detect):
    """Matched to the source lips' contrast, a driving mouth's dark cavity lost depth in every colour
    channel where the source's lips vary less than the driver's (the Mona Lisa's blue, 0.84-0.88 of
    d3's), and the opening read as lips (s9 x d3 lips 0.84, s5 x d3 0.88)."""
    import cv2

    from puppetry.media import read_image
    from puppetry.methods.warp.mouth import MouthFiller, _lip_stats
    mona = read_image(data / "portraits" / "s9.jpg")
    filler = MouthFiller(mona, detect(mona)[0])
    with VideoReader(data / "driving" / "d3.mp4", max_frames=40) as reader:
        frames = list(reader)
    marks = [detect(f)[0] for f in frames]
    k = int(np.argmax([lip_open_ratio(m[None])[0] for m in marks]))
    frame, lm = frames[k], marks[k]
    shown = filler._from_driving(frame, lm, lm, (0, 0, frame.shape[1], frame.shape[0]))   # onto itself
    inner = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillPoly(inner, [np.round(lm[T.INNER_MOUTH, :2]).astype(np.int32)], 1)
    drv, out = frame[inner > 0].astype(float), shown[inner > 0]
    dark = drv.mean(1) <= np.percentile(drv.mean(1), 20)                 # the cavity
    lips_mean, lips_std = _lip_stats(frame, lm)
    flatter = filler.lip_std / lips_std < 0.9
    assert flatter.any()                                                  # blue, on this pair
    depth_driver = (lips_mean - drv[dark].mean(0))[flatter]
    depth_out = (filler.lip_mean - out[dark].mean(0))[flatter]
    assert (depth_driver > 20).all() and (depth_out >= 0.99 * depth_driver).all()   # was 0.84-0.88 x


@pytest.mark.parametrize("source, driving, lips, eyes", [
    # before the fixes (lip corr, eye corr): s7 x d3 0.76, 0.86 (lips crossed when d3 closed below its
    # first frame); s12 x d14 0.97, 0.80 (blinks lagged by the filter); s42 x d19 0.36, 0.83 (d19's
    # closed lips painted into s42's open mouth)
    ("s7.jpg", "d3.mp4", 0.9, 0.9),
    ("s12.jpg", "d14.mp4", 0.95, 0.85),
    ("s42.jpg", "d19.mp4", 0.55, 0.85),
])
def test_output_mouth_and_eyes_follow_the_driver(data, source, driving, lips, eyes):
    """Cross-reenactment as ``puppetry evaluate`` scores it (first 100 frames, 512 px): the correlation
    of the output's lip- and eye-open ratios with the driver's, on pairs that lagged (now: 0.95/0.94,
    0.99/0.90, 0.64/0.89)."""
    from puppetry.evaluation.runner import EvaluateConfig, evaluate

    result = evaluate(cross_sources=[data / "portraits" / source], cross_driving=[data / "driving" / driving],
                      config=EvaluateConfig(max_frames=100, max_size=512, identity=False, samples=0))
    mean = result.data["results"]["cross"]["warp"]["pairs"][0]["mean"]
    assert mean["lip_corr"]["value"] > lips and mean["eye_corr"]["value"] > eyes
