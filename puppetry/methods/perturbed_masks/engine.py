"""``--engine perturbed_masks``: animate any object with a model trained by ``puppetry train perturbed-masks``.

Model-free (paper 004): no landmarks, so the source may be a cat, a dog, a cartoon or a whole figure.
The source and every driving frame are made square the same way (``square``: ``pad`` adds black borders
to the shorter side, ``crop`` keeps the centre square) and resized to the model's side; the output square
is resized back and the padding cut off (``pad``), or pasted over the source's centre square (``crop``),
so the written video has the source's size and aspect. Eq. 1-4 run per driving frame, the source's mask
``m_s`` once (:meth:`PerturbedMasksEngine.prepare`).
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from puppetry.data.whole_frames import SQUARE_MODES, square_box, square_frame, unsquare_frame
from puppetry.engines.base import DrivingFrame, Engine, SourceFaces
from puppetry.engines.device import engine_device
from puppetry.engines.weights import find_weights
from puppetry.errors import WeightsError, first_line
from puppetry.methods.perturbed_masks import WEIGHTS_ENV
from puppetry.motion.transfer import TransferOptions

TRAIN_HINT = "puppetry train perturbed-masks --data D -o RUN"


@dataclass(frozen=True)
class PerturbedMasksEngineConfig:
    """Settings of the perturbed-masks engine.

    Attributes:
        weights: ``RUN/perturbed_masks.pt`` of ``puppetry train perturbed-masks``; None reads
            ``weights_dir/perturbed_masks.pt``, else ``$PUPPETRY_PERTURBED_MASKS_WEIGHTS``.
        weights_dir: a folder holding that file (the web app's weights folder).
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        square: how frames are made square: ``pad`` (nothing lost) or ``crop`` (centre square).
    """

    weights: str | None = None
    weights_dir: str | None = None
    device: str = "cpu"
    square: str = "pad"

    def __post_init__(self) -> None:
        if self.square not in SQUARE_MODES:
            raise ValueError(f"--pm-square must be one of {', '.join(SQUARE_MODES)}, got {self.square!r}")

    def path(self) -> Path:
        """Where the weights are (one-line WeightsError when no path is given anywhere)."""
        return find_weights(self.weights, self.weights_dir, "perturbed_masks.pt", WEIGHTS_ENV, "perturbed_masks",
                            "--pm-weights", TRAIN_HINT)


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """Read ``perturbed_masks.pt`` into a :class:`~puppetry.methods.perturbed_masks.networks.PerturbedMasks`
    in evaluation mode.

    Raises:
        WeightsError: missing, unreadable, of another method, or not matching its own config (one line).
    """
    from puppetry.methods.perturbed_masks.config import WEIGHTS_FORMAT, PerturbSettings, PMModel
    from puppetry.methods.perturbed_masks.networks import build_model
    from puppetry.nn.weights import check_state_dict, read_state_dict
    from puppetry.training.config import ConfigError, from_dict

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"--pm-weights: '{path}' not found (write it with '{TRAIN_HINT}')")
    data = read_state_dict(path, "perturbed-masks weights")
    if data.get("format") != WEIGHTS_FORMAT:
        raise WeightsError(f"--pm-weights: '{path}' is not a perturbed-masks weights file (write one with "
                           f"'{TRAIN_HINT}')")
    try:
        model = from_dict(PMModel, data["model"], "model")
        perturb = from_dict(PerturbSettings, data.get("perturb", {}), "perturb")
        state = data["net"]
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise WeightsError(f"--pm-weights: '{path}' is malformed: {first_line(exc)[:160]}") from None
    net = build_model(model, perturb)
    if not isinstance(state, dict):
        raise WeightsError(f"--pm-weights: '{path}' is malformed: 'net' is not a state dict")
    try:
        check_state_dict(state, net.state_dict(), str(path))
    except WeightsError as exc:
        raise WeightsError(f"--pm-weights: {exc} (write matching weights with '{TRAIN_HINT}')") from None
    net.load_state_dict(state)
    return net.to(device).eval()


@dataclass
class PerturbedMasksState:
    """A prepared source: its image, its square tensor, and ``(D(s), m_s)`` (Eq. 1)."""

    image: np.ndarray
    source: torch.Tensor
    prepared: tuple[torch.Tensor, torch.Tensor]


class PerturbedMasksEngine(Engine):
    """Eq. 1-4 of paper 004 on squared frames; see the module docstring."""

    name = "perturbed_masks"

    def __init__(self, transfer: TransferOptions = TransferOptions(),
                 config: PerturbedMasksEngineConfig = PerturbedMasksEngineConfig(), model=None):
        super().__init__(transfer)
        self.config = config
        self.device = engine_device(config.device)
        self.model = model if model is not None else load_model(config.path(), self.device)
        self.size = int(self.model.config.size)
        self._times: dict[str, float] = defaultdict(float)

    def timings(self) -> dict[str, float]:
        return dict(self._times)

    def _tensor(self, rgb: np.ndarray) -> torch.Tensor:
        square = square_frame(rgb, self.size, self.config.square)
        return torch.from_numpy(square).permute(2, 0, 1)[None].float().div(255).to(self.device)

    def prepare(self, source: SourceFaces) -> PerturbedMasksState:
        x = self._tensor(source.image)
        with torch.no_grad():
            prepared = self.model.source_mask(x)
        return PerturbedMasksState(source.image, x, prepared)

    def render(self, state: PerturbedMasksState, frame: DrivingFrame) -> np.ndarray:
        """The animated source (``H x W x 3`` uint8, the source's size); the source itself for a frame
        without pixels (the method reads the driving frame's pixels, not motion)."""
        if frame.image is None:
            return state.image.copy()
        t0 = time.perf_counter()
        with torch.no_grad():
            out = self.model.animate(state.source, self._tensor(frame.image), state.prepared)["final"]
        square = (out[0].clamp(0, 1).permute(1, 2, 0) * 255).round().byte().cpu().numpy()
        t1 = time.perf_counter()
        h, w = state.image.shape[:2]
        back = unsquare_frame(square, w, h, self.config.square)
        if self.config.square == "crop":
            x0, y0, x1, y1 = square_box(w, h, "crop")
            result = state.image.copy()
            result[y0:y1, x0:x1] = back
            back = result
        self._times["network"] += t1 - t0
        self._times["resize"] += time.perf_counter() - t1
        return back
