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
    e00, e01, e10, e11 = _edges(points, triangles)
    return e00 * e11 - e10 * e01


def _edges(points: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, ...]:
    p = np.asarray(points, np.float64)
    x, y = np.ascontiguousarray(p[:, 0]), np.ascontiguousarray(p[:, 1])   # scalar gathers are the fast ones
    a, b, c = triangles.T
    xa, ya = x[a], y[a]
    return x[b] - xa, x[c] - xa, y[b] - ya, y[c] - ya


class StretchGauge:
    """How much each triangle of a mesh is squeezed when its vertices move from ``source`` (fixed).

    Calling it with target positions gives, per triangle, the smallest singular value of the affine
    map from source to target: under 1 the triangle is squeezed along some direction (a sliver whose
    area may still look fine), negative when it flips (the sign of the map's determinant), 1 for a
    triangle degenerate in ``source``. Closed-form 2 x 2 algebra; the source side is computed once.
    """

    def __init__(self, source: np.ndarray, triangles: np.ndarray):
        self.triangles = triangles
        s00, s01, s10, s11 = _edges(source, triangles)          # S = [[s00, s01], [s10, s11]], edge columns
        det = s00 * s11 - s01 * s10
        self.ok = np.abs(det) > 1e-12
        inv = np.where(self.ok, 1.0 / np.where(self.ok, det, 1.0), 0.0)
        self.inverse = (s11 * inv, -s01 * inv, -s10 * inv, s00 * inv)      # S^-1, row-major

    def __call__(self, target: np.ndarray) -> np.ndarray:
        d00, d01, d10, d11 = _edges(target, self.triangles)
        i00, i01, i10, i11 = self.inverse
        m00, m01 = d00 * i00 + d01 * i10, d00 * i01 + d01 * i11         # M = D S^-1
        m10, m11 = d10 * i00 + d11 * i10, d10 * i01 + d11 * i11
        p = m00 ** 2 + m01 ** 2 + m10 ** 2 + m11 ** 2
        q = m00 * m11 - m01 * m10
        low = np.sqrt(np.maximum(p / 2 - np.sqrt(np.maximum(p ** 2 / 4 - q ** 2, 0.0)), 0.0))
        return np.where(self.ok, np.sign(q) * low, 1.0)


