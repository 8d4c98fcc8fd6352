"""Keypoint motion templates recorded from a driving video: M's outputs per frame (paper 001, Sec. 3.4).

A template stores, per driving frame, R_d, delta_d, t_d, s_d and the eyes/lip conditions; it drives
the LivePortrait engine like the video did, without the pixels (and faster: M need not run again).
"""

from __future__ import annotations

import logging
import os

import numpy as np
import torch

from puppetry.errors import NoFaceError
from puppetry.face.smoothing import OneEuroConfig
from puppetry.methods.liveportrait.engine import LivePortraitEngine, face_conditions, to_tensor
from puppetry.motion.keypoint_template import KeypointTemplate
from puppetry.pipeline.driving import open_driving

logger = logging.getLogger(__name__)


def record_template(driving: str | os.PathLike, engine: LivePortraitEngine,
                    smoothing: OneEuroConfig | None = OneEuroConfig(), batch_size: int = 8,
                    max_frames: int | None = None) -> KeypointTemplate:
    """Run M on every driving frame's face crop and collect a :class:`KeypointTemplate`.

    Frames before the face first appears take the first found frame's motion; later frames where
    the face is lost hold the last good one (as when animating).
    """
    stream = open_driving(driving, smoothing=smoothing, keep_pixels=True, max_frames=max_frames)
    if stream.kind not in ("video", "image"):
        raise NoFaceError(f"'{driving}' is not a video or image; only those can be recorded as a template")
    rows: list[dict | None] = []
    batch: list = []

    def flush() -> None:
        if not batch:
            return
        info = engine.models.motion(to_tensor([engine._driving_crop(f) for f in batch]).to(engine.models.device))
        for j, f in enumerate(batch):
            eyes, lip = face_conditions(f.landmarks)
            rows.append({"R": info.R[j], "exp": info.exp[j], "t": info.t[j], "scale": info.scale[j, 0],
                         "c_eyes": torch.from_numpy(eyes), "c_lip": torch.tensor(lip)})
        batch.clear()

    pending = 0
    for frame in stream:
        if frame.landmarks is None or frame.image is None:
            if rows or batch:
                flush()
                rows.append(rows[-1])
            else:
                pending += 1
            continue
        batch.append(frame)
        if len(batch) >= batch_size:
            flush()
    flush()
    if not rows:
        raise NoFaceError(f"no face found in driving '{driving}'")
    rows = [rows[0]] * pending + rows
    stack = {k: torch.stack([r[k] for r in rows]).cpu().numpy().astype(np.float32) for k in rows[0]}
    logger.info("recorded %d frames of keypoint motion from %s", len(rows), driving)
    return KeypointTemplate(scale=stack["scale"], R=stack["R"], exp=stack["exp"], t=stack["t"], fps=stream.fps,
                            c_eyes=stack["c_eyes"], c_lip=stack["c_lip"])
