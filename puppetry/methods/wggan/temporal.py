"""Temporal coherence of the hallucinated mouth (paper 003, Sec. 5.2).

003: "To ensure the temporal coherence of the hidden region hallucination among consecutive frames, we
blend two frames in texture space after optic flow alignment similar to [Thies et al. 2016]". hrh-GAN
completes every frame on its own, so teeth and tongue may flicker; the blender pulls each frame's mouth
towards the previous one, aligned to it by dense optical flow:

    out_t = (1 - β) · C_t + β · warp(out_{t-1}, flow_t)      inside the hole (soft), C_t outside it.

Choices:

- The "texture space" is the rectified face crop both frames are completed in, so consecutive mouths
  differ only by the mouth's own motion there.
- The flow is computed between consecutive *completed* crops (the current one and the previous output),
  not between the inputs: the inputs have nothing inside the hole, so their flow there would be guessed
  from the surroundings, whereas the completed crops carry the very texture (teeth, tongue) that must be
  aligned, plus the lips around it. OpenCV's DIS flow (medium preset) on the grey crop, backward
  (current -> previous) so one ``cv2.remap`` pulls the previous mouth onto the current one.
- The previous *output* is kept (not the previous raw completion): the blend is a recursive filter whose
  memory decays by β per frame.
- Reset (the current frame passes unchanged and becomes the new reference) when there is no previous
  frame, the crop size changed, the median flow in the hole exceeds ``max_motion`` of the side (a jump),
  or the aligned previous mouth still differs from the current one by more than ``max_error`` (a cut,
  another face, the flow failed).

One blender per face track; call :meth:`MouthBlender.reset` when the track is lost.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from puppetry.methods.wggan.completion_config import TemporalSettings

logger = logging.getLogger(__name__)


class MouthBlender:
    """Blends each frame's completed mouth with the flow-aligned previous one (see the module docstring).

    Args:
        beta: weight of the previous mouth, in [0, 1); 0 returns every frame unchanged.
        max_motion: reset when the median flow inside the hole is longer than this share of the side.
        max_error: reset when the aligned previous mouth differs from the current one by more than this
            mean absolute value (0-255) inside the hole.
        align: warp the previous mouth by the flow (False: blend it as it is; for comparisons).
    """

    def __init__(self, beta: float = 0.5, max_motion: float = 0.08, max_error: float = 40.0, align: bool = True):
        if not 0 <= beta < 1:
            raise ValueError(f"beta must be in [0, 1), got {beta}")
        self.beta = float(beta)
        self.max_motion = float(max_motion)
        self.max_error = float(max_error)
        self.align = align
        self._flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self._prev: np.ndarray | None = None
        self._grid: np.ndarray | None = None
        self.resets = 0           # how many times the blender started afresh after the first frame

    @classmethod
    def from_settings(cls, settings: TemporalSettings, align: bool = True) -> MouthBlender:
        """A blender with the ``temporal:`` settings of an hrh-GAN config (or ``CompletionModel.temporal``)."""
        return cls(settings.beta, settings.max_motion, settings.max_error, align)

    def reset(self) -> None:
        """Forget the previous frame (a new shot or a new face)."""
        self._prev = None

    def _start(self, completed: np.ndarray) -> np.ndarray:
        self._prev = completed.copy()
        return completed.copy()

    def _warp(self, current: np.ndarray, hole: np.ndarray) -> tuple[np.ndarray, float]:
        """The previous output aligned to ``current`` and the median flow length (pixels) in the hole."""
        prev = self._prev
        if not self.align:
            return prev, 0.0
        grey = [np.ascontiguousarray(cv2.cvtColor(v, cv2.COLOR_RGB2GRAY)) for v in (current, prev)]
        flow = self._flow.calc(grey[0], grey[1], None)               # current(p) ~ prev(p + flow(p))
        h, w = hole.shape
        if self._grid is None or self._grid.shape[:2] != (h, w):
            xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            self._grid = np.stack([xs, ys], -1)
        coords = self._grid + flow
        warped = cv2.remap(prev, coords[..., 0], coords[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        motion = float(np.median(np.linalg.norm(flow[hole > 0.5], axis=-1))) if (hole > 0.5).any() else 0.0
        return warped, motion

    def blend(self, completed: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """This frame's mouth blended with the previous one.

        Args:
            completed: ``S x S x 3`` uint8 RGB, the completed face crop of this frame.
            hole: ``S x S`` float32 in [0, 1], the inner-mouth hole the network filled.

        Returns:
            ``S x S x 3`` uint8: ``completed`` outside the hole, the blend inside it.
        """
        completed = np.asarray(completed)
        hole = np.asarray(hole, dtype=np.float32)
        shape_ok = completed.ndim == 3 and completed.shape[2] == 3 and hole.shape == completed.shape[:2]
        if not shape_ok or completed.dtype != np.uint8:
            raise ValueError(f"blend takes an S x S x 3 uint8 crop and an S x S hole, got {completed.shape} "
                             f"{completed.dtype} and {hole.shape}")
        if self.beta == 0 or self._prev is None or self._prev.shape != completed.shape:
            return self._start(completed)
        if not (hole > 0).any():                        # closed mouth: nothing to blend, keep the reference
            return self._start(completed)
        warped, motion = self._warp(completed, hole)
        weight = (self.beta * hole)[..., None]
        current = completed.astype(np.float32)
        diff = warped.astype(np.float32) - current
        error = float((np.abs(diff).mean(-1) * hole).sum() / max(float(hole.sum()), 1e-6))
        if motion > self.max_motion * completed.shape[0] or error > self.max_error:
            logger.debug("mouth blender reset: motion %.1f px, error %.1f", motion, error)
            self.resets += 1
            return self._start(completed)
        out = np.clip(current + weight * diff + 0.5, 0, 255).astype(np.uint8)
        self._prev = out
        return out.copy()
