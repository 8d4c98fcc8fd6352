"""``puppetry animate``: animate a source with a driving video, image, template, motion or controls."""

from __future__ import annotations

import argparse
import logging

from puppetry.cli.method_flags import add_engine_flags
from puppetry.methods.registry import DEFAULT_ENGINE, engine_names, engine_options
from puppetry.motion.controls import Controls
from puppetry.motion.procedural import MOTIONS
from puppetry.motion.regions import REGIONS
from puppetry.pipeline.animate import AnimateOptions, animate

logger = logging.getLogger("puppetry")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("animate", help="animate a portrait",
                       description="Animate SOURCE with DRIVING and write OUTPUT (mp4, mov, mkv, gif, png, jpg).")
    p.add_argument("-s", "--source", default="astronaut",
                   help="portrait image, or 'astronaut' (built-in, default)")
    p.add_argument("-d", "--driving",
                   help="driving video, folder of frames, image, .npz template, or a built-in motion: "
                        f"{', '.join(MOTIONS)} (default: demo)")
    p.add_argument("-a", "--audio",
                   help="speech that drives the portrait instead of -d (wav, mp3, m4a, or a video's sound); "
                        "the output carries it and lasts as long (needs --audio-weights)")
    p.add_argument("--audio-weights",
                   help="speech model, RUN/audio2motion.pt from 'puppetry train audio2motion' "
                        "(default: $PUPPETRY_AUDIO_WEIGHTS)")
    p.add_argument("--seed", type=int, default=0, help="draws the blinks and head sway of -a (default 0)")
    p.add_argument("-o", "--output", default="animation.mp4", help="output file (default: animation.mp4)")
    p.add_argument("--engine", default=DEFAULT_ENGINE, choices=engine_names(), help="animation engine")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--relative", dest="relative", action="store_true", default=True,
                      help="transfer the driving's change since its first frame (default)")
    mode.add_argument("--absolute", dest="relative", action="store_false",
                      help="transfer the driving's expression and pose themselves")
    p.add_argument("--region", default="all", choices=REGIONS, help="what the driving moves (default: all)")
    p.add_argument("--multiplier", type=float, default=1.0, help="scale of the transferred expression")
    p.add_argument("--concat", action="store_true", help="write driving | source | result side by side")
    p.add_argument("--eyes", type=float, help="eyes open, 0 (closed) .. 1 (the source's open eyes)")
    p.add_argument("--lips", type=float, help="lips open, 0 (closed) .. 1 (wide open)")
    p.add_argument("--smile", type=float, help="smile, 0 .. 1")
    p.add_argument("--yaw", type=float, default=0.0, help="head turn offset in degrees")
    p.add_argument("--pitch", type=float, default=0.0, help="head nod offset in degrees")
    p.add_argument("--roll", type=float, default=0.0, help="head tilt offset in degrees")
    p.add_argument("--fps", type=float, help="frame rate for built-in motions, templates and still images")
    p.add_argument("--duration", type=float, help="seconds of a built-in motion")
    p.add_argument("--frames", type=int, help="stop after this many driving frames")
    p.add_argument("--max-size", type=int, default=2048, help="longer side of the working image (default 2048)")
    p.add_argument("--max-faces", type=int, default=8, help="most faces animated in a group photo")
    p.add_argument("--no-smoothing", action="store_true", help="do not smooth tracked driving landmarks")
    add_engine_flags(p, "animate")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.max_size < 64:
        raise ValueError("--max-size must be at least 64")
    if args.max_faces < 1:
        raise ValueError("--max-faces must be at least 1")
    if args.audio is not None and args.driving is not None:
        raise ValueError("give the motion by -d or by -a (speech), not both")
    if args.audio_weights is not None and args.audio is None:
        raise ValueError("--audio-weights is the speech model of -a; give -a speech.wav too")
    controls = Controls(eyes=args.eyes, lips=args.lips, smile=args.smile, yaw=args.yaw, pitch=args.pitch,
                        roll=args.roll)
    options = AnimateOptions(engine=args.engine, relative=args.relative, region=args.region,
                             multiplier=args.multiplier, controls=controls, concat=args.concat, fps=args.fps,
                             duration=args.duration, max_size=args.max_size, max_faces=args.max_faces,
                             smoothing=None if args.no_smoothing else AnimateOptions().smoothing,
                             progress=not args.quiet, max_frames=args.frames,
                             engine_options=engine_options(args.engine, vars(args)), audio=args.audio,
                             audio_weights=args.audio_weights, seed=args.seed)
    result = animate(args.source, args.driving or "demo", args.output, options)
    logger.info("wrote %s: %d frames at %.4g fps, %dx%d, in %.1f s", result.output, result.frames, result.fps,
                result.size[0], result.size[1], result.seconds)
    return 0
