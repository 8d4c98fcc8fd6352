"""On-disk format of a prepared dataset, and the writer of its shards.

::

    DATASET/
      dataset.json        {"format": "puppetry-dataset", "version": 1, "size": S, "options": {...}}
      shards/<key>.tar    one uncompressed (ustar) tar per source video, written atomically
      shards/<key>.json   sidecar: {"video", "key", "clips": [{"id", "identity", "num_frames", "fps",
                          "frame_index_start", ..., "offset", "landmarks_offset", "frames_offset",
                          "masks_offset"}]}
      report.jsonl        one line per video: {"video", "key", "status": "ok"|"skipped", "reason",
                          "clips", "frames", "seconds"}

Inside a shard, each clip's members are contiguous and in this order: ``<clip>/meta.json``,
``<clip>/landmarks.npz``, ``<clip>/frames/000000.jpg`` ..., ``<clip>/masks/000000.png`` ... (frames and
masks absent with ``landmarks_only``). The sidecar records the byte offset of each group's first tar
header, so a reader seeks straight to a clip without scanning the shard. A sidecar is written only after
its tar is complete: a shard without a sidecar is unfinished and is ignored (and redone on resume).
Temporary files carry ``.tmp-`` after the final name and are ignored by readers.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import time
import uuid
import zipfile
import zlib
from pathlib import Path
from typing import Any, Iterable

import cv2
import numpy as np

from puppetry.errors import MediaError, first_line

FORMAT_NAME = "puppetry-dataset"
FORMAT_VERSION = 1
DATASET_FILE = "dataset.json"
SHARDS_DIR = "shards"
REPORT_FILE = "report.jsonl"
TMP_MARK = ".tmp-"
JPEG_QUALITY = 95
TAR_BLOCK = 512

LANDMARK_ARRAYS = ("landmarks478", "landmarks68", "pose", "rotation", "crop_box", "frame_index", "detected")
"""Arrays of ``landmarks.npz`` (T frames): ``landmarks478`` T x 478 x 3 float32 and ``landmarks68``
T x 68 x 2 float32 in crop pixels, ``pose`` T x 3 float32 (yaw, pitch, roll degrees), ``rotation``
T x 3 x 3 float32, ``crop_box`` T x 4 float32 (x0, y0, x1, y1 in source pixels), ``frame_index`` T int32
(index in the source video), ``detected`` T bool (False: landmarks interpolated over a short loss)."""

_KEY_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_KEY_MAX = 56


def video_key(relpath: str) -> str:
    """Shard key of a video: its sanitised relative path (``a/b c.mp4`` -> ``a_b_c``) plus a short hash.

    The key is at most 65 characters, so every member name of the shard fits a plain ustar header.
    """
    posix = relpath.replace(os.sep, "/")
    stem = posix.rsplit(".", 1)[0] if "." in posix.rsplit("/", 1)[-1] else posix
    name = _KEY_CHARS.sub("_", stem).strip("._-")[-_KEY_MAX:].lstrip("._-") or "video"
    return f"{name}-{hashlib.sha1(posix.encode('utf-8')).hexdigest()[:8]}"


def clip_id(key: str, number: int) -> str:
    """Id of a video's ``number``-th clip: ``<key>-c000``."""
    return f"{key}-c{number:03d}"


def frame_member(clip: str, t: int) -> str:
    return f"{clip}/frames/{t:06d}.jpg"


def mask_member(clip: str, t: int) -> str:
    return f"{clip}/masks/{t:06d}.png"


