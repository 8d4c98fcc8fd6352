"""Where a learned engine's weights file is: its flag, else a weights folder (the web app's), else an
environment variable; one line that names the flag and the training command when none is given."""

from __future__ import annotations

import os
from pathlib import Path

from puppetry.errors import WeightsError, first_line


def find_weights(given: str | None, weights_dir: str | None, filename: str, env: str, engine: str, flag: str,
                 train_command: str) -> Path:
    """``given``, else ``weights_dir/filename``, else ``$env``.

    Raises:
        WeightsError: none of the three is set (the message names ``flag`` and ``train_command``).
    """
    path = given or (str(Path(weights_dir) / filename) if weights_dir else None) or os.environ.get(env)
    if not path:
        raise WeightsError(f"--engine {engine} needs trained weights: pass {flag} RUN/{filename} (written by "
                           f"'{train_command}') or set ${env}; the default warp engine needs none")
    return Path(path).expanduser()


def read_weights(path: str | os.PathLike, weights_format: str, flag: str, what: str, train_command: str) -> dict:
    """The payload of a method's exported weights file (``torch.load`` with ``weights_only``, on the CPU).

    Args:
        path: the file.
        weights_format: the ``"format"`` tag the method's export writes.
        flag: the command-line flag that names the file (for messages).
        what: the weights' name in messages, e.g. ``"FD-GAN weights"``.
        train_command: the command that writes them.
    Raises:
        WeightsError: missing, unreadable, or another file than ``weights_format`` (one line each).
    """
    from puppetry.nn.weights import read_state_dict

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{flag}: '{path}' does not exist (train with '{train_command}')")
    payload = read_state_dict(path, what)
    if not isinstance(payload, dict) or payload.get("format") != weights_format:
        raise WeightsError(f"{flag}: '{path}' is not {what} (written by '{train_command}')")
    return payload


def read_settings(cls: type, payload: dict, key: str, flag: str, path: str | os.PathLike):
    """Dataclass ``cls`` from ``payload[key]`` of a weights file; a damaged or hand-edited one is one line."""
    from puppetry.training.config import from_dict

    try:
        return from_dict(cls, payload[key], key)
    except Exception as exc:  # noqa: BLE001 - any failure here is the file's
        raise WeightsError(f"{flag}: '{path}' has unreadable model settings: {first_line(exc)}") from None
