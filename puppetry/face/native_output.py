"""Keeping MediaPipe's and TensorFlow Lite's native log lines off the user's terminal.

MediaPipe's C++ graph and the TensorFlow Lite runtime write straight to file descriptor 2 when a model
is built and when it first runs (``INFO: Created TensorFlow Lite XNNPACK delegate``, ``W0000 ...
inference_feedback_manager``, ``WARNING: All log messages before absl::InitializeLog()``). Their
environment variables (``GLOG_minloglevel``, ``TF_CPP_MIN_LOG_LEVEL``) no longer reach those lines, so
:func:`silenced` points descriptor 2 at ``/dev/null`` for the length of a ``with`` block: the
detectors wrap their construction and their first frames (:data:`QUIET_FRAMES`; for Face Mesh, its first
frames with a face, since its landmark model starts with the first face) in it. ``puppetry --verbose`` (or
:func:`show_native_output`) lets the lines through again.

Python's own ``sys.stderr`` writes go through descriptor 2 as well; they are flushed before the
redirect, and the window is kept to model construction and the first frames, so puppetry's own lines
are not lost in practice.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Iterator

QUIET_FRAMES = 3        # frames a new model runs silenced: its threads may log a little after the first
_lock = threading.RLock()
_show = False


def show_native_output(show: bool = True) -> None:
    """Let the native log lines through (True) or keep them silenced (False, the default)."""
    global _show
    _show = bool(show)


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    """Send file descriptor 2 to ``/dev/null`` inside the block (a no-op after ``show_native_output()``)."""
    if _show:
        yield
        return
    with _lock:                               # one redirect at a time; re-entrant for nested blocks
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, 2)
            finally:
                os.close(devnull)
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
