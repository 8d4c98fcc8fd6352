"""Motion without pixels: per-frame decomposed face landmarks, and their template files.

A :class:`MotionSequence` is what a driving video contributes to an animation once its landmarks are
tracked: for each frame the expression, head rotation, face size and position (see
:mod:`puppetry.face.pose`). ``puppetry template`` saves one as ``.npz``; a template is accepted wherever a
driving video is, and carries no driving pixels.

A template is read without unpickling, and its arrays' ``.npy`` headers are checked before any is loaded:
shapes must agree on one frame count and claim at most :data:`MAX_TEMPLATE_BYTES` together, so a header
that claims a giant array (or a deflated member that would inflate to one) is refused unread.
"""

from __future__ import annotations

import math
import os
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from puppetry.errors import MotionError
from puppetry.face.pose import FacePose, rotation_to_euler
from puppetry.motion.npz_archive import npz_member_header, open_npz

TEMPLATE_FORMAT = "puppetry-motion"
TEMPLATE_VERSION = 1
MAX_TEMPLATE_BYTES = 512 * 2**20
"""Most bytes a template's arrays may claim together: about 92,000 frames (51 minutes at 30 fps)."""
_PER_FRAME = {"expression": (478, 3), "rotation": (3, 3), "scale": (), "center": (3,), "valid": ()}
_SCALARS = {"format": (), "version": (), "fps": (), "frame_size": (2,)}


def _claimed_shapes(z: np.lib.npyio.NpzFile, path: str | os.PathLike) -> dict[str, tuple[int, ...]]:
    """Shapes of a template's arrays from their ``.npy`` headers alone, refusing more than
    :data:`MAX_TEMPLATE_BYTES` in one or all of them. Missing arrays are left out (the loader reports them)."""
    headers = {k: npz_member_header(z, k, MAX_TEMPLATE_BYTES) for k in (*_SCALARS, *_PER_FRAME) if k in z.files}
    claimed = sum(math.prod(shape) * dtype.itemsize for shape, dtype in headers.values())
    if claimed > MAX_TEMPLATE_BYTES:
        raise MotionError(f"motion template '{path}' claims {claimed >> 20} MB of arrays; at most "
                          f"{MAX_TEMPLATE_BYTES >> 20} MB is read")
    return {k: shape for k, (shape, _) in headers.items()}


def _check_shapes(shapes: dict[str, tuple[int, ...]], path: str | os.PathLike) -> None:
    """Refuse arrays whose claimed shapes do not fit one frame count, before they are loaded."""
    if "scale" not in shapes:  # the loader reports it missing
        return
    if len(shapes["scale"]) != 1:  # no frame count to hold the others to
        raise MotionError(f"motion template '{path}' is damaged (scale of the wrong shape)")
    n = shapes["scale"][0]
    expected = {**_SCALARS, **{k: (n, *rest) for k, rest in _PER_FRAME.items()}}
    wrong = [k for k, shape in shapes.items() if k != "format" and shape != expected[k]]
    if wrong:
        raise MotionError(f"motion template '{path}' is damaged ({', '.join(wrong)} of the wrong shape)")


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
            with open_npz(path) as z:
                shapes = _claimed_shapes(z, path)
                if str(z["format"]) != TEMPLATE_FORMAT:
                    raise MotionError(f"'{path}' is not a puppetry motion template")
                if int(z["version"]) > TEMPLATE_VERSION:
                    raise MotionError(f"'{path}' was written by a newer puppetry (template version {int(z['version'])})")
                _check_shapes(shapes, path)
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
