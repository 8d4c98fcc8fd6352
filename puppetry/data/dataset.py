"""Reading a prepared dataset (see :mod:`puppetry.data.format`) without loading it whole.

Opening reads ``dataset.json`` and the small per-video sidecars only. Landmarks, frames and masks are
read by seeking to the clip's members inside its shard (the sidecar holds their offsets); frames and
masks are decoded one at a time. :func:`iter_shards` splits the shards between the processes of a
multi-process reader and streams their clips, one sidecar at a time.

::

    ds = open_dataset("vox256")
    for clip in ds.clips:
        lm = ds.landmarks(clip.id)["landmarks478"]      # T x 478 x 3, crop pixels
        for rgb, labels in zip(ds.frames(clip.id), ds.masks(clip.id)):
            ...                                          # S x S x 3 uint8, S x S uint8
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from puppetry.data.format import (SHARDS_DIR, TMP_MARK, decode_jpeg, decode_npz, decode_png, next_header,
                                  read_dataset_header, read_header, read_member)
from puppetry.errors import MediaError, first_line

if TYPE_CHECKING:
    from puppetry.media.audio import Audio

_INDEX_CACHE = 256  # clips whose per-frame member offsets are kept for random access


@dataclass(frozen=True)
class ClipInfo:
    """One clip: a single person's face track, cropped with one fixed square.

    Attributes:
        id: unique clip id, ``<video key>-c<number>``.
        identity: who is in it (``--identity``: the clip itself, its video, or a folder name).
        shard: the tar file holding it.
        num_frames: T.
        fps: frames per second of the stored frames (source fps over ``--every``).
        video: the source video's path as it was given to ``prepare``.
    """

    id: str
    identity: str
    shard: Path
    num_frames: int
    fps: float
    video: str


def _sidecar_paths(root: Path) -> list[Path]:
    """Finished sidecars of ``root/shards``, sorted by name (temporary files ignored)."""
    folder = Path(root) / SHARDS_DIR
    if not folder.is_dir():
        return []
    names = [e.name for e in os.scandir(folder)
             if e.name.endswith(".json") and TMP_MARK not in e.name and e.is_file()]
    return [folder / name for name in sorted(names)]


def _read_sidecar(path: Path) -> dict[str, Any]:
    try:
        sidecar = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MediaError(f"cannot read shard sidecar '{path}': {first_line(exc)}") from None
    if not isinstance(sidecar, dict) or not isinstance(sidecar.get("clips"), list):
        raise MediaError(f"'{path}' is not a shard sidecar")
    return sidecar


def _clip_infos(path: Path, sidecar: dict[str, Any]) -> Iterator[tuple[ClipInfo, dict[str, Any]]]:
    shard = path.parent / sidecar.get("shard", path.with_suffix(".tar").name)
    for entry in sidecar["clips"]:
        yield ClipInfo(id=str(entry["id"]), identity=str(entry["identity"]), shard=shard,
                       num_frames=int(entry["num_frames"]), fps=float(entry["fps"]),
                       video=str(sidecar.get("video", ""))), entry


def iter_shards(root: str | os.PathLike, rank: int = 0, world_size: int = 1) -> Iterator[ClipInfo]:
    """Clips of the shards ``rank, rank + world_size, ...`` (sorted by name), streamed sidecar by sidecar.

    Each of ``world_size`` readers calling this with its own ``rank`` gets a disjoint part; together
    they see every clip once.

    Raises:
        MediaError: ``root`` is not a prepared dataset.
        ValueError: ``rank`` is not in ``[0, world_size)``.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size), got rank {rank} of {world_size}")
    read_dataset_header(Path(root))
    for path in _sidecar_paths(Path(root))[rank::world_size]:
        for info, _ in _clip_infos(path, _read_sidecar(path)):
            yield info


