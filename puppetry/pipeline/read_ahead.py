"""Read a driving video ahead of the engine, on a thread of its own.

Decoding a driving frame and finding its face (Face Mesh, smoothing) do not depend on what the engine
does with the previous frame, so :func:`read_ahead` runs them on a worker thread a frame or two ahead
while the engine renders: on two cores the loop's time per frame falls from the sum of the two sides
toward the slower one (``puppetry bench``). MediaPipe's graph, the larger part of the reading, releases
the GIL while it works (a Face Mesh thread and a pure-Python loop take the time of the slower of
the two), which is what lets the two sides overlap in one process; PyAV's decoding mostly holds it.

The frames, their order and every error are those of the wrapped iterator: an error raised on the
worker comes out of the consumer's ``next()`` as the same exception, and the worker closes the
iterator (its video and Face Mesh graph) on its own thread when the consumer stops early.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Iterator, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

_POLL_S = 0.05          # how often a worker blocked on a full queue checks whether the consumer left


def read_ahead(items: Iterator[T], depth: int = 2, name: str = "puppetry-read-ahead") -> Iterator[T]:
    """``items``, produced on a worker thread at most ``depth`` items ahead of the consumer.

    The worker starts at the first ``next()`` (an iterator never iterated starts no thread). Closing
    the returned generator early (``break``, an error in the consumer, garbage collection) stops the
    worker after the item it is producing and waits for it, so no thread outlives the iteration.

    Args:
        items: any iterator; a generator is advanced and closed only on the worker thread.
        depth: most items produced but not yet taken (memory: ``depth`` driving frames).
        name: the worker thread's name (for logs and debuggers).
    """
    if depth < 1:
        raise ValueError(f"read_ahead depth must be at least 1, got {depth}")
    ready: queue.Queue = queue.Queue(maxsize=depth)
    leave = threading.Event()

    def hand_over(entry: tuple) -> bool:
        while not leave.is_set():
            try:
                ready.put(entry, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not hand_over((True, item)):
                    return
            hand_over((False, None))
        except BaseException as exc:          # handed to the consumer, raised there
            hand_over((False, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:             # the consumer has its frames or its error already
                    logger.debug("closing the read-ahead iterator failed", exc_info=True)

    worker = threading.Thread(target=work, name=name, daemon=True)
    worker.start()
    try:
        while True:
            more, value = ready.get()
            if more:
                yield value
            elif value is None:
                return
            else:
                raise value
    finally:
        leave.set()
        if threading.current_thread() is not worker:     # a garbage collection on the worker may close us
            worker.join()


__all__ = ["read_ahead"]
