"""The warp engine does not tear at the face's outline on head turns (issue 13).

Two measures (:mod:`puppetry.evaluation.tearing`):

* :func:`contour_tearing`: the share of pixels near the target face outline where the engine's
  sampling map steps by more than 3 source pixels between neighbours (a seam, or a strip of the source
  crushed into a sliver). A smooth turn of up to 35 degrees never steps by more than 1.2 px, so a clean
  warp scores about 0; the engine before the first fix scored 1.5-4.3 % at its worst frame on these
  pairs (README, "The warp engine").
* :func:`outline_kinks`: how sharply the motion of the face outline and the head ring bends from one
  point to the next, as a share of the face width (a notch at the temple, a ragged jaw). The plain 3D
  target without any unfolding stays under 0.031 on these pairs; the unfolding that flattened single
  points reached 0.11-0.16 on every pair, and its smooth fade stays under 0.061 over every second frame.
"""

from __future__ import annotations

import numpy as np
import pytest

from puppetry.evaluation.tearing import contour_tearing, map_steps, outline_band, outline_kinks
from puppetry.face import topology as T
from puppetry.face.pose import decompose, rotation_to_euler
from puppetry.media import write_image
from puppetry.methods.registry import create_engine
from puppetry.pipeline.driving import open_driving
from puppetry.pipeline.source import find_source_faces, load_source_image

PAIRS = [("s9", "d11"), ("s1", "d3"), ("s42", "d9"), ("s4", "d11")]
LIMIT = 0.01          # 1 % of the band: the worst frame of the fixed engine is 0.7 %, the old one's 1.5-4.3 %
KINK_LIMIT = 0.07     # the notching unfold reached 0.11-0.16, the smooth one 0.061 at most


def test_the_measure_sees_a_seam_and_not_a_smooth_map():
    gy, gx = np.mgrid[0:100, 0:100].astype(np.float32)
    outline = np.array([[30, 30], [70, 30], [70, 70], [30, 70]], np.float32)
    turned_x, turned_y = 50 + (gx - 50) * 1.15, gy                # a smooth 30-degree foreshortening
    assert contour_tearing(turned_x, turned_y, outline) == 0.0
    torn_x = gx.copy()
    torn_x[:, 30:] += 8                                            # a seam down the outline's left edge
    assert contour_tearing(torn_x, gy, outline) > 0.02              # one column of a 10 px band along 1 of 4 sides
    crushed_x = gx.copy()
    crushed_x[:, 60:] = 60 + (gx[:, 60:] - 60) * 4                 # a strip crushed four times
    assert contour_tearing(crushed_x, gy, outline) > 0.1
    assert map_steps(gx, gy).max() == pytest.approx(1.0)
    assert outline_band(outline, (100, 100), 5)[30, 50] and not outline_band(outline, (100, 100), 5)[50, 50]
    angle = np.linspace(0, 2 * np.pi, 36, endpoint=False)
    ring = np.stack([50 + 40 * np.cos(angle), 50 + 40 * np.sin(angle)], 1)
    turned = (ring - 50) @ np.array([[0.9, 0.1], [-0.1, 0.9]]) + [53, 48]      # affine motion: hardly any kink
    assert outline_kinks(ring, ring + [3, -2]) < 1e-9 and outline_kinks(ring, turned) < 0.005
    notched = turned.copy()
    notched[5, 0] += 4                                                      # one point 4 px off: 0.1 of 80 px
    assert outline_kinks(ring, notched) == pytest.approx(2 * 4 / 80, abs=0.005)


def _turned_frames(engine, state, source_pose, driving, count: int = 4):
    """The ``count`` driving frames whose head is turned furthest from the first frame."""
    frames = [f for f in open_driving(str(driving), keep_pixels=False, source_pose=source_pose) if f.index % 3 == 0]
    angle = [np.abs(rotation_to_euler(f.pose.rotation) - rotation_to_euler(f.reference.rotation)).max()
             for f in frames]
    return [frames[i] for i in np.argsort(angle)[::-1][:count]], max(angle)


@pytest.mark.parametrize("source,driving", PAIRS)
def test_no_tear_at_the_outline_on_the_largest_turns(source, driving, data, tmp_path):
    image, name = load_source_image(str(data / "portraits" / f"{source}.jpg"), 2048)
    faces = find_source_faces(image, name, 1)
    engine = create_engine("warp")
    state = engine.prepare(faces)
    box = state.mesh.box
    frames, largest = _turned_frames(engine, state, decompose(faces.landmarks[0]), data / "driving" / f"{driving}.mp4")
    assert largest > 12                                            # these pairs really turn the head
    shares, kinks = [], []
    rest, ring = state.mesh.source, slice(470, 470 + len(T.FACE_OVAL))        # the head ring follows the face
    for frame in frames:
        moved = engine.control_points(state, frame)[1]
        map_x, map_y = engine.sampling_map(state, frame)
        shares.append(contour_tearing(map_x, map_y, moved[T.FACE_OVAL, :2] - [box.x0, box.y0]))
        kinks.append(max(outline_kinks(rest[T.FACE_OVAL], moved[T.FACE_OVAL, :2]),
                         outline_kinks(rest[ring], moved[ring, :2])))
    worst = frames[int(np.argmax(shares))]
    write_image(str(tmp_path / f"{source}_{driving}_{worst.index}.png"), engine.render(state, worst))
    assert max(shares) < LIMIT, dict(zip([f.index for f in frames], shares))
    assert max(kinks) < KINK_LIMIT, dict(zip([f.index for f in frames], kinks))
