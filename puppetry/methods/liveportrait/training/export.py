"""Trained LivePortrait weights in the release's layout, and loading them back.

``RUN/liveportrait/`` receives the five files of the release (see :mod:`puppetry.methods.liveportrait.checkpoints`)
with the release's tensor names, plus ``training_config.yaml`` (the network sizes). With the release's
sizes, ``puppetry animate --engine liveportrait --checkpoint-dir RUN/liveportrait`` loads them as it
loads the release; other sizes load with :func:`load_exported` (which
:class:`~puppetry.methods.liveportrait.engine.LivePortraitEngine` accepts as ``models=``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import yaml
from torch import nn

from puppetry.errors import WeightsError, first_line
from puppetry.methods.liveportrait.checkpoints import (BASE_FILES, RELEASE_MODULES, RETARGETING_FILE, RETARGETING_PARTS,
                                               find_checkpoint_dir, load_release)
from puppetry.methods.liveportrait.models import LivePortraitModels, RuntimeOptions
from puppetry.methods.liveportrait.training.config import ModelSettings, is_release_size, liveportrait_config
from puppetry.methods.liveportrait.training.networks import RELEASE_NAMES, RETARGETING_NAMES, build_motion_extractor
from puppetry.training.checkpoint import save_checkpoint
from puppetry.training.config import ConfigError, from_dict, to_dict

logger = logging.getLogger(__name__)

FOLDER = "liveportrait"
CONFIG_FILE = "training_config.yaml"
FORMAT = "puppetry-liveportrait-train"


def _plain(module: nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    return {prefix + k: v.detach().cpu().clone().contiguous() for k, v in module.state_dict().items()}


def export_release(nets: dict[str, nn.Module], model: ModelSettings, folder: Path) -> Path:
    """Write F, M, W, G and S / R_lip / R_eyes (keys prefixed ``module.`` as in the release) to ``folder``."""
    for name, attr in RELEASE_NAMES.items():
        save_checkpoint(folder / BASE_FILES[attr], _plain(nets[name]))
    parts = {RETARGETING_PARTS[attr]: _plain(nets[name], "module.") for name, attr in RETARGETING_NAMES.items()}
    save_checkpoint(folder / RETARGETING_FILE, parts)
    release = is_release_size(model)
    (folder / CONFIG_FILE).write_text(yaml.safe_dump(
        {"format": FORMAT, "release_sizes": release, "model": to_dict(model)}, sort_keys=False))
    if release:
        logger.info("wrote %s: load it with puppetry animate --engine liveportrait --checkpoint-dir %s", folder, folder)
    else:
        logger.warning("wrote %s with non-release network sizes (see %s): --engine liveportrait cannot load it; "
                       "use puppetry.methods.liveportrait.training.export.load_exported", folder, CONFIG_FILE)
    return folder


def load_exported(folder: str | Path, runtime: RuntimeOptions = RuntimeOptions()) -> LivePortraitModels:
    """All networks of an exported run, at the sizes its ``training_config.yaml`` names (strict loading).

    Raises:
        WeightsError: files missing, unreadable or not matching the sizes (one line).
    """
    root = find_checkpoint_dir(folder)
    model = ModelSettings()
    cfg_file = root / CONFIG_FILE
    if cfg_file.is_file():
        try:
            data = yaml.safe_load(cfg_file.read_text())
            model = from_dict(ModelSettings, data["model"], "model")
        except (yaml.YAMLError, KeyError, TypeError, ConfigError) as exc:
            first = first_line(exc)
            raise WeightsError(f"{cfg_file} is not a LivePortrait training config: {first}") from None
    models = LivePortraitModels(liveportrait_config(model))
    models.motion_extractor = build_motion_extractor(model)
    load_release({attr: getattr(models, attr) for attr in RELEASE_MODULES}, root)
    models.eval().requires_grad_(False)
    return models.configure(runtime)
