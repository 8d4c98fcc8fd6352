"""``puppetry bench``: per-stage timing of the animation loop."""

from __future__ import annotations

import argparse

from puppetry.cli.method_flags import add_engine_flags
from puppetry.methods.registry import DEFAULT_ENGINE, engine_method, engine_names, engine_options, methods


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="time the animation loop",
                       description="Animate SOURCE with DRIVING and print milliseconds per frame by stage. "
                                   "Without --driving, a 512x512 driving video of a real face is rendered first.")
    p.add_argument("-s", "--source", default="astronaut", help="portrait (default: built-in astronaut, 512x512)")
    p.add_argument("-d", "--driving", help="driving video (default: a generated 512x512 face video)")
    p.add_argument("--frames", type=int, default=180, help="most driving frames to time")
    p.add_argument("--engine", default=DEFAULT_ENGINE, choices=engine_names())
    p.add_argument("--warmup", type=int, default=0, help="untimed frames first (GPU, --compile)")
    p.add_argument("--live", action="store_true",
                   help="time the web app's live mode (default engine) at source sizes 256, 384 and 512 instead")
    p.add_argument("--live-browser", action="store_true",
                   help="time live mode end to end in headless Chromium (fake 30 fps webcam from --driving) at "
                        "source sizes 256, 384 and 512; needs playwright and Chromium")
    p.add_argument("--against-reference", metavar="DIR",
                   help="time the engine's networks against its reference implementation in DIR, side by side "
                        "(liveportrait: a copy of the LivePortrait repository you supply; its code is imported)")
    p.add_argument("--reps", type=int, default=3, help="--against-reference: interleaved repetitions (default 3)")
    p.add_argument("--chromium", default="/usr/bin/chromium", help="--live-browser: the Chromium executable")
    add_engine_flags(p, "bench")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from puppetry.benchmark import run_benchmark

    if args.live or args.live_browser:
        return run_live(args)
    options = engine_options(args.engine, vars(args), "bench")
    if args.against_reference:
        return run_against_reference(args, options)
    result = run_benchmark(args.source, args.driving, args.frames, args.engine, options, args.warmup)
    print(result.table())
    return 0


def run_against_reference(args: argparse.Namespace, options: dict) -> int:
    from puppetry.errors import PuppetryError
    from puppetry.methods.descriptor import load

    method = engine_method(args.engine)
    if method.reference_bench is None:
        with_one = [m.name for m in methods() if m.reference_bench is not None]
        raise PuppetryError(f"--against-reference: the {args.engine} engine has no reference implementation to time "
                            f"against (engines with one: {', '.join(with_one)})")
    print(load(method.reference_bench)(args.against_reference, options, args.reps))
    return 0


def run_live(args: argparse.Namespace) -> int:
    import tempfile

    from puppetry.app.live_bench import run_live_benchmark, table
    from puppetry.app.sessions import LIVE_ENGINE
    from puppetry.benchmark import demo_driving

    if args.engine != LIVE_ENGINE:
        raise ValueError(f"--live times the {LIVE_ENGINE} engine (the engine of the app's live mode)")
    with tempfile.TemporaryDirectory() as tmp:
        driving = args.driving or demo_driving(tmp)
        if args.live_browser:
            from puppetry.app.browser_bench import run_browser_benchmark, table as browser_table
            print(browser_table(run_browser_benchmark(driving, chromium=args.chromium)))
            return 0
        rows = run_live_benchmark(driving, source=args.source, frames=args.frames, warmup=max(args.warmup, 5))
    print(table(rows))
    return 0
