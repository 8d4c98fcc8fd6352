"""The interface every method's training implements (methods list their recipes in their descriptor).

A :class:`Recipe` owns a method's modules, its stages (LD-Net has two, LivePortrait two, ...), the
optimisers of each stage and one optimisation step. The :class:`~puppetry.training.trainer.Trainer`
owns everything else: devices and processes, mixed precision, seeding, checkpoints and resume, logs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import nn
from torch.optim import Optimizer

if TYPE_CHECKING:
    from puppetry.training.trainer import Trainer


@dataclass(frozen=True)
class Stage:
    """One training stage: its name (used in logs and checkpoint names) and number of steps."""

    name: str
    steps: int


class Recipe(ABC):
    """A method's training procedure.

    Subclasses set ``name`` and ``config_class`` (a dataclass with a ``train:`` field of type
    :class:`~puppetry.training.config.TrainSettings`; its defaults are the paper's hyper-parameters)
    and are built with ``Recipe(config, data, trainer)``.
    """

    name: str = ""
    config_class: type = object

    def __init__(self, config: Any, data: Path, trainer: "Trainer"):
        self.config = config
        self.data = Path(data)
        self.trainer = trainer

    @abstractmethod
    def stages(self) -> list[Stage]:
        """The stages, in order."""

    @abstractmethod
    def modules(self) -> dict[str, nn.Module]:
        """Every module whose weights are checkpointed (plain modules, not DDP wrappers)."""

    @abstractmethod
    def start_stage(self, stage: Stage) -> dict[str, Optimizer]:
        """Prepare ``stage`` (freeze, wrap for DDP) and return its optimisers by name."""

    @abstractmethod
    def train_step(self, stage: Stage, step: int, rng: np.random.Generator) -> dict[str, float]:
        """One optimisation step; ``rng`` is this process's data generator for this step.

        Returns the scalars to log (losses). Call ``self.trainer.optimize(loss, name)`` for updates.
        """

    def samples(self, stage: Stage) -> dict[str, np.ndarray]:
        """Images (``H x W x 3`` uint8) for TensorBoard; none by default."""
        return {}

    def export(self, run_dir: Path) -> Path | None:
        """Write the inference weights at the end of training; returns their path."""
        return None
