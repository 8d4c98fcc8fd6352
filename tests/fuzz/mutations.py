"""Ways a file gets damaged: each takes the file's bytes and a seeded generator and returns new bytes."""

from __future__ import annotations

from typing import Callable

import numpy as np

Mutation = Callable[[bytes, np.random.Generator], bytes]


def bit_flips(data: bytes, rng: np.random.Generator) -> bytes:
    """1 to 64 random bits flipped (a bad disk or a bad download)."""
    if not data:
        return data
    buf = np.frombuffer(data, np.uint8).copy()
    count = int(rng.integers(1, 65))
    where = rng.integers(0, len(buf), count)
    buf[where] ^= (1 << rng.integers(0, 8, count)).astype(np.uint8)
    return buf.tobytes()


def truncation(data: bytes, rng: np.random.Generator) -> bytes:
    """Cut at a random point, sometimes to nothing (an interrupted download)."""
    keep = 0 if rng.random() < 0.1 else int(rng.integers(0, max(len(data), 1)))
    return data[:keep]


def zeroed_block(data: bytes, rng: np.random.Generator) -> bytes:
    """A block of 16 bytes to 64 KiB set to zero."""
    if not data:
        return data
    size = int(min(len(data), 2 ** rng.uniform(4, 16)))
    start = int(rng.integers(0, len(data) - size + 1))
    return data[:start] + bytes(size) + data[start + size:]


def duplicated_block(data: bytes, rng: np.random.Generator) -> bytes:
    """A block of 16 bytes to 64 KiB repeated in place (a botched copy)."""
    if not data:
        return data
    size = int(min(len(data), 2 ** rng.uniform(4, 16)))
    start = int(rng.integers(0, len(data) - size + 1))
    return data[:start + size] + data[start:start + size] + data[start + size:]


def smashed_header(data: bytes, rng: np.random.Generator) -> bytes:
    """The first 8 to 512 bytes replaced with random ones."""
    size = int(min(len(data), rng.integers(8, 513)))
    return rng.bytes(size) + data[size:]


def random_behind_magic(data: bytes, rng: np.random.Generator) -> bytes:
    """The first 4 to 16 bytes (the format's magic) kept, the rest random, the same length."""
    keep = int(min(len(data), rng.integers(4, 17)))
    return data[:keep] + rng.bytes(max(len(data) - keep, 0))


MUTATIONS: dict[str, Mutation] = {
    "bit_flips": bit_flips,
    "truncation": truncation,
    "zeroed_block": zeroed_block,
    "duplicated_block": duplicated_block,
    "smashed_header": smashed_header,
    "random_behind_magic": random_behind_magic,
}
"""Byte mutations by name. ``wrong_extension`` (another kind's file under this kind's extension) is made
by the harness, which knows the other kinds."""
