"""The training loop shared by every method: stages, steps, mixed precision, checkpoints, resume, logs.

One ``Trainer`` runs one method's :class:`~puppetry.training.recipe.Recipe` in one run folder::

    RUN/config.yaml          the config the run trains with
    RUN/checkpoints/         last.pt and the newest step checkpoints
    RUN/tensorboard/         scalars and sample images (``tensorboard --logdir RUN``)
    RUN/metrics.jsonl        the same scalars as JSON lines (for reports and scripts)

Under ``torchrun`` every process runs the same loop; DDP averages gradients, rank 0 writes the files.
Determinism: the data generator and torch's generator are re-seeded from ``(seed, rank, stage, step)``
at every step, so a resumed run draws exactly the batches an uninterrupted run would have drawn.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.distributed as dist
import yaml

from puppetry.errors import PuppetryError
from puppetry.training import checkpoint as ckpt
from puppetry.training.config import TrainSettings, load_config, to_dict
from puppetry.training.distributed import (DistributedContext, barrier, init_distributed, mean_over_processes,
                                           unwrap)
from puppetry.training.recipe import Recipe, Stage

logger = logging.getLogger(__name__)


class RunExistsError(PuppetryError):
    """The output folder already holds a run and ``--resume`` was not given."""


def step_seed(seed: int, rank: int, stage_index: int, step: int) -> int:
    """A 63-bit seed for one process's step (stable across runs and resumes)."""
    return int(np.random.SeedSequence([seed, rank, stage_index, step]).generate_state(2, np.uint64)[0]) >> 1


