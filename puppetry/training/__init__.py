"""Training shared by every method: YAML configs, the loop, checkpoints and resume, DDP, logs.

``puppetry train METHOD --data DATASET -o RUN`` runs a method's :class:`Recipe` with the :class:`Trainer`;
the recipe classes are found through :func:`puppetry.methods.registry.get_recipe`.
"""

from puppetry.training.config import ConfigError, TrainSettings, load_config
from puppetry.training.recipe import Recipe, Stage
from puppetry.training.trainer import Trainer

__all__ = ["ConfigError", "Recipe", "Stage", "Trainer", "TrainSettings", "load_config"]
