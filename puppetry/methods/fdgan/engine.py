"""``--engine fdgan``: draw each frame's landmarks with the source's appearance through FD-GAN (paper 002, Fig. 2).

Per source face, once (:meth:`FDGanEngine.prepare`): a square crop around the face as ``puppetry prepare``
cuts training clips (``crop_scale`` times the face box), its landmark image ``l_T`` and the extractor's
dictionaries ``E(x_T, l_T)``, which every frame reuses (supplementary Sec. 8); with ``--retarget ldnet``
also the face's LD-Net identity code.

Per driving frame and face (:meth:`FDGanEngine.render`, all faces in one batch):

1. the target landmarks: with ``--retarget ldnet`` the driving landmarks first take the source's identity
   (``l'_T = G(E_P(l_S), E_I(l_T))``, Sec. 3.1); then the motion is transferred onto the source face
   (relative or absolute, regions, multiplier) and the controls applied, as every landmark engine does;
2. the translator reads the dictionaries at the target's landmark image ``l'_T``: ``T(x_T, l_T, l'_T)``;
3. the crop is pasted back into the full source where the source's or the target's face is (the hull of
   both face outlines, grown and feathered), so the drawn background and hair never replace the source's.

No pixel of the source is warped: every output pixel of the face is drawn by the translator. Weights come
from ``puppetry train fdgan`` (``RUN/fdgan.pt``, trained with ``model.condition: landmarks``).
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from puppetry.data.tracking import TrackingConfig, face_crop_box
from puppetry.engines.base import DrivingFrame, Engine, SourceFaces
from puppetry.engines.device import engine_device
from puppetry.engines.weights import find_weights, read_settings, read_weights
from puppetry.errors import WeightsError
from puppetry.face.crop import apply_affine, crop_image, feather_mask, paste_back
from puppetry.face.topology import FACE_OVAL
from puppetry.face.pose import FacePose, compose, decompose
from puppetry.methods.fdgan import WEIGHTS_ENV
from puppetry.methods.fdgan.conditions import landmark_image
from puppetry.methods.fdgan.config import WEIGHTS_FORMAT, FDGanModel
from puppetry.methods.fdgan.data import to_images, to_tensor
from puppetry.motion.controls import apply_controls
from puppetry.motion.transfer import TransferOptions, transfer_motion
from puppetry.nn.weights import check_state_dict


@dataclass(frozen=True)
class FDGanEngineConfig:
    """Settings of the FD-GAN engine.

    Attributes:
        weights: ``RUN/fdgan.pt``; None reads ``weights_dir/fdgan.pt``, else ``$PUPPETRY_FDGAN_WEIGHTS``.
        weights_dir: a folder holding ``fdgan.pt`` (the web app's weights folder).
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        retarget: ``"ldnet"`` gives the driving landmarks each source face's identity with a trained LD-Net
            (Sec. 3.1) before motion transfer; None: off.
        ldnet_weights: LD-Net weights (``RUN/ldnet.pt``); None reads ``$PUPPETRY_LDNET_WEIGHTS``.
        crop_scale: crop side over the face box side (``puppetry prepare``'s default, as in training).
        feather: softness of the paste-back edge, as a share of the crop side.
    """

    weights: str | None = None
    weights_dir: str | None = None
    device: str = "cpu"
    retarget: str | None = None
    ldnet_weights: str | None = None
    crop_scale: float = TrackingConfig.crop_scale
    feather: float = 0.08

    def __post_init__(self) -> None:
        if self.retarget not in (None, "ldnet"):
            raise ValueError(f"--retarget must be ldnet, got {self.retarget!r}")
        if self.ldnet_weights is not None and self.retarget is None:
            raise ValueError("--ldnet-weights needs --retarget ldnet")

    def path(self) -> Path:
        return find_weights(self.weights, self.weights_dir, "fdgan.pt", WEIGHTS_ENV, "fdgan", "--fdgan-weights",
                            "puppetry train fdgan")


def load_fdgan(path: str | os.PathLike, device: torch.device | str = "cpu", flag: str = "--fdgan-weights"):
    """Read ``RUN/fdgan.pt``: the extractor-translator (in evaluation mode) and its :class:`FDGanModel`.

    Raises:
        WeightsError: missing, unreadable, another method's file, or tensors that do not fit (one line).
    """
    from puppetry.methods.fdgan.networks import build_fdgan

    payload = read_weights(path, WEIGHTS_FORMAT, flag, "FD-GAN weights", "puppetry train fdgan")
    model = read_settings(FDGanModel, payload, "model", flag, path)
    net = build_fdgan(model)
    check_state_dict(payload.get("T", {}), net.state_dict(), f"{flag} '{path}'")
    net.load_state_dict(payload["T"])
    return net.to(device).eval().requires_grad_(False), model


@dataclass
class FDGanState:
    """A prepared source: per face its pose, crop matrix and dictionaries (finest level first)."""

    image: np.ndarray
    poses: list[FacePose]
    matrices: list[np.ndarray]                  # image -> crop (crop side ``size``)
    dictionaries: list[torch.Tensor]            # per level, F x rows x width
    outlines: list[np.ndarray]                  # per face, its face oval in crop pixels (N x 2)
    retargeting: object | None = None           # LD-Net's PoseRetargeting, or None


class FDGanEngine(Engine):
    """LD-Net (optional), then FD-GAN, then paste-back; see the module docstring."""

    name = "fdgan"

    def __init__(self, transfer: TransferOptions = TransferOptions(), config: FDGanEngineConfig = FDGanEngineConfig()):
        super().__init__(transfer)
        self.config = config
        self.device = engine_device(config.device)
        self.retargeter = None
        if config.retarget == "ldnet":
            from puppetry.methods.ldnet.inference import LDNet, LandmarkRetargeter
            self.retargeter = LandmarkRetargeter(LDNet(config.ldnet_weights, str(self.device)))
        self.net, self.model = load_fdgan(config.path(), self.device)
        if self.model.condition != "landmarks":
            raise WeightsError(f"--fdgan-weights: '{config.path()}' was trained on label maps (model.condition: "
                               f"{self.model.condition}); it serves puppetry synthesize, and the engine needs one "
                               f"trained on landmarks")
        self.size = self.model.size
        self._square = feather_mask(self.size, config.feather)
        self._times: dict[str, float] = defaultdict(float)

    def timings(self) -> dict[str, float]:
        return dict(self._times)

    def _conditions(self, points: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack([landmark_image(p, self.size) for p in points])).to(self.device)

    def prepare(self, source: SourceFaces) -> FDGanState:
        crops, points, matrices = [], [], []
        for lm in source.landmarks:
            box = face_crop_box(lm, source.image.shape, self.config.crop_scale)
            crop, m = crop_image(source.image, box, self.size)
            crops.append(crop)
            points.append(apply_affine(lm, m))
            matrices.append(m)
        with torch.no_grad():
            dictionaries = self.net.extractor(to_tensor(crops, self.device), self._conditions(points))
        retargeting = None
        if self.retargeter is not None:
            from puppetry.methods.ldnet.inference import PoseRetargeting
            retargeting = PoseRetargeting(self.retargeter, source.landmarks)
        return FDGanState(source.image, [decompose(lm) for lm in source.landmarks], matrices, dictionaries,
                          [p[FACE_OVAL] for p in points], retargeting)

    def _target(self, state: FDGanState, face: int, frame: DrivingFrame) -> np.ndarray:
        """Step 1: the face's ``478 x 3`` target landmarks in source pixels."""
        pose = state.poses[face]
        target = pose
        if frame.pose is not None:
            driving = frame.pose
            reference = frame.reference if frame.reference is not None else frame.pose
            if state.retargeting is not None:
                driving = state.retargeting.pose(face, driving)
                reference = state.retargeting.reference(face, reference)
            target = transfer_motion(pose, driving, reference, self.transfer)
        target = apply_controls(target, pose, frame.controls)
        return compose(target.expression, target.rotation, target.scale, target.center)

    def _face_mask(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Step 3's weights, ``size x size``: the hull of the source's and the target's face outlines (crop
        pixels, ``N x 2`` each), grown and softened by ``feather`` of the side, inside the feathered square.
        The drawn background, hair and neck never replace the source's."""
        hull = cv2.convexHull(np.round(np.concatenate([source, target[FACE_OVAL]])).astype(np.int32))
        mask = np.zeros((self.size, self.size), np.float32)
        cv2.fillConvexPoly(mask, hull, 1.0)
        r = max(int(round(self.size * self.config.feather)), 1)
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
        mask = cv2.GaussianBlur(mask, (0, 0), r / 2.0)
        return mask * self._square

    def render(self, state: FDGanState, frame: DrivingFrame) -> np.ndarray:
        t0 = time.perf_counter()
        targets = [apply_affine(self._target(state, f, frame), m) for f, m in enumerate(state.matrices)]
        conditions = self._conditions(targets)
        t1 = time.perf_counter()
        with torch.no_grad():
            crops = to_images(self.net.translator(conditions, state.dictionaries))
        t2 = time.perf_counter()
        image = state.image
        for crop, m, target, source in zip(crops, state.matrices, targets, state.outlines):
            image = paste_back(image, crop, m, self._face_mask(source, target))
        self._times["landmarks"] += t1 - t0
        self._times["translate"] += t2 - t1
        self._times["paste"] += time.perf_counter() - t2
        return image
