"""Finding and strictly loading the LivePortrait release checkpoints.

The release (``pretrained_weights/liveportrait/``) holds::

    base_models/appearance_feature_extractor.pth     F, a plain state dict
    base_models/motion_extractor.pth                 M
    base_models/warping_module.pth                   W
    base_models/spade_generator.pth                  G
    retargeting_models/stitching_retargeting_module.pth
        {'retarget_shoulder': S, 'retarget_mouth': R_lip, 'retarget_eye': R_eyes},
        keys prefixed 'module.'

A checkpoint folder is given by ``--checkpoint-dir`` or ``PUPPETRY_LIVEPORTRAIT_DIR``; the folder may be
the one holding ``base_models/``, or any parent of it named as in the release (``liveportrait/``,
``pretrained_weights/liveportrait/``). Files are read with ``torch.load(weights_only=True)``, which
refuses anything but tensors and plain containers. Loading is strict: a missing, unexpected,
mis-shaped or wrongly typed tensor is an error that names it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch import nn

from puppetry.errors import WeightsError
from puppetry.methods.liveportrait import WEIGHTS_ENV as ENV_VAR
from puppetry.nn.weights import check_state_dict, read_state_dict

logger = logging.getLogger(__name__)

BASE_FILES = {
    "appearance_feature_extractor": "base_models/appearance_feature_extractor.pth",
    "motion_extractor": "base_models/motion_extractor.pth",
    "warping_module": "base_models/warping_module.pth",
    "spade_generator": "base_models/spade_generator.pth",
}
RETARGETING_FILE = "retargeting_models/stitching_retargeting_module.pth"
RETARGETING_PARTS = {"stitching": "retarget_shoulder", "lip": "retarget_mouth", "eyes": "retarget_eye"}
# The LivePortraitModels attributes the release files fill, in file order.
RELEASE_MODULES = (*BASE_FILES, *RETARGETING_PARTS)
NESTINGS = ("", "liveportrait", "pretrained_weights/liveportrait")
MAX_FILE_BYTES = 2 * 1024 ** 3


def _needed() -> str:
    files = list(BASE_FILES.values()) + [RETARGETING_FILE]
    return ", ".join(files)


def find_checkpoint_dir(checkpoint_dir: str | os.PathLike | None = None) -> Path:
    """The folder holding ``base_models/`` (see the module docstring for what is accepted).

    Args:
        checkpoint_dir: a folder, or None to use ``$PUPPETRY_LIVEPORTRAIT_DIR``.
    Raises:
        WeightsError: no folder given, or the files are not there; the message lists what is needed.
    """
    if checkpoint_dir is None:
        checkpoint_dir = os.environ.get(ENV_VAR) or None
    if checkpoint_dir is None:
        raise WeightsError(
            "the liveportrait engine needs the LivePortrait release weights: pass --checkpoint-dir DIR or set "
            f"{ENV_VAR}=DIR, where DIR holds {_needed()} (the release's pretrained_weights/liveportrait folder); "
            "puppetry never downloads them")
    root = Path(checkpoint_dir).expanduser()
    if not root.is_dir():
        raise WeightsError(f"checkpoint folder '{root}' does not exist; it should hold {_needed()}")
    for nest in NESTINGS:
        candidate = root / nest if nest else root
        if (candidate / "base_models").is_dir():
            missing = [f for f in list(BASE_FILES.values()) + [RETARGETING_FILE] if not (candidate / f).is_file()]
            if missing:
                raise WeightsError(f"checkpoint folder '{candidate}' lacks {', '.join(missing)}")
            return candidate
    raise WeightsError(f"checkpoint folder '{root}' has no base_models/ folder; it should hold {_needed()} "
                       "(the release's pretrained_weights/liveportrait folder)")


def read_checkpoint(path: Path) -> dict:
    """``torch.load`` with ``weights_only=True`` on the CPU; any failure is a one-line WeightsError."""
    return read_state_dict(path, "checkpoint", MAX_FILE_BYTES)


def load_strict(module: nn.Module, state: dict, where: str) -> None:
    """Copy ``state`` into ``module``; every tensor must exist, match in shape and kind, and be finite.

    Raises:
        WeightsError naming the first offending tensors and ``where`` they came from.
    """
    own = module.state_dict()
    check_state_dict(state, own, where)
    for name, ref in own.items():
        value = state[name]
        if value.is_floating_point() != ref.is_floating_point():
            raise WeightsError(f"{where}: '{name}' has dtype {value.dtype}, expected {ref.dtype}")
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise WeightsError(f"{where}: '{name}' holds NaN or infinite values")
    module.load_state_dict({k: state[k].to(own[k].dtype) for k in own}, strict=True)


def load_release(modules: dict[str, nn.Module], root: Path) -> None:
    """Load the five release files from ``root`` into ``modules``, keyed like ``BASE_FILES`` and
    ``RETARGETING_PARTS`` (appearance_feature_extractor, ..., stitching, lip, eyes); strict."""
    for attr, rel in BASE_FILES.items():
        load_strict(modules[attr], read_checkpoint(root / rel), rel)
    parts = read_checkpoint(root / RETARGETING_FILE)
    for attr, key in RETARGETING_PARTS.items():
        if key not in parts or not isinstance(parts[key], dict):
            raise WeightsError(f"{RETARGETING_FILE}: missing part '{key}' (has {', '.join(map(str, parts))})")
        load_strict(modules[attr], strip_prefix(parts[key]), f"{RETARGETING_FILE}[{key}]")
    extra = sorted(set(parts) - set(RETARGETING_PARTS.values()))
    if extra:
        raise WeightsError(f"{RETARGETING_FILE}: unexpected part(s) {', '.join(map(str, extra))}")


def strip_prefix(state: dict, prefix: str = "module.") -> dict:
    """Keys without a ``DistributedDataParallel`` prefix (keys lacking it are kept as they are)."""
    return {(k[len(prefix):] if isinstance(k, str) and k.startswith(prefix) else k): v for k, v in state.items()}