class PreparedDataset:
    """A prepared dataset on disk (made by ``puppetry prepare``).

    Attributes:
        root: the dataset folder.
        size: S, side of the stored square frames and masks.
        options: the ``prepare`` options it was made with.
        has_frames: False when it was made with ``--landmarks-only`` (landmarks, no frames or masks).
        clips: every clip, sorted by shard then id.
        identities: sorted unique identities of the clips.

    Raises:
        MediaError: ``root`` is not a prepared dataset, or a sidecar is unreadable.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        header = read_dataset_header(self.root)
        self.size = int(header["size"])
        self.options: dict[str, Any] = dict(header.get("options", {}))
        self.has_frames = not bool(self.options.get("landmarks_only", False))
        self.clips: list[ClipInfo] = []
        self._entries: dict[str, tuple[ClipInfo, dict[str, Any]]] = {}
        for path in _sidecar_paths(self.root):
            for info, entry in _clip_infos(path, _read_sidecar(path)):
                self.clips.append(info)
                self._entries[info.id] = (info, entry)
        self.identities: list[str] = sorted({clip.identity for clip in self.clips})
        self._index: OrderedDict[tuple[str, str], list[int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self.clips)

    def __repr__(self) -> str:
        return (f"PreparedDataset('{self.root}', {len(self.clips)} clips, {len(self.identities)} identities, "
                f"size {self.size}{'' if self.has_frames else ', landmarks only'})")

    def clip(self, clip_id: str) -> ClipInfo:
        """The :class:`ClipInfo` of ``clip_id`` (``KeyError`` if there is none)."""
        return self._entry(clip_id)[0]

    def meta(self, clip_id: str) -> dict[str, Any]:
        """The clip's sidecar entry (its ``meta.json`` plus member offsets)."""
        return dict(self._entry(clip_id)[1])

    def _entry(self, clip_id: str) -> tuple[ClipInfo, dict[str, Any]]:
        try:
            return self._entries[clip_id]
        except KeyError:
            raise KeyError(f"no clip '{clip_id}' in {self.root}") from None

    def _open(self, info: ClipInfo):
        try:
            return open(info.shard, "rb")
        except OSError as exc:
            raise MediaError(f"cannot read shard '{info.shard}': {exc.strerror or exc}") from None

    def landmarks(self, clip_id: str) -> dict[str, np.ndarray]:
        """The clip's ``landmarks.npz`` arrays (see :data:`puppetry.data.format.LANDMARK_ARRAYS`)."""
        info, entry = self._entry(clip_id)
        with self._open(info) as f:
            _, data, _ = read_member(f, int(entry["landmarks_offset"]))
        return decode_npz(data, f"'{info.shard}' (clip {clip_id})")

    def audio(self, clip_id: str) -> "Audio | None":
        """The clip's soundtrack (mono, ``meta['audio_rate']`` Hz, sample 0 at the start of its first frame,
        ``num_frames * every / fps`` seconds long), or None for a clip stored without audio."""
        from puppetry.media.audio import Audio

        info, entry = self._entry(clip_id)
        if entry.get("audio_offset") is None:
            return None
        with self._open(info) as f:
            _, data, _ = read_member(f, int(entry["audio_offset"]))
        samples = decode_npz(data, f"'{info.shard}' (clip {clip_id})").get("samples")
        if samples is None or samples.ndim != 1:
            raise MediaError(f"damaged shard '{info.shard}' (clip {clip_id}): its audio has no samples")
        return Audio(samples.astype(np.float32) / 32767.0, int(entry["audio_rate"]))

    def _stream(self, clip_id: str, group: str) -> Iterator[bytes]:
        info, entry = self._entry(clip_id)
        offset = entry.get(f"{group}_offset")
        if offset is None:
            raise MediaError(f"dataset '{self.root}' was prepared with --landmarks-only: it stores no {group}")
        with self._open(info) as f:
            for _ in range(info.num_frames):
                _, data, offset = read_member(f, offset)
                yield data

    def frames(self, clip_id: str) -> Iterator[np.ndarray]:
        """The clip's frames in order, each ``S x S x 3`` uint8 RGB, decoded one at a time."""
        return (decode_jpeg(data) for data in self._stream(clip_id, "frames"))

    def masks(self, clip_id: str) -> Iterator[np.ndarray]:
        """The clip's label maps in order, each ``S x S`` uint8 (values: ``puppetry.face.parsing.MASK_LABELS``)."""
        return (decode_png(data) for data in self._stream(clip_id, "masks"))

    def _member_offsets(self, clip_id: str, group: str) -> list[int]:
        """Header offsets of every frame (or mask) member of a clip, from one pass over their headers."""
        key = (clip_id, group)
        if key in self._index:
            self._index.move_to_end(key)
            return self._index[key]
        info, entry = self._entry(clip_id)
        offset = entry.get(f"{group}_offset")
        if offset is None:
            raise MediaError(f"dataset '{self.root}' was prepared with --landmarks-only: it stores no {group}")
        offsets = []
        with self._open(info) as f:
            for _ in range(info.num_frames):
                offsets.append(offset)
                _, size = read_header(f, offset)
                offset = next_header(offset, size)
        self._index[key] = offsets
        if len(self._index) > _INDEX_CACHE:
            self._index.popitem(last=False)
        return offsets

    def _one(self, clip_id: str, group: str, t: int) -> bytes:
        offsets = self._member_offsets(clip_id, group)
        if not -len(offsets) <= t < len(offsets):
            raise IndexError(f"frame {t} out of range for clip '{clip_id}' of {len(offsets)} frames")
        with self._open(self._entry(clip_id)[0]) as f:
            return read_member(f, offsets[t])[1]

    def frame(self, clip_id: str, t: int) -> np.ndarray:
        """Frame ``t`` of a clip, ``S x S x 3`` uint8 RGB (random access)."""
        return decode_jpeg(self._one(clip_id, "frames", t))

    def mask(self, clip_id: str, t: int) -> np.ndarray:
        """Label map ``t`` of a clip, ``S x S`` uint8 (random access)."""
        return decode_png(self._one(clip_id, "masks", t))


