"""Stage I of LivePortrait (paper 001, Sec. 3.2, Fig. 2): the base model F, M, W, G.

Per step, for B (source, driving) frame pairs of one clip each, and a random warp ``T`` of the driving
frames (for L_E)::

    M([I_s, I_d, T^-1(I_d)])   -> x_c,s, (R, delta, t, s) of each image                (one call)
    x_s = s_s (x_c,s R_s + delta_s) + t_s,   x_d = s_d (x_c,s R_d + delta_d) + t_d      (Eq. 2)
    I_p = G(W(F(I_s); x_s, x_d))                                                       (256 -> 512)
    L_base = L_E + L_L + L_H + L_Delta + L_P,cascade + L_G,cascade + L_faceid + L_guide   (Eq. 4)

then one hinge update of D_global, D_face and D_lip on the same (detached) prediction, and one update
of the condition regressor C on the real frames (used by Stage II). The head-pose reference is the
dataset's stored pose (MediaPipe landmarks, ``landmarks.npz`` ``pose``), in place of the pretrained
head-pose estimator face vid2vid uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from puppetry.methods.liveportrait.kinematics import KeypointInfo, source_keypoints, transform_keypoints
from puppetry.methods.liveportrait.training import losses as L
from puppetry.methods.liveportrait.training.arcface import INPUT_SIZE as ARCFACE_SIZE
from puppetry.methods.liveportrait.training.arcface import embed
from puppetry.methods.liveportrait.training.discriminator import split_output
from puppetry.training.freezing import frozen
from puppetry.methods.liveportrait.training.regions import Crops, arcface_crops, crop, face_crops, lip_crops
from puppetry.methods.liveportrait.training.warp import RandomWarp

if TYPE_CHECKING:
    from puppetry.methods.liveportrait.training.recipe import LivePortraitRecipe

DISCRIMINATORS = ("D_global", "D_face", "D_lip")


def region_sizes(output_size: int, face_crop: float, lip_crop: float) -> tuple[int, int, int]:
    """Sides of the global, face and lip images of the cascaded losses."""
    return output_size, max(8, round(output_size * face_crop)), max(8, round(output_size * lip_crop))


def region_images(images: torch.Tensor, lm: torch.Tensor, sizes: tuple[int, int, int]) -> list[torch.Tensor]:
    """Global, face and lip images of ``k B`` images (``B x 478 x 2`` landmarks repeated ``k`` times)."""
    k = images.shape[0] // lm.shape[0]
    face, lip = face_crops(lm), lip_crops(lm)
    return [images, crop(images, Crops.cat([face] * k), sizes[1]), crop(images, Crops.cat([lip] * k), sizes[2])]


def pose_reference(pose_ypr: torch.Tensor, signs: tuple[float, float, float]) -> torch.Tensor:
    """The dataset's ``B x 3`` (yaw, pitch, roll) as M's (pitch, yaw, roll), times ``signs``."""
    return pose_ypr[:, [1, 0, 2]] * torch.as_tensor(signs, dtype=pose_ypr.dtype, device=pose_ypr.device)


def generate(r: "LivePortraitRecipe", source: torch.Tensor, driving: torch.Tensor, nets: dict
             ) -> tuple[torch.Tensor, KeypointInfo, KeypointInfo, torch.Tensor, torch.Tensor]:
    """``I_p`` of sources driven by drivings (``B x 3 x N x N`` each) with ``nets`` (wrapped or plain).

    Returns the image ``B x 3 x 2N x 2N``, the source's and driving's M outputs, x_s and x_d.
    """
    b = source.shape[0]
    with r.trainer.autocast():
        info = KeypointInfo.from_raw(nets["M"](torch.cat([source, driving])))
        f_s = nets["F"](source)
    s, d = info[0:b], info[b:2 * b]
    x_s = source_keypoints(s)
    x_d = transform_keypoints(s.kp, d.R, d.exp, d.scale, d.t)
    with r.trainer.autocast():
        image = nets["G"](nets["W"](f_s, x_s, x_d)["out"]).float()
    return image, s, d, x_s, x_d


def stage1_step(r: "LivePortraitRecipe", rng: np.random.Generator) -> dict[str, float]:
    """One Stage I step: the generator update (Eq. 4), the discriminators' and the condition regressor's."""
    lc, n, d, tr = r.config.losses, r.nets, r.ddp, r.trainer
    b = r.sampler.batch(rng, r.config.train.batch_size, tr.device)
    B = b.size
    warp = RandomWarp.sample(rng, B, lc.tps_sigma_affine, lc.tps_sigma_tps, lc.tps_points, tr.device)
    with tr.autocast():
        info = KeypointInfo.from_raw(d["M"](torch.cat([b.source, b.driving, warp.warp_images(b.driving)])))
        f_s = d["F"](b.source)
    s, dr, w = info[0:B], info[B:2 * B], info[2 * B:]
    x_s = source_keypoints(s)
    x_d = transform_keypoints(s.kp, dr.R, dr.exp, dr.scale, dr.t)                            # Eq. 2
    x_w = transform_keypoints(s.kp, w.R, w.exp, w.scale, w.t)
    with tr.autocast():
        fake = d["G"](d["W"](f_s, x_s, x_d)["out"]).float()

    terms: dict[str, torch.Tensor] = {}
    sizes = r.region_sizes
    real_r = region_images(b.target, b.lm_driving, sizes)
    fake_r = region_images(fake, b.lm_driving, sizes)
    if r.perceptual is not None and lc.perceptual:                                          # L_P,cascade
        with tr.autocast():
            terms["perceptual"] = lc.perceptual * sum(
                wt * r.perceptual(f, x) for wt, f, x in zip(lc.regions, fake_r, real_r) if wt)
    if lc.gan or lc.feature_matching:                                                       # L_G,cascade
        gan, fm = fake.new_zeros(()), fake.new_zeros(())
        with frozen(*(n[k] for k in DISCRIMINATORS)), tr.autocast():
            for wt, key, f, x in zip(lc.regions, DISCRIMINATORS, fake_r, real_r):
                if wt:
                    real_o, fake_o = split_output(n[key](torch.cat([x, f])), B)
                    gan = gan + wt * L.hinge_generator(fake_o).float()
                    fm = fm + wt * L.feature_matching(real_o, fake_o).float()
        if lc.gan:
            terms["gan"] = lc.gan * gan
        if lc.feature_matching:
            terms["feature_matching"] = lc.feature_matching * fm
    if lc.equivariance:
        terms["equivariance"] = lc.equivariance * L.equivariance_loss(x_d, x_w, warp)
    if lc.keypoint_prior:
        terms["keypoint_prior"] = lc.keypoint_prior * L.keypoint_prior(x_d, lc.keypoint_distance, lc.keypoint_depth)
    if lc.head_pose:
        ref = pose_reference(torch.cat([b.pose_source, b.pose_driving]), lc.pose_signs)
        terms["head_pose"] = lc.head_pose * L.head_pose_loss(torch.cat([s.angles, dr.angles]), ref)
    if lc.deformation_prior:
        terms["deformation_prior"] = lc.deformation_prior * L.deformation_prior(dr.exp)
    if lc.guide:                                                                            # Eq. 3
        terms["guide"] = lc.guide * L.guide_loss(x_s, x_d, b.lm_source, b.lm_driving, lc.guide_pairs,
                                                 lc.wing_w, lc.wing_epsilon)
    if r.arcface is not None and lc.face_id:
        boxes = Crops.cat([arcface_crops(b.lm_driving), arcface_crops(b.lm_source)])
        faces = crop(torch.cat([fake, b.source_out]), boxes, ARCFACE_SIZE)
        with tr.autocast():
            emb = embed(r.arcface, faces).float()
        terms["face_id"] = lc.face_id * L.identity_loss(emb[:B], emb[B:])
    rec = (fake - b.target).abs().mean()
    if lc.pixel_l1:
        terms["pixel_l1"] = lc.pixel_l1 * rec
    loss = sum(terms.values())
    tr.optimize(loss, "gen")
    scalars = {"loss_G": loss.item(), **{k: v.item() for k, v in terms.items()}, "rec_l1": rec.item()}

    if lc.gan or lc.feature_matching:
        loss_d = fake.new_zeros(())
        with tr.autocast():
            for wt, key, f, x in zip(lc.regions, DISCRIMINATORS, fake_r, real_r):
                if wt:
                    real_o, fake_o = split_output(d[key](torch.cat([x, f.detach()])), B)
                    loss_d = loss_d + wt * L.hinge_discriminator(real_o, fake_o).float()
        tr.optimize(loss_d, "D")
        scalars["loss_D"] = loss_d.item()
    scalars["loss_C"] = r.train_regressor(b)
    return scalars
