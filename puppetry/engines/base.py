"""The interface every animation engine implements: prepare a source once, render per driving frame.

The pipeline (:mod:`puppetry.pipeline`) does the shared work: it reads media, finds the source faces,
tracks the driving face and turns templates, procedural motions and controls into
:class:`DrivingFrame` objects. An engine turns the source into its own prepared state in
:meth:`Engine.prepare` and draws each output frame in :meth:`Engine.render`. What an engine needs
(:class:`EngineNeeds`) and can do (edit source videos, read keypoint templates) its method declares in
its descriptor (:mod:`puppetry.methods.descriptor`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from puppetry.face.pose import FacePose
from puppetry.motion.controls import Controls
from puppetry.motion.transfer import TransferOptions


@dataclass(frozen=True)
class EngineNeeds:
    """What an engine requires from the pipeline.

    Attributes:
        source_landmarks: 478-point landmarks of every source face.
        driving_pixels: the driving frames themselves (not only their motion).
        face_crops: square crops of the faces (learned engines).
        masks: semantic face masks.
        weights: trained weights (a checkpoint path).
    """

    source_landmarks: bool = True
    driving_pixels: bool = False
    face_crops: bool = False
    masks: bool = False
    weights: bool = False


@dataclass
class DrivingFrame:
    """One frame of driving signal, whatever its origin.

    Attributes:
        index: frame number.
        controls: direct controls for this frame (always present; neutral when unused).
        image: ``H x W x 3`` uint8 driving pixels, or None (templates, procedural motions).
        landmarks: ``478 x 3`` driving-face landmarks in driving pixels, or None.
        pose: the driving face decomposed, or None when the frame carries controls only.
        reference: the driving face at its first frame (for relative transfer), or None.
        found: False when the face was lost and ``pose`` holds the last good one.
        lookahead: the next driving frame when the pipeline knows it (source-video editing, Eq. 8).
        keypoints: LivePortrait motion of this frame from a keypoint template (``R`` ``3 x 3``, ``exp``
            ``21 x 3``, ``t`` ``3``, ``scale`` ``1``, optional ``c_eyes`` ``2`` and ``c_lip`` ``1``), or None.
    """

    index: int
    controls: Controls = field(default_factory=Controls)
    image: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    pose: FacePose | None = None
    reference: FacePose | None = None
    found: bool = True
    keypoints: dict[str, np.ndarray] | None = None
    lookahead: "DrivingFrame | None" = None


@dataclass
class SourceFaces:
    """The source image and what the pipeline found in it.

    Attributes:
        image: ``H x W x 3`` uint8 RGB source at working size.
        landmarks: one ``478 x 3`` array per face (source pixels), largest first.
        name: where the source came from (for messages).
    """

    image: np.ndarray
    landmarks: list[np.ndarray]
    name: str = "source"


class Engine(ABC):
    """Base class of animation engines.

    Subclasses set :attr:`name` (their method's name) and implement :meth:`prepare` and :meth:`render`;
    an engine is built as ``EngineClass(transfer, config)`` by :func:`puppetry.methods.registry.create_engine`.
    """

    name: ClassVar[str]

    def __init__(self, transfer: TransferOptions = TransferOptions()):
        self.transfer = transfer

    @abstractmethod
    def prepare(self, source: SourceFaces) -> Any:
        """Analyse the source once; returns the engine's own state for :meth:`render`."""

    @abstractmethod
    def render(self, state: Any, frame: DrivingFrame) -> np.ndarray:
        """Draw one output frame (``H x W x 3`` uint8, the source's size)."""

    batch_size: int = 1

    def prepare_next(self, previous: Any, source: SourceFaces) -> Any:
        """Prepare the next frame of a source video; ``previous`` is the last frame's state or None.
        Engines that edit source videos carry their driving reference over here."""
        return self.prepare(source)

    def reset_reference(self, state: Any) -> None:
        """Forget the driving reference: the next driving frame becomes the new first frame."""

    def render_batch(self, state: Any, frames: list[DrivingFrame]) -> list[np.ndarray]:
        """Draw several frames at once (engines that batch their networks override this)."""
        return [self.render(state, f) for f in frames]

    def timings(self) -> dict[str, float]:
        """Seconds spent per stage since construction (for ``puppetry bench``)."""
        return {}
