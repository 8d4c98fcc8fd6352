"""Training samples of wg-GAN from a prepared dataset (003, Sec. 4.1 "Training data").

"Given a video sequence starting from a rest expression, we detect facial landmarks for every 10th frame
and generate the warped image for the frame." In every clip a *rest* frame ``r`` (the first frame, or the
most closed mouth among the first frames) and the frames ``r + k * every`` (k >= 1) make pairs. For a pair:

- the **warped face** ``x_w``: the rest frame warped by the landmark warp of the warp engine
  (:mod:`puppetry.methods.warp`, its rig, mesh and depth ordering) so that its landmarks land exactly on frame
  ``t``'s landmarks (absolute targets, no motion transfer, no mouth fill);
- the **displacement map** ``M`` (:func:`puppetry.methods.wggan.displacement.displacement_map`) of frame ``t``'s
  landmarks from the rest frame's;
- the **ground truth** ``x_g``: frame ``t`` itself;
- the **mask**: the face oval of frame ``t`` without the inner mouth (where the loss counts and the
  refinement network may change pixels).

All four lie in frame ``t``'s rectified crop (:func:`puppetry.methods.wggan.face_crop.rectify`) at ``size``; since the
warp puts the rest frame's landmarks on frame ``t``'s, ``x_w`` and ``x_g`` align. The inner mouth (the
Face Mesh inner-lip polygon grown by ``mouth_grow`` of the mouth width, the hole hrh-GAN fills) is set to 0
in ``x_w`` and ``x_g``. Augmentation (G2GAN's, 003 Sec. 4.1): horizontal flips (the map's x channel changes
sign) and random crops of ``(1 - ε)`` of the side resized back, identical for the four arrays.

Frames are decoded on demand; built pairs (before augmentation) stay in a bounded in-memory cache, as do
the prepared warps of the last few rest frames. Landmarks of the used frames are read once at start.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from puppetry.data.dataset import open_dataset
from puppetry.engines.base import DrivingFrame, SourceFaces
from puppetry.errors import PuppetryError
from puppetry.face.pose import FacePose, decompose, lip_open_ratio
from puppetry.methods.warp.engine import WarpConfig, WarpEngine, WarpState
from puppetry.methods.wggan.displacement import PartStatistics, displacement_map, landmark_offsets, mirror_map
from puppetry.methods.wggan.face_crop import face_mask, inner_mouth_mask, rectify
from puppetry.methods.wggan.refinement_config import WgGanData

logger = logging.getLogger(__name__)

_WARP_CACHE = 4            # prepared rest frames kept


class _AbsoluteWarp(WarpEngine):
    """The warp engine with absolute targets: the face takes the driving frame's pose as it is."""

    def target_face(self, rig, frame: DrivingFrame, state: WarpState | None = None, face: int = 0) -> FacePose:
        return frame.pose


class FaceWarper:
    """Warps a rest frame so that its landmarks land on given target landmarks (the global stage).

    Args:
        config: warp settings (mouth fill, gaze clamping, contour unfolding and body following are always
            off: targets are taken exactly).
    """

    def __init__(self, config: WarpConfig = WarpConfig()):
        self.engine = _AbsoluteWarp(config=dataclasses.replace(config, mouth_fill=False, gaze=False,
                                                                   unfold_contour=False, follow_body=False))

    def prepare(self, image: np.ndarray, landmarks: np.ndarray) -> WarpState:
        """Prepare a rest frame: ``H x W x 3`` uint8 and its ``478 x 3`` landmarks (pixels)."""
        return self.engine.prepare(SourceFaces(image, [np.asarray(landmarks, np.float64)]))

    def warp(self, state: WarpState, target: np.ndarray, image: np.ndarray | None = None) -> np.ndarray:
        """The rest frame warped onto ``target`` (``478 x 3`` pixels), ``H x W x C``.

        ``image`` warps another picture of the rest frame's geometry instead (e.g. a coordinate image).
        """
        if image is not None:
            state = dataclasses.replace(state, image=image)
        return self.engine.render(state, DrivingFrame(0, pose=decompose(np.asarray(target, np.float64))))


@dataclass
class RefinementSample:
    """One training pair in frame ``t``'s rectified crop of side S.

    Attributes:
        warped: ``S x S x 3`` uint8 ``x_w`` (inner mouth 0).
        displacement: ``2 x S x S`` float32 ``M``.
        target: ``S x S x 3`` uint8 ``x_g`` (inner mouth 0).
        mask: ``S x S`` float32 in [0, 1], the face without the inner mouth.
        pair: (clip index, rest frame, frame t).
    """

    warped: np.ndarray
    displacement: np.ndarray
    target: np.ndarray
    mask: np.ndarray
    pair: tuple[int, int, int]


