"""All LivePortrait networks in one object, loaded from the release checkpoints, with device,
precision and ``torch.compile`` handling and per-module timing.

Precision applies to W and G, the two heavy modules (about 98 % of a frame's network time): ``fp16`` or
``bf16`` runs them under ``torch.autocast``; F, M, the keypoint algebra and the MLPs always run in float32.
``auto`` picks what the device does natively: fp16 on CUDA (the release's default), bf16 on a CPU with
native bf16 instructions (AVX512-BF16 or AMX), float32 on any other CPU. fp16 on the CPU is refused: without
native fp16 units autocast falls back to kernels measured over 20 times slower than float32.
``compile=True`` wraps W and G in ``torch.compile`` (CUDA or CPU; the first frames pay the compilation).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass

import torch
from torch import nn

from puppetry.engines.device import engine_device
from puppetry.errors import WeightsError
from puppetry.methods.liveportrait.appearance_extractor import AppearanceFeatureExtractor
from puppetry.methods.liveportrait.checkpoints import RELEASE_MODULES, find_checkpoint_dir, load_release
from puppetry.methods.liveportrait.config import LivePortraitConfig
from puppetry.methods.liveportrait.kinematics import KeypointInfo, apply_stitching
from puppetry.methods.liveportrait.motion_extractor import MotionExtractor
from puppetry.methods.liveportrait.retargeting import RetargetingMLP
from puppetry.methods.liveportrait.spade_decoder import SPADEDecoder
from puppetry.methods.liveportrait.warping import WarpingNetwork

logger = logging.getLogger(__name__)

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
PRECISION_CHOICES = ("auto", *PRECISIONS)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX tiles), as PyTorch detects it."""
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check is not None and bool(check()) for check in checks)


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision W and G run in on ``device``: ``auto`` resolved, impossible requests refused.

    Raises:
        WeightsError: an unknown precision, fp16 on the CPU, or bf16 on a CPU without native bf16.
    """
    if precision not in PRECISION_CHOICES:
        raise WeightsError(f"unknown precision '{precision}'; use {', '.join(PRECISION_CHOICES)}")
    if device.type == "cuda":
        return "fp16" if precision == "auto" else precision
    if precision == "auto":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    if precision == "fp16":
        raise WeightsError("precision fp16 needs a CUDA device (on the CPU it is over 20x slower than fp32); "
                           "use --precision auto, bf16 or fp32")
    if precision == "bf16" and not cpu_has_native_bf16():
        raise WeightsError("precision bf16 needs a CPU with native bf16 (AVX512-BF16 or AMX) or a CUDA device; "
                           "this CPU would emulate it slower than fp32: use --precision fp32")
    return precision


@dataclass(frozen=True)
class RuntimeOptions:
    """Where and how the networks run.

    Attributes:
        device: "cpu", "cuda", "cuda:1", ... ("auto": CUDA when available).
        precision: "fp32", "fp16", "bf16" or "auto" for W and G (see the module docstring).
        compile: wrap W and G in ``torch.compile`` (the first frames are slow).
    """

    device: str = "cpu"
    precision: str = "fp32"
    compile: bool = False

    def resolved_device(self) -> torch.device:
        """The device, after checking that the precision is possible on it."""
        device = engine_device(self.device)
        resolve_precision(self.precision, device)
        return device


class LivePortraitModels(nn.Module):
    """F, M, W, G and the stitching / eyes / lip MLPs, in evaluation mode.

    Build with :meth:`from_checkpoints` (release files) or directly (random weights, for tests).
    """

    def __init__(self, cfg: LivePortraitConfig = LivePortraitConfig()):
        super().__init__()
        self.cfg = cfg
        self.appearance_feature_extractor = AppearanceFeatureExtractor(cfg.appearance)
        self.motion_extractor = MotionExtractor(cfg.motion)
        self.warping_module = WarpingNetwork(cfg.warping)
        self.spade_generator = SPADEDecoder(cfg.decoder)
        self.stitching = RetargetingMLP(cfg.retargeting.stitching)
        self.lip = RetargetingMLP(cfg.retargeting.lip)
        self.eyes = RetargetingMLP(cfg.retargeting.eyes)
        self.eval().requires_grad_(False)
        self.runtime = RuntimeOptions()
        self.precision = "fp32"                    # resolved: what W and G run in
        self._warp_fn = self.warping_module
        self._decode_fn = self.spade_generator
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    @classmethod
    def from_checkpoints(cls, checkpoint_dir: str | os.PathLike | None = None,
                         runtime: RuntimeOptions = RuntimeOptions()) -> "LivePortraitModels":
        """Load the five release files from ``checkpoint_dir`` (or ``$PUPPETRY_LIVEPORTRAIT_DIR``)."""
        runtime.resolved_device()                  # a bad device fails before the files are read
        root = find_checkpoint_dir(checkpoint_dir)
        models = cls()
        load_release({attr: getattr(models, attr) for attr in RELEASE_MODULES}, root)
        logger.info("loaded LivePortrait weights from %s", root)
        return models.configure(runtime)

    def configure(self, runtime: RuntimeOptions) -> "LivePortraitModels":
        """Move to the runtime's device and set precision and compilation."""
        device = runtime.resolved_device()
        self.to(device)
        self.runtime = runtime
        self.precision = resolve_precision(runtime.precision, device)
        if self.precision != "fp32":
            logger.info("LivePortrait W and G run in %s on %s", self.precision, device)
        self._warp_fn, self._decode_fn = self.warping_module, self.spade_generator
        if runtime.compile:
            self._warp_fn = torch.compile(self.warping_module)
            self._decode_fn = torch.compile(self.spade_generator)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _autocast(self):
        """Reduced precision for W and G (a no-op in fp32)."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=PRECISIONS[self.precision])

    @contextlib.contextmanager
    def _timed(self, name: str):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        yield
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.seconds[name] += time.perf_counter() - start
        self.calls[name] += 1

    @torch.inference_mode()
    def appearance(self, x: torch.Tensor) -> torch.Tensor:
        """F: ``B x 3 x 256 x 256`` in [0, 1] -> f_s ``B x 32 x 16 x 64 x 64`` (float32)."""
        with self._timed("F"):
            return self.appearance_feature_extractor(x.to(self.device))

    @torch.inference_mode()
    def motion(self, x: torch.Tensor) -> KeypointInfo:
        """M: ``B x 3 x 256 x 256`` in [0, 1] -> :class:`KeypointInfo`."""
        with self._timed("M"):
            return KeypointInfo.from_raw(self.motion_extractor(x.to(self.device)))

    @torch.inference_mode()
    def warp_decode(self, f_s: torch.Tensor, x_s: torch.Tensor, x_d: torch.Tensor) -> dict[str, torch.Tensor]:
        """W then G. ``f_s`` ``B x 32 x 16 x 64 x 64``, ``x_s``/``x_d`` ``B x K x 3`` ->
        dict with ``image`` ``B x 3 x 512 x 512`` in [0, 1] and W's outputs (all float32)."""
        with self._autocast():
            with self._timed("W"):
                out = self._warp_fn(f_s, x_s, x_d)
            with self._timed("G"):
                image = self._decode_fn(out["out"])
        result = {k: v.float() for k, v in out.items() if v is not None}
        result["image"] = image.float()
        return result

    @torch.inference_mode()
    def stitch(self, x_s: torch.Tensor, x_d: torch.Tensor) -> torch.Tensor:
        """Algorithm 1, lines 5-7: ``x_d + S(x_s, x_d)``; ``B x K x 3``."""
        with self._timed("S"):
            delta = self.stitching(torch.cat([x_s.flatten(1), x_d.flatten(1)], dim=1))
            return apply_stitching(x_d, delta)

    @torch.inference_mode()
    def retarget_eyes(self, x_s: torch.Tensor, c_eyes: torch.Tensor) -> torch.Tensor:
        """Delta_eyes = R_eyes(x_s; c_s,eyes, c_d,eyes); ``c_eyes`` ``B x 3`` -> ``B x K x 3``."""
        with self._timed("R_eyes"):
            return self.eyes(torch.cat([x_s.flatten(1), c_eyes], dim=1)).view_as(x_s)

    @torch.inference_mode()
    def retarget_lip(self, x_s: torch.Tensor, c_lip: torch.Tensor) -> torch.Tensor:
        """Delta_lip = R_lip(x_s; c_s,lip, c_d,lip); ``c_lip`` ``B x 2`` -> ``B x K x 3``."""
        with self._timed("R_lip"):
            return self.lip(torch.cat([x_s.flatten(1), c_lip], dim=1)).view_as(x_s)

    def reset_timings(self) -> None:
        self.seconds.clear()
        self.calls.clear()
