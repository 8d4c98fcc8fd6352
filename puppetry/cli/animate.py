"""``puppetry animate``: animate a source with a driving video, image, template, motion or controls."""

from __future__ import annotations

import argparse
import logging

from puppetry.engines.registry import available_engines
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
    p.add_argument("-d", "--driving", default="demo",
                   help="driving video, folder of frames, image, .npz template, or a built-in motion: "
                        f"{', '.join(MOTIONS)} (default: demo)")
    p.add_argument("-o", "--output", default="animation.mp4", help="output file (default: animation.mp4)")
    p.add_argument("--engine", default="warp", choices=available_engines(), help="animation engine")
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
    wp = p.add_argument_group("warp engine")
    wp.add_argument("--retarget", choices=("ldnet",),
                    help="give the driving landmarks the source's identity first (ldnet: a trained LD-Net)")
    wp.add_argument("--ldnet-weights", help="LD-Net weights, RUN/ldnet.pt (default: $PUPPETRY_LDNET_WEIGHTS)")
    wg = p.add_argument_group("wggan engine (needs weights from puppetry train wggan / hrhgan)")
    wg.add_argument("--wggan-weights", help="wg-GAN weights, RUN/wggan.pt (default: $PUPPETRY_WGGAN_WEIGHTS)")
    wg.add_argument("--hrhgan-weights", help="hrh-GAN weights, RUN/hrhgan.pt (default: $PUPPETRY_HRHGAN_WEIGHTS)")
    wg.add_argument("--no-temporal", action="store_true",
                    help="do not blend each frame's mouth with the previous frame's (Sec. 5.2)")
    lp = p.add_argument_group("liveportrait engine (needs the release weights)")
    lp.add_argument("--checkpoint-dir", help="LivePortrait weights folder (default: $PUPPETRY_LIVEPORTRAIT_DIR)")
    lp.add_argument("--device", help="cpu (default), cuda, cuda:N or auto (liveportrait and wggan)")
    lp.add_argument("--precision", choices=("fp32", "fp16", "bf16"), help="fp16/bf16 autocast on CUDA")
    lp.add_argument("--compile", action="store_true", help="torch.compile the warping module and decoder")
    lp.add_argument("--batch-size", type=int, help="driving frames per network call (default 1)")
    lp.add_argument("--no-stitching", action="store_true", help="turn off the stitching module")
    lp.add_argument("--eyes-retargeting", action="store_true", help="drive the eyes through R_eyes (Sec. 4.3)")
    lp.add_argument("--lip-retargeting", action="store_true", help="drive the lips through R_lip (Sec. 4.3)")
    lp.add_argument("--no-lip-normalize", action="store_true", help="keep an open source mouth open at rest")
    lp.add_argument("--no-paste-back", action="store_true", help="write the 512x512 face crop, not the full image")
    lp.add_argument("--crop-driving", choices=("auto", "always", "never"),
                    help="crop driving frames around the face (auto: unless they are square)")
    p.set_defaults(run=run)


LIVEPORTRAIT_FLAGS = {
    "checkpoint_dir": "checkpoint_dir", "device": "device", "precision": "precision", "batch_size": "batch_size",
    "crop_driving": "crop_driving",
}
LIVEPORTRAIT_SWITCHES = {
    "compile": ("compile", True), "no_stitching": ("stitching", False),
    "eyes_retargeting": ("eyes_retargeting", True), "lip_retargeting": ("lip_retargeting", True),
    "no_lip_normalize": ("normalize_lip", False), "no_paste_back": ("paste_back", False),
}


WARP_FLAGS = {"retarget": "retarget", "ldnet_weights": "ldnet_weights"}
WGGAN_FLAGS = {"wggan_weights": "wggan_weights", "hrhgan_weights": "hrhgan_weights"}


def engine_options(args: argparse.Namespace) -> dict:
    """The engine-specific flags as keyword arguments of the engine's config."""
    warp = {key: getattr(args, flag) for flag, key in WARP_FLAGS.items() if getattr(args, flag, None) is not None}
    if warp:
        if args.engine != "warp":
            raise ValueError("--retarget and --ldnet-weights apply to --engine warp")
        return warp
    wggan = {key: getattr(args, flag) for flag, key in WGGAN_FLAGS.items() if getattr(args, flag, None) is not None}
    if getattr(args, "no_temporal", False):
        wggan["temporal"] = False
    if args.engine == "wggan":
        if args.device is not None:
            wggan["device"] = args.device
            args = argparse.Namespace(**{**vars(args), "device": None})
    elif wggan:
        raise ValueError("--wggan-weights, --hrhgan-weights and --no-temporal apply to --engine wggan")
    opts = {key: getattr(args, flag) for flag, key in LIVEPORTRAIT_FLAGS.items() if getattr(args, flag) is not None}
    opts.update({key: value for flag, (key, value) in LIVEPORTRAIT_SWITCHES.items() if getattr(args, flag)})
    if opts and args.engine != "liveportrait":
        names = ", ".join("--" + f.replace("_", "-") for f in list(LIVEPORTRAIT_FLAGS) + list(LIVEPORTRAIT_SWITCHES)
                          if getattr(args, f) not in (None, False))
        raise ValueError(f"{names} only apply to --engine liveportrait")
    return {**opts, **wggan}


def run(args: argparse.Namespace) -> int:
    if args.max_size < 64:
        raise ValueError("--max-size must be at least 64")
    if args.max_faces < 1:
        raise ValueError("--max-faces must be at least 1")
    controls = Controls(eyes=args.eyes, lips=args.lips, smile=args.smile, yaw=args.yaw, pitch=args.pitch,
                        roll=args.roll)
    options = AnimateOptions(engine=args.engine, relative=args.relative, region=args.region,
                             multiplier=args.multiplier, controls=controls, concat=args.concat, fps=args.fps,
                             duration=args.duration, max_size=args.max_size, max_faces=args.max_faces,
                             smoothing=None if args.no_smoothing else AnimateOptions().smoothing,
                             progress=not args.quiet, max_frames=args.frames,
                             engine_options=engine_options(args))
    result = animate(args.source, args.driving, args.output, options)
    logger.info("wrote %s: %d frames at %.4g fps, %dx%d, in %.1f s", result.output, result.frames, result.fps,
                result.size[0], result.size[1], result.seconds)
    return 0
