"""``--engine puppeteergan``: sketch the target segmentation, then colour it with the source (paper 000).

Per source face, once (:meth:`PuppeteerGanEngine.prepare`): a square crop around the face as ``puppetry
prepare`` cuts training clips (``crop_scale`` times the face box), the crop's iBUG-68 landmarks ``L_s`` and
its label map ``M_s`` (our heuristic parser with MediaPipe's person mask, as in the training data).

Per driving frame and face (:meth:`PuppeteerGanEngine.render`, all faces in one batch):

1. the target landmarks: the driving motion transferred onto the source face (relative or absolute,
   regions, multiplier, then the controls), as every landmark engine does;
2. the sketching network retargets them with the source's identity: ``(L~, M~) = G_R(E_L(L_t), E_M(M_s))``
   (Eq. 1); in absolute mode this is what removes the driver's face shape;
3. the coloring network fills ``M~`` with the source's appearance: ``G_C(I_s, M_s, M~, L_s, L~)`` (Eq. 6-7),
   at ``size`` (256 or 512: the same weights run at both);
4. the crop is pasted back into the full source where the source or the sketch has a part (not the
   background), with a feathered edge, so the generated background never replaces the source's.

Weights come from ``puppetry train puppeteergan`` (``RUN/puppeteergan.pt``); nothing is downloaded.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from puppetry.data.tracking import TrackingConfig, face_crop_box
from puppetry.engines.base import DrivingFrame, Engine, SourceFaces
from puppetry.engines.device import engine_device
from puppetry.engines.weights import find_weights, read_settings, read_weights
from puppetry.errors import WeightsError
from puppetry.face.crop import apply_affine, crop_image, feather_mask, paste_back
from puppetry.face.parsing import PersonSegmenter, face_parsing
from puppetry.face.pose import FacePose, compose, decompose
from puppetry.methods.puppeteergan import WEIGHTS_ENV
from puppetry.methods.puppeteergan.config import WEIGHTS_FORMAT, ColorModel, SketchModel
from puppetry.methods.puppeteergan.landmarks import normalize
from puppetry.motion.controls import apply_controls
from puppetry.motion.transfer import TransferOptions, transfer_motion
from puppetry.nn.weights import check_state_dict

SIZES = (256, 512)


@dataclass(frozen=True)
class PuppeteerGanEngineConfig:
    """Settings of the PuppeteerGAN engine.

    Attributes:
        weights: ``RUN/puppeteergan.pt``; None reads ``weights_dir/puppeteergan.pt``, else
            ``$PUPPETRY_PUPPETEERGAN_WEIGHTS``.
        weights_dir: a folder holding ``puppeteergan.pt`` (the web app's weights folder).
        size: side of the face crop the coloring network draws (256 or 512; None: the side it was trained at).
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        crop_scale: crop side over the face box side (``puppetry prepare``'s default, as in training).
        feather: softness of the paste-back edge, as a share of the crop side.
    """

    weights: str | None = None
    weights_dir: str | None = None
    size: int | None = None
    device: str = "cpu"
    crop_scale: float = TrackingConfig.crop_scale
    feather: float = 0.08

    def path(self) -> Path:
        return find_weights(self.weights, self.weights_dir, "puppeteergan.pt", WEIGHTS_ENV, "puppeteergan",
                            "--pg-weights", "puppetry train puppeteergan")


@dataclass
class PuppeteerGanModel:
    """The two trained networks and their settings."""

    sketch: torch.nn.Module
    color: torch.nn.Module
    sketch_model: SketchModel
    color_model: ColorModel


def load_model(path: str | os.PathLike, device: torch.device | str = "cpu") -> PuppeteerGanModel:
    """Read ``RUN/puppeteergan.pt``.

    Raises:
        WeightsError: missing, unreadable, another method's file, or tensors that do not fit (one line).
    """
    from puppetry.methods.puppeteergan.coloring import build_coloring
    from puppetry.methods.puppeteergan.sketching import build_sketching

    flag = "--pg-weights"
    payload = read_weights(path, WEIGHTS_FORMAT, flag, "PuppeteerGAN weights", "puppetry train puppeteergan")
    sketch_model = read_settings(SketchModel, payload, "sketch_model", flag, path)
    color_model = read_settings(ColorModel, payload, "color_model", flag, path)
    sketch = build_sketching(sketch_model)
    color = build_coloring(color_model)
    own = {k: v for k, v in sketch.state_dict().items() if not k.startswith("di.")}
    check_state_dict(payload.get("sketch", {}), own, f"--pg-weights '{path}' (sketching network)")
    check_state_dict(payload.get("color", {}), color.state_dict(), f"--pg-weights '{path}' (coloring network)")
    sketch.load_state_dict(payload["sketch"], strict=False)
    color.load_state_dict(payload["color"])
    return PuppeteerGanModel(sketch.to(device).eval().requires_grad_(False),
                             color.to(device).eval().requires_grad_(False), sketch_model, color_model)


@dataclass
class PuppeteerGanState:
    """A prepared source: per face its pose, crop matrix, and the networks' source inputs."""

    image: np.ndarray
    poses: list[FacePose]
    matrices: list[np.ndarray]                  # image -> crop (crop side ``size``)
    image_s: torch.Tensor                       # F x 3 x size x size
    mask_s: torch.Tensor                        # F x K x size x size one-hot
    mask_small: torch.Tensor                    # F x K x k x k one-hot (the sketch's input)
    points_s: torch.Tensor                      # F x 68 x 2


class PuppeteerGanEngine(Engine):
    """Sketch, colour, paste back; see the module docstring."""

    name = "puppeteergan"

    def __init__(self, transfer: TransferOptions = TransferOptions(),
                 config: PuppeteerGanEngineConfig = PuppeteerGanEngineConfig(), model: PuppeteerGanModel | None = None):
        super().__init__(transfer)
        self.config = config
        self.device = engine_device(config.device)
        self.model = model or load_model(config.path(), self.device)
        self.size = int(config.size or self.model.color_model.size)
        step = 2 ** self.model.color_model.levels
        if self.size % step:
            raise WeightsError(f"--pg-size {self.size}: the coloring network needs a multiple of {step}")
        self._square = torch.from_numpy(feather_mask(self.size, config.feather)).to(self.device)   # step 4's edge
        self._times: dict[str, float] = defaultdict(float)

    def timings(self) -> dict[str, float]:
        return dict(self._times)

    def prepare(self, source: SourceFaces) -> PuppeteerGanState:
        from puppetry.methods.puppeteergan.sketching import one_hot

        size, k = self.size, self.model.sketch_model.mask_size
        crops, labels, points, matrices = [], [], [], []
        with PersonSegmenter() as segmenter:
            for lm in source.landmarks:
                crop, m = crop_image(source.image, face_crop_box(lm, source.image.shape, self.config.crop_scale), size)
                local = apply_affine(lm, m)
                labels.append(face_parsing(crop, local, segmenter.segment(crop)))
                crops.append(crop)
                points.append(normalize(local, size))
                matrices.append(m)
        dev = self.device
        image_s = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().div_(255.0).to(dev)
        lab = torch.from_numpy(np.stack(labels).astype(np.int64)).to(dev)
        small = F.interpolate(lab[:, None].float(), size=(k, k), mode="nearest")[:, 0].long()
        return PuppeteerGanState(source.image, [decompose(lm) for lm in source.landmarks], matrices, image_s,
                                 one_hot(lab), one_hot(small), torch.from_numpy(np.stack(points)).to(dev))

    def _target(self, pose: FacePose, frame: DrivingFrame) -> np.ndarray:
        """Step 1: the face's ``478 x 3`` target landmarks in source pixels."""
        target = pose
        if frame.pose is not None:
            reference = frame.reference if frame.reference is not None else frame.pose
            target = transfer_motion(pose, frame.pose, reference, self.transfer)
        target = apply_controls(target, pose, frame.controls)
        return compose(target.expression, target.rotation, target.scale, target.center)

    def _paste_mask(self, mask_s: torch.Tensor, sketched: torch.Tensor) -> torch.Tensor:
        """Step 4's weights, ``F x size x size``: where the source or the sketch has a part (any label but
        background), grown and softened by ``feather`` of the side, inside the crop's own feathered square.
        Outside it the source's pixels stay, so the generated background never shows."""
        person = ((mask_s[:, 0] < 0.5) | (sketched > 0)).float()[:, None]
        r = max(int(round(self.size * self.config.feather / 2)), 1)
        grown = F.max_pool2d(person, 2 * r + 1, stride=1, padding=r)
        soft = F.avg_pool2d(grown, 2 * r + 1, stride=1, padding=r, count_include_pad=False)[:, 0]
        return soft * self._square

    def render(self, state: PuppeteerGanState, frame: DrivingFrame) -> np.ndarray:
        from puppetry.methods.puppeteergan.sketching import one_hot

        t0 = time.perf_counter()
        targets = np.stack([normalize(apply_affine(self._target(p, frame), m), self.size)
                            for p, m in zip(state.poses, state.matrices)])
        t1 = time.perf_counter()
        with torch.no_grad():
            points, logits = self.model.sketch(torch.from_numpy(targets).to(self.device), state.mask_small)
            sketched = F.interpolate(logits.argmax(1, keepdim=True).float(), size=(self.size, self.size),
                                     mode="nearest")[:, 0].long()
            t2 = time.perf_counter()
            out = self.model.color(state.image_s, state.mask_s, one_hot(sketched), state.points_s, points)
            crops = (out.clamp(0, 1) * 255 + 0.5).byte().permute(0, 2, 3, 1).cpu().numpy()
            keep = self._paste_mask(state.mask_s, sketched).cpu().numpy()
        t3 = time.perf_counter()
        image = state.image
        for crop, m, k in zip(crops, state.matrices, keep):
            image = paste_back(image, crop, m, k)
        self._times["motion"] += t1 - t0
        self._times["sketch"] += t2 - t1
        self._times["color"] += t3 - t2
        self._times["paste"] += time.perf_counter() - t3
        return image
