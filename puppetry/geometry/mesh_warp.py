"""Piecewise-affine image warp driven by a triangle mesh of control points.

The mesh is triangulated once on the source control points; per frame the same triangles are moved
to the target points and the image is resampled backward: every output pixel finds the target
triangle that covers it and reads the source through that triangle's affine map. Triangles are
rasterised with OpenCV (one ``fillConvexPoly`` each) into an index image, so per-frame cost is a few
milliseconds and no Python loop touches pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

_SHIFT = 4                      # fixed-point bits for sub-pixel rasterisation
_DEGENERATE = 1e-6              # |det| below which a target triangle counts as collapsed


def triangulate(points: np.ndarray) -> np.ndarray:
    """Delaunay triangles (``T x 3`` int32) of ``N x 2`` points; near-duplicates still become vertices."""
    return Delaunay(np.asarray(points, dtype=np.float64), qhull_options="QJ Qbb Qc").simplices.astype(np.int32)


def signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Twice the signed area of each triangle, ``T``."""
    a, b, c = (points[triangles[:, i]] for i in range(3))
    return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])


def untangle(source: np.ndarray, target: np.ndarray, triangles: np.ndarray, movable: np.ndarray,
             iterations: int = 8) -> np.ndarray:
    """Shrink the motion of movable vertices whose triangles fold over, until none does.

    Folds among the face's own points are real self-occlusion (the nose hiding a cheek) and are left
    to depth ordering in :meth:`MeshWarp.sampling_map`; folds that involve ring points only mean a
    ring moved too far, so their ring points are pulled back toward rest.

    Args:
        source: ``N x 2`` rest positions; target: ``N x 2`` moved positions.
        triangles: ``T x 3`` mesh.
        movable: ``N`` bool, the vertices that may be pulled back.
    Returns:
        ``N x 2`` targets.
    """
    rest = signed_areas(source, triangles)
    scale = np.abs(rest).max(initial=1.0)
    solid = (np.abs(rest) > 1e-4 * scale) & movable[triangles].any(1)
    target = np.array(target, dtype=np.float64, copy=True)
    for i in range(iterations):
        flipped = solid & (signed_areas(target, triangles) * np.sign(rest) < 0)
        if not flipped.any():
            break
        verts = np.unique(triangles[flipped])
        verts = verts[movable[verts]]
        shrink = 0.5 if i < iterations - 1 else 0.0
        target[verts] = source[verts] + shrink * (target[verts] - source[verts])
    return target


