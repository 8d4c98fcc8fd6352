"""A long-lived process that runs fuzz cases through ``puppetry.cli.main`` one at a time.

Reads one JSON line per case (``{"argv": [...]}``) from stdin and answers one JSON line ``{"rc", "stderr",
"peak_mb", "seconds"}`` on the file descriptor it was given. Python's stderr (where puppetry logs and
prints errors) is captured per case; stdout and native (C++) logging go to /dev/null. The peak resident
memory of each case is the process's high-water mark, reset before the case (``/proc/self/clear_refs``).
A crash or hang kills the process; the harness starts a new one.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import time


class _Capture(io.TextIOBase):
    """A stream whose target is swapped per case (logging's handler keeps the stream it was given)."""

    def __init__(self) -> None:
        self.buffer_ = io.StringIO()

    def write(self, text: str) -> int:
        return self.buffer_.write(text)

    def take(self) -> str:
        text, self.buffer_ = self.buffer_.getvalue(), io.StringIO()
        return text


def _peak_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def main() -> None:
    answer = os.fdopen(int(sys.argv[1]), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    capture = _Capture()
    sys.stdout = io.StringIO()
    sys.stderr = capture
    logging.basicConfig(level=logging.INFO, format="puppetry: %(message)s", stream=capture)
    from puppetry.cli import main as cli

    for line in sys.stdin:
        case = json.loads(line)
        _reset_peak()
        start = time.perf_counter()
        try:
            rc = cli(case["argv"])
        except SystemExit as exc:               # argparse's usage errors
            rc = exc.code if isinstance(exc.code, int) else 2
        except BaseException as exc:            # noqa: BLE001 - anything escaping main is a finding
            capture.write(f"ESCAPED {type(exc).__name__}: {exc}\n")
            rc = -1
        sys.stdout = io.StringIO()
        answer.write(json.dumps({"rc": rc, "stderr": capture.take(), "peak_mb": _peak_mb(),
                                 "seconds": time.perf_counter() - start}) + "\n")


if __name__ == "__main__":
    main()