def temp_name(path: Path) -> Path:
    """A unique temporary sibling of ``path`` (``name.tmp-<pid>-<random>``)."""
    return path.with_name(f"{path.name}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def remove_stale_temps(folder: Path, prefix: str) -> int:
    """Delete temporary files of ``folder`` whose name starts with ``prefix``; returns how many."""
    removed = 0
    if not folder.is_dir():
        return 0
    for entry in os.scandir(folder):
        if entry.name.startswith(prefix) and TMP_MARK in entry.name:
            try:
                os.remove(entry.path)
                removed += 1
            except OSError:
                pass
    return removed


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file and ``os.replace``."""
    tmp = temp_name(path)
    try:
        tmp.write_text(json.dumps(data, indent=None, separators=(",", ":")) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def encode_jpeg(rgb: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """JPEG bytes of an ``H x W x 3`` uint8 RGB image."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise MediaError("cannot encode a frame as JPEG")
    return buf.tobytes()


def encode_png(labels: np.ndarray) -> bytes:
    """PNG bytes of an ``H x W`` uint8 label map."""
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(labels, dtype=np.uint8))
    if not ok:
        raise MediaError("cannot encode a mask as PNG")
    return buf.tobytes()


def decode_jpeg(data: bytes) -> np.ndarray:
    """``H x W x 3`` uint8 RGB image from JPEG bytes."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise MediaError("a stored frame is not a readable JPEG (damaged shard?)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def decode_png(data: bytes) -> np.ndarray:
    """``H x W`` uint8 label map from PNG bytes."""
    labels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if labels is None:
        raise MediaError("a stored mask is not a readable PNG (damaged shard?)")
    return labels


def encode_npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def decode_npz(data: bytes, where: str = "a shard") -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` member, all read now (a damaged one is found here, not later).

    Raises:
        MediaError: the member is not a readable npz (bad zip, bad CRC, bad array header), naming ``where``.
    """
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, KeyError, ValueError) as exc:
        reason = first_line(exc)[:120] if str(exc) else type(exc).__name__
        raise MediaError(f"damaged shard {where}: a stored array is unreadable ({reason})") from None


def dataset_header(size: int, options: dict[str, Any]) -> dict[str, Any]:
    return {"format": FORMAT_NAME, "version": FORMAT_VERSION, "size": int(size), "options": options}


