"""PuppeteerGAN's sketching network (paper 000, Sec. 3.2, Fig. 3 left): pose retargeting on semantic guidance.

The network reads landmarks and segmentation masks, never images. Its four parts, named as in the paper:

- ``E_L`` (:class:`LandmarkEncoder`): an MLP from landmarks ``B x P x 2`` (normalised to [-1, 1], see
  :mod:`puppetry.methods.puppeteergan.landmarks`) to a feature ``B x F`` that should hold pose and expression
  but no identity;
- ``E_M`` (:class:`SegmentationEncoder`): stride-2 convolutions from a one-hot mask ``B x K x S x S`` to a
  map ``B x C x s x s`` (``s = S / 2^seg_blocks``) that holds the source's face shape;
- ``G_R`` (:class:`JointGenerator`): joins the two, the landmark feature tiled over the map, and decodes the
  retargeted landmarks ``B x P x 2`` and mask logits ``B x K x S x S``;
- ``D_I`` (:class:`IdentityDiscriminator`): an MLP that tells whether a pair of ``E_L`` features comes from
  one person.

Generation (Eq. 1): ``(L~_j^s, M~_j^s) = G_R(E_L(L_j^s), E_M(M_i^s))``, trained with

- ``L_ld = ||L~_j^s - L_j^s||`` (Eq. 2, L1 here: :func:`landmark_loss`);
- ``L_seg = ||M~_j^s - M_j^s||`` (Eq. 3, cross-entropy on the labels here: :func:`segmentation_loss`);
- ``L_idt`` (Eq. 4): ``D_I`` learns to call the real pair ``(E_L(L_i^s), E_L(L_j^s))`` "same identity" and the
  fake pair ``(E_L(L_i'^v), E_L(L_j^s))`` "different" (:func:`identity_loss_discriminator`), while ``E_L``
  learns to make the fake pair look "same" (:func:`identity_loss_encoder`), so that its feature carries no
  identity; the paper's ``D(real) - D(fake)`` is played here as a logistic (non-saturating) GAN;
- total (Eq. 5): ``L_ld + lambda1 L_seg + lambda2 L_idt`` (:func:`sketch_loss`).

At inference (:meth:`SketchingNetwork.retarget`) the driving person's landmarks ``L_j`` and the source's mask
``M_i`` give the source's mask and landmarks at the driving pose.

Choices of ours, which the paper leaves open: every width and depth (:class:`~.config.SketchModel`), group
normalisation in the convolutions (independent of batch size and of the bottleneck's side, the same in training
and evaluation), nearest upsampling followed by a convolution in the decoder, the landmark head on the global
average of the bottleneck, and a two-hidden-layer ``D_I``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from puppetry.methods.puppeteergan.config import NUM_LABELS, NUM_POINTS, SketchLosses, SketchModel
from puppetry.nn.mlp import mlp

NORM_GROUPS = 8          # at most this many groups in each GroupNorm (fewer when the channels do not divide)
DISC_LAYERS = 2          # hidden layers of D_I's MLP


def one_hot(labels: torch.Tensor, num_labels: int = NUM_LABELS) -> torch.Tensor:
    """Label maps ``B x S x S`` (integers in ``[0, K)``) -> float one-hot masks ``B x K x S x S``."""
    return F.one_hot(labels.long(), num_labels).permute(0, 3, 1, 2).float()


def seg_widths(cfg: SketchModel) -> list[int]:
    """Output channels of ``E_M``'s blocks: ``seg_width`` doubling per block, capped at ``max_width``."""
    return [min(cfg.max_width, cfg.seg_width * 2 ** i) for i in range(cfg.seg_blocks)]


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(NORM_GROUPS, channels), channels)


