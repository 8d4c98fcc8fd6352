"""Stopping a running animation from another thread: the caller sets an event, the loop checks it per frame."""

from __future__ import annotations

import threading

from puppetry.errors import Cancelled


def check_stop(stop: threading.Event | None) -> None:
    """Raise :class:`~puppetry.errors.Cancelled` when ``stop`` is set (the loops call it before every frame;
    the frame sink then removes what was written)."""
    if stop is not None and stop.is_set():
        raise Cancelled("stopped before it finished")
