"""Tearing of the warp engine's sampling map around the face outline on real pairs (issue 13).

    .venv/bin/python benchmarks/warp_tearing.py [--every 5] [--pairs s9:d11 s1:d3 s42:d9]

For each source x driving pair of ../shared/data it animates every N-th driving frame and prints the
mean and worst share of torn pixels near the outline (puppetry.evaluation.tearing.contour_tearing), the
driving frame of the worst one, and the worst kink of the face outline and the head ring
(puppetry.evaluation.tearing.outline_kinks, share of the face width) with its frame. Run from the
repository root.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from puppetry.evaluation.tearing import contour_tearing, outline_kinks
from puppetry.face import topology as T
from puppetry.face.pose import decompose
from puppetry.methods.registry import create_engine
from puppetry.methods.warp.rig import LANDMARK_IDS
from puppetry.pipeline.driving import open_driving
from puppetry.pipeline.source import find_source_faces, load_source_image

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def moved_points(engine, state, frame) -> np.ndarray:
    """The engine's moved mesh vertices (``N x 3``) for one frame."""
    if hasattr(engine, "control_points"):
        return engine.control_points(state, frame)[1]
    from puppetry.geometry.mesh_warp import untangle        # the engine before issue 13

    targets = [engine.target_face(r, frame, state, i) for i, r in enumerate(state.rigs)]
    moved = np.concatenate([r.points(t)[k] for r, t, k in zip(state.rigs, targets, state.keep)] + [state.fixed])
    moved[:, :2] = untangle(state.mesh.source, moved[:, :2], state.mesh.triangles, state.movable)
    return moved


def pair_tearing(source: Path, driving: Path, every: int,
                 max_frames: int | None = None) -> list[tuple[int, float, float]]:
    """``(driving frame, tear share, outline kink)`` for every ``every``-th frame of one pair."""
    image, name = load_source_image(str(source), 2048)
    faces = find_source_faces(image, name, 1)
    engine = create_engine("warp")
    state = engine.prepare(faces)
    box = state.mesh.box
    out = []
    for frame in open_driving(str(driving), keep_pixels=False, source_pose=decompose(faces.landmarks[0]),
                              max_frames=max_frames):
        if frame.index % every:
            continue
        moved = moved_points(engine, state, frame)
        map_x, map_y = state.mesh.sampling_map(moved[:, :2], moved[:, 2])
        outline = moved[T.FACE_OVAL, :2] - [box.x0, box.y0]
        rest, ring = state.mesh.source, slice(len(LANDMARK_IDS), len(LANDMARK_IDS) + len(T.FACE_OVAL))
        kink = max(outline_kinks(rest[T.FACE_OVAL], moved[T.FACE_OVAL, :2]), outline_kinks(rest[ring], moved[ring, :2]))
        out.append((frame.index, contour_tearing(map_x, map_y, outline), kink))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--pairs", nargs="+", default=["s9:d11", "s1:d3", "s42:d9"])
    args = parser.parse_args(argv)
    print(f"{'pair':<10} {'frames':>6} {'mean %':>7} {'worst %':>8} {'at frame':>8} {'kink':>6} {'at frame':>8}")
    for pair in args.pairs:
        s, d = pair.split(":")
        rows = pair_tearing(DATA / "portraits" / f"{s}.jpg", DATA / "driving" / f"{d}.mp4", args.every)
        shares = np.array([r[1] for r in rows]) * 100
        kinks = np.array([r[2] for r in rows])
        worst, bent = int(np.argmax(shares)), int(np.argmax(kinks))
        print(f"{pair:<10} {len(rows):>6} {shares.mean():>7.2f} {shares[worst]:>8.2f} {rows[worst][0]:>8} "
              f"{kinks[bent]:>6.3f} {rows[bent][0]:>8}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
