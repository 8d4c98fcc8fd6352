"""The LivePortrait engine (paper 001, Sec. 3.4 and Algorithm 1) on puppetry's pipeline.

prepare: every source face is cropped (rotation-aligned, :mod:`.crop`), and F and M run once on the
batch of crops, giving f_s, x_c,s, R_s, delta_s, t_s, s_s and x_s; the eyes- and lip-open conditions
c_s come from the face's landmarks.

render, per driving frame: the driving motion comes from M on the driving face crop, or from a
keypoint template; the first driving frame is the reference of Eq. 7. Then, for every face at once:
Eq. 7 or absolute motion with its region, direct controls (extra head angles; eyes and lips through
the retargeting MLPs), Algorithm 1 (stitching, eyes and lip retargeting), the driving multiplier,
W and G, and paste-back of the 512 x 512 result into the full source image.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from puppetry.engines.base import DrivingFrame, Engine, SourceFaces
from puppetry.errors import PuppetryError
from puppetry.face.pose import eye_open_ratio, lip_open_ratio
from puppetry.methods.liveportrait.crop import AlignedCrop, align_crop, paste_back, paste_mask
from puppetry.methods.liveportrait.kinematics import KeypointInfo, source_keypoints
from puppetry.methods.liveportrait.models import LivePortraitModels, RuntimeOptions
from puppetry.methods.liveportrait.transfer import (DrivingMotion, amplify, driving_keypoints, extra_rotation,
                                            eyes_condition, lip_condition)
from puppetry.motion.transfer import TransferOptions

logger = logging.getLogger(__name__)

INPUT_SIZE = 256
OUTPUT_SIZE = 512
LIP_NORMALIZE_THRESHOLD = 0.03   # the release's: close an open source mouth when c_s,lip is above this
MAX_LIP_CONDITION = 0.8          # the paper's range of c_d,lip (Sec. 4.3)
LIP_CONTROL_SCALE = 0.5          # lips control 1 = inner gap half the mouth width (as in the warp engine)


@dataclass
class LivePortraitConfig:
    """Options of the LivePortrait engine (``--engine liveportrait``).

    Attributes:
        checkpoint_dir: release weights folder (None: ``$PUPPETRY_LIVEPORTRAIT_DIR``).
        device, precision, compile: see :class:`~puppetry.methods.liveportrait.models.RuntimeOptions`.
        stitching: Algorithm 1's stitching (alpha_st); keeps shoulders and the crop border in place.
        eyes_retargeting, lip_retargeting: Algorithm 1's alpha_eyes / alpha_lip with the driving's
            conditions (Sec. 4.3); in relative mode they replace the driving expression.
        normalize_lip: close an open source mouth before animating (relative motion), as the release does.
        paste_back: paste the result into the full source image (else: the 512 x 512 crop of face 1).
        crop_driving: "auto" crops driving frames around the face unless they are square (the
            release's rule: square driving videos are taken as already cropped), "always", "never".
        batch_size: driving frames rendered per network call.
        crop_scale: crop side over the face size (2.3 in the release).
    """

    checkpoint_dir: str | None = None
    device: str = "cpu"
    precision: str = "auto"
    compile: bool = False
    stitching: bool = True
    eyes_retargeting: bool = False
    lip_retargeting: bool = False
    normalize_lip: bool = True
    paste_back: bool = True
    crop_driving: str = "auto"
    batch_size: int = 1
    crop_scale: float = 2.3

    def __post_init__(self) -> None:
        if self.crop_driving not in ("auto", "always", "never"):
            raise PuppetryError(f"crop_driving must be auto, always or never, not {self.crop_driving!r}")
        if not 1 <= int(self.batch_size) <= 64:
            raise PuppetryError(f"batch size must be 1..64, got {self.batch_size}")


@dataclass
class SourceState:
    """Everything computed once per source image (batch B = number of faces)."""

    image: np.ndarray
    crops: list[AlignedCrop]
    crop_rgb: list[np.ndarray]
    f_s: torch.Tensor
    info: KeypointInfo
    x_s: torch.Tensor
    c_s_eyes: torch.Tensor          # B x 2
    c_s_lip: torch.Tensor           # B x 1
    lip_delta: torch.Tensor | None  # B x K x 3, closes an open source mouth
    mask: np.ndarray
    d0: DrivingMotion | None = None
    c_d0: tuple[float, float] | None = None          # driving eyes/lip conditions at frame 0
    last: tuple[DrivingMotion, float | None, float | None] | None = None
    video: bool = False                              # a source-video frame: Eq. 8 smoothing
    warned_smile: bool = False
    ahead: tuple | None = None                       # (lookahead frame, its motion): M runs once per frame


def to_tensor(images: list[np.ndarray], size: int = INPUT_SIZE) -> torch.Tensor:
    """``N`` RGB uint8 images -> ``N x 3 x size x size`` float in [0, 1]."""
    out = [im if im.shape[:2] == (size, size) else cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA)
           for im in images]
    return torch.from_numpy(np.stack(out).astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()


def to_images(batch: torch.Tensor) -> list[np.ndarray]:
    """``N x 3 x H x W`` in [0, 1] -> ``N`` uint8 RGB images (rounded, clamped)."""
    arr = (batch.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return list(arr)


def face_conditions(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """Eyes-open pair and lip-open scalar of one face (ratios of lid gap / eye width and inner-lip
    gap / mouth width, measured on the 478 MediaPipe landmarks, scale and rotation free)."""
    return eye_open_ratio(landmarks[:, :2]).astype(np.float32), float(lip_open_ratio(landmarks[:, :2]))


class LivePortraitEngine(Engine):
    """LivePortrait on the release's weights; see the module docstring."""

    name = "liveportrait"

    def __init__(self, transfer: TransferOptions = TransferOptions(), config: LivePortraitConfig | None = None,
                 models: LivePortraitModels | None = None):
        super().__init__(transfer)
        self.config = config or LivePortraitConfig()
        runtime = RuntimeOptions(self.config.device, self.config.precision, self.config.compile)
        self.models = models if models is not None else LivePortraitModels.from_checkpoints(
            self.config.checkpoint_dir, runtime)
        self.batch_size = int(self.config.batch_size)
        self._seconds: dict[str, float] = defaultdict(float)

    # ------------------------------------------------------------------ prepare
    def prepare(self, source: SourceFaces) -> SourceState:
        t0 = time.perf_counter()
        if not source.landmarks:
            raise PuppetryError(f"no face to animate in '{source.name}'")
        crops = [align_crop(lm, scale=self.config.crop_scale) for lm in source.landmarks]
        crop_rgb = [c.cut(source.image, INPUT_SIZE) for c in crops]
        self._seconds["crop"] += time.perf_counter() - t0
        x = to_tensor(crop_rgb).to(self.models.device)
        info = self.models.motion(x)
        f_s = self.models.appearance(x)
        x_s = source_keypoints(info)
        conds = [face_conditions(lm) for lm in source.landmarks]
        dev = x_s.device
        c_s_eyes = torch.tensor(np.stack([c[0] for c in conds]), device=dev)
        c_s_lip = torch.tensor([[c[1]] for c in conds], dtype=torch.float32, device=dev)
        lip_delta = None
        if self.config.normalize_lip and self.transfer.relative:
            open_mouth = (c_s_lip[:, 0] >= LIP_NORMALIZE_THRESHOLD).float()[:, None, None]
            if open_mouth.any():
                lip_delta = self.models.retarget_lip(x_s, lip_condition(c_s_lip, 0.0)) * open_mouth
        return SourceState(image=source.image, crops=crops, crop_rgb=crop_rgb, f_s=f_s, info=info, x_s=x_s,
                           c_s_eyes=c_s_eyes, c_s_lip=c_s_lip, lip_delta=lip_delta, mask=paste_mask(OUTPUT_SIZE))

    def prepare_next(self, previous: SourceState | None, source: SourceFaces) -> SourceState:
        """A source video's next frame: a fresh source state that keeps the driving reference and
        turns on Eq. 8 (expression averaged over driving frames i and i + 1)."""
        state = self.prepare(source)
        state.video = True
        if previous is not None:
            state.d0, state.c_d0, state.last = previous.d0, previous.c_d0, previous.last
            state.ahead = previous.ahead
        return state

    def reset_reference(self, state: SourceState) -> None:
        state.d0, state.c_d0, state.last = None, None, None

    # ------------------------------------------------------------------ driving motion
    def _driving_crop(self, frame: DrivingFrame) -> np.ndarray:
        image = frame.image
        square = abs(image.shape[0] - image.shape[1]) <= 2
        mode = self.config.crop_driving
        if mode == "never" or (mode == "auto" and square) or frame.landmarks is None:
            return image
        return align_crop(frame.landmarks, scale=self.config.crop_scale).cut(image, INPUT_SIZE)

    def _driving_motions(self, state: SourceState, frames: list[DrivingFrame]
                         ) -> list[tuple[DrivingMotion, float | None, float | None] | None]:
        """Per frame: (motion, eyes condition, lip condition) or None (no driving motion: controls only)."""
        out: list = [None] * len(frames)
        need = [i for i, f in enumerate(frames) if f.keypoints is None and f.image is not None and f.found
                and f.landmarks is not None]
        if need:
            t0 = time.perf_counter()
            crops = [self._driving_crop(frames[i]) for i in need]
            self._seconds["crop"] += time.perf_counter() - t0
            info = self.models.motion(to_tensor(crops).to(self.models.device))
            for j, i in enumerate(need):
                eyes, lip = face_conditions(frames[i].landmarks)
                out[i] = (DrivingMotion.from_info(info[j]), float(eyes.mean()), lip)
        dev = state.x_s.device
        for i, f in enumerate(frames):
            if f.keypoints is not None:
                k = f.keypoints
                motion = DrivingMotion(R=torch.as_tensor(k["R"], device=dev).reshape(1, 3, 3).float(),
                                       exp=torch.as_tensor(k["exp"], device=dev).reshape(1, -1, 3).float(),
                                       t=torch.as_tensor(k["t"], device=dev).reshape(1, 3).float(),
                                       scale=torch.as_tensor(k["scale"], device=dev).reshape(1, 1).float())
                eyes = float(np.mean(k["c_eyes"])) if k.get("c_eyes") is not None else None
                lip = float(np.mean(k["c_lip"])) if k.get("c_lip") is not None else None
                out[i] = (motion, eyes, lip)
            elif out[i] is None and f.image is not None and state.last is not None:
                out[i] = state.last          # face lost: hold the last good motion
            if out[i] is not None:
                state.last = out[i]
        return out

    def _eq8(self, state: SourceState, frame: DrivingFrame, drive):
        """Eq. 8: for source-video editing the driving expression is ``0.5 (delta_d,i + delta_d,i+1)``."""
        if drive is None or frame.lookahead is None:
            return drive
        last = state.last
        ahead = self._driving_motions(state, [frame.lookahead])[0]
        state.last = last
        state.ahead = (frame.lookahead, ahead)
        if ahead is None:
            return drive
        motion, eyes, lip = drive
        if state.d0 is None:                 # delta_d,0 is frame 0's own expression, not a mean
            state.d0 = motion
            state.c_d0 = (eyes if eyes is not None else 0.0, lip if lip is not None else 0.0)
        mean = DrivingMotion(motion.R, 0.5 * (motion.exp + ahead[0].exp), motion.t, motion.scale)
        return mean, eyes, lip

    # ------------------------------------------------------------------ keypoints
    def _target(self, state: SourceState, frame: DrivingFrame, drive) -> torch.Tensor:
        """x_d for every source face (``B x K x 3``), Algorithm 1 included."""
        cfg, tr, models = self.config, self.transfer, self.models
        s, x_s = state.info, state.x_s
        ctl = frame.controls
        extra = extra_rotation(ctl.yaw, ctl.pitch, ctl.roll, x_s)
        if drive is None:
            x_d = x_s if extra is None else driving_keypoints(
                s, DrivingMotion(s.R, s.exp, s.t, s.scale), DrivingMotion(s.R, s.exp, s.t, s.scale), extra=extra)
            c_eyes_d = c_lip_d = None
        else:
            motion, c_eyes_d, c_lip_d = drive
            if state.d0 is None:
                state.d0 = motion
                state.c_d0 = (c_eyes_d if c_eyes_d is not None else 0.0, c_lip_d if c_lip_d is not None else 0.0)
            x_d = driving_keypoints(s, motion, state.d0, tr.region, tr.relative, extra=extra)
        retarget_eyes = cfg.eyes_retargeting and c_eyes_d is not None
        retarget_lip = cfg.lip_retargeting and c_lip_d is not None
        if retarget_eyes or retarget_lip:                        # Algorithm 1, lines 8-14
            base = x_s if tr.relative else x_d
            delta = torch.zeros_like(x_s)
            if retarget_eyes:
                delta = delta + models.retarget_eyes(x_s, eyes_condition(state.c_s_eyes, c_eyes_d, state.c_d0[0]))
            if retarget_lip:
                c_d = state.c_s_lip * (c_lip_d / max(state.c_d0[1], 1e-2))   # Sec. 4.3
                delta = delta + models.retarget_lip(x_s, lip_condition(state.c_s_lip, c_d.clamp(0, MAX_LIP_CONDITION)))
            x_d = base + delta
            if cfg.stitching:
                x_d = models.stitch(x_s, x_d)
        else:                                                    # Algorithm 1, lines 1-7
            if cfg.stitching:
                x_d = models.stitch(x_s, x_d)
            if state.lip_delta is not None:
                x_d = x_d + state.lip_delta
        x_d = self._controls(state, x_d, ctl)
        return amplify(x_s, x_d, tr.multiplier)

    def _controls(self, state: SourceState, x_d: torch.Tensor, ctl) -> torch.Tensor:
        """Eyes and lips controls through R_eyes / R_lip (their offsets are added to x_d)."""
        x_s = state.x_s
        if ctl.smile is not None and not state.warned_smile:
            logger.warning("the liveportrait engine has no smile control (the paper retargets eyes and lips "
                           "only); --smile is ignored")
            state.warned_smile = True
        if ctl.eyes is not None:
            target = state.c_s_eyes.mean(1, keepdim=True) * ctl.eyes
            x_d = x_d + self.models.retarget_eyes(x_s, torch.cat([state.c_s_eyes, target], 1))
        if ctl.lips is not None:
            x_d = x_d + self.models.retarget_lip(x_s, lip_condition(state.c_s_lip, ctl.lips * LIP_CONTROL_SCALE))
        return x_d

    # ------------------------------------------------------------------ render
    def render(self, state: SourceState, frame: DrivingFrame) -> np.ndarray:
        return self.render_batch(state, [frame])[0]

    def render_batch(self, state: SourceState, frames: list[DrivingFrame]) -> list[np.ndarray]:
        if state.ahead is not None and len(frames) == 1 and state.ahead[0] is frames[0]:
            drives = [state.ahead[1]]                    # computed as the previous frame's lookahead
            state.last = drives[0] or state.last
        else:
            drives = self._driving_motions(state, frames)
        if state.video:
            drives = [self._eq8(state, f, d) for f, d in zip(frames, drives)]
        targets = [self._target(state, f, d) for f, d in zip(frames, drives)]
        n_faces = state.x_s.shape[0]
        x_d = torch.cat(targets)
        x_s, f_s = state.x_s, state.f_s            # one frame: no copy of the 8 MB source volume
        if len(frames) > 1:
            x_s, f_s = x_s.repeat(len(frames), 1, 1), f_s.repeat(len(frames), 1, 1, 1, 1)
        images = to_images(self.models.warp_decode(f_s, x_s, x_d)["image"])
        t0 = time.perf_counter()
        out = []
        for i in range(len(frames)):
            faces = images[i * n_faces:(i + 1) * n_faces]
            if not self.config.paste_back:
                out.append(faces[0])
                continue
            result = state.image
            for crop, face in zip(state.crops, faces):
                result = paste_back(result, face, crop, state.mask)
            out.append(result)
        self._seconds["paste"] += time.perf_counter() - t0
        return out

    def timings(self) -> dict[str, float]:
        return {**self._seconds, **self.models.seconds}

    def reset_timings(self) -> None:
        self._seconds.clear()
        self.models.reset_timings()
