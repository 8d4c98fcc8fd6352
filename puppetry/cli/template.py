"""``puppetry template``: save a driving video's motion (no pixels) as a reusable ``.npz``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from puppetry.errors import MediaError
from puppetry.pipeline.driving import extract_motion

logger = logging.getLogger("puppetry")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("template", help="save a driving video's motion as a template",
                       description="Track DRIVING and save its motion (no pixels) to OUTPUT (.npz). "
                                   "A template is accepted wherever a driving video is.")
    p.add_argument("driving", help="driving video, folder of frames or image")
    p.add_argument("-o", "--output", required=True, help="template file to write (.npz)")
    p.add_argument("--no-smoothing", action="store_true", help="do not smooth tracked landmarks")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if Path(args.output).suffix.lower() != ".npz":
        raise MediaError(f"template output '{args.output}' must end in .npz")
    seq = extract_motion(args.driving, smoothing=None if args.no_smoothing else extract_motion.__defaults__[0])
    seq.save(args.output)
    logger.info("wrote %s: %d frames at %.4g fps (%d with the face lost)", args.output, len(seq), seq.fps,
                seq.lost_frames)
    return 0
