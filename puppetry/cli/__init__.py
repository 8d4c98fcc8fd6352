"""The ``puppetry`` command: ``animate``, ``template``, ``bench``, ``prepare``, ``train``, ``evaluate``, ``serve``,
and the commands methods add (``synthesize``).

Errors a user can cause print one line (``puppetry: error: ...``) and exit with status 2; nothing is
left half-written. ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import linecache
import logging
import os
import sys

from puppetry.cli import animate as animate_cmd
from puppetry.cli import bench as bench_cmd
from puppetry.cli import evaluate as evaluate_cmd
from puppetry.cli import prepare as prepare_cmd
from puppetry.cli import serve as serve_cmd
from puppetry.cli import template as template_cmd
from puppetry.cli import train as train_cmd
from puppetry.errors import PuppetryError
from puppetry.face.native_output import show_native_output
from puppetry.methods.descriptor import load
from puppetry.methods.registry import methods

logger = logging.getLogger("puppetry")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="puppetry", description="Bring a single portrait to life.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also show MediaPipe's and TensorFlow Lite's native log lines (hidden by default)")
    sub = parser.add_subparsers(dest="command", required=True)
    animate_cmd.add_parser(sub)
    template_cmd.add_parser(sub)
    bench_cmd.add_parser(sub)
    prepare_cmd.add_parser(sub)
    train_cmd.add_parser(sub)
    evaluate_cmd.add_parser(sub)
    serve_cmd.add_parser(sub)
    for method in methods():                      # commands of a method's own (puppetry synthesize)
        for add in method.commands.values():
            load(add)(sub)
    return parser


PACKAGE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "")


def raised_by_puppetry(exc: BaseException) -> bool:
    """Whether ``exc`` was raised by a ``raise`` statement of puppetry's own code (or by argparse), not by a
    library underneath: a ValueError we raise is a message for the user, one from numpy or PyAV (or a numpy
    operation failing on a line of ours) is a bug that reached the surface."""
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last, tb = tb, tb.tb_next
    if last is None:
        return True
    filename = last.tb_frame.f_code.co_filename
    if filename.endswith("argparse.py"):
        return True
    # ours: a ``raise`` statement in puppetry's code; an expression that failed in numpy's C code stops there too
    return filename.startswith(PACKAGE_DIR) and linecache.getline(filename, last.tb_lineno).lstrip().startswith("raise")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.debug else (logging.WARNING if args.quiet else logging.INFO)
    logging.basicConfig(level=level, format="puppetry: %(message)s", stream=sys.stderr)
    show_native_output(args.verbose or args.debug)
    try:
        return int(args.run(args) or 0)
    except PuppetryError as exc:
        if args.debug:
            raise
        print(f"puppetry: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("puppetry: interrupted", file=sys.stderr)
        return 130
    except ValueError as exc:            # bad option values that reached the library
        if args.debug:
            raise
        if not raised_by_puppetry(exc):   # numpy, PyAV, a codec...: a case our code did not foresee
            print(f"puppetry: error: unexpected {type(exc).__name__}: {exc} (rerun with --debug for details)",
                  file=sys.stderr)
            return 1
        print(f"puppetry: error: {exc}", file=sys.stderr)
        return 2
    except MemoryError:
        print("puppetry: error: out of memory; try a smaller --max-size", file=sys.stderr)
        return 1
    except Exception as exc:             # a bug: still one line, with a way to see more
        if args.debug:
            raise
        print(f"puppetry: error: unexpected {type(exc).__name__}: {exc} (rerun with --debug for details)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
