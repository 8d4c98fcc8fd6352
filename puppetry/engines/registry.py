"""Engines by name, built with one uniform constructor (``create_engine``)."""

from __future__ import annotations

from typing import Callable

from puppetry.engines.base import Engine
from puppetry.errors import PuppetryError
from puppetry.motion.transfer import TransferOptions


def _warp(transfer: TransferOptions, **kwargs) -> Engine:
    from puppetry.warp.engine import WarpConfig, WarpEngine
    return WarpEngine(transfer, WarpConfig(**kwargs))


def _liveportrait(transfer: TransferOptions, **kwargs) -> Engine:
    from puppetry.liveportrait.engine import LivePortraitConfig, LivePortraitEngine
    return LivePortraitEngine(transfer, LivePortraitConfig(**kwargs))


def _wggan(transfer: TransferOptions, **kwargs) -> Engine:
    from puppetry.wggan.engine import WgGanConfig, WgGanEngine
    return WgGanEngine(transfer, WgGanConfig(**kwargs))


ENGINES: dict[str, Callable[..., Engine]] = {
    "warp": _warp,
    "liveportrait": _liveportrait,
    "wggan": _wggan,
}


def available_engines() -> list[str]:
    return list(ENGINES)


def create_engine(name: str, transfer: TransferOptions = TransferOptions(), **kwargs) -> Engine:
    """Build the engine called ``name`` (see :func:`available_engines`)."""
    if name not in ENGINES:
        raise PuppetryError(f"unknown engine '{name}'; available engines: {', '.join(ENGINES)}")
    return ENGINES[name](transfer, **kwargs)
