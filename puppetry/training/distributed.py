"""Multi-process training under ``torchrun``: process group, device choice, DDP wrapping.

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address; without them the
run is a single process and nothing here talks to a network. CUDA processes use NCCL and one GPU per
local rank; CPU processes use gloo (that is how the tests run two processes on one machine).
"""

from __future__ import annotations

import gc
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from puppetry.training.config import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in the run.

    Attributes:
        rank: global rank (0 writes logs and checkpoints).
        world_size: number of processes.
        local_rank: rank on this machine (picks the GPU).
        device: the torch device this process trains on.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` as a device; ``cuda`` picks the local rank's GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if not name.startswith("cuda"):
        raise ConfigError(f"train.device must be auto, cpu, cuda or cuda:N, got {name!r}")
    if not torch.cuda.is_available():
        raise ConfigError(f"train.device is {name} but this PyTorch sees no CUDA GPU; use cpu")
    if name == "cuda":
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    try:
        index = int(name.split(":", 1)[1])
    except ValueError:
        raise ConfigError(f"bad device {name!r}; use cuda:N") from None
    if index >= torch.cuda.device_count():
        raise ConfigError(f"{name} does not exist; this machine has {torch.cuda.device_count()} GPU(s)")
    return torch.device("cuda", index)


def init_distributed(device: str = "auto") -> DistributedContext:
    """Join the ``torchrun`` process group when there is one, else a single-process context."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend=backend)
        logger.info("rank %d/%d joined the %s process group on %s", rank, world_size, backend, dev)
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def shutdown_distributed(wait: bool = True) -> None:
    """Leave the process group; with ``wait``, once every process has arrived (so none tears gloo down
    mid-call). After an error, ``wait=False`` leaves at once: the other processes may never arrive.

    Drop DDP wrappers first (``Trainer.close``): a reducer that outlives the group can abort the
    process at interpreter exit.
    """
    if dist.is_initialized():
        gc.collect()
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def barrier(ctx: DistributedContext) -> None:
    if ctx.distributed:
        dist.barrier()


def wrap_ddp(module: nn.Module, ctx: DistributedContext) -> nn.Module:
    """``module`` on the context's device, wrapped in DistributedDataParallel when the run has several
    processes (gradients are then averaged over processes during ``backward``)."""
    module = module.to(ctx.device)
    if not ctx.distributed or not any(p.requires_grad for p in module.parameters()):
        return module
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)


def unwrap(module: nn.Module) -> nn.Module:
    """The plain module inside a DDP wrapper (for checkpoints and frozen use)."""
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def mean_over_processes(values: dict[str, float], ctx: DistributedContext) -> dict[str, float]:
    """Average scalar logs over processes (so rank 0 logs the whole run's losses)."""
    if not ctx.distributed or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    if ctx.device.type == "cuda":
        t = t.to(ctx.device)
    dist.all_reduce(t)
    return {k: float(v) / ctx.world_size for k, v in zip(keys, t.cpu().tolist())}
