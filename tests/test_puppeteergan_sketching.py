"""PuppeteerGAN's sketching network (paper 000, Sec. 3.2): shapes of E_L, E_M, G_R, D_I and of the whole
network, the gradient routing of the identity losses (Eq. 4) and a short optimisation of Eq. 5 on the
landmarks and masks of two real driving videos.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from puppetry.cli import main
from puppetry.methods.puppeteergan.config import NUM_LABELS, NUM_POINTS, SketchLosses, SketchModel
from puppetry.methods.puppeteergan.sketching import (
    IdentityDiscriminator,
    JointGenerator,
    LandmarkEncoder,
    SegmentationEncoder,
    SketchingNetwork,
    build_sketching,
    identity_loss_discriminator,
    identity_loss_encoder,
    landmark_loss,
    one_hot,
    segmentation_loss,
    sketch_loss,
)

pytestmark = pytest.mark.usefixtures("one_thread")     # conftest.py: tiny networks, one thread

K, P = NUM_LABELS, NUM_POINTS


def small() -> SketchModel:
    return SketchModel(mask_size=32, seg_blocks=3, landmark_features=32, landmark_hidden=64, seg_width=8,
                       max_width=32, disc_hidden=32)


def grad_norm(module: torch.nn.Module) -> float:
    return sum(float(p.grad.abs().sum()) for p in module.parameters() if p.grad is not None)


@pytest.fixture(scope="module")
def real(tmp_path_factory, data) -> dict[str, torch.Tensor]:
    """Normalised landmarks ``N x P x 2`` and 32-pixel label maps ``N x 32 x 32`` of two real driving videos
    (24 frames each), with the clip index of every frame."""
    from puppetry.data.dataset import open_dataset
    from puppetry.methods.puppeteergan.landmarks import normalize

    out = tmp_path_factory.mktemp("pg_sketch") / "dataset"
    videos = [str(data / "driving" / f"{v}.mp4") for v in ("d0", "d10")]
    assert main(["-q", "prepare", *videos, "-o", str(out), "--max-frames", "24", "--size", "64"]) == 0
    ds = open_dataset(Path(out))
    assert len(ds.clips) == 2
    points, labels, clip = [], [], []
    for c, info in enumerate(ds.clips):
        points.append(normalize(ds.landmarks(info.id)["landmarks478"], ds.size))
        labels += [cv2.resize(ds.mask(info.id, t), (32, 32), interpolation=cv2.INTER_NEAREST)
                   for t in range(info.num_frames)]
        clip += [c] * info.num_frames
    return {"points": torch.from_numpy(np.concatenate(points)), "labels": torch.from_numpy(np.stack(labels)).long(),
            "clip": torch.tensor(clip)}


# ---------------------------------------------------------------------------------------------- shapes
def test_one_hot_round_trip():
    labels = torch.randint(0, K, (3, 16, 16))
    mask = one_hot(labels)
    assert mask.shape == (3, K, 16, 16) and mask.dtype == torch.float32
    assert torch.equal(mask.sum(1), torch.ones(3, 16, 16))
    assert torch.equal(mask.argmax(1), labels)


def test_network_shapes():
    cfg = small()
    b, s = 2, cfg.mask_size // 2 ** cfg.seg_blocks
    points = torch.rand(b, P, 2) * 2 - 1
    mask = one_hot(torch.randint(0, K, (b, cfg.mask_size, cfg.mask_size)))

    z = LandmarkEncoder(cfg)(points)
    assert z.shape == (b, cfg.landmark_features)
    em = SegmentationEncoder(cfg)
    e = em(mask)
    assert e.shape == (b, em.out_channels, s, s) and em.out_channels == 32
    out_points, logits = JointGenerator(cfg)(z, e)
    assert out_points.shape == (b, P, 2) and logits.shape == (b, K, cfg.mask_size, cfg.mask_size)
    assert IdentityDiscriminator(cfg)(z, z.flip(0)).shape == (b,)

    net = build_sketching(cfg)
    assert isinstance(net, SketchingNetwork)
    assert {"el", "em", "gr", "di"} <= {name for name, _ in net.named_children()}
    out_points, logits = net(points, mask)
    assert out_points.shape == (b, P, 2) and logits.shape == (b, K, cfg.mask_size, cfg.mask_size)
    with torch.no_grad():
        out_points, labels = net.eval().retarget(points, mask.argmax(1))
    assert out_points.shape == (b, P, 2)
    assert labels.shape == (b, cfg.mask_size, cfg.mask_size) and labels.dtype == torch.long
    assert int(labels.min()) >= 0 and int(labels.max()) < K


def test_default_config_runs_at_64():
    cfg = SketchModel()
    net = build_sketching(cfg)
    points = torch.rand(2, P, 2) * 2 - 1
    out_points, logits = net(points, one_hot(torch.randint(0, K, (2, 64, 64))))
    assert out_points.shape == (2, P, 2) and logits.shape == (2, K, 64, 64)
    assert torch.isfinite(logits).all() and torch.isfinite(out_points).all()


# ---------------------------------------------------------------------------------------------- losses
def test_landmark_and_segmentation_losses():
    a = torch.rand(2, P, 2)
    assert float(landmark_loss(a, a.clone())) == 0.0
    assert float(landmark_loss(a, a + 0.1)) == pytest.approx(0.1, rel=1e-4)
    labels = torch.randint(0, K, (2, 8, 8))
    assert float(segmentation_loss(one_hot(labels) * 50, labels)) < 1e-6
    assert float(segmentation_loss(torch.zeros(2, K, 8, 8), labels)) == pytest.approx(np.log(K), rel=1e-5)


def test_identity_losses_route_gradients():
    torch.manual_seed(0)
    net = build_sketching(small())
    points = [torch.rand(4, P, 2) * 2 - 1 for _ in range(3)]      # L_i^s, L_j^s, L_i'^v
    f_i, f_j, f_v = (net.el(p) for p in points)

    identity_loss_discriminator(net.di, f_i, f_j, f_v, f_j).backward()
    assert grad_norm(net.di) > 0
    assert grad_norm(net.el) == 0

    net.zero_grad(set_to_none=True)
    f_j, f_v = net.el(points[1]), net.el(points[2])
    identity_loss_encoder(net.di, f_v, f_j).backward()
    assert grad_norm(net.el) > 0


# ---------------------------------------------------------------------------------------------- training
def test_sketch_loss_falls_on_real_data(real):
    torch.manual_seed(0)
    cfg = small()
    net = build_sketching(cfg)
    weights = SketchLosses()
    gen = torch.optim.Adam([*net.el.parameters(), *net.em.parameters(), *net.gr.parameters()], lr=1e-3,
                           betas=(0.5, 0.999))
    disc = torch.optim.Adam(net.di.parameters(), lr=1e-3, betas=(0.5, 0.999))
    clip = real["clip"]                                              # frames sorted by clip
    counts = torch.bincount(clip)
    starts = torch.cumsum(counts, 0) - counts
    rng = torch.Generator().manual_seed(0)

    def frame_of(c: torch.Tensor) -> torch.Tensor:
        """A random frame of each clip in ``c``."""
        return starts[c] + (torch.rand(len(c), generator=rng) * counts[c]).long()

    def batch(size: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Indices of ``L_i^s``, ``L_j^s`` (two frames of one clip) and ``L_i'^v`` (a frame of another clip)."""
        c = torch.randint(0, len(counts), (size,), generator=rng)
        other = (c + torch.randint(1, len(counts), (size,), generator=rng)) % len(counts)
        return frame_of(c), frame_of(c), frame_of(other)

    fixed = batch(16)

    def evaluate() -> dict[str, float]:
        i, j, v = fixed
        with torch.no_grad():
            return sketch_loss(net, weights, real["points"][j], real["points"][v], real["labels"][i],
                               real["labels"][j])[1]

    before = evaluate()
    for _ in range(60):
        i, j, v = batch()
        pts, lab = real["points"], real["labels"]
        total, logs = sketch_loss(net, weights, pts[j], pts[v], lab[i], lab[j])
        gen.zero_grad(set_to_none=True)
        total.backward()
        gen.step()
        with torch.no_grad():
            f_i, f_j, f_v = net.el(pts[i]), net.el(pts[j]), net.el(pts[v])
        disc.zero_grad(set_to_none=True)
        identity_loss_discriminator(net.di, f_i, f_j, f_v, f_j).backward()
        disc.step()
        assert all(np.isfinite(x) for x in logs.values())
    after = evaluate()
    assert after["total"] < 0.5 * before["total"], (before, after)
    assert after["ld"] < 0.5 * before["ld"] and after["seg"] < 0.5 * before["seg"], (before, after)