def read_dataset_header(root: Path) -> dict[str, Any]:
    """Contents of ``root/dataset.json``.

    Raises:
        MediaError: ``root`` is not a prepared dataset (missing, unreadable or foreign ``dataset.json``).
    """
    path = Path(root) / DATASET_FILE
    try:
        header = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MediaError(f"'{root}' is not a prepared dataset (no {DATASET_FILE}); "
                         "make one with puppetry prepare") from None
    except (OSError, ValueError) as exc:
        raise MediaError(f"cannot read '{path}': {first_line(exc)}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise MediaError(f"'{path}' is not a puppetry dataset header")
    if header.get("version") != FORMAT_VERSION:
        raise MediaError(f"'{root}' has dataset format version {header.get('version')}; "
                         f"this puppetry reads version {FORMAT_VERSION}")
    return header


def append_report(root: Path, record: dict[str, Any]) -> None:
    """Append one line to ``root/report.jsonl`` (a single ``write`` in append mode, then flushed)."""
    line = json.dumps(record, separators=(",", ":")) + "\n"
    with open(Path(root) / REPORT_FILE, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def read_report(root: Path) -> list[dict[str, Any]]:
    """All records of ``root/report.jsonl``; a line cut by an interruption is ignored."""
    path = Path(root) / REPORT_FILE
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


class ShardWriter:
    """Write the shard of one video: ``shards/<key>.tar`` then its sidecar ``shards/<key>.json``.

    Clips are added one at a time (members of a clip stay together); the tar grows under a temporary
    name and appears under its final name, followed by the sidecar, only when :meth:`close` succeeds.
    Used as a context manager, an exception discards everything written::

        with ShardWriter(shards_dir, key, video="a/b.mp4") as shard:
            shard.add_clip(meta, arrays, jpegs, pngs)
    """

    def __init__(self, shards_dir: Path, key: str, video: str) -> None:
        self.shards_dir = Path(shards_dir)
        self.key = key
        self.video = video
        self.tar_path = self.shards_dir / f"{key}.tar"
        self.sidecar_path = self.shards_dir / f"{key}.json"
        self._tmp = temp_name(self.tar_path)
        self._file = open(self._tmp, "wb")
        self._tar = tarfile.open(fileobj=self._file, mode="w", format=tarfile.USTAR_FORMAT)
        self._mtime = time.time()
        self.clips: list[dict[str, Any]] = []
        self.extra: dict[str, Any] = {}
        """Top-level fields added to the sidecar."""

    def _add(self, name: str, data: bytes) -> int:
        """Add one member; returns the offset of its header."""
        offset = self._file.tell()
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = self._mtime
        info.mode = 0o644
        self._tar.addfile(info, io.BytesIO(data))
        return offset

    def add_clip(self, meta: dict[str, Any], arrays: dict[str, np.ndarray],
                 frames: Iterable[bytes] = (), masks: Iterable[bytes] = (), audio: np.ndarray | None = None) -> None:
        """Store one clip.

        Args:
            meta: JSON-able description; must hold ``"id"``; copied into the sidecar with the offsets.
            arrays: the ``landmarks.npz`` arrays (:data:`LANDMARK_ARRAYS`).
            frames: encoded JPEG frames, in order (empty with ``landmarks_only``).
            masks: encoded PNG label maps, in order (empty with ``landmarks_only``).
            audio: the clip's soundtrack, ``N`` int16 mono samples (``audio.npz``, array ``samples``), or None.
        """
        cid = meta["id"]
        entry = dict(meta)
        entry["offset"] = self._add(f"{cid}/meta.json", json.dumps(meta, indent=1).encode("utf-8"))
        entry["landmarks_offset"] = self._add(f"{cid}/landmarks.npz", encode_npz(arrays))
        entry["audio_offset"] = None if audio is None else self._add(f"{cid}/audio.npz",
                                                                      encode_npz({"samples": audio}))
        entry["frames_offset"] = entry["masks_offset"] = None
        for t, data in enumerate(frames):
            offset = self._add(frame_member(cid, t), data)
            if t == 0:
                entry["frames_offset"] = offset
        for t, data in enumerate(masks):
            offset = self._add(mask_member(cid, t), data)
            if t == 0:
                entry["masks_offset"] = offset
        self.clips.append(entry)

    def close(self) -> None:
        """Finish the tar, move it into place, then write the sidecar (with :attr:`extra`)."""
        self._tar.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._tmp, self.tar_path)
        sidecar = {"video": self.video, "key": self.key, "shard": self.tar_path.name,
                   "clips": sorted(self.clips, key=lambda c: c["id"])}
        sidecar.update(self.extra)
        write_json_atomic(self.sidecar_path, sidecar)

    def abort(self) -> None:
        """Discard the partial shard."""
        try:
            self._tar.close()
        except Exception:  # noqa: BLE001 - closing a half-written tar may fail; it is deleted anyway
            pass
        self._file.close()
        if self._tmp.exists():
            self._tmp.unlink()

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def read_header(f, offset: int) -> tuple[str, int]:
    """``(name, size)`` of the member whose ustar header is at byte ``offset`` of the open binary file ``f``.

    Its data starts at ``offset + 512``; the next header is at :func:`next_header`.

    Raises:
        MediaError: no valid header there (damaged shard or a wrong offset).
    """
    f.seek(offset)
    block = f.read(TAR_BLOCK)
    try:
        info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.HeaderError as exc:
        raise MediaError(f"damaged shard '{getattr(f, 'name', '?')}': no tar header at byte {offset} ({exc})") from None
    return info.name, info.size


def next_header(offset: int, size: int) -> int:
    """Offset of the header after the member at ``offset`` holding ``size`` bytes."""
    return offset + TAR_BLOCK + -(-size // TAR_BLOCK) * TAR_BLOCK


def read_member(f, offset: int) -> tuple[str, bytes, int]:
    """``(name, data, next_header_offset)`` of the member whose header is at ``offset`` of ``f``."""
    name, size = read_header(f, offset)
    f.seek(offset + TAR_BLOCK)
    data = f.read(size)
    if len(data) != size:
        raise MediaError(f"damaged shard '{getattr(f, 'name', '?')}': member {name} is cut short")
    return name, data, next_header(offset, size)
