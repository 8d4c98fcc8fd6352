"""Warp-based semantic-aware skip connections, WASIC (paper 000, Sec. 3.3, Eq. 6, Fig. 3 right).

The coloring network ``G_C`` joins a shallow encoder feature ``e[k]_i^s`` of the source frame to the decoder
feature ``d[k]_j^s`` of the same size (the target frame's). The encoder feature and the source mask
``M_i^s`` are warped by ``theta_w``, fitted from the source landmarks ``L_i^s`` to the target ``L_j^s``,
giving ``e[k]_w`` and ``M[k]_w``; ``M[k]_f`` is where the warped source part and the same target part
``M[k]_j^s`` agree, and (Eq. 6)::

    d_out[k]_j^s = mu * M[k]_f * e[k]_w + (1 - mu) * d[k]_j^s + mu * (1 - M[k]_f) * d[k]_j^s

with a learned ``mu`` in (0, 1): agreeing pixels take ``mu`` of the warped source feature, the others keep
the decoder's own feature.

The paper names one ``theta_w``. A face does not move as one affine map (the jaw opens, the eyes close), so
here each semantic label ``k`` is warped by the map of its transform group (:data:`TRANSFORM_GROUPS`, ours)
and Eq. 6 is applied label by label::

    M_f,k = warp(M_i,k^s, theta_g(k)) * M_j,k^s                 B x K x H x W
    skip  = sum_k M_f,k * warp(e_i^s, theta_g(k))                 B x C x H x W
    M_f   = sum_k M_f,k                                           B x 1 x H x W
    out   = mu * skip + (1 - mu) * d_j^s + mu * (1 - M_f) * d_j^s

For one-hot masks with a single group this is exactly Eq. 6 (``M_f`` is then the mask of the same part of
``M_w`` and ``M_j^s``). Each group's map is fitted in closed form on its landmark subset
(:func:`fit_similarity`, :func:`fit_affine`).

Coordinates: landmarks are ``B x N x 2`` (x, y) in a crop's normalised coordinates [-1, 1], the convention
of ``F.grid_sample(align_corners=False)``. Every fitted ``theta`` (``B x 2 x 3``) maps a TARGET coordinate
to the SOURCE coordinate, ``src = theta[:, :, :2] @ dst + theta[:, :, 2]``, so it is the ``theta`` of
``F.affine_grid`` that pulls source features into the target pose (:func:`warp`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from puppetry.face.parsing import MASK_LABELS


@dataclass(frozen=True)
class TransformGroup:
    """A set of labels moved by one map fitted on one landmark subset.

    Attributes:
        name: the group's name.
        labels: label names (:data:`puppetry.face.parsing.MASK_LABELS`) warped with this map.
        points: iBUG-68 indices the map is fitted on.
        kind: ``"similarity"`` (:func:`fit_similarity`) or ``"affine"`` (:func:`fit_affine`).
    """

    name: str
    labels: tuple[str, ...]
    points: tuple[int, ...]
    kind: str


_JAW_UPPER = (0, 1, 2, 3, 13, 14, 15, 16)        # jaw near the ears: moves with the skull, not the chin
_NOSE = tuple(range(27, 36))
_EYE_CORNERS = (36, 39, 42, 45)

TRANSFORM_GROUPS: tuple[TransformGroup, ...] = (
    # Head-rigid parts: a similarity on points the open jaw does not move (upper jaw, nose, eye corners).
    TransformGroup("head", ("background", "hair", "neck_body"), _JAW_UPPER + _NOSE + _EYE_CORNERS, "similarity"),
    # The face oval: an affine map on all 68 points (follows the opening jaw and a turning head).
    TransformGroup("face", ("skin",), tuple(range(68)), "affine"),
    TransformGroup("brows", ("brows",), tuple(range(17, 27)), "affine"),
    TransformGroup("eyes", ("eyes",), tuple(range(36, 48)), "affine"),
    TransformGroup("nose", ("nose",), _NOSE, "affine"),
    # Lips and the mouth opening: outer and inner lip lines.
    TransformGroup("mouth", ("lips", "inner_mouth"), tuple(range(48, 68)), "affine"),
)
"""The transform groups of WASIC (ours; the paper fits a single ``theta_w``). Every label is in one group."""

LABEL_GROUP: tuple[int, ...] = tuple(
    next(g for g, group in enumerate(TRANSFORM_GROUPS) if name in group.labels) for name in MASK_LABELS)
"""``K`` group indices: ``LABEL_GROUP[k]`` is the group whose map warps label ``k``."""

NUM_GROUPS = len(TRANSFORM_GROUPS)               # G


def _centre(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``B x N x 2`` -> (centred points ``B x N x 2``, means ``B x 1 x 2``)."""
    mean = points.mean(dim=1, keepdim=True)
    return points - mean, mean


