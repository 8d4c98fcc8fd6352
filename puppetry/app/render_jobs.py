"""Renders that stop when the page that asked for them goes away.

Gradio runs a plain function in a worker thread that nothing can stop: a client that cancels its request
(``/cancel``) or closes the page left its render running to the end, holding one of the few render slots
(:attr:`~puppetry.app.sessions.AppConfig.concurrency`) for minutes and writing a result nobody fetches.

:class:`RenderJobs` runs each render in a thread of its own with a stop event, and sets the event when the
request's task is cancelled or when :meth:`RenderJobs.stop` is called for its session (the page's ``unload``
event, sent when the browser tab or the client closes). The pipeline checks the event before every frame
(``animate(..., stop=event)``) and raises :class:`~puppetry.errors.Cancelled`, which unwinds the render like
any error: the half-written video is deleted and :func:`~puppetry.app.sessions.run_render` removes the
render's folder. A result that was already done when the stop came is handed to ``discard``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Callable, Generic, TypeVar

from puppetry.errors import PuppetryError

logger = logging.getLogger(__name__)

T = TypeVar("T")
POLL_S = 0.5          # how often a waiting request also checks that its render thread is alive


class RenderStopped(PuppetryError):
    """A render was stopped because its page went away (:meth:`RenderJobs.stop`)."""


class _Job(Generic[T]):
    """One render in its own daemon thread; the event loop learns of its end through a future."""

    def __init__(self, work: Callable[[threading.Event], T], loop: asyncio.AbstractEventLoop):
        self.work = work
        self.loop = loop
        self.result: T | None = None
        self.error: BaseException | None = None
        self.stopped: str | None = None
        self.stop_event = threading.Event()
        self._done: asyncio.Future = loop.create_future()
        self._thread = threading.Thread(target=self._run, name="puppetry-render", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            self.result = self.work(self.stop_event)
        except BaseException as exc:                  # kept for the waiting request
            self.error = exc
        try:
            self.loop.call_soon_threadsafe(self._settle)
        except RuntimeError:                          # the loop has closed (the server stopped)
            pass

    def _settle(self) -> None:
        if not self._done.done():
            self._done.set_result(None)

    async def finished(self) -> None:
        """Wait for the thread's end (the future, or the thread seen dead should the loop have missed it)."""
        while not self._done.done() and self._thread.is_alive():
            await asyncio.wait([self._done], timeout=POLL_S)

    def stop(self, reason: str) -> None:
        """Ask the render to stop before its next frame (the first reason given is kept)."""
        if self.stopped is None:
            self.stopped = reason
            self.stop_event.set()
            logger.info("stopping a render: %s", reason)


class RenderJobs:
    """The renders running now, by session (the page's ``session_hash``)."""

    def __init__(self):
        self._jobs: dict[str, set[_Job]] = {}
        self._lock = threading.Lock()

    def running(self) -> int:
        """How many renders run now."""
        with self._lock:
            return sum(len(jobs) for jobs in self._jobs.values())

    def stop(self, session: str | None, reason: str) -> int:
        """Stop every render of ``session``; returns how many were running."""
        with self._lock:
            jobs = list(self._jobs.get(session or "", ()))
        for job in jobs:
            job.stop(reason)
        return len(jobs)

    async def run(self, session: str | None, work: Callable[[threading.Event], T],
                  discard: Callable[[T], None] = lambda result: None) -> T:
        """``work(stop_event)`` in a thread of its own; the event is set when this request is cancelled or its
        session stopped.

        Returns what ``work`` returned, or raises what it raised. Raises :class:`RenderStopped` after
        :meth:`stop`, and re-raises ``asyncio.CancelledError`` once the stopped render has unwound; a result
        that came anyway goes to ``discard``.
        """
        job = _Job(work, asyncio.get_running_loop())
        key = session or ""
        with self._lock:
            self._jobs.setdefault(key, set()).add(job)
        try:
            job.start()
            try:
                await job.finished()
            except asyncio.CancelledError:
                job.stop("the request was cancelled")
                await job.finished()                   # the render unwinds (and cleans up) before the slot frees
                self._discard(job, discard)
                raise
        finally:
            with self._lock:
                jobs = self._jobs.get(key)
                if jobs is not None:
                    jobs.discard(job)
                    if not jobs:
                        del self._jobs[key]
        if job.stopped is not None:
            self._discard(job, discard)
            raise RenderStopped(f"the render was stopped: {job.stopped}")
        if job.error is not None:
            raise job.error
        return job.result                               # type: ignore[return-value]

    @staticmethod
    def _discard(job: _Job, discard: Callable) -> None:
        if job.result is not None:
            try:
                discard(job.result)
            except Exception:                           # clean-up of a result nobody fetches: never fatal
                logger.exception("could not discard a stopped render's result")
