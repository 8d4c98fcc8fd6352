"""Engine flags on the command line, made from the methods' descriptors (no method is named here)."""

from __future__ import annotations

import argparse
from typing import Any

from puppetry.methods.registry import command_options, get_method


def add_engine_flags(parser: argparse.ArgumentParser, command: str) -> None:
    """Add every engine option ``command`` offers, in one group per method (a shared flag, once)."""
    groups: dict[str, Any] = {}
    for option, owners in command_options(command):
        title = (f"--engine {owners[0]}: {get_method(owners[0]).summary}" if len(owners) == 1 else
                 f"--engine {' and '.join(owners)}")
        group = groups.setdefault(title, parser.add_argument_group(title))
        if option.switch is not None:
            group.add_argument(option.flag, dest=option.dest, action="store_true", help=option.help)
        else:
            group.add_argument(option.flag, dest=option.dest, type=option.type, choices=option.choices,
                               help=option.help)