def _similarity_matrix(p: torch.Tensor, q: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Least-squares ``A = [[a, -b], [b, a]]`` with ``q ~ A p`` for centred ``B x N x 2`` points (``B x 2 x 2``).

    ``eps`` biases degenerate fits (all points equal) toward the identity instead of a collapse to a point.
    """
    norm = (p * p).sum(dim=(1, 2))
    a = ((p * q).sum(dim=(1, 2)) + eps) / (norm + eps)
    b = (p[..., 0] * q[..., 1] - p[..., 1] * q[..., 0]).sum(dim=1) / (norm + eps)
    return torch.stack([torch.stack([a, -b], -1), torch.stack([b, a], -1)], dim=-2)


def _theta(matrix: torch.Tensor, src_mean: torch.Tensor, dst_mean: torch.Tensor) -> torch.Tensor:
    """``[A | src_mean - A dst_mean]``: ``B x 2 x 2`` and ``B x 1 x 2`` means -> ``B x 2 x 3``."""
    shift = src_mean.transpose(1, 2) - matrix @ dst_mean.transpose(1, 2)
    return torch.cat([matrix, shift], dim=2)


def fit_similarity(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Least-squares similarity (rotation, uniform scale, shift; no reflection) taking ``dst`` onto ``src``.

    Args:
        src: ``B x N x 2`` source points (normalised coordinates).
        dst: ``B x N x 2`` target points.
    Returns:
        ``B x 2 x 3`` ``theta`` with ``src ~ theta[:, :, :2] @ dst + theta[:, :, 2]`` (target -> source), in the
        dtype of ``src``; the fit itself runs in float64.
    """
    p, dst_mean = _centre(dst.double())
    q, src_mean = _centre(src.double())
    return _theta(_similarity_matrix(p, q), src_mean, dst_mean).to(src.dtype)


def fit_affine(src: torch.Tensor, dst: torch.Tensor, ridge: float = 0.05) -> torch.Tensor:
    """Least-squares affine map taking ``dst`` onto ``src``, regularised toward the similarity fit.

    With centred points ``p`` (target) and ``q`` (source) and the similarity's ``A_sim``, the linear part
    minimises ``sum_n |A p_n - q_n|^2 + lam |A - A_sim|_F^2`` in closed form::

        A = (Q^T P + lam A_sim) (P^T P + lam I)^-1,     lam = ridge * trace(P^T P) / 2

    so ``ridge`` is relative to the points' spread (scale free). Directions the points do not span (two
    points, nearly collinear points such as closed eyes) follow the similarity; a transform the similarity
    already fits exactly (e.g. all points moved rigidly) is recovered exactly for any ``ridge``.

    Args:
        src: ``B x N x 2`` source points.
        dst: ``B x N x 2`` target points.
        ridge: regularisation strength (0: plain least squares, needs 3 non-collinear points).
    Returns:
        ``B x 2 x 3`` ``theta`` (target -> source), in the dtype of ``src``.
    """
    p, dst_mean = _centre(dst.double())
    q, src_mean = _centre(src.double())
    a_sim = _similarity_matrix(p, q)
    ptp = p.transpose(1, 2) @ p                                            # B x 2 x 2
    qtp = q.transpose(1, 2) @ p
    lam = ridge * ptp.diagonal(dim1=1, dim2=2).sum(-1) / 2 + 1e-12          # B
    eye = torch.eye(2, dtype=p.dtype, device=p.device)
    lhs = ptp + lam[:, None, None] * eye
    rhs = qtp + lam[:, None, None] * a_sim
    # A lhs = rhs with lhs symmetric: A^T = lhs^-1 rhs^T.
    matrix = torch.linalg.solve(lhs, rhs.transpose(1, 2)).transpose(1, 2)
    return _theta(matrix, src_mean, dst_mean).to(src.dtype)


def identity_thetas(batch: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32
                    ) -> torch.Tensor:
    """``B x G x 2 x 3`` identity maps (no motion), one per transform group."""
    eye = torch.eye(2, 3, device=device, dtype=dtype)
    return eye.expand(batch, NUM_GROUPS, 2, 3).clone()


def part_thetas(points_s: torch.Tensor, points_t: torch.Tensor) -> torch.Tensor:
    """One map per transform group, fitted on the group's landmarks from target to source.

    Args:
        points_s: ``B x P x 2`` source landmarks ``L_i^s`` (iBUG-68, normalised).
        points_t: ``B x P x 2`` target landmarks ``L_j^s``.
    Returns:
        ``B x G x 2 x 3`` thetas in :data:`TRANSFORM_GROUPS` order (identity where the points agree).
    """
    thetas = []
    for group in TRANSFORM_GROUPS:
        idx = torch.tensor(group.points, device=points_s.device)
        src, dst = points_s.index_select(1, idx), points_t.index_select(1, idx)
        thetas.append(fit_similarity(src, dst) if group.kind == "similarity" else fit_affine(src, dst))
    return torch.stack(thetas, dim=1)


def warp(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Pull ``x`` into the target pose: ``out(p) = x(theta p)``, bilinear, zeros outside.

    Args:
        x: ``B x C x H x W`` source features (or masks).
        theta: ``B x 2 x 3`` target -> source maps in normalised coordinates.
    Returns:
        ``B x C x H x W``.
    """
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def resize_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``B x K x S x S`` one-hot (or soft) mask -> ``B x K x H x W``: area averaging (soft part shares at part
    borders when shrinking, repetition when growing); returned as is when already that size."""
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    return F.interpolate(mask, size=size, mode="area")


class WASIC(nn.Module):
    """One warp-based semantic-aware skip connection (Eq. 6) with its learned ``mu``.

    ``mu = sigmoid(mu_logit)`` stays in (0, 1); it starts at ``mu_init``.
    """

    def __init__(self, mu_init: float):
        super().__init__()
        if not 0 < mu_init < 1:
            raise ValueError(f"mu_init must be in (0, 1), got {mu_init}")
        self.mu_logit = nn.Parameter(torch.tensor(math.log(mu_init / (1 - mu_init))))
        self.register_buffer("label_group", torch.tensor(LABEL_GROUP), persistent=False)

    @property
    def mu(self) -> torch.Tensor:
        """The blend weight ``mu`` of Eq. 6 (a 0-dim tensor in (0, 1))."""
        return torch.sigmoid(self.mu_logit)

    def forward(self, e_s: torch.Tensor, d_t: torch.Tensor, mask_s: torch.Tensor, mask_t: torch.Tensor,
                thetas: torch.Tensor) -> torch.Tensor:
        """Eq. 6, label by label with each label's group map.

        Args:
            e_s: ``B x C x H x W`` encoder feature of the source ``e[k]_i^s``.
            d_t: ``B x C x H x W`` decoder feature of the target ``d[k]_j^s``.
            mask_s: ``B x K x S x S`` one-hot source mask ``M_i^s`` (resized here to ``H x W``).
            mask_t: ``B x K x S x S`` one-hot target mask ``M_j^s``.
            thetas: ``B x G x 2 x 3`` group maps (:func:`part_thetas`).
        Returns:
            ``B x C x H x W`` ``d_out[k]_j^s``.
        """
        b, c, h, w = e_s.shape
        k = mask_s.shape[1]
        g = thetas.shape[1]
        if k != len(LABEL_GROUP) or g != NUM_GROUPS:
            raise ValueError(f"expected {len(LABEL_GROUP)} mask channels and {NUM_GROUPS} thetas, got {k} and {g}")
        m_s = resize_mask(mask_s, (h, w)).to(e_s.dtype)
        m_t = resize_mask(mask_t, (h, w)).to(e_s.dtype)

        # Warp features and source masks once per group (groups folded into the batch).
        both = torch.cat([e_s, m_s], dim=1).unsqueeze(1).expand(b, g, c + k, h, w)
        warped = warp(both.reshape(b * g, c + k, h, w), thetas.reshape(b * g, 2, 3)).view(b, g, c + k, h, w)
        e_w = warped[:, :, :c]                                                   # B x G x C x H x W
        m_w = warped[:, :, c:, :, :][:, self.label_group, torch.arange(k, device=e_s.device)]  # B x K x H x W

        m_f_k = m_w * m_t                                                        # M_f,k
        m_f_g = torch.zeros(b, g, h, w, dtype=e_s.dtype, device=e_s.device).index_add(1, self.label_group, m_f_k)
        skip = (m_f_g.unsqueeze(2) * e_w).sum(dim=1)                             # sum_k M_f,k e_w,g(k)
        m_f = m_f_k.sum(dim=1, keepdim=True)                                     # M_f
        mu = self.mu.to(e_s.dtype)
        return mu * skip + (1 - mu) * d_t + mu * (1 - m_f) * d_t
