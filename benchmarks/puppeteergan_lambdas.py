"""The effect of lambda1 (L_seg) and lambda2 (L_idt) on PuppeteerGAN's sketching network (issue 15).

    .venv/bin/python benchmarks/puppeteergan_lambdas.py --data DATASET -o runs/lambdas [--steps 2000] \
        [--holdout 3] [--variants 1,0.1 0,0.1 1,0 1,1] [--json out.json]

Trains the sketching stage alone once per ``lambda1,lambda2`` variant (same data, seed and steps), then
scores each on the held-out clips with puppetry.methods.puppeteergan.evaluation: landmark error and
segmentation accuracy / mean IoU when a clip drives itself, and the identity share of the retargeted
landmarks when another person drives (1: the source's face shape, 0: the driver's). Run from the
repository root; the dataset needs clips of at least ``holdout`` people held out (``puppetry prepare``).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from puppetry.cli import main as cli
from puppetry.data.dataset import open_dataset, split_clips
from puppetry.methods.puppeteergan.config import SketchModel
from puppetry.methods.puppeteergan.data import VideoPairs
from puppetry.methods.puppeteergan.evaluation import score_sketching
from puppetry.methods.puppeteergan.sketching import build_sketching
from puppetry.training.checkpoint import load_checkpoint
from puppetry.training.config import from_dict


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--holdout", type=int, default=3)
    parser.add_argument("--variants", nargs="+", default=["1,0.1", "0,0.1", "1,0", "1,1"])
    parser.add_argument("--pairs", type=int, default=128)
    parser.add_argument("--set", action="append", default=[], dest="overrides",
                        help="extra config overrides for every variant (section.key=value)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    out = Path(args.output)
    rows = {}
    for variant in args.variants:
        lam1, lam2 = (float(v) for v in variant.split(","))
        run = out / f"seg{lam1:g}_idt{lam2:g}"
        sets = [f"sketch.steps={args.steps}", "color.steps=0", f"sketch_losses.seg_weight={lam1}",
                f"sketch_losses.identity_weight={lam2}", f"data.holdout={args.holdout}", *args.overrides]
        flags = [a for s in sets for a in ("--set", s)]
        if not (run / "checkpoints" / "last.pt").exists():
            if cli(["-q", "train", "puppeteergan", "--data", args.data, "-o", str(run), *flags]) != 0:
                return 1
        state = load_checkpoint(run / "checkpoints" / "last.pt")
        cfg = from_dict(SketchModel, state["config"]["sketch_model"], "sketch_model")
        net = build_sketching(cfg)
        net.load_state_dict(state["modules"]["sketch"])
        seed = int(state["config"]["train"]["seed"])
        _, held = split_clips(len(open_dataset(args.data).clips), args.holdout, seed)
        pairs = VideoPairs(args.data, held, flip=False, others=held)
        rows[variant] = asdict(score_sketching(net, pairs, cfg.mask_size, args.pairs))
    head = ("lambda1, lambda2", "landmark px", "seg acc", "seg mIoU", "identity share", "driver's own")
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    for variant, r in rows.items():
        print(f"| {variant} | {r['landmark_px']:.2f} | {r['seg_accuracy']:.3f} | {r['seg_miou']:.3f} | "
              f"{r['identity_share']:.3f} | {r['identity_share_driver']:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
