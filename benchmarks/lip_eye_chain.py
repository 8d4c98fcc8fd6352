"""Where lip and eye correlation is lost between a driver and the warp engine's output.

For each source x driving pair (cross-reenactment, as ``puppetry evaluate`` scores it: Face Mesh in
image mode on the driving frames and on the output), the chain is split into four series of the
lip-open and eye-open ratios: the driver, the tracked driver (``frame.landmarks``: video-mode Face Mesh,
smoothed), the engine's target landmarks, and the output. One JSON line per pair gives the Pearson
correlation of each link (``ref_trk``, ``trk_tgt``, ``tgt_out``) and end to end (``ref_out``, the
number ``evaluate`` reports), so a low score points at the tracker, the motion transfer or the render:

    python benchmarks/lip_eye_chain.py --sources s1,s5 --driving d3,d19 [--frames 100]

Names are files in ../shared/data/portraits (``.jpg``) and ../shared/data/driving (``.mp4``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from puppetry.evaluation.runner import EvaluateConfig, _Models, _reference   # the evaluation's own reading
from puppetry.face.pose import eye_open_ratio, lip_open_ratio
from puppetry.methods.registry import create_engine

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or a[ok].std() < 1e-9 or b[ok].std() < 1e-9:
        return float("nan")
    return round(float(np.corrcoef(a[ok], b[ok])[0, 1]), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", default="s1,s5,s7,s9,s10,s12,s42")
    parser.add_argument("--driving", default="d3,d9,d11,d14,d19")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--max-size", type=int, default=512, help="longer side of the source and driving frames")
    args = parser.parse_args()
    config = EvaluateConfig(identity=False, max_size=args.max_size, max_frames=args.frames)
    models = _Models(config)
    engine = create_engine("warp")
    ratios = {"lip": lip_open_ratio, "eye": lambda x: eye_open_ratio(x).mean(-1)}
    for s in args.sources.split(","):
        for d in args.driving.split(","):
            ref = _reference("cross", str(DATA / "portraits" / f"{s}.jpg"), str(DATA / "driving" / f"{d}.mp4"),
                             config, models)
            state = engine.prepare(ref.source_faces)
            n = len(ref.frames)
            outputs, targets = [], []
            for frame in ref.driving_frames[:n]:
                image, points = engine.render_with_targets(state, frame)
                outputs.append(image)
                targets.append(points[0])
            series = {"ref": ref.landmarks, "trk": np.stack([f.landmarks for f in ref.driving_frames[:n]]).astype(float),
                      "tgt": np.stack(targets), "out": models.landmarks(outputs)}
            row = {"source": s, "driving": d}
            for name, ratio in ratios.items():
                r = {k: ratio(v) for k, v in series.items()}
                row[name] = {"ref_trk": _pearson(r["ref"], r["trk"]), "trk_tgt": _pearson(r["trk"], r["tgt"]),
                             "tgt_out": _pearson(r["tgt"], r["out"]), "ref_out": _pearson(r["ref"], r["out"])}
            print(json.dumps(row), flush=True)
    models.close()


if __name__ == "__main__":
    main()
