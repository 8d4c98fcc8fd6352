"""Training configuration: YAML files read into nested dataclasses, with ``key=value`` overrides.

A config file has one section per dataclass field of the method's config, e.g. for LD-Net::

    train: {seed: 0, batch_size: 32, checkpoint_every: 5000}
    model: {hidden: 512, layers: 10}
    stage1: {steps: 400000, lr: 1.0e-4}

Keys the dataclass does not have are an error that names the key and the keys it does have, so a typo
never trains silently with a default.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from puppetry.errors import PuppetryError, first_line

T = TypeVar("T")


class ConfigError(PuppetryError):
    """A training config file or override is malformed."""


@dataclass
class TrainSettings:
    """What every method's training shares (the ``train:`` section).

    Attributes:
        seed: base seed; rank r of a distributed run uses ``seed + r`` for its data.
        batch_size: samples per optimisation step on each process (the paper's batch on one GPU).
        precision: ``fp32``, ``fp16`` (CUDA only, with a gradient scaler) or ``bf16`` (autocast).
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``.
        checkpoint_every: optimisation steps between checkpoints (a checkpoint is also written at the
            end of every stage and when the run stops early).
        keep_checkpoints: how many step checkpoints to keep besides ``last.pt``.
        log_every: steps between scalar logs (TensorBoard and the console).
        sample_every: steps between sample images in TensorBoard.
        deterministic: ask PyTorch for deterministic kernels (slower on GPU).
    """

    seed: int = 0
    batch_size: int = 32
    precision: str = "fp32"
    device: str = "auto"
    checkpoint_every: int = 5000
    keep_checkpoints: int = 2
    log_every: int = 100
    sample_every: int = 2000
    deterministic: bool = True

    def __post_init__(self) -> None:
        if self.precision not in ("fp32", "fp16", "bf16"):
            raise ConfigError(f"train.precision must be fp32, fp16 or bf16, got {self.precision!r}")
        for name in ("batch_size", "checkpoint_every", "log_every", "sample_every"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"train.{name} must be at least 1, got {getattr(self, name)}")
        if self.keep_checkpoints < 0:
            raise ConfigError("train.keep_checkpoints must be 0 or more")


def _convert(value: Any, kind: Any, where: str) -> Any:
    """``value`` read from YAML as type ``kind`` (dataclasses, tuples, lists, scalars)."""
    origin = typing.get_origin(kind)
    if is_dataclass(kind):
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {type(value).__name__}")
        return from_dict(kind, value, where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        args = typing.get_args(kind)
        inner = args[0] if args else Any
        items = [_convert(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if kind in (int, float, str):
        if kind is str and not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        if kind in (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
            if isinstance(value, str):
                try:
                    return kind(float(value)) if kind is int and float(value).is_integer() else kind(value)
                except ValueError:
                    pass
            raise ConfigError(f"{where} must be a number, got {value!r}")
        if kind is int and float(value) != int(value):
            raise ConfigError(f"{where} must be a whole number, got {value!r}")
        return kind(value)
    return value


def from_dict(cls: type[T], data: dict, where: str = "config") -> T:
    """Build dataclass ``cls`` from a (nested) mapping; unknown keys are an error."""
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"unknown key {where}.{unknown[0]}; {where} has: {', '.join(known)}")
    try:
        return cls(**{k: _convert(v, hints[k], f"{where}.{k}") for k, v in data.items()})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def to_dict(config: Any) -> dict:
    """Plain nested dict of a dataclass config (for YAML, checkpoints and TensorBoard)."""
    def plain(v):
        if is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in fields(v)}
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        return v
    return plain(config)


def _set(data: dict, dotted: str, raw: str) -> None:
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {dotted}: {key} is not a section")
    node[keys[-1]] = yaml.safe_load(raw)


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] = (),
                base: dict | None = None) -> T:
    """Read a method config.

    Args:
        cls: the method's config dataclass (defaults are the paper's hyper-parameters).
        path: a YAML file, or None for the defaults.
        overrides: ``section.key=value`` strings applied after the file (values parsed as YAML).
        base: a mapping applied before the file (e.g. a checkpoint's saved config).
    """
    # Start from the class's own defaults, so a section given in part keeps the rest of its defaults
    # (``--set train.log_every=10`` must not reset a recipe's own ``train.batch_size``).
    data: dict = _merge(to_dict(cls()), dict(base or {}))
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except UnicodeDecodeError:
            raise ConfigError(f"{path} is not a YAML config: it is not UTF-8 text") from None
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror or first_line(exc)}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {first_line(exc)}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path} must hold a mapping of sections")
        data = _merge(data, loaded)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set takes section.key=value, got {item!r}")
        key, raw = item.split("=", 1)
        _set(data, key.strip(), raw)
    return from_dict(cls, data)


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def replace(config: T, **changes) -> T:
    """``dataclasses.replace`` (re-exported so recipes need one import)."""
    return dataclasses.replace(config, **changes)
