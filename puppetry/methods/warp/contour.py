"""A face contour that never folds: the fix for the sawtooth edge on head turns.

On a head turn the far cheek rotates behind the nose and the face outline moves inside the cheek, so
the mesh triangles between them turn their backs (fold). Painted far to near, the front-facing
triangles then end in a zigzag along mesh edges instead of the outline, and the ring triangles that
start at the outline stick out from under the cheek: the sawtooth over the hair and the second copy
of the hair's edge.

:func:`unfold` removes those folds where they are not meant: each outer-face and head-ring point blends
between its true 3D position ``P`` and its position on a flat card turned the same way ``F`` (a flat
card cannot fold, and at rest ``F = P``), ``x = F + w (P - F)``. Starting from ``w = 1`` everywhere, the
points of folded or crushed triangles (squeezed under ``min_squeeze`` of their squeeze on the card)
quarter their ``w`` until none is left. ``w`` is then spread smoothly over the face
(:class:`Spread`): a point next to a flattened one is flattened almost as much, so the outline bends
gradually from 3D to flat instead of kinking where one point is flat and its neighbour is not (the
notch at the temple and the ragged jaw of a small face turned away, s4 with d11). Where the card
itself folds (the transferred expression folds the outline: landmarks tracked on a turned head often
do), the folded points are relaxed toward their neighbours' mean. The eyes, nose and mouth are never
flattened: the nose still covers the far cheek, which is a true occlusion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from puppetry.geometry.mesh_warp import StretchGauge


def mesh_neighbours(triangles: np.ndarray, n: int) -> sparse.csr_matrix:
    """``n x n`` row-normalised adjacency of a triangle mesh (for smoothing per-vertex values)."""
    i = triangles[:, [0, 1, 2, 1, 2, 0]].ravel()
    j = triangles[:, [1, 2, 0, 0, 1, 2]].ravel()
    a = sparse.coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)).tocsr()
    a.data[:] = 1.0
    degree = np.asarray(a.sum(1)).ravel()
    return sparse.diags(1.0 / np.maximum(degree, 1.0)) @ a


@dataclass(frozen=True)
class Spread:
    """A smooth lower envelope of per-vertex values over each face.

    ``w' = S @ erode(w)`` on the vertices that may flatten: every such vertex first takes the smallest
    value within ``radius`` of it, then the Gaussian-weighted mean of those within the same radius. A
    vertex ``x`` lies within the radius of every vertex its mean reads, and each of them is at most
    ``w(x)``, so ``w' <= w`` everywhere: no vertex flattens less than the fold search asked, and the
    flattening fades out over ``radius``. Other vertices keep their value.

    Attributes:
        ids: ``A`` the vertices that may flatten.
        near: ``A x K`` indices (into all vertices) of those within the radius of each (padded with itself).
        smooth: ``A x A`` row-normalised Gaussian weights on the same pairs.
    """

    ids: np.ndarray
    near: np.ndarray
    smooth: sparse.csr_matrix

    def __call__(self, w: np.ndarray) -> np.ndarray:
        out = np.array(w, dtype=np.float64, copy=True)
        out[self.ids] = self.smooth @ w[self.near].min(1)
        return out


def spread_operator(points: np.ndarray, groups: np.ndarray, radius: np.ndarray, active: np.ndarray) -> Spread:
    """:class:`Spread` over the ``active`` ones of ``N x 2`` rest points; a vertex sees only active
    vertices of its own group (face) within ``radius[g]`` pixels for group ``g``."""
    ids = np.flatnonzero(active & (groups >= 0))
    a = len(ids)
    rows, cols, weights = [np.arange(a)], [np.arange(a)], [np.ones(a)]
    for g in np.unique(groups[ids]):
        local = np.flatnonzero(groups[ids] == g)
        d = np.linalg.norm(points[ids[local], None] - points[None, ids[local]], axis=-1)
        i, j = np.nonzero((d <= radius[g]) & (d > 0))
        rows.append(local[i])
        cols.append(local[j])
        weights.append(np.exp(-0.5 * (d[i, j] / (radius[g] / 2)) ** 2))
    rows, cols, weights = (np.concatenate(x) for x in (rows, cols, weights))
    smooth = sparse.coo_matrix((weights, (rows, cols)), shape=(a, a)).tocsr()
    smooth = (sparse.diags(1.0 / np.asarray(smooth.sum(1)).ravel()) @ smooth).tocsr()
    count = np.bincount(rows, minlength=a)
    near = np.tile(np.arange(a)[:, None], (1, count.max(initial=1)))
    order = np.argsort(rows, kind="stable")
    slot = np.arange(len(rows)) - np.repeat(np.cumsum(count) - count, count)
    near[rows[order], slot] = cols[order]
    return Spread(ids=ids, near=ids[near], smooth=smooth)


def unfold(true_points: np.ndarray, flat_points: np.ndarray, triangles: np.ndarray, gauge: StretchGauge,
           candidates: np.ndarray, flattenable: np.ndarray, neighbours: sparse.csr_matrix, spread: Spread,
           min_squeeze: float = 0.4, iterations: int = 4, relax: int = 4) -> np.ndarray:
    """Control points without contour folds.

    Args:
        true_points: ``N x 3`` target points (x, y, depth) of the 3D face.
        flat_points: ``N x 3`` the same targets with the face turned as a flat card.
        triangles: ``T x 3`` mesh; gauge: its :class:`~puppetry.geometry.mesh_warp.StretchGauge` at rest.
        candidates: ``T`` bool, the triangles watched for folds (non-degenerate face triangles with a
            flattenable point).
        flattenable: ``N`` bool, points allowed to flatten.
        neighbours: :func:`mesh_neighbours` of the mesh (relaxes points where the card folds).
        spread: :func:`spread_operator` of the rest points: how far the flattening fades out.
        min_squeeze: a triangle squeezed along any direction below this share of its squeeze on the
            flat card counts as folded (a sliver that crushes a wide strip of the source into a few
            pixels is a tear too).
    Returns:
        ``N x 3`` targets.
    """
    w = np.ones(len(true_points))
    delta = true_points - flat_points
    card = np.maximum(gauge(flat_points), 0.0)

    def folded_now(points: np.ndarray) -> np.ndarray:
        return candidates & (gauge(points) < min_squeeze * card)

    for _ in range(iterations):
        moved = flat_points + w[:, None] * delta
        folded = folded_now(moved)
        if not folded.any():
            break
        verts = np.unique(triangles[folded])
        verts = verts[flattenable[verts] & (w[verts] > 1e-2)]
        if not len(verts):                 # what is left folds in the card too: relaxed below
            break
        w[verts] *= 0.25
    if (w < 1).any():                    # no kink between flattened and 3D points; never raises a w
        w = spread(w)
    moved = flat_points + w[:, None] * delta
    # Where even the card folds (the driving expression itself folds the outline, as landmarks of a
    # turned head often do), relax the folded points toward their neighbours' mean.
    for _ in range(relax):
        folded = folded_now(moved)
        if not folded.any():
            break
        verts = np.unique(triangles[folded])
        verts = verts[flattenable[verts]]
        if not len(verts):
            break
        moved[verts, :2] = 0.5 * moved[verts, :2] + 0.5 * (neighbours @ moved[:, :2])[verts]
    return moved
