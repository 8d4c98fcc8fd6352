"""The LivePortrait networks to train, at any size, and what training adds to the inference modules.

F, W, G and the MLPs are the inference package's own classes (so their state dicts are the release's).
M's ConvNeXt-V2 backbone has fixed (tiny) sizes in :mod:`puppetry.methods.liveportrait.motion_extractor`; for
other sizes the backbone and heads are rebuilt here with the same parameter names.

G's spectral-norm convolutions (:class:`~puppetry.nn.spade.SpectralNormConv2d`) use their stored
``weight_u``/``weight_v`` as they are, which is right for inference only. Training needs the power
iteration of ``torch.nn.utils.spectral_norm``: :func:`attach_power_iteration` adds it as a forward
pre-hook that runs in training mode only (one step per forward, as torch does).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from puppetry.errors import WeightsError
from puppetry.methods.liveportrait.appearance_extractor import AppearanceFeatureExtractor
from puppetry.methods.liveportrait.checkpoints import find_checkpoint_dir, load_release
from puppetry.methods.liveportrait.config import MotionConfig
from puppetry.methods.liveportrait.motion_extractor import MotionExtractor
from puppetry.methods.liveportrait.retargeting import RetargetingMLP
from puppetry.methods.liveportrait.spade_decoder import SPADEDecoder
from puppetry.methods.liveportrait.training.config import ModelSettings, is_release_size, liveportrait_config
from puppetry.methods.liveportrait.warping import WarpingNetwork
from puppetry.nn.convnext import TINY_DEPTHS, TINY_DIMS, ConvNeXtV2
from puppetry.nn.spade import SpectralNormConv2d

logger = logging.getLogger(__name__)

# Our module names -> the release's file (base models) or part of the retargeting file.
RELEASE_NAMES = {"F": "appearance_feature_extractor", "M": "motion_extractor", "W": "warping_module",
                 "G": "spade_generator"}
RETARGETING_NAMES = {"S": "stitching", "R_eyes": "eyes", "R_lip": "lip"}
HEADS = ("fc_kp", "fc_scale", "fc_pitch", "fc_yaw", "fc_roll", "fc_t", "fc_exp")


def build_motion_extractor(m: ModelSettings) -> MotionExtractor:
    """M with a ConvNeXt-V2 backbone of ``m.motion_depths`` / ``m.motion_dims`` (release: tiny)."""
    net = MotionExtractor(MotionConfig(num_kp=m.num_kp, num_bins=m.num_bins))
    if tuple(m.motion_depths) == TINY_DEPTHS and tuple(m.motion_dims) == TINY_DIMS:
        return net
    det = net.detector
    backbone = ConvNeXtV2(depths=tuple(m.motion_depths), dims=tuple(m.motion_dims))
    det.downsample_layers, det.stages, det.norm = backbone.downsample_layers, backbone.stages, backbone.norm
    det.out_features = backbone.out_features
    for name in HEADS:
        setattr(det, name, nn.Linear(backbone.out_features, getattr(det, name).out_features))
    return net


def build_generator(m: ModelSettings) -> dict[str, nn.Module]:
    """F, M, W, G, S, R_eyes and R_lip for sizes ``m`` (random weights, the MLPs' last layers zero, G with
    power iteration)."""
    cfg = liveportrait_config(m)
    nets = {
        "F": AppearanceFeatureExtractor(cfg.appearance),
        "M": build_motion_extractor(m),
        "W": WarpingNetwork(cfg.warping),
        "G": SPADEDecoder(cfg.decoder),
        "S": RetargetingMLP(cfg.retargeting.stitching),
        "R_eyes": RetargetingMLP(cfg.retargeting.eyes),
        "R_lip": RetargetingMLP(cfg.retargeting.lip),
    }
    attach_power_iteration(nets["G"])
    for name in ("S", "R_eyes", "R_lip"):          # offsets start at zero: no stitching / retargeting yet
        last = nets[name].mlp[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
    return nets


def _power_step(w: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One power iteration of torch's spectral norm: ``v = N(W^T u)``, ``u = N(W v)``; ``w`` is ``C_out x n``."""
    v = F.normalize(w.t() @ u, dim=0, eps=1e-12)
    u = F.normalize(w @ v, dim=0, eps=1e-12)
    return u, v


def _power_iteration_hook(module: SpectralNormConv2d, _inputs) -> None:
    if not module.training:
        return
    with torch.no_grad():
        u, v = _power_step(module.weight_orig.detach().float().flatten(1), module.weight_u.float(),
                           module.weight_v.float())
        module.weight_u.copy_(u)
        module.weight_v.copy_(v)


def attach_power_iteration(module: nn.Module, init_iterations: int = 15) -> int:
    """Give every :class:`SpectralNormConv2d` inside ``module`` torch's power iteration (training mode).

    The stored vectors are first normalised and iterated ``init_iterations`` times (as
    ``torch.nn.utils.parametrizations.spectral_norm`` does on creation). Returns the number of layers.
    """
    count = 0
    for layer in module.modules():
        if isinstance(layer, SpectralNormConv2d):
            with torch.no_grad():
                w = layer.weight_orig.flatten(1)
                u, v = F.normalize(layer.weight_u, dim=0), F.normalize(layer.weight_v, dim=0)
                for _ in range(init_iterations):
                    u, v = _power_step(w, u, v)
                layer.weight_u.copy_(u)
                layer.weight_v.copy_(v)
            layer.register_forward_pre_hook(_power_iteration_hook)
            count += 1
    return count


def load_release_weights(nets: dict[str, nn.Module], m: ModelSettings, checkpoint_dir: str | Path) -> None:
    """Start from the release's five files (``init.checkpoint_dir``); strict, one-line errors."""
    if not is_release_size(m):
        raise WeightsError("init.checkpoint_dir needs the release's network sizes (drop the model.* overrides)")
    root = find_checkpoint_dir(checkpoint_dir)
    names = {**RELEASE_NAMES, **RETARGETING_NAMES}
    load_release({attr: nets[name] for name, attr in names.items()}, root)
    logger.info("initialised F, M, W, G, S, R_eyes and R_lip from %s", root)
