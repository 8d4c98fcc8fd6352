"""User-facing errors.

Every failure a user can cause (bad path, corrupt media, no face, unknown motion name) is raised as a
:class:`PuppetryError` subclass whose message is one line that says what went wrong and what to do.
The CLI prints that line and exits non-zero; it never shows a traceback for these.
"""


class PuppetryError(Exception):
    """Base class of every error puppetry reports to a user."""


class MediaError(PuppetryError):
    """A file could not be read or written as media (missing, corrupt, empty, too large)."""


class NoFaceError(PuppetryError):
    """No face was found where one is required."""


class MotionError(PuppetryError):
    """A driving signal could not be turned into motion (unknown name, bad template)."""


class WeightsError(PuppetryError):
    """Weights an engine needs are missing or do not match."""


class Cancelled(PuppetryError):
    """The caller asked a running job to stop (``animate(..., stop=event)``); what it wrote is removed."""


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message, or its class name when it has none (for one-line
    errors that quote a library's message)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def reason(exc: BaseException) -> str:
    """An OS error's own text (``strerror``, without the errno) or else :func:`first_line` (media errors)."""
    return str(getattr(exc, "strerror", None) or first_line(exc))
