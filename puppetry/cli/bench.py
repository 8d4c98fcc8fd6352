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
    p.add_argument("--warmup", type=int, default=0, help="untimed frames first (GPU, --compile)")
    p.add_argument("--checkpoint-dir", help="liveportrait: weights folder (default: $PUPPETRY_LIVEPORTRAIT_DIR)")
    p.add_argument("--device", help="liveportrait: cpu (default), cuda, cuda:N or auto")
    p.add_argument("--precision", choices=("fp32", "fp16", "bf16"), help="liveportrait: autocast on CUDA")
    p.add_argument("--compile", action="store_true", help="liveportrait: torch.compile W and G")
    p.add_argument("--live", action="store_true",
                   help="time the web app's live mode (warp engine) at source sizes 256, 384 and 512 instead")
    p.add_argument("--live-browser", action="store_true",
                   help="time live mode end to end in headless Chromium (fake 30 fps webcam from --driving) at "
                        "source sizes 256, 384 and 512; needs playwright and Chromium")
    p.add_argument("--chromium", default="/usr/bin/chromium", help="--live-browser: the Chromium executable")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from puppetry.benchmark import run_benchmark

    if args.live or args.live_browser:
        return run_live(args)
    options = {k: getattr(args, k) for k in ("checkpoint_dir", "device", "precision") if getattr(args, k) is not None}
    if args.compile:
        options["compile"] = True
    if options and args.engine != "liveportrait":
        raise ValueError("--checkpoint-dir, --device, --precision and --compile apply to --engine liveportrait")
    result = run_benchmark(args.source, args.driving, args.frames, args.engine, options, args.warmup)
    print(result.table())
    return 0


def run_live(args: argparse.Namespace) -> int:
    import tempfile

    from puppetry.app.live_bench import run_live_benchmark, table
    from puppetry.benchmark import demo_driving

    if args.engine != "warp":
        raise ValueError("--live times the warp engine (the engine of the app's live mode)")
    with tempfile.TemporaryDirectory() as tmp:
        driving = args.driving or demo_driving(tmp)
        if args.live_browser:
            from puppetry.app.browser_bench import run_browser_benchmark, table as browser_table
            print(browser_table(run_browser_benchmark(driving, chromium=args.chromium)))
            return 0
        rows = run_live_benchmark(driving, source=args.source, frames=args.frames, warmup=max(args.warmup, 5))
    print(table(rows))
    return 0
