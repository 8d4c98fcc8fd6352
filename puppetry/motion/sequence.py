"""Motion without pixels: per-frame decomposed face landmarks, and their template files.

A :class:`MotionSequence` is what a driving video contributes to an animation once its landmarks are
tracked: for each frame the expression, head rotation, face size and position (see
:mod:`puppetry.face.pose`). ``puppetry template`` saves one as ``.npz``; a template is accepted wherever a
driving video is, and carries no driving pixels.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from puppetry.errors import MotionError
from puppetry.face.pose import FacePose, rotation_to_euler

TEMPLATE_FORMAT = "puppetry-motion"
TEMPLATE_VERSION = 1


@dataclass
class MotionSequence:
    """Decomposed driving landmarks, ``T`` frames.

    Attributes:
        expression: ``T x 478 x 3`` pose-free unit-size landmarks.
        rotation: ``T x 3 x 3`` head rotations.
        scale: ``T`` face sizes (driving pixels).
        center: ``T x 3`` face centres (driving pixels).
        valid: ``T`` bool, False where the face was lost and the last good motion is held.
        fps: frame rate of the driving signal.
        frame_size: ``(width, height)`` of the driving frames.
    """

    expression: np.ndarray
    rotation: np.ndarray
    scale: np.ndarray
    center: np.ndarray
    valid: np.ndarray
    fps: float
    frame_size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.scale)

    def pose(self, index: int) -> FacePose:
        """The decomposed face of frame ``index``."""
        return FacePose(self.expression[index], self.rotation[index], self.scale[index], self.center[index])

    @property
    def angles(self) -> np.ndarray:
        """``T x 3`` yaw, pitch, roll in degrees."""
        return rotation_to_euler(self.rotation)

    @property
    def lost_frames(self) -> int:
        return int((~self.valid).sum())

    @classmethod
    def from_poses(cls, poses: list[FacePose], valid: list[bool], fps: float,
                   frame_size: tuple[int, int]) -> "MotionSequence":
        return cls(
            expression=np.stack([p.expression for p in poses]).astype(np.float32),
            rotation=np.stack([p.rotation for p in poses]).astype(np.float32),
            scale=np.array([float(p.scale) for p in poses], dtype=np.float32),
            center=np.stack([p.center for p in poses]).astype(np.float32),
            valid=np.asarray(valid, dtype=bool),
            fps=float(fps),
            frame_size=(int(frame_size[0]), int(frame_size[1])),
        )

    def save(self, path: str | os.PathLike) -> None:
        """Write a ``.npz`` template atomically (no partial file on failure)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npz", dir=path.parent)
        os.close(fd)
        try:
            np.savez_compressed(
                tmp, format=np.array(TEMPLATE_FORMAT), version=np.array(TEMPLATE_VERSION),
                expression=self.expression.astype(np.float32), rotation=self.rotation.astype(np.float32),
                scale=self.scale.astype(np.float32), center=self.center.astype(np.float32),
                valid=self.valid, fps=np.array(self.fps), frame_size=np.array(self.frame_size))
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "MotionSequence":
        """Read a template written by :meth:`save`. Never unpickles anything."""
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["format"]) != TEMPLATE_FORMAT:
                    raise MotionError(f"'{path}' is not a puppetry motion template")
                if int(z["version"]) > TEMPLATE_VERSION:
                    raise MotionError(f"'{path}' was written by a newer puppetry (template version {int(z['version'])})")
                seq = cls(expression=z["expression"], rotation=z["rotation"], scale=z["scale"],
                          center=z["center"], valid=z["valid"].astype(bool), fps=float(z["fps"]),
                          frame_size=tuple(int(v) for v in z["frame_size"]))
        except MotionError:
            raise
        except KeyError:
            raise MotionError(f"'{path}' is not a puppetry motion template (arrays are missing)") from None
        except (OSError, ValueError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise MotionError(f"cannot read motion template '{path}': {exc}") from None
        n = len(seq.scale)
        arrays = (seq.expression, seq.rotation, seq.scale, seq.center)
        if (n == 0 or seq.scale.shape != (n,) or seq.expression.shape != (n, 478, 3)
                or seq.rotation.shape != (n, 3, 3) or seq.center.shape != (n, 3) or seq.valid.shape != (n,)
                or len(seq.frame_size) != 2 or not all(np.isfinite(a).all() for a in arrays)
                or not (seq.scale > 0).all() or not (np.isfinite(seq.fps) and 0 < seq.fps <= 1000)):
            raise MotionError(f"motion template '{path}' is damaged (inconsistent or empty arrays)")
        return seq
