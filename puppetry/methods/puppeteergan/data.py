"""Training samples of PuppeteerGAN: frame pairs of prepared videos, and still portraits with label maps.

Videos (a dataset made by ``puppetry prepare``, which stores frames, 478-point landmarks and our semantic
label maps per clip) give both stages their groups (Sec. 3.2-3.3):

- sketching: ``[L_i^s, L_j^s, L_i'^v, M_i^s, M_j^s]``: two frames ``i, j`` of one clip (identity ``s``) and the
  landmarks of a frame ``i'`` of a clip of another identity ``v`` (:meth:`VideoPairs.sketch_batch`);
- coloring: ``[I_i^s, I_j^s, L_i^s, L_j^s, M_i^s, M_j^s]`` (:meth:`VideoPairs.color_batch`).

Stills (:class:`StillImages`) feed the coloring network under geometry dropout: the source and the target
are the same image, parts of the source are dropped by the recipe. Two folder layouts are read:

- ours: ``images/NAME.jpg|png`` and ``labels/NAME.png``, a label map in our labels
  (:data:`puppetry.face.parsing.MASK_LABELS`, one uint8 value per pixel);
- CelebAMask-HQ: ``CelebA-HQ-img/N.jpg`` and ``CelebAMask-HQ-mask-anno/<group>/NNNNN_<part>.png``, one
  binary mask per part; parts are painted in :data:`CELEBAMASK_PARTS`' order (a later part covers an
  earlier one) and mapped to our labels as that table says.

Landmarks are the iBUG-68 view in normalised crop coordinates (:mod:`puppetry.methods.puppeteergan.landmarks`);
images are ``B x 3 x S x S`` floats in [0, 1]; label maps ``B x S x S`` long.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from puppetry.data.dataset import draw_frame_pair, open_dataset, pair_clips
from puppetry.errors import MediaError, PuppetryError
from puppetry.face.parsing import (BACKGROUND, BROWS, EYES, HAIR, INNER_MOUTH, LIPS, MASK_LABELS, NECK_BODY,
                                   NOSE, SKIN)
from puppetry.media.image import read_image
from puppetry.methods.puppeteergan.landmarks import normalize

logger = logging.getLogger(__name__)

# iBUG-68 index of each point's mirror image (a horizontal flip swaps the face's sides).
FLIP68 = np.array([*range(16, -1, -1),                                   # jaw
                   *range(26, 21, -1), *range(21, 16, -1),               # brows
                   27, 28, 29, 30, 35, 34, 33, 32, 31,                   # nose
                   45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40,       # eyes
                   54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55,       # outer lips
                   64, 63, 62, 61, 60, 67, 66, 65])                      # inner lips

CELEBAMASK_PARTS: tuple[tuple[str, int], ...] = (
    ("skin", SKIN), ("nose", NOSE), ("eye_g", EYES), ("l_eye", EYES), ("r_eye", EYES), ("l_brow", BROWS),
    ("r_brow", BROWS), ("l_ear", SKIN), ("r_ear", SKIN), ("mouth", INNER_MOUTH), ("u_lip", LIPS),
    ("l_lip", LIPS), ("hair", HAIR), ("hat", HAIR), ("ear_r", SKIN), ("neck_l", NECK_BODY),
    ("neck", NECK_BODY), ("cloth", NECK_BODY))
"""CelebAMask-HQ's parts in its painting order, with our label for each: ears and earrings are skin, glasses
(``eye_g``) eyes, the mouth's inside ``inner_mouth``, a hat hair, neck, necklace and cloth neck/body."""

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


@dataclass
class SketchBatch:
    """``points_*``: ``B x 68 x 2`` (frames ``i``, ``j`` of one clip, ``other``: another identity's frame);
    ``labels_*``: ``B x S_k x S_k`` long."""

    points_i: torch.Tensor
    points_j: torch.Tensor
    points_other: torch.Tensor
    labels_i: torch.Tensor
    labels_j: torch.Tensor


@dataclass
class ColorBatch:
    """``image_*``: ``B x 3 x S x S`` in [0, 1]; ``labels_*``: ``B x S x S`` long; ``points_*``: ``B x 68 x 2``
    (for stills both are one canonical set, so every WASIC transform is the identity)."""

    image_s: torch.Tensor
    image_t: torch.Tensor
    labels_s: torch.Tensor
    labels_t: torch.Tensor
    points_s: torch.Tensor
    points_t: torch.Tensor


def _resize_image(rgb: np.ndarray, size: int) -> np.ndarray:
    if rgb.shape[0] == size and rgb.shape[1] == size:
        return rgb
    interp = cv2.INTER_AREA if rgb.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(rgb, (size, size), interpolation=interp)


def _resize_labels(labels: np.ndarray, size: int) -> np.ndarray:
    if labels.shape[0] == size and labels.shape[1] == size:
        return labels
    return cv2.resize(labels, (size, size), interpolation=cv2.INTER_NEAREST)


