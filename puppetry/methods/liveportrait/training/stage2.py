"""Stage II of LivePortrait (paper 001, Sec. 3.3, Fig. 3): stitching S and retargeting R_eyes, R_lip.

F, M, W and G are frozen (evaluation mode). Per step, for B source frames:

- stitching: ``x_d = s_d (x_c,s R_d + delta_d) + t_d`` with another person's motion (cross-id),
  ``x'_d,st = x_d + S(x_s, x_d)``, ``I_p,st = G(W(f_s; x_s, x'_d,st))``;
  ``L_st = |(I_p,st - I_p,recon) (1 - M^st)|_1 + w_reg^st |Delta_st|_1`` (Eq. 5), where
  ``I_p,recon = G(W(f_s; x_s, x_s))`` and ``1 - M^st`` is the shoulder region;
- eyes: a random ``c_d,eyes``, ``x'_d,eyes = x_s + R_eyes(x_s; c_s,eyes, c_d,eyes)``;
  ``L_eyes = |(I_p,eyes - I_p,recon) (1 - M^eyes)|_1 + w_cond |c^p_eyes - c_d,eyes|_1 + w_reg |Delta_eyes|_1``
  (Eq. 6), ``c^p_eyes`` regressed from I_p,eyes by the frozen condition regressor;
- lip: the same with R_lip, ``c_d,lip``, M^lip.

The three MLPs are disjoint, so their three losses are summed and stepped once (one pass of W and G over
the ``3B`` predictions). L1 norms are means over pixels of the region / over entries of the offsets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from puppetry.methods.liveportrait.kinematics import KeypointInfo, apply_stitching, source_keypoints, transform_keypoints
from puppetry.methods.liveportrait.training.conditions import CROP, predict_conditions
from puppetry.methods.liveportrait.training.losses import masked_l1
from puppetry.training.freezing import frozen
from puppetry.methods.liveportrait.training.regions import crop, eye_crops, eyes_mask, lip_crops, lip_mask, shoulder_mask

if TYPE_CHECKING:
    from puppetry.methods.liveportrait.training.recipe import LivePortraitRecipe


def retarget_offsets(nets: dict, x_s: torch.Tensor, x_d: torch.Tensor, c_eyes: torch.Tensor, c_lip: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """S, R_eyes and R_lip outputs: ``B x (3K+2)``, ``B x K x 3``, ``B x K x 3``.

    ``c_eyes`` ``B x 3`` is ``[c_s,eyes (2), c_d,eyes]``; ``c_lip`` ``B x 2`` is ``[c_s,lip, c_d,lip]``.
    """
    flat = x_s.flatten(1)
    delta_st = nets["S"](torch.cat([flat, x_d.flatten(1)], 1)).float()
    delta_eyes = nets["R_eyes"](torch.cat([flat, c_eyes], 1)).float().view_as(x_s)
    delta_lip = nets["R_lip"](torch.cat([flat, c_lip], 1)).float().view_as(x_s)
    return delta_st, delta_eyes, delta_lip


def uniform(rng: np.random.Generator, bounds: tuple[float, float], n: int, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(rng.uniform(bounds[0], bounds[1], (n, 1)), dtype=torch.float32, device=device)


def stage2_step(r: "LivePortraitRecipe", rng: np.random.Generator) -> dict[str, float]:
    """One Stage II step (Eq. 5 and 6), then one update of the condition regressor on real frames."""
    sc, n, d, tr = r.config.stage2, r.nets, r.ddp, r.trainer
    b = r.sampler.batch(rng, r.config.train.batch_size, tr.device, cross=sc.cross_identity, labels=True)
    B = b.size
    with torch.no_grad(), tr.autocast():
        info = KeypointInfo.from_raw(n["M"](torch.cat([b.source, b.driving])))
        f_s = n["F"](b.source)
    s, dr = info[0:B], info[B:]
    x_s = source_keypoints(s)
    x_d = transform_keypoints(s.kp, dr.R, dr.exp, dr.scale, dr.t)                       # cross-id motion
    c_eyes_d = uniform(rng, sc.eyes_range, B, tr.device)
    c_lip_d = uniform(rng, sc.lip_range, B, tr.device)
    with tr.autocast():
        delta_st, delta_eyes, delta_lip = retarget_offsets(
            d, x_s, x_d, torch.cat([b.eyes_source, c_eyes_d], 1), torch.cat([b.lip_source, c_lip_d], 1))
    targets = torch.cat([apply_stitching(x_d, delta_st), x_s + delta_eyes, x_s + delta_lip])
    with torch.no_grad(), tr.autocast():
        recon = n["G"](n["W"](f_s, x_s, x_s)["out"]).float()                         # I_p,recon
    with frozen(n["W"], n["G"]), tr.autocast():
        pred = n["G"](n["W"](f_s.repeat(3, 1, 1, 1, 1), x_s.repeat(3, 1, 1), targets)["out"]).float()
    i_st, i_eyes, i_lip = pred.chunk(3)

    size = recon.shape[-1]
    lm, labels = b.lm_source, b.labels_source
    st_const = masked_l1(i_st, recon, shoulder_mask(lm, labels, size))
    eyes_const = masked_l1(i_eyes, recon, 1 - eyes_mask(lm, labels, size, sc.region_dilation))
    lip_const = masked_l1(i_lip, recon, 1 - lip_mask(lm, labels, size, sc.region_dilation))
    crops = torch.cat([crop(i_eyes, eye_crops(lm), CROP), crop(i_lip, lip_crops(lm), CROP)])
    with frozen(n["C"]), tr.autocast():
        eyes_p, lip_p = predict_conditions(n["C"], crops)
    eyes_cond = (eyes_p - c_eyes_d).abs().mean()
    lip_cond = (lip_p - c_lip_d).abs().mean()
    reg_st, reg_eyes, reg_lip = delta_st.abs().mean(), delta_eyes.abs().mean(), delta_lip.abs().mean()
    loss_st = st_const + sc.stitching_reg * reg_st                                        # Eq. 5
    loss_eyes = eyes_const + sc.eyes_cond * eyes_cond + sc.eyes_reg * reg_eyes             # Eq. 6
    loss_lip = lip_const + sc.lip_cond * lip_cond + sc.lip_reg * reg_lip
    loss = loss_st + loss_eyes + loss_lip
    tr.optimize(loss, "retarget")
    scalars = {"loss": loss, "L_st": loss_st, "st_const": st_const, "st_reg": reg_st, "L_eyes": loss_eyes,
               "eyes_const": eyes_const, "eyes_cond": eyes_cond, "eyes_reg": reg_eyes, "L_lip": loss_lip,
               "lip_const": lip_const, "lip_cond": lip_cond, "lip_reg": reg_lip}
    out = {k: v.item() for k, v in scalars.items()}
    out["loss_C"] = r.train_regressor(b)
    return out


def sample_columns(r: "LivePortraitRecipe", b) -> list[torch.Tensor]:
    """Stage II samples (plain modules, no gradients): source, driving, generated from the cross-id motion,
    the same with stitching, the source with eyes closed (c_d,eyes 0) and with lips open (c_d,lip at the top
    of ``stage2.lip_range``); each ``B x 3 x H x W``."""
    n, sc = r.nets, r.config.stage2
    B = b.size
    info = KeypointInfo.from_raw(n["M"](torch.cat([b.source, b.driving])))
    f_s = n["F"](b.source)
    s, dr = info[0:B], info[B:]
    x_s = source_keypoints(s)
    x_d = transform_keypoints(s.kp, dr.R, dr.exp, dr.scale, dr.t)
    c_eyes = torch.cat([b.eyes_source, torch.zeros_like(b.lip_source)], 1)
    c_lip = torch.cat([b.lip_source, torch.full_like(b.lip_source, sc.lip_range[1])], 1)
    delta_st, delta_eyes, delta_lip = retarget_offsets(n, x_s, x_d, c_eyes, c_lip)
    targets = torch.cat([x_d, apply_stitching(x_d, delta_st), x_s + delta_eyes, x_s + delta_lip])
    images = n["G"](n["W"](f_s.repeat(4, 1, 1, 1, 1), x_s.repeat(4, 1, 1), targets)["out"]).float()
    return [b.source_out, b.target, *images.chunk(4)]