@dataclass
class RefinementBatch:
    """A batch on one device, images float in [0, 1].

    Attributes:
        warped: ``B x 3 x S x S`` ``x_w``.
        displacement: ``B x 2 x S x S`` ``M``.
        target: ``B x 3 x S x S`` ``x_g``.
        mask: ``B x 1 x S x S``.
    """

    warped: torch.Tensor
    displacement: torch.Tensor
    target: torch.Tensor
    mask: torch.Tensor

    @property
    def size(self) -> int:
        return self.warped.shape[0]


def rest_frame(landmarks: np.ndarray, rule: str, window: int) -> int:
    """The rest frame of a clip: 0 (``first``) or the smallest lip-open ratio in the first ``window``
    frames (``neutral``). ``landmarks`` is ``T x 478 x 3``."""
    if rule == "first":
        return 0
    ratios = lip_open_ratio(np.asarray(landmarks[:max(1, window), :, :2], np.float64))
    return int(np.argmin(ratios))


def augment(sample: RefinementSample, rng: np.random.Generator, flip: bool, crop: float) -> RefinementSample:
    """Random flip and random crop of ``(1 - crop) .. 1`` of the side resized back, same for all arrays.

    The generator is always drawn the same number of times, whatever the settings.
    """
    do_flip, scale, fx, fy = rng.random() < 0.5, rng.uniform(1.0 - crop, 1.0), rng.random(), rng.random()
    warped, target, mask, disp = sample.warped, sample.target, sample.mask, sample.displacement
    if flip and do_flip:
        warped, target, mask = warped[:, ::-1], target[:, ::-1], mask[:, ::-1]
        disp = mirror_map(disp)
    if crop > 0:
        size = warped.shape[0]
        side = scale * size
        x0, y0 = fx * (size - side), fy * (size - side)
        # Output pixel u reads input x0 + (u + 0.5) * scale - 0.5.
        m = np.array([[scale, 0, x0 + 0.5 * scale - 0.5], [0, scale, y0 + 0.5 * scale - 0.5]])
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP

        def cut(a: np.ndarray) -> np.ndarray:
            return cv2.warpAffine(np.ascontiguousarray(a), m, (size, size), flags=flags,
                                  borderMode=cv2.BORDER_REPLICATE)
        warped, target, mask = cut(warped), cut(target), cut(mask)
        disp = cut(np.ascontiguousarray(disp.transpose(1, 2, 0))).transpose(2, 0, 1)
    return RefinementSample(np.ascontiguousarray(warped), np.ascontiguousarray(disp, dtype=np.float32),
                            np.ascontiguousarray(target), np.ascontiguousarray(mask, dtype=np.float32), sample.pair)


def to_batch(samples: list[RefinementSample], device: torch.device) -> RefinementBatch:
    """Stack samples into tensors on ``device``."""
    def images(key: str) -> torch.Tensor:
        a = np.stack([getattr(s, key) for s in samples]).astype(np.float32) / 255.0
        return torch.from_numpy(a).permute(0, 3, 1, 2).contiguous().to(device)
    disp = torch.from_numpy(np.stack([s.displacement for s in samples])).to(device)
    mask = torch.from_numpy(np.stack([s.mask for s in samples])[:, None]).to(device)
    return RefinementBatch(images("warped"), disp, images("target"), mask)


