"""``puppetry template``: save a driving video's motion (no pixels) as a reusable ``.npz``.

``--engine warp`` (default) stores tracked landmark motion; ``--engine liveportrait`` stores the
LivePortrait motion extractor's outputs (a keypoint template, like the release's ``.pkl`` files).
"""

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
    p.add_argument("--engine", default="warp", choices=("warp", "liveportrait"),
                   help="warp: landmark motion (default); liveportrait: the motion extractor's keypoint motion")
    p.add_argument("--checkpoint-dir", help="liveportrait weights folder (default: $PUPPETRY_LIVEPORTRAIT_DIR)")
    p.add_argument("--device", default="cpu", help="liveportrait: cpu (default), cuda, cuda:N or auto")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if Path(args.output).suffix.lower() != ".npz":
        raise MediaError(f"template output '{args.output}' must end in .npz")
    smoothing = None if args.no_smoothing else extract_motion.__defaults__[0]
    if args.engine == "liveportrait":
        from puppetry.liveportrait.engine import LivePortraitConfig, LivePortraitEngine
        from puppetry.liveportrait.recording import record_template
        from puppetry.liveportrait.template import save_template

        engine = LivePortraitEngine(config=LivePortraitConfig(checkpoint_dir=args.checkpoint_dir, device=args.device))
        template = record_template(args.driving, engine, smoothing)
        save_template(template, args.output)
        logger.info("wrote %s: %d frames of keypoint motion at %.4g fps", args.output, len(template), template.fps)
        return 0
    if args.checkpoint_dir is not None:
        raise ValueError("--checkpoint-dir applies to --engine liveportrait")
    seq = extract_motion(args.driving, smoothing=None if args.no_smoothing else extract_motion.__defaults__[0])
    seq.save(args.output)
    logger.info("wrote %s: %d frames at %.4g fps (%d with the face lost)", args.output, len(seq), seq.fps,
                seq.lost_frames)
    return 0
