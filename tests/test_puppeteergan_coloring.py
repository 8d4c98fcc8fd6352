"""PuppeteerGAN's coloring network (paper 000, Sec. 3.3): transform fits on real landmarks, warping, WASIC
(Eq. 6), geometry dropout on a real label map, the coloring network and its multi-scale PatchGAN (Eq. 7)
at small sizes.

Landmarks and labels come from the real portrait s1 (Face Mesh, MediaPipe's person mask, our parser).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from puppetry.face import to_ibug68
from puppetry.face.parsing import MASK_LABELS, PersonSegmenter, face_parsing
from puppetry.methods.puppeteergan.coloring import ColoringNetwork, build_coloring
from puppetry.methods.puppeteergan.config import NUM_LABELS, ColorModel, Dropout
from puppetry.methods.puppeteergan.discriminator import (MultiScaleDiscriminator, feature_matching_loss,
                                                         gan_loss)
from puppetry.methods.puppeteergan.dropout import geometry_dropout
from puppetry.methods.puppeteergan.wasic import (LABEL_GROUP, NUM_GROUPS, TRANSFORM_GROUPS, WASIC, fit_affine,
                                                 fit_similarity, part_thetas, warp)

pytestmark = pytest.mark.usefixtures("one_thread")     # conftest.py: tiny networks, one thread

TINY = ColorModel(size=64, width=8, max_width=32, levels=3, wasic_levels=2, disc_width=8)
SKIN, HAIR = MASK_LABELS.index("skin"), MASK_LABELS.index("hair")


@pytest.fixture(scope="module")
def portrait(s1, detect) -> dict:
    """s1 (square, 1145 px): its iBUG-68 landmarks normalised to [-1, 1] (``68 x 2``), its label map (full
    size, ``H x W`` uint8) and the image as ``1 x 3 x 128 x 128`` in [0, 1]."""
    landmarks = detect(s1)[0]
    side = s1.shape[0]
    points = to_ibug68(landmarks)[:, :2] * (2.0 / side) - 1.0
    with PersonSegmenter() as seg:
        labels = face_parsing(s1, landmarks, seg.segment(s1))
    image = cv2.resize(s1, (128, 128), interpolation=cv2.INTER_AREA)
    return {"points": torch.tensor(points, dtype=torch.float32), "labels": labels,
            "image": torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255}


def _one_hot(labels: np.ndarray, size: int) -> torch.Tensor:
    """``H x W`` labels -> ``1 x K x size x size`` one-hot (nearest resize)."""
    small = cv2.resize(labels, (size, size), interpolation=cv2.INTER_NEAREST)
    return F.one_hot(torch.from_numpy(small).long(), NUM_LABELS).permute(2, 0, 1)[None].float()


def _similarity(angle_deg: float, scale: float, shift: tuple[float, float]) -> torch.Tensor:
    a = math.radians(angle_deg)
    return torch.tensor([[scale * math.cos(a), -scale * math.sin(a), shift[0]],
                         [scale * math.sin(a), scale * math.cos(a), shift[1]]])


def _apply(theta: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """``... x 2 x 3`` map applied to ``... x N x 2`` points."""
    return points @ theta[..., :2].transpose(-1, -2) + theta[..., 2].unsqueeze(-2)


def _centroid(blob: torch.Tensor) -> torch.Tensor:
    """(x, y) centroid of an ``H x W`` non-negative map, in normalised coordinates (pixel centres)."""
    h, w = blob.shape
    ys = (2 * torch.arange(h) + 1) / h - 1
    xs = (2 * torch.arange(w) + 1) / w - 1
    total = blob.sum()
    return torch.stack([(blob.sum(0) * xs).sum() / total, (blob.sum(1) * ys).sum() / total])


# ------------------------------------------------------------------------------------------------ fits
def test_fits_recover_a_known_transform_of_real_landmarks(portrait):
    target = portrait["points"]
    truth = torch.stack([_similarity(12.0, 1.15, (0.05, -0.08)), _similarity(-25.0, 0.8, (-0.1, 0.2))])
    dst = target.expand(2, 68, 2)
    src = _apply(truth, dst)                       # the maps take target points to source points
    torch.testing.assert_close(fit_similarity(src, dst), truth, atol=1e-5, rtol=0)
    torch.testing.assert_close(fit_affine(src, dst), truth, atol=1e-5, rtol=0)   # any ridge: a similarity
    torch.testing.assert_close(fit_affine(src, dst, ridge=0.5), truth, atol=1e-5, rtol=0)

    shear = torch.tensor([[[1.1, 0.3, 0.02], [-0.1, 0.9, -0.05]]])
    src = _apply(shear, target[None])
    torch.testing.assert_close(fit_affine(src, target[None], ridge=0.0), shear, atol=1e-5, rtol=0)
    assert (fit_affine(src, target[None]) - shear).abs().max() < 0.05               # the ridge biases a little


def test_affine_fit_stays_well_posed_on_few_or_collinear_points(portrait):
    truth = _similarity(20.0, 1.3, (0.1, 0.0))[None]
    corners = portrait["points"][None, [36, 45]]                       # two eye corners
    src = _apply(truth, corners)
    torch.testing.assert_close(fit_affine(src, corners), truth, atol=1e-5, rtol=0)
    line = torch.stack([torch.linspace(-0.5, 0.5, 6), torch.full((6,), 0.1)], -1)[None]  # collinear
    theta = fit_affine(_apply(truth, line), line)
    assert torch.isfinite(theta).all()
    torch.testing.assert_close(theta, truth, atol=1e-5, rtol=0)
    same = torch.zeros(1, 3, 2)                                       # degenerate: one repeated point
    torch.testing.assert_close(fit_affine(same + 0.2, same), torch.tensor([[[1.0, 0, 0.2], [0, 1.0, 0.2]]]))


def test_part_thetas_identity_and_groups(portrait):
    points = portrait["points"].expand(3, 68, 2)
    thetas = part_thetas(points, points)
    assert thetas.shape == (3, NUM_GROUPS, 2, 3)
    torch.testing.assert_close(thetas, torch.eye(2, 3).expand_as(thetas), atol=1e-6, rtol=0)
    # Every label in exactly one group; every group's points are iBUG-68 indices.
    assert len(LABEL_GROUP) == NUM_LABELS and sorted(set(LABEL_GROUP)) == list(range(NUM_GROUPS))
    assert sorted(name for g in TRANSFORM_GROUPS for name in g.labels) == sorted(MASK_LABELS)
    assert all(0 <= i < 68 for g in TRANSFORM_GROUPS for i in g.points)
    # A rigid move of the whole face gives every group the same map.
    truth = _similarity(8.0, 0.9, (0.1, -0.05))
    moved = part_thetas(_apply(truth, points), points)
    torch.testing.assert_close(moved, truth.expand_as(moved), atol=1e-5, rtol=0)


# ------------------------------------------------------------------------------------------------ warp
def test_warp_shifts_the_real_portrait_by_the_fitted_offset(portrait):
    image = F.interpolate(portrait["image"], size=(64, 64), mode="area")
    src = portrait["points"][None]
    dx, dy = 8, -4                                            # pixels at 64 px: the target is right and up
    dst = src + torch.tensor([2 * dx / 64, 2 * dy / 64])
    out = warp(image, fit_similarity(src, dst))
    torch.testing.assert_close(out[:, :, :-4, dx:], image[:, :, 4:, :-dx], atol=1e-4, rtol=0)
    assert out[:, :, :, :dx].abs().max() < 1e-4 and out[:, :, -4:].abs().max() < 1e-4    # zeros outside


def test_warp_moves_a_blob_where_the_transform_says(portrait):
    target = portrait["points"][None]
    source = _apply(_similarity(15.0, 1.1, (-0.06, 0.04))[None], target)
    theta = fit_similarity(source, target)
    h = 96
    ys, xs = torch.meshgrid((2 * torch.arange(h) + 1) / h - 1, (2 * torch.arange(h) + 1) / h - 1, indexing="ij")
    for index in (30, 8, 36):                                 # nose tip, chin, eye corner
        centre = source[0, index]
        blob = torch.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * 0.04 ** 2))
        moved = warp(blob[None, None], theta)[0, 0]
        assert (_centroid(moved) - target[0, index]).abs().max() < 0.01      # under 0.5 px
        assert (_centroid(blob) - centre).abs().max() < 0.01


# ------------------------------------------------------------------------------------------------ WASIC
def test_wasic_adds_source_features_back_where_masks_agree(portrait):
    torch.manual_seed(0)
    wasic = WASIC(0.3)
    mu = float(wasic.mu.detach())
    assert abs(mu - 0.3) < 1e-6
    mask_s = _one_hot(portrait["labels"], 32)
    shifted = np.roll(portrait["labels"], 60, axis=1)        # the target: the same face moved right
    mask_t = _one_hot(shifted, 32)
    e, d = torch.randn(1, 4, 32, 32), torch.randn(1, 4, 32, 32)
    thetas = part_thetas(portrait["points"][None], portrait["points"][None])
    agree = (mask_s.argmax(1, keepdim=True) == mask_t.argmax(1, keepdim=True)).float()
    assert 0.1 < float(agree.mean()) < 0.99
    out = wasic(e, d, mask_s, mask_t, thetas)
    torch.testing.assert_close(out, agree * (mu * e + (1 - mu) * d) + (1 - agree) * d, atol=1e-5, rtol=0)
    # Same masks: M_f = 1 everywhere.
    torch.testing.assert_close(wasic(e, d, mask_s, mask_s, thetas), mu * e + (1 - mu) * d, atol=1e-5, rtol=0)
    # Masks at the image's side are resized to the feature's.
    big_s, big_t = _one_hot(portrait["labels"], 128), _one_hot(portrait["labels"], 128)
    assert wasic(e, d, big_s, big_t, thetas).shape == e.shape


def test_wasic_eq6_limits_with_group_maps():
    torch.manual_seed(1)
    wasic = WASIC(0.6)
    mu = float(wasic.mu.detach())
    e, d = torch.randn(2, 5, 32, 32), torch.randn(2, 5, 32, 32)
    thetas = torch.eye(2, 3).repeat(2, NUM_GROUPS, 1, 1)
    face, head = LABEL_GROUP[SKIN], LABEL_GROUP[HAIR]
    assert face != head
    thetas[:, face, 1, 2] = 8 / 32                            # skin: pulled from 4 px lower
    thetas[:, head, 1, 2] = -8 / 32                           # hair: from 4 px higher
    # No overlap (eyes in the source, nose in the target): d unchanged.
    eyes = torch.zeros(2, NUM_LABELS, 32, 32)
    eyes[:, MASK_LABELS.index("eyes")] = 1
    nose = torch.zeros_like(eyes)
    nose[:, MASK_LABELS.index("nose")] = 1
    torch.testing.assert_close(wasic(e, d, eyes, nose, thetas), d)
    # Left half skin, right half hair, in both: each half takes its own group's warped feature.
    mask = torch.zeros(2, NUM_LABELS, 32, 32)
    mask[:, SKIN, :, :16] = 1
    mask[:, HAIR, :, 16:] = 1
    out = wasic(e, d, mask, mask, thetas)
    left, right = mask[:, SKIN:SKIN + 1], mask[:, HAIR:HAIR + 1]
    m_face = warp(left, thetas[:, face]) * left               # M_f of skin, 0 on the bottom 4 rows
    m_head = warp(right, thetas[:, head]) * right             # M_f of hair, 0 on the top 4 rows
    skip = m_face * warp(e, thetas[:, face]) + m_head * warp(e, thetas[:, head])
    m_f = m_face + m_head
    torch.testing.assert_close(out, mu * skip + (1 - mu) * d + mu * (1 - m_f) * d, atol=1e-5, rtol=0)
    # Where M_f = 1: mu e_w + (1 - mu) d, with e_w the group's shifted feature; where it is 0: d.
    torch.testing.assert_close(out[:, :, 4:28, :16], mu * e[:, :, 8:, :16] + (1 - mu) * d[:, :, 4:28, :16],
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(out[:, :, 4:28, 16:], mu * e[:, :, :24, 16:] + (1 - mu) * d[:, :, 4:28, 16:],
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(out[:, :, 28:, :16], d[:, :, 28:, :16])
    torch.testing.assert_close(out[:, :, :4, 16:], d[:, :, :4, 16:])


# ------------------------------------------------------------------------------------------------ dropout
def test_geometry_dropout_zeroes_exactly_the_chosen_parts_of_a_real_label_map(portrait):
    settings = Dropout(parts=("brows", "eyes", "nose", "lips", "inner_mouth", "hair"), max_parts=2, grow=0.03)
    labels = cv2.resize(portrait["labels"], (128, 128), interpolation=cv2.INTER_NEAREST)
    no_nose = np.where(labels == MASK_LABELS.index("nose"), SKIN, labels).astype(np.uint8)
    mask = torch.cat([_one_hot(labels, 128)] * 5 + [_one_hot(no_nose, 128)])
    image = portrait["image"].expand(6, 3, 128, 128)
    present = mask.flatten(2).amax(2) > 0
    part_ids = [MASK_LABELS.index(p) for p in settings.parts]
    radius = round(settings.grow * 128)
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    counts, seen = set(), set()
    for seed in range(4):
        out_image, out_mask, dropped = geometry_dropout(image, mask, settings, torch.Generator().manual_seed(seed))
        assert dropped.shape == (6, NUM_LABELS) and dropped.dtype == torch.bool
        assert not (dropped & ~present).any()                              # never an absent part
        assert not dropped[:, [k for k in range(NUM_LABELS) if k not in part_ids]].any()
        for b in range(6):
            chosen = dropped[b].nonzero().flatten().tolist()
            counts.add(len(chosen))
            seen.update(chosen)
            assert 1 <= len(chosen) <= settings.max_parts
            union = np.isin(labels if b < 5 else no_nose, chosen).astype(np.uint8)
            region = torch.from_numpy(cv2.dilate(union, kernel) > 0)
            keep = (~region).float()
            assert torch.equal(out_image[b], image[b] * keep)              # zeroed there, untouched elsewhere
            assert torch.equal(out_mask[b], mask[b] * keep)                # unlabelled there
            assert out_mask[b, chosen].sum() == 0
            assert float(region.float().mean()) < 0.6                      # far pixels kept
    assert counts == {1, 2} and len(seen) >= 4
    # Only absent parts allowed: nothing dropped.
    none = Dropout(parts=("nose",), max_parts=1, grow=0.03)
    out_image, out_mask, dropped = geometry_dropout(image[5:], mask[5:], none)
    assert not dropped.any() and torch.equal(out_image, image[5:]) and torch.equal(out_mask, mask[5:])


# ------------------------------------------------------------------------------------------------ networks
def test_coloring_network_shapes_at_two_sizes_and_identity_points(portrait):
    torch.manual_seed(0)
    net = build_coloring(TINY)
    assert isinstance(net, ColoringNetwork) and len(net.wasic) == TINY.wasic_levels
    points = portrait["points"].expand(2, 68, 2)
    moved = _apply(_similarity(10.0, 1.05, (0.05, 0.0)), points)
    for side in (TINY.size, 2 * TINY.size):                  # the same weights at 64 and 128 px
        image = F.interpolate(portrait["image"], size=(side, side), mode="area").expand(2, 3, side, side)
        mask = _one_hot(portrait["labels"], side).expand(2, NUM_LABELS, side, side)
        with torch.no_grad():
            still = net(image, mask, mask, None, None)
            same = net(image, mask, mask, points, points)
            other = net(image, mask, mask, moved, points)
        assert still.shape == (2, 3, side, side)
        assert still.min() >= 0 and still.max() <= 1
        torch.testing.assert_close(same, still, atol=1e-5, rtol=0)         # identical points: identity maps
        assert (other - still).abs().max() > 1e-4
    with pytest.raises(ValueError):
        net(image[:, :, :60, :60], mask[:, :, :60, :60], mask[:, :, :60, :60])


def test_gradients_reach_mu(portrait):
    torch.manual_seed(0)
    net = build_coloring(TINY)
    image = F.interpolate(portrait["image"], size=(64, 64), mode="area")
    mask = _one_hot(portrait["labels"], 64)
    points = portrait["points"][None]
    out = net(image, mask, mask, _apply(_similarity(5.0, 1.0, (0.02, 0.0)), points), points)
    F.l1_loss(out, image).backward()
    for wasic in net.wasic:
        assert wasic.mu_logit.grad is not None and wasic.mu_logit.grad.abs() > 0
        assert 0 < float(wasic.mu.detach()) < 1


def test_discriminator_shapes_and_losses(portrait):
    torch.manual_seed(0)
    disc = MultiScaleDiscriminator(TINY)
    for side in (64, 128):
        image = F.interpolate(portrait["image"], size=(side, side), mode="area").expand(2, 3, side, side)
        mask = _one_hot(portrait["labels"], side).expand(2, NUM_LABELS, side, side)
        outputs = disc(image, mask)
        assert len(outputs) == TINY.disc_scales
        for n, features in enumerate(outputs):
            assert len(features) == TINY.disc_layers + 2
            assert features[0].shape == (2, TINY.disc_width, side // 2 ** (n + 1), side // 2 ** (n + 1))
            logits = features[-1]
            assert logits.shape[:2] == (2, 1) and logits.shape[-1] >= 2
    fake = (image + 0.1 * torch.randn_like(image)).clamp(0, 1).requires_grad_()
    real_out, fake_out = disc(image, mask), disc(fake, mask)
    assert float(feature_matching_loss(real_out, disc(image, mask)).detach()) == 0
    assert float(feature_matching_loss(fake_out, real_out).detach()) > 0
    ones = [[f.detach() for f in feats[:-1]] + [torch.ones_like(feats[-1])] for feats in real_out]
    assert float(gan_loss(ones, True)) == 0 and float(gan_loss(ones, False)) == 1
    loss = gan_loss(fake_out, True) + feature_matching_loss(fake_out, real_out)
    loss.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
