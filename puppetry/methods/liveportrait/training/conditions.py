"""Eyes- and lip-open conditions: from landmarks (ground truth) and from pixels (a small regressor).

The conditions are those of the inference engine (:func:`puppetry.methods.liveportrait.engine.face_conditions`):
per eye, the lid gap over the eye width; for the lips, the inner-lip gap over the mouth width.

Eq. 6 of paper 001 compares the conditions ``c^p`` *of the predicted images* I_p,eyes and I_p,lip with the
wanted ones, so it needs conditions that are differentiable in the pixels; the paper does not say how it
gets them. Here a small CNN ``C`` regresses them from eye and lip crops. It trains on real frames
(labels from the dataset's landmarks) in both stages and is used frozen on the predicted images.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from puppetry.face.pose import eye_open_ratio, lip_open_ratio
from puppetry.methods.liveportrait.training.regions import Crops, crop, eye_crops, lip_crops

CROP = 32        # side of the eye and lip crops the regressor sees


class ConditionRegressor(nn.Module):
    """``N x 3 x 32 x 32`` crops in [0, 1] -> ``N x 2``: (eye-open ratio, lip-open ratio) of each crop.

    Three stride-2 convolutions with leaky ReLU, global average pooling, a linear head.
    """

    def __init__(self, channels: int = 32):
        super().__init__()
        c = channels
        self.body = nn.Sequential(nn.Conv2d(3, c, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                                  nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                                  nn.Conv2d(2 * c, 4 * c, 3, stride=2, padding=1), nn.LeakyReLU(0.2))
        self.head = nn.Linear(4 * c, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean((2, 3)))


def condition_crops(images: torch.Tensor, lm: torch.Tensor) -> torch.Tensor:
    """Right eyes, left eyes and lips of ``B`` images (``B x 3 x H x W``, landmarks ``B x 478 x 2``
    normalised): ``3B x 3 x 32 x 32``."""
    boxes = Crops.cat([eye_crops(lm), lip_crops(lm)])
    return crop(images, boxes, CROP)


def predict_conditions(net: nn.Module, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``3B`` crops of :func:`condition_crops` -> eyes ``B x 2`` (right, left) and lip ``B x 1``."""
    b = crops.shape[0] // 3
    out = net(crops).float()
    eyes = out[:2 * b, 0].view(2, b).t()
    return eyes, out[2 * b:, 1:2]


def regressor_loss(eyes: torch.Tensor, lip: torch.Tensor, eyes_ref: torch.Tensor,
                   lip_ref: torch.Tensor) -> torch.Tensor:
    """L1 between regressed and landmark conditions (``B x 2`` and ``B x 1`` each)."""
    return F.l1_loss(eyes, eyes_ref) + F.l1_loss(lip, lip_ref)


def landmark_conditions(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Conditions of ``B x 478 x 2`` landmarks: eyes ``B x 2`` (right, left) and lip ``B x 1``, float32."""
    return (eye_open_ratio(points).astype(np.float32),
            np.asarray(lip_open_ratio(points), dtype=np.float32).reshape(-1, 1))