def _images(frames: list[np.ndarray], device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float().div_(255.0).to(device)


def _labels(maps: list[np.ndarray], device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.stack(maps).astype(np.int64)).to(device)


class VideoPairs:
    """Pairs of frames of the clips ``clips`` of a prepared dataset, and other identities' landmarks.

    Raises:
        PuppetryError: the dataset has no frames (``--landmarks-only``), no clip of two frames, or a
            single identity (the identity discriminator needs two).
    """

    def __init__(self, root: str | Path, clips: list[int] | None = None, min_gap: int = 1, flip: bool = True,
                 others: list[int] | None = None):
        self.ds = open_dataset(root)
        chosen = list(range(len(self.ds.clips))) if clips is None else list(clips)
        self.clips = pair_clips(self.ds, chosen, min_gap, "PuppeteerGAN")
        self.min_gap = int(min_gap)
        self.flip = flip
        pool = chosen if others is None else list(others)
        self.points = {c: normalize(self.ds.landmarks(self.ds.clips[c].id)["landmarks478"], self.ds.size)
                       for c in set(self.clips) | set(pool)}
        self.identity = {c: self.ds.clips[c].identity for c in self.points}
        self.others = pool
        if len({self.identity[c] for c in pool}) < 2:
            raise PuppetryError(f"'{root}' holds one identity; PuppeteerGAN's identity discriminator needs clips "
                                f"of at least two people (prepare more videos, or --identity video)")
        self.canonical = np.concatenate([p for p in self.points.values()]).mean(0).astype(np.float32)

    def _pair(self, rng: np.random.Generator) -> tuple[int, int, int]:
        return draw_frame_pair(rng, self.ds, self.clips, self.min_gap)

    def _other(self, rng: np.random.Generator, identity: str) -> np.ndarray:
        pool = [c for c in self.others if self.identity[c] != identity]
        c = pool[int(rng.integers(len(pool)))]
        return self.points[c][int(rng.integers(len(self.points[c])))]

    def _flip_points(self, points: np.ndarray) -> np.ndarray:
        out = points[..., FLIP68, :].copy()
        out[..., 0] = -out[..., 0]
        return out

    def sketch_batch(self, rng: np.random.Generator, batch: int, mask_size: int,
                     device: torch.device | str = "cpu") -> SketchBatch:
        """``batch`` sketching groups with label maps at ``mask_size``."""
        rows: dict[str, list] = {"pi": [], "pj": [], "po": [], "mi": [], "mj": []}
        for _ in range(batch):
            c, i, j = self._pair(rng)
            clip = self.ds.clips[c]
            pi, pj, po = self.points[c][i], self.points[c][j], self._other(rng, clip.identity)
            mi = _resize_labels(self.ds.mask(clip.id, i), mask_size)
            mj = _resize_labels(self.ds.mask(clip.id, j), mask_size)
            if self.flip and rng.random() < 0.5:
                pi, pj, mi, mj = self._flip_points(pi), self._flip_points(pj), mi[:, ::-1], mj[:, ::-1]
            if self.flip and rng.random() < 0.5:
                po = self._flip_points(po)
            for k, v in zip(("pi", "pj", "po", "mi", "mj"), (pi, pj, po, mi, mj)):
                rows[k].append(np.ascontiguousarray(v))
        dev = torch.device(device)
        pts = [torch.from_numpy(np.stack(rows[k])).float().to(dev) for k in ("pi", "pj", "po")]
        return SketchBatch(*pts, _labels(rows["mi"], dev), _labels(rows["mj"], dev))

    def color_batch(self, rng: np.random.Generator, batch: int, size: int,
                    device: torch.device | str = "cpu", pairs: list[tuple[int, int, int]] | None = None) -> ColorBatch:
        """``batch`` coloring groups at side ``size`` (``pairs``: fixed ``(clip, i, j)`` triples, unflipped)."""
        rows: dict[str, list] = {k: [] for k in ("is", "it", "ms", "mt", "ps", "pt")}
        chosen = pairs if pairs is not None else [self._pair(rng) for _ in range(batch)]
        for c, i, j in chosen:
            clip = self.ds.clips[c]
            img_s = _resize_image(self.ds.frame(clip.id, i), size)
            img_t = _resize_image(self.ds.frame(clip.id, j), size)
            ms = _resize_labels(self.ds.mask(clip.id, i), size)
            mt = _resize_labels(self.ds.mask(clip.id, j), size)
            ps, pt = self.points[c][i], self.points[c][j]
            if pairs is None and self.flip and rng.random() < 0.5:
                img_s, img_t, ms, mt = img_s[:, ::-1], img_t[:, ::-1], ms[:, ::-1], mt[:, ::-1]
                ps, pt = self._flip_points(ps), self._flip_points(pt)
            for k, v in zip(("is", "it", "ms", "mt", "ps", "pt"), (img_s, img_t, ms, mt, ps, pt)):
                rows[k].append(np.ascontiguousarray(v))
        dev = torch.device(device)
        return ColorBatch(_images(rows["is"], dev), _images(rows["it"], dev), _labels(rows["ms"], dev),
                          _labels(rows["mt"], dev), torch.from_numpy(np.stack(rows["ps"])).float().to(dev),
                          torch.from_numpy(np.stack(rows["pt"])).float().to(dev))

    def draw(self, rng: np.random.Generator, count: int) -> list[tuple[int, int, int]]:
        """``count`` fixed ``(clip, i, j)`` pairs, for sample strips."""
        return [self._pair(rng) for _ in range(count)]


def read_celebamask_labels(anno_root: Path, index: int, size: int) -> np.ndarray:
    """Our ``size x size`` uint8 label map of CelebAMask-HQ image ``index`` from its part masks."""
    labels = np.full((size, size), BACKGROUND, np.uint8)
    group = anno_root / str(index // 2000)
    for part, label in CELEBAMASK_PARTS:
        path = group / f"{index:05d}_{part}.png"
        if not path.is_file():
            continue
        mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if mask is None:
            raise MediaError(f"cannot read CelebAMask-HQ part mask '{path}'")
        labels[_resize_labels(mask, size) > 127] = label
    return labels


class StillImages:
    """Still portraits with label maps, in our layout or CelebAMask-HQ's (see the module docstring).

    Raises:
        PuppetryError: the folder is in neither layout, or holds no image with a label map.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        ours_images, ours_labels = self.root / "images", self.root / "labels"
        celeb_images, celeb_anno = self.root / "CelebA-HQ-img", self.root / "CelebAMask-HQ-mask-anno"
        self.items: list[tuple[Path, Path | int]] = []
        if ours_images.is_dir() and ours_labels.is_dir():
            self.layout = "ours"
            for p in sorted(ours_images.iterdir()):
                label = ours_labels / f"{p.stem}.png"
                if p.suffix.lower() in _IMAGE_SUFFIXES and label.is_file():
                    self.items.append((p, label))
        elif celeb_images.is_dir() and celeb_anno.is_dir():
            self.layout = "celebamask-hq"
            self.anno = celeb_anno
            for p in sorted(celeb_images.iterdir()):
                if p.suffix.lower() in _IMAGE_SUFFIXES and re.fullmatch(r"\d+", p.stem):
                    self.items.append((p, int(p.stem)))
        else:
            raise PuppetryError(f"data.stills '{root}': expected images/ and labels/ (our labels) or CelebA-HQ-img/ "
                                f"and CelebAMask-HQ-mask-anno/ (CelebAMask-HQ)")
        if not self.items:
            raise PuppetryError(f"data.stills '{root}' holds no image with a label map")
        logger.info("stills: %d portraits (%s layout)", len(self.items), self.layout)

    def __len__(self) -> int:
        return len(self.items)

    def sample(self, index: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Image ``index`` as ``size x size x 3`` uint8 RGB and its ``size x size`` uint8 label map."""
        image_path, label = self.items[index]
        rgb = _resize_image(read_image(image_path), size)
        if isinstance(label, int):
            labels = read_celebamask_labels(self.anno, label, size)
        else:
            raw = cv2.imread(str(label), cv2.IMREAD_GRAYSCALE)
            if raw is None:
                raise MediaError(f"cannot read label map '{label}'")
            if raw.max() >= len(MASK_LABELS):
                raise MediaError(f"label map '{label}' has value {int(raw.max())}; our labels are 0-"
                                 f"{len(MASK_LABELS) - 1} ({', '.join(MASK_LABELS)})")
            labels = _resize_labels(raw, size)
        return rgb, labels

    def color_batch(self, rng: np.random.Generator, batch: int, size: int, canonical: np.ndarray,
                    device: torch.device | str = "cpu", flip: bool = True) -> ColorBatch:
        """``batch`` stills: source and target are the same image (the recipe drops parts of the source);
        both point sets are ``canonical`` (``68 x 2``), so WASIC's transforms are the identity."""
        images, maps = [], []
        for _ in range(batch):
            rgb, labels = self.sample(int(rng.integers(len(self.items))), size)
            if flip and rng.random() < 0.5:
                rgb, labels = rgb[:, ::-1], labels[:, ::-1]
            images.append(np.ascontiguousarray(rgb))
            maps.append(np.ascontiguousarray(labels))
        dev = torch.device(device)
        image, labels = _images(images, dev), _labels(maps, dev)
        points = torch.from_numpy(np.repeat(canonical[None], batch, 0)).float().to(dev)
        return ColorBatch(image, image.clone(), labels, labels.clone(), points, points.clone())


def concat(a: ColorBatch, b: ColorBatch) -> ColorBatch:
    """Two coloring batches as one."""
    return ColorBatch(*[torch.cat([getattr(a, k), getattr(b, k)]) for k in
                        ("image_s", "image_t", "labels_s", "labels_t", "points_s", "points_t")])
