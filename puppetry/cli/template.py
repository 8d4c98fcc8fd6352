"""``puppetry template``: save a driving video's motion (no pixels) as a reusable ``.npz``.

By default the template stores tracked landmark motion (read by the landmark engines, the default
among them); ``--engine NAME`` for an engine whose method declares a ``template_recorder`` stores that
engine's own motion instead (LivePortrait: its motion extractor's keypoints, like the release's ``.pkl``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from puppetry.cli.method_flags import add_engine_flags
from puppetry.errors import MediaError
from puppetry.methods.descriptor import load
from puppetry.methods.registry import DEFAULT_ENGINE, create_engine, engine_method, engine_names, engine_options
from puppetry.motion.keypoint_template import save_template
from puppetry.pipeline.driving import extract_motion

logger = logging.getLogger("puppetry")


def _recorders() -> list[str]:
    return [n for n in engine_names() if engine_method(n).template_recorder is not None]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("template", help="save a driving video's motion as a template",
                       description="Track DRIVING and save its motion (no pixels) to OUTPUT (.npz). "
                                   "A template is accepted wherever a driving video is.")
    p.add_argument("driving", help="driving video, folder of frames or image")
    p.add_argument("-o", "--output", required=True, help="template file to write (.npz)")
    p.add_argument("--no-smoothing", action="store_true", help="do not smooth tracked landmarks")
    p.add_argument("--engine", default=DEFAULT_ENGINE, choices=[DEFAULT_ENGINE] + _recorders(),
                   help=f"{DEFAULT_ENGINE}: landmark motion (default); "
                        f"{', '.join(_recorders())}: that engine's own keypoint motion")
    add_engine_flags(p, "template")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if Path(args.output).suffix.lower() != ".npz":
        raise MediaError(f"template output '{args.output}' must end in .npz")
    smoothing = None if args.no_smoothing else extract_motion.__defaults__[0]
    options = engine_options(args.engine, vars(args), "template")
    recorder = engine_method(args.engine).template_recorder
    if recorder is not None:
        engine = create_engine(args.engine, **options)
        template = load(recorder)(args.driving, engine, smoothing)
        save_template(template, args.output)
        logger.info("wrote %s: %d frames of keypoint motion at %.4g fps", args.output, len(template), template.fps)
        return 0
    seq = extract_motion(args.driving, smoothing=smoothing)
    seq.save(args.output)
    logger.info("wrote %s: %d frames at %.4g fps (%d with the face lost)", args.output, len(seq), seq.fps,
                seq.lost_frames)
    return 0
