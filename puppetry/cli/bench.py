"""``puppetry bench``: per-stage timing of the animation loop."""

from __future__ import annotations

import argparse

from puppetry.engines.registry import available_engines


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="time the animation loop",
                       description="Animate SOURCE with DRIVING and print milliseconds per frame by stage. "
                                   "Without --driving, a 512x512 driving video of a real face is rendered first.")
    p.add_argument("-s", "--source", default="astronaut", help="portrait (default: built-in astronaut, 512x512)")
    p.add_argument("-d", "--driving", help="driving video (default: a generated 512x512 face video)")
    p.add_argument("--frames", type=int, default=180, help="most driving frames to time")
    p.add_argument("--engine", default="warp", choices=available_engines())
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from puppetry.benchmark import run_benchmark

    result = run_benchmark(args.source, args.driving, args.frames, args.engine)
    print(result.table())
    return 0