def min_stretch(source: np.ndarray, target: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """:class:`StretchGauge` of ``source`` applied once to ``target``, ``T``."""
    return StretchGauge(source, triangles)(target)


def untangle(source: np.ndarray, target: np.ndarray, triangles: np.ndarray, movable: np.ndarray,
             iterations: int = 8, rest: np.ndarray | None = None, min_area: float = 0.0,
             gauge: StretchGauge | None = None) -> np.ndarray:
    """Move movable vertices whose triangles fold over back toward ``source``, until none does (or
    return the state with the fewest folds, then crushed triangles, met on the way).

    Folds among the face's own points are real self-occlusion (the nose hiding a cheek) and are left
    to depth ordering in :meth:`MeshWarp.sampling_map`; folds that involve ring points only mean a
    ring moved too far, so their ring points are pulled back toward rest.

    Args:
        source: ``N x 2`` where a pulled vertex goes (its rest, or any fold-free anchor);
            target: ``N x 2`` moved positions.
        triangles: ``T x 3`` mesh.
        movable: ``N`` bool, the vertices that may be pulled back.
        rest: ``N x 2`` positions that give each triangle's right orientation and area (default: ``source``).
        min_area: a triangle squeezed along any direction below this share of its rest length
            (:func:`min_stretch`) counts as folded too.
        gauge: a :class:`StretchGauge` of ``rest`` to reuse (built when None and ``min_area`` > 0).
    Returns:
        ``N x 2`` targets.
    """
    rest_points = source if rest is None else rest
    rest = signed_areas(rest_points, triangles)
    scale = np.abs(rest).max(initial=1.0)
    solid = (np.abs(rest) > 1e-4 * scale) & movable[triangles].any(1)
    target = np.array(target, dtype=np.float64, copy=True)
    if min_area > 0 and gauge is None:
        gauge = StretchGauge(rest_points, triangles)
    def bad(points: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        flipped = solid & (signed_areas(points, triangles) * np.sign(rest) < 0)
        crushed = solid & (gauge(points) < min_area) & ~flipped if min_area > 0 else np.zeros_like(flipped)
        return flipped | crushed, (int(flipped.sum()), int(crushed.sum()))

    folded, score = bad(target)
    best, best_score = target.copy(), score
    for i in range(iterations):
        if not folded.any():
            break
        verts = np.unique(triangles[folded])
        verts = verts[movable[verts] & (np.abs(target[verts] - source[verts]).max(1) > 1e-6)]
        if not len(verts):                # the rest cannot be helped by the movable points
            break
        shrink = 0.5 if i < iterations - 1 else 0.0
        target[verts] = source[verts] + shrink * (target[verts] - source[verts])
        folded, score = bad(target)
        if score < best_score:            # a pull can fold triangles further on: keep the best state
            best, best_score = target.copy(), score
    return best


def _affine_maps(q: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``T x 3 x 2`` maps ``M`` with ``[x y 1] @ M`` = source position, from each triangle's ``T x 3 x 2``
    target corners ``q`` to its source corners ``b`` (closed-form 3 x 3 inverse; a collapsed triangle
    reads its source centre)."""
    (x0, y0), (x1, y1), (x2, y2) = (q[:, i].T for i in range(3))
    det = x0 * (y1 - y2) + x1 * (y2 - y0) + x2 * (y0 - y1)
    ok = np.abs(det) > _DEGENERATE
    inv_det = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    # rows of inverse([[x0, y0, 1], [x1, y1, 1], [x2, y2, 1]]) (adjugate over the determinant)
    inv = np.stack([np.stack([y1 - y2, y2 - y0, y0 - y1], 1),
                    np.stack([x2 - x1, x0 - x2, x1 - x0], 1),
                    np.stack([x1 * y2 - x2 * y1, x2 * y0 - x0 * y2, x0 * y1 - x1 * y0], 1)], 1)
    m = (inv * inv_det[:, None, None]) @ b
    m[~ok] = 0.0
    m[~ok, 2] = b[~ok].mean(axis=1)
    return m


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
        # the grid coordinates twice over (x x, y y per pixel), to scale a field of (x, y) pairs in one pass
        self._gx2, self._gy2 = np.repeat(gx[..., None], 2, axis=2), np.repeat(gy[..., None], 2, axis=2)
        self._index = np.empty((gh, gw), dtype=np.int32)
        self._term = np.empty((gh, gw, 2), np.float32)
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
        field = self.sampling_field(target, depth)
        return np.ascontiguousarray(field[..., 0]), np.ascontiguousarray(field[..., 1])

    def sampling_field(self, target: np.ndarray, depth: np.ndarray | None = None) -> np.ndarray:
        """:meth:`sampling_map` as one ``box.height x box.width x 2`` float32 array of ``(x, y)`` source
        positions (the two-channel map ``cv2.remap`` takes as ``map1``)."""
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
        pts = np.round(q[tri[order]] * (1 << _SHIFT)).astype(np.int32)
        index = self._index
        fill, line = cv2.fillConvexPoly, cv2.LINE_8
        for corners, t in zip(pts, order.tolist()):
            fill(index, corners, t, line, _SHIFT)
        # Affine map per triangle: [x y 1] @ M = source position; as complex numbers x + iy, the rows of M
        # are three coefficients a, b, c with position = a gx + b gy + c.
        m = _affine_maps(q[tri], self.source[tri]).astype(np.float32)
        coef = m.view(np.complex64)[..., 0]                         # T x 3
        idx = index.ravel()
        covered = idx >= 0
        if not covered.all():                           # outside every triangle: stay in place
            coef = np.concatenate([coef, np.zeros((1, 3), np.complex64)])
            idx = np.where(covered, idx, len(tri))
        # Per pixel: one lookup of each coefficient in a small table (a gather of 8-byte complex scalars
        # moves both coordinates at once), evaluated in place on (x, y) pairs.
        table = np.ascontiguousarray(coef.T)
        k = idx.reshape(index.shape)
        term = self._term                              # scratch; the field itself is returned, so new
        pairs = term.view(np.complex64)[..., 0]
        field = table[0].take(k).view(np.float32).reshape(term.shape)
        field *= self._gx2
        table[1].take(k, out=pairs)
        term *= self._gy2
        field += term
        table[2].take(k, out=pairs)
        field += term
        if not covered.all():
            inv = 1.0 / self._to_grid
            hole = ~covered.reshape(index.shape)
            field[hole, 0] = (self._gx[hole] + 0.5) * inv[0] - 0.5 + self.box.x0
            field[hole, 1] = (self._gy[hole] + 0.5) * inv[1] - 0.5 + self.box.y0
        if self.grid_size != (self.box.width, self.box.height):    # each coordinate on its own (as before)
            size = (self.box.width, self.box.height)
            field = cv2.merge([cv2.resize(np.ascontiguousarray(field[..., i]), size, interpolation=cv2.INTER_LINEAR)
                               for i in range(2)])
        return field

    def warp(self, image: np.ndarray, target: np.ndarray, depth: np.ndarray | None = None,
             out: np.ndarray | None = None) -> np.ndarray:
        """Warp ``image`` (``H x W x C``) so that the control points move to ``target``.

        Returns ``out`` (a copy of ``image`` unless given) with the box replaced by the warped pixels.
        """
        field = self.sampling_field(target, depth)
        region = cv2.remap(image, field, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out = image.copy() if out is None else out
        out[self.box.y0:self.box.y1, self.box.x0:self.box.x1] = region
        return out