class RefinementSamples:
    """The pairs of a prepared dataset and their loading.

    Args:
        root: the prepared dataset (with frames).
        settings: the ``data:`` section.
        size: crop side S.
        statistics: part statistics for the displacement maps; None: unit scales until
            :meth:`set_statistics` (the cache is emptied when they change).
        clips: indices into the dataset's clips to use (None: all).

    Raises:
        PuppetryError: no frames (``--landmarks-only``) or no clip long enough for a pair.
    """

    def __init__(self, root: str | Path, settings: WgGanData, size: int, statistics: PartStatistics | None = None,
                 clips: list[int] | None = None):
        self.ds = open_dataset(root)
        if not self.ds.has_frames:
            raise PuppetryError(f"dataset '{root}' was prepared with --landmarks-only; wg-GAN trains on frames")
        self.settings, self.size = settings, int(size)
        self.statistics = statistics or PartStatistics()
        every = settings.every
        chosen = range(len(self.ds.clips)) if clips is None else clips
        self.clips: list[int] = []                     # dataset clip index per used clip
        self.landmarks: list[dict[int, np.ndarray]] = []  # frame -> 478 x 3, rest and targets only
        self.pairs: list[tuple[int, int, int]] = []     # (index into self.clips, rest frame, frame t)
        for c in chosen:
            info = self.ds.clips[c]
            if info.num_frames <= every:
                continue
            lm = self.ds.landmarks(info.id)["landmarks478"]
            r = rest_frame(lm, settings.rest, settings.neutral_window)
            targets = list(range(r + every, info.num_frames, every))
            if not targets:
                continue
            k = len(self.clips)
            self.clips.append(c)
            self.landmarks.append({t: lm[t].astype(np.float64) for t in [r, *targets]})
            self.pairs += [(k, r, t) for t in targets]
        if not self.pairs:
            raise PuppetryError(f"dataset '{root}' has no clip longer than data.every = {every} frames")
        if self.ds.size < self.size:
            logger.warning("dataset frames are %d pixels but wg-GAN crops are %d: crops are upscaled",
                           self.ds.size, self.size)
        self.warper = FaceWarper()
        self._warps: OrderedDict[tuple[int, int], WarpState] = OrderedDict()
        self._cache: OrderedDict[int, tuple] = OrderedDict()

    def __len__(self) -> int:
        return len(self.pairs)

    def set_statistics(self, statistics: PartStatistics) -> None:
        """Use new part statistics from now on."""
        self.statistics = statistics
        self._cache.clear()

    def offsets(self, indices: np.ndarray | list[int] | None = None) -> np.ndarray:
        """``N x 68 x 2`` landmark offsets of pairs (all by default), from landmarks alone (no warping)."""
        indices = range(len(self.pairs)) if indices is None else indices
        out = [landmark_offsets(self.landmarks[k][r], self.landmarks[k][t])
               for k, r, t in (self.pairs[int(i)] for i in indices)]
        return np.stack(out) if out else np.zeros((0, 68, 2))

    def warp_state(self, k: int, r: int) -> WarpState:
        """The prepared warp of rest frame ``r`` of used clip ``k`` (cached for the last few)."""
        key = (k, r)
        if key in self._warps:
            self._warps.move_to_end(key)
            return self._warps[key]
        image = self.ds.frame(self.ds.clips[self.clips[k]].id, r)
        state = self.warper.prepare(image, self.landmarks[k][r])
        self._warps[key] = state
        if len(self._warps) > _WARP_CACHE:
            self._warps.popitem(last=False)
        return state

    def build(self, index: int) -> RefinementSample:
        """Pair ``index`` without augmentation (cached)."""
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._expand(self._cache[index])
        k, r, t = self.pairs[index]
        rest, target_lm = self.landmarks[k][r], self.landmarks[k][t]
        warped_full = self.warper.warp(self.warp_state(k, r), target_lm)
        frame = self.ds.frame(self.ds.clips[self.clips[k]].id, t)
        crop = rectify(target_lm, self.size)
        points = crop.points(target_lm)
        hole = inner_mouth_mask(points, self.size, self.settings.mouth_grow)
        keep = (1.0 - hole)[..., None]
        warped = np.clip(crop.cut(warped_full) * keep + 0.5, 0, 255).astype(np.uint8)
        target = np.clip(crop.cut(frame) * keep + 0.5, 0, 255).astype(np.uint8)
        mask = (face_mask(points, self.size) * (1.0 - hole)).astype(np.float32)
        disp = displacement_map(rest, target_lm, self.statistics, self.size)
        # Kept compact (maps as float16, the mask as uint8), and returned as kept whether or not it was
        # cached, so that a resumed run (empty cache) sees the same numbers.
        compact = (warped, disp.astype(np.float16), target, np.clip(mask * 255 + 0.5, 0, 255).astype(np.uint8),
                   (self.clips[k], r, t))
        if self.settings.cache > 0:
            self._cache[index] = compact
            if len(self._cache) > self.settings.cache:
                self._cache.popitem(last=False)
        return self._expand(compact)

    @staticmethod
    def _expand(compact: tuple) -> RefinementSample:
        warped, disp, target, mask, pair = compact
        return RefinementSample(warped, disp.astype(np.float32), target, mask.astype(np.float32) / 255.0, pair)

    def draw(self, rng: np.random.Generator, batch: int) -> list[int]:
        """``batch`` random pair indices."""
        return [int(i) for i in rng.integers(0, len(self.pairs), batch)]

    def batch(self, rng: np.random.Generator, batch: int, device: torch.device,
              indices: list[int] | None = None, augmented: bool = True) -> RefinementBatch:
        """Draw (or take ``indices``), build, augment and stack a batch."""
        indices = self.draw(rng, batch) if indices is None else indices
        s = self.settings
        samples = [self.build(i) for i in indices]
        if augmented:
            samples = [augment(x, rng, s.flip, s.random_crop) for x in samples]
        return to_batch(samples, device)


def fit_statistics(samples: RefinementSamples, max_pairs: int, rng: np.random.Generator) -> PartStatistics:
    """Per-part offset spreads over the training pairs (a random subset of ``max_pairs`` when there are
    more), from landmarks only."""
    n = len(samples)
    indices = np.arange(n) if n <= max_pairs else np.sort(rng.choice(n, max_pairs, replace=False))
    return PartStatistics.fit(samples.offsets(indices))
