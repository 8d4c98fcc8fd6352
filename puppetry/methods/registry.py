"""The registry of methods: the one list of them, and lookups that every command reads.

Adding a method is one folder ``puppetry/methods/<name>/`` whose ``__init__.py`` defines
``METHOD = Method(...)`` (see :mod:`puppetry.methods.descriptor`), plus one line in
:data:`METHOD_PACKAGES`. ``puppetry animate``, ``train``, ``evaluate``, ``bench`` and ``template``, the
Python API (:func:`create_engine`) and the web app all read the methods from here.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from puppetry.errors import PuppetryError
from puppetry.methods.descriptor import Method, Option, load
from puppetry.motion.transfer import TransferOptions

if TYPE_CHECKING:
    from puppetry.engines.base import Engine
    from puppetry.training.recipe import Recipe

# One line per method: its package under puppetry/methods/. The order is the order of --help and the app.
METHOD_PACKAGES: tuple[str, ...] = (
    "warp",
    "ldnet",
    "liveportrait",
    "wggan",
    "perturbed_masks",
    "puppeteergan",
    "fdgan",
    "audio2motion",
)

DEFAULT_ENGINE = "warp"


@lru_cache(maxsize=None)
def methods() -> tuple[Method, ...]:
    """Every registered method, in :data:`METHOD_PACKAGES` order."""
    found = []
    for package in METHOD_PACKAGES:
        method = getattr(importlib.import_module(f"puppetry.methods.{package}"), "METHOD", None)
        if not isinstance(method, Method):
            raise TypeError(f"puppetry.methods.{package} must define METHOD = Method(...)")
        found.append(method)
    names = [m.name for m in found]
    if len(set(names)) != len(names):
        raise TypeError(f"two methods share a name: {names}")
    return tuple(found)


def get_method(name: str) -> Method:
    """The method called ``name`` (one-line error for an unknown one)."""
    for method in methods():
        if method.name == name:
            return method
    raise PuppetryError(f"unknown method '{name}'; methods: {', '.join(m.name for m in methods())}")


# ----------------------------------------------------------------------------------------------- engines
def engine_names() -> list[str]:
    """Names accepted by ``--engine`` (methods with an engine of their own)."""
    return [m.name for m in methods() if m.engine is not None]


def engine_method(name: str) -> Method:
    """The method whose engine is called ``name`` (one-line error listing the engines otherwise)."""
    for method in methods():
        if method.name == name and method.engine is not None:
            return method
    raise PuppetryError(f"unknown engine '{name}'; available engines: {', '.join(engine_names())}")


def needs_landmarks(name: str) -> bool:
    """Whether engine ``name`` animates faces found by landmarks (False: any object, whole frames; the
    pipeline then looks for no face and passes every driving frame's pixels)."""
    return engine_method(name).needs.source_landmarks


def create_engine(name: str, transfer: TransferOptions = TransferOptions(), **options: Any) -> "Engine":
    """Build engine ``name`` as ``EngineClass(transfer, ConfigClass(**options))``."""
    method = engine_method(name)
    return load(method.engine)(transfer, load(method.config)(**options))


def engines_that(capability: str) -> list[str]:
    """Engines whose descriptor sets ``capability`` (``video_source``, ``keypoint_templates``)."""
    return [m.name for m in methods() if m.engine is not None and getattr(m, capability)]


def variants() -> dict[str, tuple[str, dict[str, Any]]]:
    """Engine variants of ``puppetry evaluate``: name -> (engine, preset config values)."""
    return {name: (m.name, dict(preset)) for m in methods() for name, preset in m.variants.items()}


def engine_variant(name: str) -> tuple[str, dict[str, Any]]:
    """``(engine, preset options)`` of an engine or engine-variant name."""
    return variants().get(name, (name, {}))


def command_options(command: str) -> list[tuple[Option, list[str]]]:
    """Every engine option ``command`` offers, each once, with the engines that read it (by flag)."""
    by_flag: dict[str, tuple[Option, list[str]]] = {}
    for method in methods():
        for option in method.options_for(command):
            if option.flag in by_flag:
                by_flag[option.flag][1].append(method.name)
            else:
                by_flag[option.flag] = (option, [method.name])
    return list(by_flag.values())


def engine_options(engine: str, parsed: dict[str, Any], command: str = "animate") -> dict[str, Any]:
    """The config values of ``engine`` from parsed flags (``vars(args)``).

    Raises:
        ValueError: a flag was given that ``engine`` does not read (one line naming the engines that do).
    """
    foreign: dict[str, list[str]] = {}
    for option, owners in command_options(command):
        if engine not in owners and option.given(parsed):
            foreign.setdefault(" and ".join(owners), []).append(option.flag)
    if foreign:
        owners, flags = next(iter(foreign.items()))
        raise ValueError(f"{', '.join(flags)} only apply to --engine {owners}")
    return engine_method(engine).engine_options(parsed, command)


def app_switches() -> list[tuple[Option, list[str]]]:
    """The engine options the web app shows as checkboxes, each once, with the engines that read them."""
    by_key: dict[str, tuple[Option, list[str]]] = {}
    for method in methods():
        for option in method.options:
            if option.app_label is not None:
                by_key.setdefault(option.key, (option, []))[1].append(method.name)
    return list(by_key.values())


# ----------------------------------------------------------------------------------------------- recipes
def recipe_names() -> list[str]:
    """Names accepted by ``puppetry train``."""
    return [name for m in methods() for name in m.recipes]


def get_recipe(name: str) -> "type[Recipe]":
    """The recipe class ``puppetry train NAME`` runs (one-line error for unknown or untrainable names)."""
    for method in methods():
        if name in method.recipes:
            return load(method.recipes[name])
        if method.name == name and method.not_trainable:
            raise PuppetryError(f"cannot train '{name}': {method.not_trainable}")
    raise PuppetryError(f"unknown method '{name}'; trainable methods: {', '.join(recipe_names())}")


# ------------------------------------------------------------------------------------------------ speech
def speech_method() -> Method:
    """The method that turns speech into motion (``puppetry animate -a``; one-line error when none is)."""
    for method in methods():
        if method.speech_driver is not None:
            return method
    raise PuppetryError("no registered method turns speech into motion")
