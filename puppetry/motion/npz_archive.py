"""Opening an ``.npz`` motion template safely: what ``np.load`` would do with a hostile file, refused first.

``np.load`` of an untrusted file has three costly cases, each checked here before numpy sees the file:
a bare ``.npy`` (read whole whatever size its header claims), a file that is no zip at all (numpy's own
message then speaks of pickles), and a zip whose central directory lists huge numbers of entries
(``zipfile`` builds an object per entry: a million empty entries took 18 s and 780 MB). The entry count
is read from the archive's end record (ZIP64 included) without reading the directory. A member's
``.npy`` header is read before the member itself (:func:`npz_member_header`).
"""

from __future__ import annotations

import math
import os
import struct
from typing import Any

import numpy as np

from puppetry.errors import MotionError

MAX_NPZ_MEMBERS = 64            # our templates hold at most 11 arrays
MAX_MEMBER_BYTES = 256 * 2**20  # the most one array may claim

_EOCD = b"PK\x05\x06"           # end of central directory record
_EOCD64_LOCATOR = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"
_EOCD_SEARCH = 22 + 0xFFFF      # the record and the longest comment it may be followed by


def zip_entry_count(path: str | os.PathLike) -> int | None:
    """Entries a zip archive's end record claims (ZIP64 too), or None when ``path`` is not a zip archive.

    Reads at most the last 64 KiB of the file and, for ZIP64, one record more."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        start = max(0, size - _EOCD_SEARCH)
        f.seek(start)
        tail = f.read()
        at = tail.rfind(_EOCD)
        if at < 0 or len(tail) - at < 22:
            return None
        count = struct.unpack_from("<H", tail, at + 10)[0]
        locator = at - 20
        if count == 0xFFFF and locator >= 0 and tail[locator:locator + 4] == _EOCD64_LOCATOR:
            offset = struct.unpack_from("<Q", tail, locator + 8)[0]
            f.seek(offset)
            record = f.read(56)
            if len(record) == 56 and record[:4] == _EOCD64:
                count = struct.unpack_from("<Q", record, 32)[0]
        return count


def open_npz(path: str | os.PathLike) -> Any:
    """``np.load(path)`` of an ``.npz`` (never unpickling), after refusing a bare ``.npy``, a file that is not
    a zip archive and a zip with more than :data:`MAX_NPZ_MEMBERS` entries.

    Raises:
        MotionError: one of those three.
        OSError, ValueError, zipfile.BadZipFile: unreadable, or a damaged zip.
    """
    with open(path, "rb") as f:
        magic = f.read(len(np.lib.format.MAGIC_PREFIX))
    if magic == np.lib.format.MAGIC_PREFIX:
        raise MotionError(f"'{path}' is a single .npy array, not an .npz motion template")
    count = zip_entry_count(path)
    if count is None:
        raise MotionError(f"'{path}' is not an .npz motion template (not a zip archive of arrays); "
                          "'puppetry template' writes them")
    if count > MAX_NPZ_MEMBERS:
        raise MotionError(f"'{path}' is not a motion template: its archive lists {count} entries, and a "
                          f"template has at most {MAX_NPZ_MEMBERS}")
    return np.load(path, allow_pickle=False)


def npz_member_header(z: Any, key: str, max_bytes: int = MAX_MEMBER_BYTES) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of member ``key`` of an open npz, read from its ``.npy`` header without loading it.

    Raises:
        ValueError: the header is malformed or claims more than ``max_bytes``.
    """
    with z.zip.open(f"{key}.npy") as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f)
    shape = tuple(int(s) for s in shape)
    if math.prod(shape) * max(dtype.itemsize, 1) > max_bytes:
        raise ValueError(f"{key} claims shape {shape} of {dtype}, over {max_bytes >> 20} MB")
    return shape, dtype


__all__ = ["MAX_NPZ_MEMBERS", "npz_member_header", "open_npz", "zip_entry_count"]
