"""Geometry dropout (paper 000, Sec. 3.3, "Geometry dropout strategy").

On a still portrait the coloring network ``G_C`` learns to fill missing parts the way it must on video pairs
(an open mouth the source does not show): "randomly zero one or more parts of the source portrait
``I_i^s`` and segmentation mask ``M_i^s`` to form ``I_w``, ``e_w`` and ``M_w``", then reconstruct the whole
portrait from the full target mask. Per image, between 1 and ``settings.max_parts`` of the labels named in
``settings.parts`` that are present are chosen (uniformly: first how many, then which); their pixels, grown
by ``round(settings.grow * S)`` pixels (a square max-pool dilation), are zeroed in the image and in every
channel of the one-hot mask (they become unlabelled, so WASIC's ``M_f`` is 0 there and ``e_w`` is never
used). ``e_w`` follows: the encoder only sees the zeroed image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from puppetry.face.parsing import MASK_LABELS
from puppetry.methods.puppeteergan.config import Dropout


def geometry_dropout(image: torch.Tensor, mask: torch.Tensor, settings: Dropout,
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Zero randomly chosen semantic parts of source images and their masks.

    Args:
        image: ``B x 3 x S x S`` source images ``I_i^s``.
        mask: ``B x K x S x S`` one-hot masks ``M_i^s`` (K = len(MASK_LABELS)).
        settings: which parts, how many, how far the holes grow.
        generator: a CPU generator for the random choices (None: torch's default).
    Returns:
        (image, mask, dropped): the images and masks with the parts zeroed (new tensors) and a ``B x K`` bool
        of the labels dropped (an image with none of ``settings.parts`` present loses nothing).
    """
    b, k, h, w = mask.shape
    parts = torch.tensor([MASK_LABELS.index(name) for name in settings.parts], device=mask.device)
    present = (mask.index_select(1, parts).flatten(2).amax(dim=2) > 0).cpu()          # B x P

    dropped = torch.zeros(b, k, dtype=torch.bool)
    for i in range(b):
        candidates = parts.cpu()[present[i]]
        if len(candidates) == 0:
            continue
        count = int(torch.randint(1, min(settings.max_parts, len(candidates)) + 1, (1,), generator=generator))
        chosen = candidates[torch.randperm(len(candidates), generator=generator)[:count]]
        dropped[i, chosen] = True
    dropped = dropped.to(mask.device)

    region = (mask * dropped[:, :, None, None].to(mask.dtype)).amax(dim=1, keepdim=True) > 0   # B x 1 x S x S
    radius = round(settings.grow * max(h, w))
    if radius > 0:
        region = F.max_pool2d(region.float(), 2 * radius + 1, stride=1, padding=radius) > 0
    keep = (~region).to(image.dtype)
    return image * keep, mask * keep.to(mask.dtype), dropped
