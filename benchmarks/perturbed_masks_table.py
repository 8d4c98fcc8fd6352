"""Video reconstruction scores of a perturbed-masks model beside the paper's Table 1 (issue 14).

    .venv/bin/python benchmarks/perturbed_masks_table.py --weights RUN/perturbed_masks.pt \
        [--faces d0 d3 ...] [--bodies s13 d13] [--frames 100] [--json out.json]

Names are videos in ../shared/data/driving (``dN``) or ../shared/data/portraits (``sN``). Each video's
first frame is the source and its other frames drive it (puppetry.methods.perturbed_masks.evaluation);
faces are scored with Face Mesh and dlib, bodies with MediaPipe Pose. The paper's numbers are on other
data with other detectors and full-size networks: they are printed for scale, not as a like-for-like
comparison. Run from the repository root.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

from puppetry.methods.perturbed_masks.engine import load_model
from puppetry.methods.perturbed_masks.evaluation import PAPER_TABLE1, evaluate_video

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _video(name: str) -> Path:
    folder = "driving" if name.startswith("d") else "portraits"
    return DATA / folder / f"{name}.mp4"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True)
    parser.add_argument("--faces", nargs="*", default=["d0", "d3", "d10", "d11", "d12", "d19", "s29"])
    parser.add_argument("--bodies", nargs="*", default=["s13", "d13"])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    model = load_model(args.weights)
    rows = [evaluate_video(model, _video(n), "face", args.frames) for n in args.faces]
    rows += [evaluate_video(model, _video(n), "body", args.frames) for n in args.bodies]
    print(f"{'video':<8} {'kind':<5} {'frames':>6} {'L1':>7} {'static L1':>9} {'AKD':>7} {'MKR':>6} {'AED':>6}")
    for r in rows:
        print(f"{Path(r.video).stem:<8} {r.kind:<5} {r.frames:>6} {r.l1:>7.4f} {r.static_l1:>9.4f} {r.akd:>7.2f} "
              f"{r.mkr:>6.3f} {r.aed:>6.3f}")
    for kind in ("face", "body"):
        sel = [r for r in rows if r.kind == kind]
        if sel:
            warnings.simplefilter("ignore", RuntimeWarning)      # a mean of NaNs (AED of bodies) stays NaN
            mean = {k: float(np.nanmean([getattr(r, k) for r in sel])) for k in ("l1", "static_l1", "akd", "mkr", "aed")}
            print(f"{'mean':<8} {kind:<5} {'':>6} {mean['l1']:>7.4f} {mean['static_l1']:>9.4f} {mean['akd']:>7.2f} "
                  f"{mean['mkr']:>6.3f} {mean['aed']:>6.3f}")
    print("paper 004, Table 1 (other data, other detectors):")
    for dataset, methods in PAPER_TABLE1.items():
        for method, scores in methods.items():
            print(f"  {dataset:<11} {method:<5} " + "  ".join(f"{k.upper()} {v}" for k, v in scores.items()))
    if args.json:
        Path(args.json).write_text(json.dumps([r.as_dict() for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