@dataclass(frozen=True)
class Box:
    """Pixel rectangle ``[x0, x1) x [y0, y1)``."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


class MeshWarp:
    """Backward piecewise-affine warp of one image region.

    Args:
        source: ``N x 2`` control points in image pixels (the rest pose).
        triangles: ``T x 3`` triangles over ``source`` whose union covers ``box``.
        box: the region of the image that may move; pixels outside it are never touched.
        field_max_pixels: the sampling map is computed on a grid of at most this many pixels and
            upsampled bilinearly, which keeps huge images cheap.
    """

    def __init__(self, source: np.ndarray, triangles: np.ndarray, box: Box, field_max_pixels: int = 640_000):
        self.source = np.asarray(source, dtype=np.float64)
        self.triangles = np.asarray(triangles, dtype=np.int32)
        self.box = box
        g = min(1.0, float(np.sqrt(field_max_pixels / (box.width * box.height))))
        self.grid_size = (max(2, round(box.width * g)), max(2, round(box.height * g)))
        gw, gh = self.grid_size
        self._to_grid = np.array([gw / box.width, gh / box.height])
        gy, gx = np.mgrid[0:gh, 0:gw].astype(np.float32)
        self._gx, self._gy = gx, gy
        self._index = np.empty((gh, gw), dtype=np.int32)
        rest = signed_areas(self._grid_coords(self.source), self.triangles)
        self._rest_sign = np.sign(rest)
        self._solid = np.abs(rest) > 1e-4 * np.abs(rest).max(initial=1.0)

    def _grid_coords(self, points: np.ndarray) -> np.ndarray:
        """Image pixels -> grid pixels (pixel centres aligned as ``cv2.resize`` aligns them)."""
        return (points - [self.box.x0, self.box.y0] + 0.5) * self._to_grid - 0.5

    def sampling_map(self, target: np.ndarray, depth: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Where each output pixel of the box reads the source.

        Triangles are painted far to near (painter's algorithm on ``depth``), so a turning head's
        nose covers its far cheek; triangles that turned their back (flipped) or collapsed (a closed
        lid) are not painted, their neighbours cover their pixels.

        Args:
            target: ``N x 2`` moved control points (image pixels).
            depth: ``N`` distance of each point from the camera (larger is farther), or None.
        Returns:
            ``map_x, map_y``: ``box.height x box.width`` float32 image coordinates, for ``cv2.remap``.
        """
        tri = self.triangles
        q = self._grid_coords(np.asarray(target, dtype=np.float64))
        area = signed_areas(q, tri)
        drawn = (area * self._rest_sign > 0) | ~self._solid
        drawn &= np.abs(area) > 1e-3
        if depth is not None:
            key = -np.asarray(depth, dtype=np.float64)[tri].mean(1)
        else:
            key = np.abs(area)
        order = np.flatnonzero(drawn)[np.argsort(key[drawn], kind="stable")]
        self._index.fill(-1)
        pts = np.round(q[tri] * (1 << _SHIFT)).astype(np.int32)
        index = self._index
        for t in order:
            cv2.fillConvexPoly(index, pts[t], int(t), cv2.LINE_8, _SHIFT)
        # Affine map per triangle: [x y 1] @ M = source position.
        a = np.concatenate([q[tri], np.ones((len(tri), 3, 1))], axis=2)
        b = self.source[tri]
        ok = np.abs(np.linalg.det(a)) > _DEGENERATE
        m = np.zeros((len(tri), 3, 2))
        m[ok] = np.linalg.solve(a[ok], b[ok])
        m[~ok, 2] = b[~ok].mean(axis=1)                # collapsed: read the triangle's centre
        coef = m.reshape(len(tri), 6).astype(np.float32)
        idx = index.ravel()
        covered = idx >= 0
        if not covered.all():                           # outside every triangle: stay in place
            identity = np.zeros((1, 6), np.float32)
            coef = np.concatenate([coef, identity])
            idx = np.where(covered, idx, len(tri))
        c = coef[idx].reshape(index.shape + (6,))
        gx, gy = self._gx, self._gy
        map_x = c[..., 0] * gx + c[..., 2] * gy + c[..., 4]
        map_y = c[..., 1] * gx + c[..., 3] * gy + c[..., 5]
        if not covered.all():
            inv = 1.0 / self._to_grid
            hole = ~covered.reshape(index.shape)
            map_x[hole] = (gx[hole] + 0.5) * inv[0] - 0.5 + self.box.x0
            map_y[hole] = (gy[hole] + 0.5) * inv[1] - 0.5 + self.box.y0
        if self.grid_size != (self.box.width, self.box.height):
            size = (self.box.width, self.box.height)
            map_x = cv2.resize(map_x, size, interpolation=cv2.INTER_LINEAR)
            map_y = cv2.resize(map_y, size, interpolation=cv2.INTER_LINEAR)
        return map_x, map_y

    def warp(self, image: np.ndarray, target: np.ndarray, depth: np.ndarray | None = None,
             out: np.ndarray | None = None) -> np.ndarray:
        """Warp ``image`` (``H x W x C``) so that the control points move to ``target``.

        Returns ``out`` (a copy of ``image`` unless given) with the box replaced by the warped pixels.
        """
        map_x, map_y = self.sampling_map(target, depth)
        region = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out = image.copy() if out is None else out
        out[self.box.y0:self.box.y1, self.box.x0:self.box.x1] = region
        return out
