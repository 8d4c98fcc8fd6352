"""Whole frames, no face: squaring frames, face-free dataset preparation, and FOMM-style clip folders.

Model-free methods (paper 004) animate any object, so their data is the whole frame made square
(Tai-Chi-HD and BAIR style) rather than a face crop:

* :func:`square_box` / :func:`square_frame`: the frame padded (``pad``, black borders, nothing lost) or
  centre-cropped (``crop``) to a square, then resized;
* :func:`prepare_whole_video`: ``puppetry prepare --whole-frames pad|crop`` for one video, one clip per
  scene (cut where consecutive frames differ as a scene cut does), frames only, in the same shards as
  face datasets;
* :class:`FrameClips` (:func:`open_frame_clips`): random access to the frames of either a prepared
  dataset or the folder layouts FOMM-family datasets ship in: ``ROOT/train/`` and ``ROOT/test/`` (or
  ``ROOT`` itself) holding videos (mp4, mov, webm, avi, mkv, gif), folders of frame images, or single
  images with the frames side by side (FOMM's ``.png`` format: width = frames x height).
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from puppetry.data import format as fmt
from puppetry.data.tracking import TrackingConfig, frame_signature, scene_cuts
from puppetry.errors import MediaError
from puppetry.media.image import read_image
from puppetry.media.video import VideoReader, is_frame_folder, is_video_path, read_video

logger = logging.getLogger(__name__)

SQUARE_MODES = ("pad", "crop")
SPLITS = ("train", "test")
_STRIP_SUFFIXES = (".png", ".jpg", ".jpeg")


def square_box(width: int, height: int, mode: str) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` of the square around (``pad``) or inside (``crop``) a ``width x height`` frame,
    centred; a padded box reaches outside the frame."""
    if mode not in SQUARE_MODES:
        raise ValueError(f"square mode must be one of {', '.join(SQUARE_MODES)}, got {mode!r}")
    side = max(width, height) if mode == "pad" else min(width, height)
    x0, y0 = (width - side) // 2, (height - side) // 2
    return x0, y0, x0 + side, y0 + side


def crop_square(frame: np.ndarray, box: tuple[int, int, int, int], size: int) -> np.ndarray:
    """Cut an integer square ``(x0, y0, x1, y1)`` (black outside the frame) and resize it to ``size``.

    Args:
        frame: ``H x W x 3`` uint8.
    Returns:
        ``size x size x 3`` uint8.
    """
    x0, y0, x1, y1 = box
    h, w = frame.shape[:2]
    if x0 >= 0 and y0 >= 0 and x1 <= w and y1 <= h:
        region = frame[y0:y1, x0:x1]
    else:
        region = np.zeros((y1 - y0, x1 - x0) + frame.shape[2:], dtype=frame.dtype)
        ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if ix1 > ix0 and iy1 > iy0:
            region[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = frame[iy0:iy1, ix0:ix1]
    interp = cv2.INTER_AREA if (x1 - x0) > size else cv2.INTER_CUBIC
    return cv2.resize(region, (size, size), interpolation=interp)


def square_frame(rgb: np.ndarray, size: int, mode: str = "pad") -> np.ndarray:
    """``H x W x 3`` uint8 -> ``size x size x 3``: padded with black or centre-cropped, then resized."""
    h, w = rgb.shape[:2]
    return crop_square(rgb, square_box(w, h, mode), size)


def unsquare_frame(square: np.ndarray, width: int, height: int, mode: str = "pad") -> np.ndarray:
    """Inverse of :func:`square_frame` for an output frame: back to ``height x width x 3``. With ``pad`` the
    padding is cut off; with ``crop`` the square covers the frame's centre only and is returned resized to
    that centre's size (the caller pastes it)."""
    x0, y0, x1, y1 = square_box(width, height, mode)
    side = x1 - x0
    big = cv2.resize(square, (side, side), interpolation=cv2.INTER_CUBIC if side > square.shape[0] else cv2.INTER_AREA)
    if mode == "crop":
        return big
    return np.ascontiguousarray(big[-y0:-y0 + height, -x0:-x0 + width])


def _segments(cuts: np.ndarray, count: int, min_frames: int) -> list[tuple[int, int]]:
    """``[start, stop)`` pieces of ``count`` frames split at ``cuts`` (indices where a new scene starts),
    the ones shorter than ``min_frames`` dropped."""
    edges = [0] + sorted(int(c) for c in cuts if 0 < c < count) + [count]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b - a >= min_frames]


