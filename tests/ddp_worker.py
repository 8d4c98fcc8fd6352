"""Run by tests/test_training.py under ``torchrun --nproc-per-node 2`` (CPU, gloo). Not a test module.

``grads OUT``: every process computes LD-Net's generator loss on its own data; the gradients DDP leaves
after ``backward`` are compared with the mean of every process's local (un-averaged) gradients.

``train OUT DATA STOP RESUME SET...``: ``puppetry.training.Trainer`` on LD-Net; each process saves its
final module weights to ``OUT/rankR.pt`` so the test can check that the processes stayed identical.
``train_recipe NAME OUT DATA STOP RESUME SET...``: the same with recipe ``NAME`` (``fdgan``).
"""

from __future__ import annotations

import copy
import json
import sys

import torch
import torch.distributed as dist


def grads(out: str) -> None:
    from puppetry.methods.ldnet.config import LDNetModel
    from puppetry.methods.ldnet.networks import Generator
    from puppetry.training.distributed import init_distributed, shutdown_distributed, wrap_ddp

    ctx = init_distributed("cpu")
    torch.manual_seed(0)                                   # same initial weights everywhere
    model = Generator(LDNetModel(hidden=32, layers=2, landmarks="dlib68"))
    local = copy.deepcopy(model)
    ddp = wrap_ddp(model, ctx)
    torch.manual_seed(100 + ctx.rank)                      # different data on each process
    pose, ident, target = torch.randn(8, 64), torch.randn(8, 128), torch.randn(8, 68, 2)

    ((local(pose, ident) - target) ** 2).mean().backward()
    ((ddp(pose, ident) - target) ** 2).mean().backward()
    local_grad = torch.cat([p.grad.flatten() for p in local.parameters()])
    ddp_grad = torch.cat([p.grad.flatten() for p in model.parameters()])
    gathered = [torch.zeros_like(local_grad) for _ in range(ctx.world_size)]
    dist.all_gather(gathered, local_grad)
    mean = torch.stack(gathered).mean(0)
    result = {"rank": ctx.rank, "world_size": ctx.world_size,
              "ddp_vs_mean": float((ddp_grad - mean).abs().max()),
              "local_vs_mean": float((local_grad - mean).abs().max()),
              "grad_scale": float(mean.abs().max())}
    with open(f"{out}/grads{ctx.rank}.json", "w") as f:
        json.dump(result, f)
    del ddp                                # its reducer holds the process group: release it first
    shutdown_distributed()


def train(out: str, data: str, stop: str, resume: str, *overrides: str, recipe: str = "ldnet") -> None:
    from puppetry.methods.registry import get_recipe
    from puppetry.training.distributed import shutdown_distributed
    from puppetry.training.trainer import Trainer

    trainer = Trainer(get_recipe(recipe), data, out, None, list(overrides), resume == "1",
                      None if stop == "-" else int(stop))
    trainer.fit()
    torch.save({k: v.state_dict() for k, v in trainer.recipe.nets.items()}, f"{out}/rank{trainer.ctx.rank}.pt")
    trainer.close()
    shutdown_distributed()


def train_recipe(recipe: str, *args: str) -> None:
    train(*args, recipe=recipe)


if __name__ == "__main__":
    {"grads": grads, "train": train, "train_recipe": train_recipe}[sys.argv[1]](*sys.argv[2:])
