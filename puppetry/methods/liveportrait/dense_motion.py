"""Dense motion network inside W (face-vid2vid lineage): sparse keypoint motion -> dense 3D flow.

For K keypoint pairs it builds K+1 candidate flows (identity for the background, and for keypoint k
the translation ``p - x_d,k + x_s,k``), samples the compressed source volume with each, and predicts
with an hourglass a softmax mask over the candidates (the flow is their weighted sum) and an
occlusion map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from puppetry.geometry.volume import coordinate_grid_3d, keypoint_gaussians
from puppetry.nn.blocks import Hourglass3d

KP_VARIANCE = 0.01


class DenseMotionNetwork(nn.Module):
    """Args:
        num_kp: K.
        feature_channel: channels of the source volume (32).
        block_expansion, max_features, num_blocks: the hourglass.
        reshape_depth: depth of the volume (16), for the occlusion head.
        compress: channels the volume is compressed to before sampling (4).
    """

    def __init__(self, num_kp: int, feature_channel: int, block_expansion: int = 32, max_features: int = 1024,
                 num_blocks: int = 5, reshape_depth: int = 16, compress: int = 4, estimate_occlusion_map: bool = True):
        super().__init__()
        self.num_kp = num_kp
        self.hourglass = Hourglass3d(block_expansion, (num_kp + 1) * (compress + 1), num_blocks, max_features)
        self.mask = nn.Conv3d(self.hourglass.out_filters, num_kp + 1, 7, padding=3)
        self.compress = nn.Conv3d(feature_channel, compress, 1)
        self.norm = nn.BatchNorm3d(compress, affine=True)
        self.occlusion = (nn.Conv2d(self.hourglass.out_filters * reshape_depth, 1, 7, padding=3)
                          if estimate_occlusion_map else None)

    def sparse_motions(self, feature: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor) -> torch.Tensor:
        """``B x (K+1) x D x H x W x 3`` sampling grids: identity, then ``p - x_d,k + x_s,k`` per keypoint."""
        b, _, d, h, w = feature.shape
        identity = coordinate_grid_3d(d, h, w, like=kp_source)[None, None]
        shift = (kp_source - kp_driving)[:, :, None, None, None, :]
        return torch.cat([identity.expand(b, 1, d, h, w, 3), identity + shift], dim=1)

    def forward(self, feature: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor) -> dict[str, torch.Tensor]:
        """Args:
            feature: source volume f_s, ``B x 32 x D x H x W``.
            kp_driving, kp_source: ``B x K x 3``.
        Returns:
            ``mask`` ``B x (K+1) x D x H x W``, ``deformation`` ``B x D x H x W x 3`` and
            ``occlusion_map`` ``B x 1 x H x W`` (when estimated).
        """
        b, _, d, h, w = feature.shape
        k1 = self.num_kp + 1
        feature = F.relu(self.norm(self.compress(feature)))
        c = feature.shape[1]
        motions = self.sparse_motions(feature, kp_driving, kp_source)
        repeated = feature[:, None].expand(b, k1, c, d, h, w).reshape(b * k1, c, d, h, w)
        deformed = F.grid_sample(repeated, motions.reshape(b * k1, d, h, w, 3), align_corners=False)
        deformed = deformed.view(b, k1, c, d, h, w)
        heat = (keypoint_gaussians(kp_driving, (d, h, w), KP_VARIANCE)
                - keypoint_gaussians(kp_source, (d, h, w), KP_VARIANCE))
        heat = torch.cat([heat.new_zeros(b, 1, d, h, w), heat], dim=1)
        net_in = torch.cat([heat[:, :, None], deformed], dim=2).view(b, -1, d, h, w)
        prediction = self.hourglass(net_in)
        mask = F.softmax(self.mask(prediction), dim=1)
        deformation = (motions * mask[..., None]).sum(dim=1)
        out = {"mask": mask, "deformation": deformation}
        if self.occlusion is not None:
            out["occlusion_map"] = torch.sigmoid(self.occlusion(prediction.reshape(b, -1, h, w)))
        return out
