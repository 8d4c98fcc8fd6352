"""Where a learned engine's weights file is: its flag, else a weights folder (the web app's), else an
environment variable; one line that names the flag and the training command when none is given."""

from __future__ import annotations

import os
from pathlib import Path

from puppetry.errors import WeightsError


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
