"""Training shared by every method: YAML configs, the loop, checkpoints and resume, DDP, logs.

``puppetry train METHOD --data DATASET -o RUN`` runs a method's :class:`Recipe` with the :class:`Trainer`.
"""

from puppetry.training.config import ConfigError, TrainSettings, load_config
from puppetry.training.recipe import METHODS, Recipe, Stage, get_recipe
from puppetry.training.trainer import Trainer

__all__ = ["ConfigError", "METHODS", "Recipe", "Stage", "Trainer", "TrainSettings", "get_recipe", "load_config"]
