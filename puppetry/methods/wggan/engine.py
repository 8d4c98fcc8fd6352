"""``--engine wggan``: the landmark warp refined by wg-GAN, with the inner mouth hallucinated by hrh-GAN.

Paper 003's whole pipeline, per driving frame and per source face:

1. the global 2D warp of the portrait (:class:`puppetry.methods.warp.engine.WarpEngine`, its mouth fill off);
2. the warped face cut out in its rectified crop (:mod:`puppetry.methods.wggan.face_crop`), the inner mouth
   removed, and its displacement map from the source's rest landmarks to the target landmarks
   (:func:`puppetry.methods.wggan.displacement.displacement_map`, Sec. 4.1);
3. the refinement network ``R(x_w, M)`` (Eq. 1-3) inside the face mask;
4. the completion network fills the inner mouth (Sec. 4.2), blended with the previous frame's mouth
   after optical-flow alignment (Sec. 5.2, :class:`puppetry.methods.wggan.temporal.MouthBlender`);
5. the face pasted back into the full image with a feathered mask.

Weights come from ``puppetry train wggan`` (``RUN/wggan.pt``) and ``puppetry train hrhgan``
(``RUN/hrhgan.pt``); nothing is downloaded. Without them the engine stops with one line saying how to
get them.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from puppetry.engines.base import DrivingFrame, Engine, SourceFaces
from puppetry.engines.device import engine_device
from puppetry.engines.weights import find_weights
from puppetry.motion.transfer import TransferOptions
from puppetry.methods.warp.engine import WarpConfig, WarpEngine, WarpState
from puppetry.methods.wggan import HRHGAN_ENV, WGGAN_ENV
from puppetry.methods.wggan.displacement import displacement_map
from puppetry.methods.wggan.face_crop import face_mask, inner_mouth_mask, paste, rectify
from puppetry.methods.wggan.temporal import MouthBlender

_MIN_HOLE_PIXELS = 4.0        # a smaller opening is left to the warp (there is nothing to hallucinate)
_MOUTH_FEATHER = 0.006        # the mouth's paste-back edge (share of the crop side: about 1.5 px at 256)


@dataclass(frozen=True)
class WgGanConfig:
    """Settings of the wg-GAN engine.

    Attributes:
        wggan_weights: ``RUN/wggan.pt`` of ``puppetry train wggan``; None reads ``weights_dir/wggan.pt``,
            else ``$PUPPETRY_WGGAN_WEIGHTS``.
        hrhgan_weights: ``RUN/hrhgan.pt`` of ``puppetry train hrhgan``; None reads ``weights_dir/hrhgan.pt``,
            else ``$PUPPETRY_HRHGAN_WEIGHTS``.
        weights_dir: a folder holding both files (the web app's weights folder).
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        temporal: blend each frame's mouth with the previous one's (Sec. 5.2).
        mouth_grow: the inner-mouth hole, grown by this share of the mouth width (as in training).
        feather: softness of the paste-back edge, as a share of the crop side.
        warp: the underlying warp (its own mouth fill is off: hrh-GAN paints the mouth).
    """

    wggan_weights: str | None = None
    hrhgan_weights: str | None = None
    weights_dir: str | None = None
    device: str = "cpu"
    temporal: bool = True
    mouth_grow: float = 0.04
    feather: float = 0.03
    warp: WarpConfig = field(default_factory=lambda: WarpConfig(mouth_fill=False))

    def paths(self) -> tuple[Path, Path]:
        """Where the two weight files are (one-line WeightsError when a path is not given anywhere)."""
        return tuple(find_weights(given, self.weights_dir, f"{method}.pt", env, "wggan", f"--{method}-weights",
                                  f"puppetry train {method}")
                     for given, env, method in ((self.wggan_weights, WGGAN_ENV, "wggan"),
                                                (self.hrhgan_weights, HRHGAN_ENV, "hrhgan")))


@dataclass
class WgGanState:
    """A prepared source: the warp's state, each face's rest landmarks and each face's mouth blender."""

    warp: WarpState
    rest: list[np.ndarray]
    blenders: list[MouthBlender]


class WgGanEngine(Engine):
    """Warp, refine (wg-GAN), hallucinate the inner mouth (hrh-GAN), paste back."""

    name = "wggan"

    def __init__(self, transfer: TransferOptions = TransferOptions(), config: WgGanConfig = WgGanConfig(),
                 refiner=None, completer=None):
        super().__init__(transfer)
        from puppetry.methods.wggan.completion import load_completer
        from puppetry.methods.wggan.refinement import load_refiner

        self.config = config
        self.device = engine_device(config.device)
        if refiner is None or completer is None:
            wg_path, hrh_path = config.paths()
            refiner = refiner or load_refiner(wg_path, self.device)
            completer = completer or load_completer(hrh_path, self.device)
        self.refiner = refiner
        self.completer = completer
        self.warp = WarpEngine(transfer, config.warp)
        self._times: dict[str, float] = defaultdict(float)

    def timings(self) -> dict[str, float]:
        return {**self.warp.timings(), **self._times}

    def prepare(self, source: SourceFaces) -> WgGanState:
        blenders = [MouthBlender.from_settings(self.completer.temporal) for _ in source.landmarks]
        return WgGanState(self.warp.prepare(source), [np.asarray(lm, np.float64) for lm in source.landmarks],
                          blenders)

    def reset_reference(self, state: WgGanState) -> None:
        for b in state.blenders:
            b.reset()

    @staticmethod
    def _tensor(images: list[np.ndarray]) -> torch.Tensor:
        """``S x S x 3`` uint8 crops -> ``B x 3 x S x S`` float in [0, 1]."""
        return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255.0)

    @staticmethod
    def _images(batch: torch.Tensor) -> list[np.ndarray]:
        out = (batch.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        return list(out)

    def _refine(self, image: np.ndarray, rest: list[np.ndarray], targets: list[np.ndarray]) -> None:
        """Step 2-3 for every face at once (batched), pasted into ``image`` in place."""
        size = self.refiner.size
        crops, maps, masks, faces = [], [], [], []
        for lm0, lm in zip(rest, targets):
            face = rectify(lm, size)
            points = face.points(lm)
            hole = inner_mouth_mask(points, size, self.config.mouth_grow)
            crops.append(np.clip(face.cut(image) * (1.0 - hole)[..., None] + 0.5, 0, 255).astype(np.uint8))
            maps.append(displacement_map(lm0, lm, self.refiner.statistics, size))
            masks.append(face_mask(points, size) * (1.0 - hole))
            faces.append(face)
        refined = self.refiner(self._tensor(crops), torch.from_numpy(np.stack(maps)),
                               torch.from_numpy(np.stack(masks))[:, None])
        for crop, face, keep in zip(self._images(refined), faces, masks):
            paste(image, crop, face, keep, self.config.feather)

    def _hallucinate(self, image: np.ndarray, targets: list[np.ndarray], blenders: list[MouthBlender]) -> None:
        """Step 4 for every face whose mouth is open, pasted into ``image`` in place."""
        size = self.completer.size
        crops, holes, faces, owners = [], [], [], []
        for i, lm in enumerate(targets):
            face = rectify(lm, size)
            hole = inner_mouth_mask(face.points(lm), size, self.config.mouth_grow)
            if hole.sum() < _MIN_HOLE_PIXELS:
                blenders[i].reset()
                continue
            crops.append(face.cut(image))
            holes.append(hole)
            faces.append(face)
            owners.append(i)
        if not crops:
            return
        done = self.completer(self._tensor(crops), torch.from_numpy(np.stack(holes))[:, None])
        for crop, hole, face, i in zip(self._images(done), holes, faces, owners):
            if self.config.temporal:
                crop = blenders[i].blend(crop, hole)
            paste(image, crop, face, hole, _MOUTH_FEATHER)

    def render(self, state: WgGanState, frame: DrivingFrame) -> np.ndarray:
        out, targets = self.warp.render_with_targets(state.warp, frame)
        t0 = time.perf_counter()
        self._refine(out, state.rest, targets)
        t1 = time.perf_counter()
        self._hallucinate(out, targets, state.blenders)
        t2 = time.perf_counter()
        self._times["refine"] += t1 - t0
        self._times["mouth"] += t2 - t1
        return out