def open_dataset(root: str | os.PathLike) -> PreparedDataset:
    """Open a prepared dataset (see :class:`PreparedDataset`)."""
    return PreparedDataset(root)


def split_clips(num_clips: int, holdout: int, seed: int) -> tuple[list[int], list[int]]:
    """Training and held-out clip indices: the last ``holdout`` of a seeded shuffle are held out (at least
    one clip always trains)."""
    order = np.random.default_rng(seed).permutation(num_clips)
    k = min(holdout, num_clips - 1)
    return sorted(order[:num_clips - k].tolist()), sorted(order[num_clips - k:].tolist())


def pair_clips(ds: PreparedDataset, clips: list[int] | None, min_gap: int, method: str) -> list[int]:
    """The clips among ``clips`` (None: all) that hold two frames ``min_gap`` apart, for training on frame
    pairs.

    Raises:
        PuppetryError: the dataset has no frames (``--landmarks-only``) or no such clip (one line naming
            ``method``).
    """
    from puppetry.errors import PuppetryError

    if not ds.has_frames:
        raise PuppetryError(f"'{ds.root}' was prepared with --landmarks-only; {method} needs frames (run puppetry "
                            f"prepare without it)")
    chosen = list(range(len(ds.clips))) if clips is None else list(clips)
    usable = [c for c in chosen if ds.clips[c].num_frames > min_gap]
    if not usable:
        raise PuppetryError(f"'{ds.root}' has no clip with more than {min_gap} frames")
    return usable


def draw_frame_pair(rng: np.random.Generator, ds: PreparedDataset, clips: list[int], min_gap: int) -> tuple[int, int, int]:
    """A random ``(clip, i, j)``: two frames at least ``min_gap`` apart of one of ``clips``, in either order."""
    c = clips[int(rng.integers(len(clips)))]
    n = ds.clips[c].num_frames
    gap = int(rng.integers(min_gap, n))
    i = int(rng.integers(0, n - gap))
    return (c, i, i + gap) if rng.random() < 0.5 else (c, i + gap, i)
