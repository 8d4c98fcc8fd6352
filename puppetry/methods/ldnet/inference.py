"""A trained LD-Net at inference: give driving landmarks the source's identity (paper 002, Fig. 2).

``l'_T = G(E_P(l_S), E_I(l_T))``: the pose/expression code of the driving landmarks ``l_S`` with the
identity code of the target (our *source* portrait) ``l_T``. The identity code is computed once per
source face; each driving frame costs one ``E_P`` and one ``G`` pass (two small MLPs).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from puppetry.errors import WeightsError, first_line
from puppetry.methods.ldnet import WEIGHTS_ENV as ENV_VAR
from puppetry.methods.ldnet.config import LDNetModel
from puppetry.methods.ldnet.landmarks import denormalize, normalize
from puppetry.methods.ldnet.networks import Generator, LandmarkMLP
from puppetry.training.config import ConfigError, from_dict


class LDNet:
    """``E_P``, ``E_I`` and ``G`` loaded from ``ldnet.pt`` (written by ``puppetry train ldnet``).

    Args:
        path: the weights file; None reads ``$PUPPETRY_LDNET_WEIGHTS``.
        device: torch device.
    Raises:
        WeightsError: missing, unreadable or mismatched weights (one line).
    """

    def __init__(self, path: str | os.PathLike | None = None, device: str = "cpu"):
        if path is None:
            path = os.environ.get(ENV_VAR)
            if not path:
                raise WeightsError(f"LD-Net needs weights: pass --ldnet-weights RUN/ldnet.pt (from puppetry train "
                                   f"ldnet) or set {ENV_VAR}")
        path = Path(path)
        if not path.is_file():
            raise WeightsError(f"LD-Net weights not found: {path}")
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise WeightsError(f"cannot read LD-Net weights {path}: {first_line(exc)[:160]}") from None
        if not isinstance(data, dict) or data.get("format") != "puppetry-ldnet":
            raise WeightsError(f"{path} is not an LD-Net weights file (write one with puppetry train ldnet)")
        try:
            self.model: LDNetModel = from_dict(LDNetModel, data["model"], "model")
        except ConfigError as exc:
            raise WeightsError(f"{path}: {exc}") from None
        self.path = path
        self.device = torch.device(device)
        n = self.model.num_points
        self.E_P = LandmarkMLP(n, self.model.pose_code, self.model)
        self.E_I = LandmarkMLP(n, self.model.identity_code, self.model)
        self.G = Generator(self.model)
        for name in ("E_P", "E_I", "G"):
            module = getattr(self, name)
            if name not in data:
                raise WeightsError(f"{path} has no {name} weights")
            try:
                module.load_state_dict(data[name], strict=True)
            except RuntimeError as exc:
                raise WeightsError(f"{path}: {name} does not match its config: "
                                   f"{first_line(exc)[:160]}") from None
            module.to(self.device).eval()

    @property
    def num_points(self) -> int:
        return self.model.num_points

    @torch.no_grad()
    def pose_code(self, normalized: np.ndarray) -> np.ndarray:
        """``E_P`` of normalised landmarks ``B x N x 2`` -> ``B x 64``."""
        return self.E_P(torch.as_tensor(np.asarray(normalized, np.float32), device=self.device)).cpu().numpy()

    @torch.no_grad()
    def identity_code(self, normalized: np.ndarray) -> np.ndarray:
        """``E_I`` of normalised landmarks ``B x N x 2`` -> ``B x 128``."""
        return self.E_I(torch.as_tensor(np.asarray(normalized, np.float32), device=self.device)).cpu().numpy()

    @torch.no_grad()
    def generate(self, pose_code: np.ndarray, identity_code: np.ndarray) -> np.ndarray:
        """``G``: normalised landmarks ``B x N x 2`` from codes ``B x 64`` and ``B x 128``."""
        p = torch.as_tensor(np.asarray(pose_code, np.float32), device=self.device)
        i = torch.as_tensor(np.asarray(identity_code, np.float32), device=self.device)
        return self.G(p, i).cpu().numpy()


class LandmarkRetargeter:
    """Driving landmarks with a source face's identity, in the driving frame's pixels (for the warp engine).

    The output keeps the driving landmarks' bounding-box centre and size and their depth (z): LD-Net
    works on 2D coordinates, normalised per face (supplementary Sec. 7).
    """

    def __init__(self, net: LDNet):
        if net.num_points != 478:
            raise WeightsError(f"{net.path} was trained on {net.model.landmarks}; the warp engine needs an LD-Net "
                               "trained on mediapipe478 landmarks")
        self.net = net

    def identity(self, source_points: np.ndarray) -> np.ndarray:
        """Identity code ``1 x 128`` of a source face (``478 x 2|3`` pixels)."""
        return self.net.identity_code(normalize(source_points[None])[0])

    def retarget(self, driving_points: np.ndarray, identity: np.ndarray) -> np.ndarray:
        """``478 x 3`` driving landmarks (pixels) -> ``478 x 3`` with the identity of ``identity``."""
        normalized, center, half = normalize(driving_points[None])
        out = self.net.generate(self.net.pose_code(normalized), identity)
        xy = denormalize(out, center, half)[0]
        return np.concatenate([xy, np.asarray(driving_points)[:, 2:3]], axis=1)


class PoseRetargeting:
    """Driving poses with each source face's identity, for engines that transfer motion from poses.

    Relative transfer reads a driving frame's pose and the driving reference (first frame); both are
    retargeted. The reference's is cached per face (it is the same object frame after frame).
    """

    def __init__(self, retargeter: LandmarkRetargeter, source_landmarks: list[np.ndarray]):
        self.retargeter = retargeter
        self.identities = [retargeter.identity(lm) for lm in source_landmarks]
        self._reference: dict[int, tuple[object, object]] = {}

    def pose(self, face: int, pose):
        """``pose`` (a :class:`~puppetry.face.pose.FacePose`) with source face ``face``'s identity."""
        from puppetry.face.pose import decompose

        return decompose(self.retargeter.retarget(pose.compose(), self.identities[face]))

    def reference(self, face: int, pose):
        """:meth:`pose` of the driving reference, computed once per face and reference."""
        cached = self._reference.get(face)
        if cached is None or cached[0] is not pose:
            cached = (pose, self.pose(face, pose))
            self._reference[face] = cached
        return cached[1]