def prepare_whole_video(path: str, key: str, shard, options, identity) -> dict[str, Any]:
    """Store one video's scenes as clips of whole squared frames (``puppetry prepare --whole-frames``).

    Args:
        path: the video (or frame folder); key: its shard key.
        shard: an open :class:`~puppetry.data.format.ShardWriter`.
        options: the :class:`~puppetry.data.prepare.PrepareOptions` (``size``, ``whole_frames``,
            ``min_frames``, ``max_frames``, ``every``).
        identity: clip id -> identity (``--identity``).
    Returns:
        ``{"clips", "frames", "analysed_frames", "fps", "source_size"}``.
    Raises:
        ValueError: no scene is at least ``min_frames`` long (the caller skips the video).
    """
    every = options.every
    jpegs, signatures = [], []
    with VideoReader(path, max_frames=options.max_frames) as reader:
        for i, frame in enumerate(reader):
            if i % every:
                continue
            signatures.append(frame_signature(frame))
            jpegs.append(fmt.encode_jpeg(square_frame(frame, options.size, options.whole_frames)))
        fps, (width, height) = reader.fps, reader.size
    cuts = scene_cuts(np.stack(signatures), TrackingConfig.scene_cut)
    pieces = _segments(cuts, len(jpegs), options.min_frames)
    if not pieces:
        raise ValueError(f"no scene of at least {options.min_frames} frames ({len(jpegs)} frames read)")
    box = list(square_box(width, height, options.whole_frames))
    for number, (a, b) in enumerate(pieces):
        cid = fmt.clip_id(key, number)
        frame_index = (np.arange(a, b) * every).astype(np.int32)
        meta = {"id": cid, "identity": identity(cid), "video": path, "key": key, "num_frames": b - a,
                "fps": fps / every, "frame_index_start": int(frame_index[0]), "frame_index_end": int(frame_index[-1]),
                "every": every, "size": options.size, "crop_box": box, "source_size": [width, height],
                "has_frames": True, "whole_frames": options.whole_frames, "has_audio": False}
        arrays = {"crop_box": np.tile(np.asarray(box, np.float32), (b - a, 1)), "frame_index": frame_index}
        shard.add_clip(meta, arrays, jpegs[a:b], ())
    return {"clips": len(pieces), "frames": int(sum(b - a for a, b in pieces)), "analysed_frames": len(jpegs),
            "fps": fps, "source_size": [width, height]}


@dataclass(frozen=True)
class FrameClip:
    """One clip of a :class:`FrameClips`: its name and where its frames come from."""

    name: str
    path: str


