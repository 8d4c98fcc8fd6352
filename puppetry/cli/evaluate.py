"""``puppetry evaluate``: score engines by self- and cross-reenactment; write metrics.json and report.html."""

from __future__ import annotations

import argparse
import logging
import os

from puppetry.cli.method_flags import add_engine_flags
from puppetry.evaluation.report import write_report
from puppetry.evaluation.runner import METRICS, STATIC, EvaluateConfig, evaluate
from puppetry.methods.registry import DEFAULT_ENGINE, command_options, engine_names, engine_variant, variants

logger = logging.getLogger("puppetry")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score engines by self- and cross-reenactment",
                       description="Animate test pairs with each engine and the static baseline (the source "
                                   "repeated) and write REPORT_DIR/metrics.json and REPORT_DIR/report.html.")
    p.add_argument("--self", dest="self_videos", nargs="+", default=[], metavar="VIDEO",
                   help="self-reenactment videos: frame 0 is the source, the video drives it and is the truth")
    p.add_argument("--cross-sources", nargs="+", default=[], metavar="IMAGE", help="cross-reenactment sources")
    p.add_argument("--cross-driving", nargs="+", default=[], metavar="VIDEO",
                   help="cross-reenactment driving videos (every source x every video)")
    p.add_argument("--engine", action="append", metavar="NAME",
                   help=f"engine to evaluate, repeatable or comma-separated ({', '.join(engine_names() + list(variants()))}; "
                        f"default: {DEFAULT_ENGINE})")
    p.add_argument("-o", "--output", default="evaluation", metavar="REPORT_DIR",
                   help="folder for metrics.json and report.html (default: evaluation)")
    p.add_argument("--max-frames", type=int, default=100, help="frames read per video (default 100; 0: all)")
    p.add_argument("--max-size", type=int, default=1024, help="longer side of the working source (default 1024)")
    p.add_argument("--samples", type=int, default=3, help="sample frames shown per pair (default 3)")
    p.add_argument("--lpips-weights", action="append", metavar="DIR_OR_FILE",
                   help="LPIPS weights: a folder or files with torchvision's alexnet-owt-7be5be79.pth and the "
                        "lpips package's v0.1 alex.pth (default: $PUPPETRY_LPIPS_DIR)")
    p.add_argument("--inception-weights", metavar="FILE",
                   help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth (default: $PUPPETRY_INCEPTION_WEIGHTS)")
    p.add_argument("--absolute", action="store_true",
                   help="absolute motion transfer (default: relative, as puppetry animate)")
    p.add_argument("--no-identity", action="store_true", help="skip CSIM/AED (dlib face recognition)")
    add_engine_flags(p, "evaluate")
    p.set_defaults(run=run)


def _engines(values: list[str] | None) -> list[str]:
    names = [n.strip() for v in (values or [DEFAULT_ENGINE]) for n in v.split(",") if n.strip()]
    known = engine_names() + [STATIC] + list(variants())
    for n in names:
        if n not in known:
            raise ValueError(f"unknown engine '{n}'; available engines: {', '.join(engine_names())}")
    return list(dict.fromkeys(names))


def _engine_options(engines: list[str], parsed: dict) -> dict[str, dict]:
    """Each evaluated engine's config values from the flags; a flag no evaluated engine reads is an error."""
    options: dict[str, dict] = {}
    for option, owners in command_options("evaluate"):
        if not option.given(parsed):
            continue
        takers = [n for n in engines if n != STATIC and engine_variant(n)[0] in owners
                  and option.fits(engine_variant(n)[1])]
        if not takers:
            fitting = [n for n in engine_names() + list(variants()) if engine_variant(n)[0] in owners
                       and option.fits(engine_variant(n)[1])]
            raise ValueError(f"{option.flag} only applies to --engine {' or '.join(fitting)}")
        for name in takers:
            options.setdefault(name, {})[option.key] = option.value(parsed)
    return options


def _summary_lines(data: dict) -> list[str]:
    lines = []
    for setting, engines in data["results"].items():
        metrics = [m for m, info in METRICS.items() if setting in info.settings]
        lines.append(f"{setting}-reenactment: " + "  ".join(f"{METRICS[m].label:>8}" for m in metrics))
        for name, e in engines.items():
            cells = []
            for m in metrics:
                v = e.get("mean", {}).get(m, {}).get("value")
                cells.append(f"{'-' if v is None else (v if isinstance(v, str) else f'{v:.4g}'):>8}")
            lines.append(f"  {name:<14}" + "  ".join(cells))
    return lines


def run(args: argparse.Namespace) -> int:
    if args.max_frames < 0 or args.max_frames == 1:
        raise ValueError("--max-frames must be 0 (all) or at least 2")
    if args.max_size < 64:
        raise ValueError("--max-size must be at least 64")
    engines = _engines(args.engine)
    options = _engine_options(engines, vars(args))
    config = EvaluateConfig(engines=engines, engine_options=options,
                            max_frames=args.max_frames or None, max_size=args.max_size,
                            lpips_weights=args.lpips_weights, inception_weights=args.inception_weights,
                            samples=args.samples, identity=not args.no_identity,
                            relative=not args.absolute)
    evaluation = evaluate(args.self_videos, args.cross_sources, args.cross_driving, config)
    json_path, html_path = write_report(evaluation, args.output)
    print("\n".join(_summary_lines(evaluation.data)))
    print(f"wrote {os.fspath(json_path)} and {os.fspath(html_path)}")
    return 0
