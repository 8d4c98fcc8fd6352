"""Context managers for modules used but not trained in an update (frozen adversaries, fixed encoders)."""

from __future__ import annotations

import contextlib
from typing import Iterator

from torch import nn


@contextlib.contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Parameters of ``modules`` get no gradients inside the block (their inputs still do)."""
    params = [p for m in modules for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(params, flags):
            p.requires_grad_(f)


@contextlib.contextmanager
def evaluation(*modules: nn.Module) -> Iterator[None]:
    """``modules`` in evaluation mode inside the block, their own modes restored after it."""
    modes = [[(m, m.training) for m in module.modules()] for module in modules]
    for module in modules:
        module.eval()
    try:
        yield
    finally:
        for pairs in modes:
            for m, mode in pairs:
                m.training = mode