class Trainer:
    """Runs a recipe; see the module docstring for the files it writes.

    Args:
        recipe_cls: the method's recipe class (:func:`puppetry.methods.registry.get_recipe`); its
            ``name`` is the run's method name.
        data: prepared dataset folder (``puppetry prepare``).
        run_dir: output folder.
        config_path: YAML config (None: the paper's defaults).
        overrides: ``section.key=value`` strings.
        resume: continue the run in ``run_dir`` from ``checkpoints/last.pt``.
        stop_after: stop (with a checkpoint) after this many steps in this invocation, e.g. to fit a
            time-limited cluster job; None runs to the end.
    """

    def __init__(self, recipe_cls: type[Recipe], data: str | Path, run_dir: str | Path, config_path: str | Path | None = None,
                 overrides: list[str] = (), resume: bool = False, stop_after: int | None = None):
        self.run_dir = Path(run_dir)
        self.stop_after = stop_after
        method = recipe_cls.name
        last = self.run_dir / "checkpoints" / ckpt.LAST
        self.resume_state: dict[str, Any] | None = None
        if resume:
            if not last.is_file():
                raise PuppetryError(f"nothing to resume: {last} does not exist")
            if config_path is not None:
                raise PuppetryError("a resumed run trains with its saved config; change values with --set")
            self.resume_state = ckpt.load_checkpoint(last)
            if self.resume_state.get("method") != method:
                raise PuppetryError(f"{self.run_dir} holds a '{self.resume_state.get('method')}' run, not '{method}'")
            config = load_config(recipe_cls.config_class, None, overrides, base=self.resume_state["config"])
        else:
            if last.is_file():
                raise RunExistsError(f"{self.run_dir} already holds a run; pass --resume to continue it "
                                     "or choose another output folder")
            config = load_config(recipe_cls.config_class, config_path, overrides)
        self.config = config
        self.settings: TrainSettings = config.train
        self.ctx: DistributedContext = init_distributed(self.settings.device)
        if self.settings.precision == "fp16" and self.ctx.device.type != "cuda":
            raise PuppetryError("train.precision fp16 needs a CUDA device; use fp32 or bf16 on CPU")
        if self.settings.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
        torch.manual_seed(self.settings.seed + self.ctx.rank)
        self.method = method
        self.recipe: Recipe = recipe_cls(config, Path(data), self)
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        self._writer = None
        self._stop_signal = False
        self.global_step = 0

    # ----------------------------------------------------------------------------------------- helpers
    @property
    def device(self) -> torch.device:
        return self.ctx.device

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed-precision context for forward passes (a no-op in fp32)."""
        precision = self.settings.precision
        if precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.float16 if precision == "fp16" else torch.bfloat16
        return torch.autocast(self.device.type, dtype=dtype)

    def optimize(self, loss: torch.Tensor, name: str) -> None:
        """Backward ``loss`` and step optimiser ``name`` (gradients averaged over processes by DDP)."""
        opt = self.optimizers[name]
        scaler = self.scalers[name]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    # -------------------------------------------------------------------------------------- checkpoints
    def _payload(self, stage_index: int, stage: Stage, step: int) -> dict[str, Any]:
        return {
            "format": "puppetry-train", "method": self.method, "config": to_dict(self.config),
            "stage_index": stage_index, "stage": stage.name, "step": step, "global_step": self.global_step,
            "world_size": self.ctx.world_size,
            "modules": {k: unwrap(m).state_dict() for k, m in self.recipe.modules().items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "scalers": {k: s.state_dict() for k, s in self.scalers.items()},
            "rng": ckpt.rng_state(),
        }

    def save(self, stage_index: int, stage: Stage, step: int) -> None:
        if self.ctx.is_main:
            folder = self.run_dir / "checkpoints"
            payload = self._payload(stage_index, stage, step)
            if self.settings.keep_checkpoints:
                ckpt.save_checkpoint(folder / ckpt.step_name(stage.name, step), payload)
                ckpt.prune(folder, self.settings.keep_checkpoints)
            ckpt.save_checkpoint(folder / ckpt.LAST, payload)
            logger.info("checkpoint: %s step %d", stage.name, step)
        barrier(self.ctx)

    # ------------------------------------------------------------------------------------------ logging
    def _log(self, stage: Stage, step: int, scalars: dict[str, float]) -> None:
        scalars = mean_over_processes(scalars, self.ctx)
        if not self.ctx.is_main:
            return
        if self._writer is not None:
            for k, v in scalars.items():
                self._writer.add_scalar(f"{stage.name}/{k}", v, self.global_step)
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"stage": stage.name, "step": step, "global_step": self.global_step,
                                **{k: round(v, 7) for k, v in scalars.items()}}) + "\n")

    def _log_samples(self, stage: Stage) -> None:
        if self.ctx.is_main and self._writer is not None:
            for name, image in self.recipe.samples(stage).items():
                self._writer.add_image(f"{stage.name}/{name}", image, self.global_step, dataformats="HWC")

    def _open_logs(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if not self.ctx.is_main:
            return
        (self.run_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(self.config), sort_keys=False))
        from torch.utils.tensorboard import SummaryWriter
        self._writer = SummaryWriter(str(self.run_dir / "tensorboard"))

    # ----------------------------------------------------------------------------------------- the loop
    def _should_stop(self, steps_this_run: int) -> bool:
        stop = self._stop_signal or (self.stop_after is not None and steps_this_run >= self.stop_after)
        if self.ctx.distributed:               # every process must stop at the same step
            flag = torch.tensor([1.0 if stop else 0.0], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = bool(flag.item())
        return stop

    def _on_signal(self, signum, frame) -> None:
        logger.warning("signal %d: checkpointing and stopping after this step", signum)
        self._stop_signal = True

    def _resume_point(self, stages: list[Stage]) -> tuple[int, int]:
        if self.resume_state is None:
            return 0, 0
        st = self.resume_state
        names = [s.name for s in stages]
        if st["stage"] not in names:
            raise PuppetryError(f"checkpoint stage {st['stage']!r} is not a stage of {self.method}")
        return names.index(st["stage"]), int(st["step"])

    def _restore(self, stage_index: int, first_stage: int) -> None:
        st = self.resume_state
        if st is None or stage_index != first_stage:
            return
        for name, module in self.recipe.modules().items():
            unwrap(module).load_state_dict(st["modules"][name])
        for name, opt in self.optimizers.items():
            if name in st["optimizers"]:
                opt.load_state_dict(st["optimizers"][name])
        for name, scaler in self.scalers.items():
            if name in st.get("scalers", {}):
                scaler.load_state_dict(st["scalers"][name])
        ckpt.set_rng_state(st["rng"])
        self.global_step = int(st["global_step"])

    def _steps(self, stage: Stage, start: int) -> Iterator[int]:
        bar = None
        if self.ctx.is_main and sys.stderr.isatty():
            from tqdm import tqdm
            bar = tqdm(total=stage.steps, initial=start, desc=stage.name, unit="step")
        try:
            for step in range(start, stage.steps):
                yield step
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()

    def close(self) -> None:
        """Release the DDP wrappers and optimisers (before leaving the process group)."""
        self.optimizers, self.scalers = {}, {}
        if hasattr(self.recipe, "ddp"):
            self.recipe.ddp = {}

    def fit(self) -> Path | None:
        """Train every remaining stage; returns the exported inference weights (None if stopped early)."""
        stages = self.recipe.stages()
        first_stage, first_step = self._resume_point(stages)
        self._open_logs()
        old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1)}
        for s in old:
            signal.signal(s, self._on_signal)
        steps_this_run = 0
        try:
            if self.resume_state is not None:
                # Modules of finished stages (e.g. a frozen encoder) come back before the current stage starts.
                for name, module in self.recipe.modules().items():
                    unwrap(module).load_state_dict(self.resume_state["modules"][name])
            for si in range(first_stage, len(stages)):
                stage = stages[si]
                self.optimizers = self.recipe.start_stage(stage)
                enabled = self.settings.precision == "fp16"
                self.scalers = {k: torch.amp.GradScaler(self.device.type, enabled=enabled) for k in self.optimizers}
                self._restore(si, first_stage)
                start = first_step if si == first_stage else 0
                if start < stage.steps:
                    logger.info("stage %s: steps %d-%d on %d process(es), %s", stage.name, start, stage.steps,
                                self.ctx.world_size, self.device)
                t0, done = time.perf_counter(), 0
                for step in self._steps(stage, start):
                    seed = step_seed(self.settings.seed, self.ctx.rank, si, step)
                    torch.manual_seed(seed)
                    scalars = self.recipe.train_step(stage, step, np.random.default_rng(seed))
                    self.global_step += 1
                    steps_this_run += 1
                    done += 1
                    finished = step + 1
                    if finished % self.settings.log_every == 0 or finished == stage.steps:
                        self._log(stage, finished, scalars)
                        if self.ctx.is_main and not sys.stderr.isatty():
                            rate = done / max(time.perf_counter() - t0, 1e-9)
                            logger.info("%s %d/%d  %s  (%.1f steps/s)", stage.name, finished, stage.steps,
                                        "  ".join(f"{k} {v:.4g}" for k, v in scalars.items()), rate)
                    if finished % self.settings.sample_every == 0 or finished == stage.steps:
                        self._log_samples(stage)
                    if self._should_stop(steps_this_run) and finished < stage.steps:
                        self.save(si, stage, finished)
                        logger.info("stopped at %s step %d; continue with --resume", stage.name, finished)
                        return None
                    if finished % self.settings.checkpoint_every == 0 and finished < stage.steps:
                        self.save(si, stage, finished)
                if start < stage.steps or si != first_stage:
                    self.save(si, stage, stage.steps)
            exported = self.recipe.export(self.run_dir) if self.ctx.is_main else None
            barrier(self.ctx)
            return exported
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            if self._writer is not None:
                self._writer.close()
