"""``puppetry prepare``: cut videos into one-person face clips and store them as a sharded dataset.

Resumable (rerun the same command after an interruption), parallel over videos (``--workers``) and
splittable between machines (``--shard i/n``). See :mod:`puppetry.data.prepare` for what is stored.
"""

from __future__ import annotations

import argparse
import logging

from puppetry.errors import MediaError

logger = logging.getLogger("puppetry")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare", help="cut videos into one-person face clips for training",
        description="Decode VIDEOS (files, or folders searched recursively), track faces, cut one-person "
                    "clips with a fixed square crop and store frames, 478/68-point landmarks, head pose and "
                    "semantic masks in DATASET (one tar shard per video). Rerun the same command to resume.")
    p.add_argument("videos", nargs="+", metavar="VIDEOS", help="video files or folders of videos")
    p.add_argument("-o", "--output", required=True, metavar="DATASET", help="dataset folder to write or resume")
    p.add_argument("--size", type=int, default=256, help="side of the stored square crops (default 256)")
    p.add_argument("--crop-scale", type=float, default=1.8,
                   help="crop side over the mean face box side (default 1.8; grown to hold a moving head)")
    p.add_argument("--min-frames", type=int, default=16, help="shortest clip kept, in stored frames (default 16)")
    p.add_argument("--max-frames", type=int, default=None, help="read at most N frames of each video")
    p.add_argument("--every", type=int, default=1, help="keep every K-th frame (default 1)")
    p.add_argument("--max-faces", type=int, default=2, help="most faces looked for per frame (default 2)")
    p.add_argument("--workers", type=int, default=1, help="videos processed in parallel (default 1)")
    p.add_argument("--shard", default="0/1", metavar="i/n",
                   help="take videos i, i+n, i+2n, ... of the sorted input list (split a corpus between machines)")
    p.add_argument("--identity", default="clip", choices=("clip", "video", "parent", "grandparent"),
                   help="identity of a clip: itself (default), its video, the video's folder name, or the folder "
                        "above it (VoxCeleb id/video/clip.mp4: grandparent)")
    p.add_argument("--landmarks-only", action="store_true", help="store landmarks and pose but no frames or masks")
    p.add_argument("--whole-frames", choices=("pad", "crop"), default=None,
                   help="no face needed: whole frames padded (pad) or centre-cropped (crop) to a square, "
                        "one clip per scene (any object: animals, bodies; for --engine perturbed_masks)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from puppetry.data.prepare import PrepareOptions, parse_shard, prepare_dataset

    shard = parse_shard(args.shard)
    options = PrepareOptions(size=args.size, crop_scale=args.crop_scale, min_frames=args.min_frames,
                             max_frames=args.max_frames, every=args.every, max_faces=args.max_faces,
                             identity=args.identity, landmarks_only=args.landmarks_only,
                             whole_frames=args.whole_frames)
    summary = prepare_dataset(args.videos, args.output, options, workers=args.workers, shard=shard)
    ok = summary.ok + summary.already_ok
    if summary.videos and not ok:
        raise MediaError(f"no video could be prepared ({summary.skipped + summary.already_skipped} skipped; "
                         f"reasons in {args.output}/report.jsonl)")
    print(f"{args.output}: {ok} videos ok, {summary.skipped + summary.already_skipped} skipped, "
          f"{summary.clips} new clips, {summary.frames} new frames")
    return 0