class FrameClips:
    """Square frames of clips, by clip and frame index, from a prepared dataset or a clip folder.

    Frames of a clip folder are decoded once per clip (squared with ``square`` and resized to ``size``)
    and kept while at most ``cache_frames`` frames are held; a prepared dataset's frames are read one at a
    time from its shards (and resized when the dataset's size differs).

    Attributes:
        clips: the clips, sorted by name.
        size: side of the frames returned.
    """

    def __init__(self, clips: list[FrameClip], size: int, square: str = "pad", cache_frames: int = 20_000,
                 dataset=None, max_frames: int | None = None):
        self.clips = clips
        self.size = size
        self.square = square
        self.cache_frames = cache_frames
        self.max_frames = max_frames
        self._dataset = dataset
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._counts: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.clips)

    def num_frames(self, clip: int) -> int:
        """Frames of clip ``clip``: from the dataset's sidecar, a video's header, a folder's file count or a
        strip's width, without decoding (decoded once when the header has no count); 0 for a clip that
        cannot be read (logged once)."""
        if self._dataset is not None:
            return self._dataset.clip(self.clips[clip].name).num_frames
        if clip not in self._counts:
            try:
                count = _count_frames(self.clips[clip].path)
                self._counts[clip] = len(self._frames(clip)) if count is None else count
            except MediaError as exc:
                logger.warning("skipping clip %s: %s", self.clips[clip].name, exc)
                self._counts[clip] = 0
            if self.max_frames is not None:
                self._counts[clip] = min(self._counts[clip], self.max_frames)
        return self._counts[clip]

    def frame(self, clip: int, t: int) -> np.ndarray:
        """``size x size x 3`` uint8 RGB frame ``t`` of clip ``clip``."""
        if self._dataset is not None:
            rgb = self._dataset.frame(self.clips[clip].name, t)
            if rgb.shape[0] != self.size:
                rgb = cv2.resize(rgb, (self.size, self.size),
                                 interpolation=cv2.INTER_AREA if rgb.shape[0] > self.size else cv2.INTER_CUBIC)
            return rgb
        frames = self._frames(clip)
        return frames[min(t, len(frames) - 1)]            # a header may promise a frame or two more than decode

    def _frames(self, clip: int) -> np.ndarray:
        if clip in self._cache:
            self._cache.move_to_end(clip)
            return self._cache[clip]
        frames = np.stack([square_frame(f, self.size, self.square) for f in _read_clip(self.clips[clip].path,
                                                                                         self.max_frames)])
        if self._counts.setdefault(clip, len(frames)) > len(frames):   # the header promised more than decoded
            self._counts[clip] = len(frames)
        self._cache[clip] = frames
        while sum(len(v) for v in self._cache.values()) > self.cache_frames and len(self._cache) > 1:
            self._cache.popitem(last=False)
        return frames


def _count_frames(path: str) -> int | None:
    """Frames of a clip without decoding them all (None: the video's header does not say)."""
    from PIL import Image

    p = Path(path)
    if p.is_file() and p.suffix.lower() in _STRIP_SUFFIXES:
        try:
            with Image.open(p) as im:
                w, h = im.size
        except OSError as exc:
            raise MediaError(f"cannot read image '{p}': {exc}") from None
        return max(w // max(h, 1), 1)
    with VideoReader(p) as reader:
        return reader.info.num_frames


def _read_clip(path: str, max_frames: int | None) -> list[np.ndarray]:
    """Frames of a video, a frame folder, or an image with the frames side by side."""
    p = Path(path)
    if p.is_file() and p.suffix.lower() in _STRIP_SUFFIXES:
        strip = read_image(p)
        h, w = strip.shape[:2]
        count = max(w // h, 1)
        frames = [strip[:, i * h:(i + 1) * h] for i in range(count)]
        return frames[:max_frames] if max_frames else frames
    return read_video(p, max_frames)[0]


def _clip_entries(folder: Path) -> list[FrameClip]:
    out = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if (entry.is_file() and (is_video_path(entry) or entry.suffix.lower() in _STRIP_SUFFIXES)) or \
                (entry.is_dir() and is_frame_folder(entry)):
            out.append(FrameClip(entry.name, str(entry)))
    return out


def open_frame_clips(path: str | os.PathLike, size: int, split: str = "train", square: str = "pad",
                     cache_frames: int = 20_000, max_frames: int | None = None) -> FrameClips:
    """The clips under ``path``: a prepared dataset (``dataset.json``; every clip, ``split`` unused), a FOMM
    layout (``path/train``, ``path/test``: ``split`` picks one), or a folder of clips.

    Raises:
        MediaError: nothing readable is there (one line naming what was looked for).
    """
    root = Path(path)
    if not root.is_dir():
        raise MediaError(f"--data '{root}' is not a folder (a prepared dataset, or a folder of videos with "
                         f"train/ and test/ inside, as FOMM-family datasets ship)")
    if (root / "dataset.json").is_file():
        from puppetry.data.dataset import open_dataset

        ds = open_dataset(root)
        if not ds.has_frames:
            raise MediaError(f"'{root}' was prepared with --landmarks-only and holds no frames")
        return FrameClips([FrameClip(c.id, str(c.shard)) for c in ds.clips], size, square, cache_frames,
                          dataset=ds)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    folder = root / split if (root / split).is_dir() else root
    clips = _clip_entries(folder)
    if not clips:
        raise MediaError(f"no videos, frame folders or frame strips in '{folder}'")
    logger.info("%d clips in %s", len(clips), folder)
    return FrameClips(clips, size, square, cache_frames, max_frames=max_frames)
