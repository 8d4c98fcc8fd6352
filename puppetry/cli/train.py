"""``puppetry train METHOD --data DATASET -o RUN``: train a method on a prepared dataset.

Multi-GPU or multi-node: start the same command under ``torchrun``, e.g.
``torchrun --nproc-per-node 4 -m puppetry train ldnet --data D -o RUN``.
"""

from __future__ import annotations

import argparse
import logging

from puppetry.methods.registry import get_recipe, recipe_names

logger = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a method on a prepared dataset",
                       description="Train METHOD on a dataset made by 'puppetry prepare'. Without --config the "
                                   "paper's hyper-parameters are used. Run under torchrun for several GPUs or "
                                   "machines.")
    p.add_argument("method", help=f"method to train: {', '.join(recipe_names())}")
    p.add_argument("--data", required=True, help="prepared dataset folder (puppetry prepare)")
    p.add_argument("-o", "--output", required=True, help="run folder: checkpoints, TensorBoard logs, report")
    p.add_argument("--config", help="YAML config (default: the paper's hyper-parameters)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value, e.g. --set stage1.steps=2000 (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue the run in --output from its last checkpoint")
    p.add_argument("--stop-after", type=int, metavar="STEPS",
                   help="checkpoint and stop after this many steps (continue later with --resume)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from puppetry.training.distributed import shutdown_distributed
    from puppetry.training.trainer import Trainer

    if args.stop_after is not None and args.stop_after < 1:
        raise ValueError("--stop-after must be at least 1")
    trainer, finished = None, False
    try:
        trainer = Trainer(get_recipe(args.method), args.data, args.output, args.config, args.overrides, args.resume,
                          args.stop_after)
        if not trainer.ctx.is_main:
            logging.getLogger("puppetry").setLevel(logging.WARNING)
        exported = trainer.fit()
        if exported is not None:
            logger.info("trained %s: %s", args.method, exported)
        finished = True
    finally:
        if trainer is not None:
            trainer.close()
        del trainer
        shutdown_distributed(wait=finished)
    return 0