class ConvBlock(nn.Module):
    """Conv 3x3 (stride 1 or 2), group norm, LeakyReLU(0.2): ``B x C_in x H x W -> B x C_out x H/stride x W/stride``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)
        self.norm = _norm(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.norm(self.conv(x)), 0.2)


class UpBlock(nn.Module):
    """Nearest upsampling by 2, then :class:`ConvBlock`: ``B x C_in x H x W -> B x C_out x 2H x 2W``."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.block = ConvBlock(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class ResBlock(nn.Module):
    """``x + norm(conv(lrelu(norm(conv(x)))))``: ``B x C x H x W`` in and out."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm1 = _norm(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2 = _norm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.leaky_relu(self.norm1(self.conv1(x)), 0.2)
        return x + self.norm2(self.conv2(out))


class LandmarkEncoder(nn.Module):
    """``E_L``: normalised landmarks ``B x P x 2`` in [-1, 1] -> feature ``B x F`` (``F = landmark_features``)."""

    def __init__(self, cfg: SketchModel, num_points: int = NUM_POINTS):
        super().__init__()
        self.net = mlp(2 * num_points, cfg.landmark_features, cfg.landmark_hidden, cfg.landmark_layers)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.net(points.flatten(1))


class SegmentationEncoder(nn.Module):
    """``E_M``: one-hot mask ``B x K x S x S`` -> map ``B x C x s x s`` with ``s = S / 2^seg_blocks`` and
    ``C`` = :attr:`out_channels` (the last of :func:`seg_widths`, or ``K`` without blocks)."""

    def __init__(self, cfg: SketchModel, num_labels: int = NUM_LABELS):
        super().__init__()
        blocks = []
        channels = num_labels
        for width in seg_widths(cfg):
            blocks.append(ConvBlock(channels, width, stride=2))
            channels = width
        self.blocks = nn.Sequential(*blocks)
        self.out_channels = channels

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        return self.blocks(mask)


class JointGenerator(nn.Module):
    """``G_R``: landmark feature ``z`` (``B x F``) and mask map ``e`` (``B x C x s x s``) -> landmarks
    ``B x P x 2`` (normalised frame) and label logits ``B x K x S x S``.

    ``z`` is projected to ``C`` channels and tiled over ``s x s``, concatenated with ``e`` and fused by a
    :class:`ConvBlock`, then ``res_blocks`` :class:`ResBlock` give the bottleneck ``B x C x s x s``. From it,
    (a) :class:`UpBlock` s mirroring ``E_M`` and a 3x3 conv give the logits, (b) its global average pool and an
    MLP give the landmarks (predicted directly, no activation on the output).
    """

    def __init__(self, cfg: SketchModel, num_labels: int = NUM_LABELS, num_points: int = NUM_POINTS):
        super().__init__()
        widths = seg_widths(cfg)
        channels = widths[-1] if widths else num_labels
        self.num_points = num_points
        self.project = nn.Linear(cfg.landmark_features, channels)
        self.fuse = ConvBlock(2 * channels, channels)
        self.res_blocks = nn.Sequential(*[ResBlock(channels) for _ in range(cfg.res_blocks)])

        up_blocks = []
        width = channels
        for out in list(reversed(widths[:-1])) + widths[:1]:
            up_blocks.append(UpBlock(width, out))
            width = out
        self.decoder = nn.Sequential(*up_blocks)
        self.to_logits = nn.Conv2d(width, num_labels, 3, padding=1)
        self.landmark_head = mlp(channels, 2 * num_points, cfg.landmark_hidden, cfg.landmark_layers)

    def forward(self, z: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tiled = self.project(z)[:, :, None, None].expand(-1, -1, e.shape[2], e.shape[3])
        x = self.res_blocks(self.fuse(torch.cat([e, tiled], dim=1)))
        logits = self.to_logits(self.decoder(x))
        points = self.landmark_head(x.mean(dim=(2, 3))).view(-1, self.num_points, 2)
        return points, logits


class IdentityDiscriminator(nn.Module):
    """``D_I``: a pair of ``E_L`` features ``B x F`` and ``B x F`` -> ``B`` logits of "same identity"."""

    def __init__(self, cfg: SketchModel):
        super().__init__()
        self.net = mlp(2 * cfg.landmark_features, 1, cfg.disc_hidden, DISC_LAYERS)

    def forward(self, f_a: torch.Tensor, f_b: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([f_a, f_b], dim=1)).squeeze(1)


class SketchingNetwork(nn.Module):
    """The sketching network: ``el`` (``E_L``), ``em`` (``E_M``), ``gr`` (``G_R``) and ``di`` (``D_I``).

    ``forward`` is Eq. 1; ``di`` is used only by the identity losses.
    """

    def __init__(self, cfg: SketchModel):
        super().__init__()
        self.cfg = cfg
        self.num_labels = NUM_LABELS
        self.el = LandmarkEncoder(cfg)
        self.em = SegmentationEncoder(cfg)
        self.gr = JointGenerator(cfg)
        self.di = IdentityDiscriminator(cfg)

    def forward(self, points_t: torch.Tensor, mask_s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 1: ``G_R(E_L(L_j), E_M(M_i))``.

        Args:
            points_t: target-pose landmarks ``L_j``, ``B x P x 2`` normalised.
            mask_s: source one-hot mask ``M_i``, ``B x K x S x S``.

        Returns:
            Landmarks ``B x P x 2`` (normalised) and label logits ``B x K x S x S``.
        """
        return self.gr(self.el(points_t), self.em(mask_s))

    def retarget(self, points_t: torch.Tensor, labels_s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inference: the source's mask moved to the target pose.

        Args:
            points_t: target-pose landmarks ``B x P x 2`` normalised.
            labels_s: source label map ``B x S x S`` (long).

        Returns:
            Landmarks ``B x P x 2`` (normalised) and the label map ``B x S x S`` (long, argmax of the logits).
            The caller sets ``torch.no_grad`` and ``eval`` as it needs.
        """
        points, logits = self(points_t, one_hot(labels_s, self.num_labels))
        return points, logits.argmax(dim=1)


def build_sketching(cfg: SketchModel) -> SketchingNetwork:
    """A freshly initialised :class:`SketchingNetwork` for ``cfg``."""
    return SketchingNetwork(cfg)


# ----------------------------------------------------------------------------------------------- losses
def landmark_loss(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """``L_ld`` (Eq. 2): mean L1 distance between landmarks ``B x P x 2`` (normalised frame)."""
    return F.l1_loss(pred, true)


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``L_seg`` (Eq. 3): cross-entropy of logits ``B x K x S x S`` against labels ``B x S x S`` (long); the
    paper's norm on masks, taken here as the cross-entropy on labels."""
    return F.cross_entropy(logits, labels.long())


def identity_loss_discriminator(di: nn.Module, real_a: torch.Tensor, real_b: torch.Tensor,
                                fake_a: torch.Tensor, fake_b: torch.Tensor) -> torch.Tensor:
    """``L_idt`` (Eq. 4), ``D_I``'s side: the logistic loss with real pairs labelled 1 and fake pairs 0.

    Args:
        di: ``D_I``.
        real_a, real_b: ``E_L(L_i^s)`` and ``E_L(L_j^s)``, ``B x F`` (one identity).
        fake_a, fake_b: ``E_L(L_i'^v)`` and ``E_L(L_j^s)``, ``B x F`` (two identities).

    The features are detached here: this loss trains ``D_I`` only, never ``E_L``.
    """
    real = di(real_a.detach(), real_b.detach())
    fake = di(fake_a.detach(), fake_b.detach())
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def identity_loss_encoder(di: nn.Module, fake_a: torch.Tensor, fake_b: torch.Tensor) -> torch.Tensor:
    """``L_idt`` (Eq. 4), ``E_L``'s side: the non-saturating logistic loss ``softplus(-D_I(fake pair))`` that
    pushes ``D_I`` to call the fake pair ``(E_L(L_i'^v), E_L(L_j^s))`` (``B x F`` each) "same identity", so that
    ``E_L``'s features do not tell identities apart.

    Gradients reach ``E_L`` through the features. They also land in ``D_I``'s ``.grad``: the caller steps only
    the optimiser of ``E_L``, ``E_M`` and ``G_R`` with this loss, and zeroes ``D_I``'s gradients before its own
    step (or freezes ``D_I`` with ``requires_grad_(False)`` meanwhile).
    """
    return F.softplus(-di(fake_a, fake_b)).mean()


def sketch_loss(net: SketchingNetwork, weights: SketchLosses, points_j: torch.Tensor, points_v: torch.Tensor,
                labels_i: torch.Tensor, labels_j: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 5, the generator's side: ``L_ld + lambda1 L_seg + lambda2 L_idt`` for one batch.

    Args:
        net: the sketching network.
        weights: ``landmark_weight``, ``seg_weight`` (``lambda1``), ``identity_weight`` (``lambda2``).
        points_j: ``L_j^s``, ``B x P x 2``, the target pose and reconstruction target.
        points_v: ``L_i'^v``, ``B x P x 2``, another person's landmarks.
        labels_i: ``M_i^s`` as labels ``B x S x S`` (long), the source mask.
        labels_j: ``M_j^s`` as labels ``B x S x S`` (long), the target mask.

    Returns:
        The total (with graph, to step ``E_L``, ``E_M`` and ``G_R``) and ``{"ld", "seg", "idt", "total"}`` as
        floats. ``D_I`` is trained apart, with :func:`identity_loss_discriminator`.
    """
    z_j = net.el(points_j)
    points, logits = net.gr(z_j, net.em(one_hot(labels_i, net.num_labels)))
    ld = landmark_loss(points, points_j)
    seg = segmentation_loss(logits, labels_j)
    idt = identity_loss_encoder(net.di, net.el(points_v), z_j)
    total = weights.landmark_weight * ld + weights.seg_weight * seg + weights.identity_weight * idt
    logs = {"ld": ld.item(), "seg": seg.item(), "idt": idt.item(), "total": total.item()}
    return total, logs
