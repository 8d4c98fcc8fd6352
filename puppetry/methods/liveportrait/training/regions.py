"""Face, lip, eye and shoulder regions of training images, from MediaPipe landmarks or semantic masks.

Coordinates are normalised image coordinates: ``u = 2 x / S - 1`` for a pixel coordinate ``x`` of an
``S x S`` image (``-1`` the left/top edge, ``+1`` the right/bottom edge; ``grid_sample`` with
``align_corners=False``). Crops are rotated squares ``(centre, side, angle)``: the crop's x axis is
``(cos a, sin a)`` in the image (y down), so a level face has angle 0.

- Stage I's cascaded losses (paper 001, Sec. 3.2: "face and lip regions are defined by 2D semantic
  landmarks") compare face and lip crops of the generated and the driving image, placed by the driving
  frame's landmarks.
- Stage II's masks M^st, M^eyes, M^lip (Eq. 5-6) come from the dataset's label maps (labels of
  :mod:`puppetry.face.parsing`) when it stores them, else from the landmarks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from puppetry.face import topology as T
from puppetry.face.parsing import EYES, INNER_MOUTH, LIPS, NECK_BODY

_OVAL = torch.as_tensor(T.FACE_OVAL)
_MOUTH = torch.as_tensor(T.OUTER_MOUTH)
_RIGHT_EYE = torch.as_tensor(list(T.RIGHT_EYE_CORNERS) + list(T.RIGHT_EYE_UPPER) + list(T.RIGHT_EYE_LOWER))
_LEFT_EYE = torch.as_tensor(list(T.LEFT_EYE_CORNERS) + list(T.LEFT_EYE_UPPER) + list(T.LEFT_EYE_LOWER))
_OUTER_CORNERS = (int(T.RIGHT_EYE_CORNERS[0]), int(T.LEFT_EYE_CORNERS[0]))
_MOUTH_CORNERS = (int(T.MOUTH_CORNERS[0]), int(T.MOUTH_CORNERS[1]))

FACE_MARGIN = 1.1        # face crop side over the face oval's extent
LIP_MARGIN = 1.3         # lip crop side over the mouth's extent
EYE_MARGIN = 1.6         # eye crop side over the eye's corner-to-corner width
SHOULDER_GAP = 0.1       # shoulder region starts this fraction of the face height below the chin
# ArcFace's 112 x 112 alignment template: eye centres at y = 51.6, mouth centre at y = 92.3 (insightface).
ARCFACE_EYE_Y, ARCFACE_MOUTH_Y, ARCFACE_SIZE = 51.6, 92.3, 112.0


@dataclass
class Crops:
    """Rotated square crops: ``centers`` ``N x 2``, ``sides`` ``N``, ``angles`` ``N`` (radians)."""

    centers: torch.Tensor
    sides: torch.Tensor
    angles: torch.Tensor

    @staticmethod
    def cat(items: list["Crops"]) -> "Crops":
        return Crops(torch.cat([c.centers for c in items]), torch.cat([c.sides for c in items]),
                     torch.cat([c.angles for c in items]))


def normalize_landmarks(points: torch.Tensor, size: int) -> torch.Tensor:
    """Pixel landmarks ``... x 2`` of an ``size``-pixel square image -> normalised coordinates."""
    return points * (2.0 / size) - 1.0


def _line_angle(lm: torch.Tensor, a: int, b: int) -> torch.Tensor:
    d = lm[:, b] - lm[:, a]
    return torch.atan2(d[:, 1], d[:, 0])


def _box(points: torch.Tensor, angle: torch.Tensor, margin: float) -> Crops:
    """Smallest square around ``points`` (``B x N x 2``) in the frame rotated by ``angle``, grown by ``margin``."""
    c, s = angle.cos(), angle.sin()
    ex = torch.stack([c, s], -1)[:, None]            # B x 1 x 2, crop x axis
    ey = torch.stack([-s, c], -1)[:, None]
    px, py = (points * ex).sum(-1), (points * ey).sum(-1)
    lo = torch.stack([px.amin(1), py.amin(1)], -1)
    hi = torch.stack([px.amax(1), py.amax(1)], -1)
    mid = (lo + hi) / 2
    center = mid[:, :1] * ex[:, 0] + mid[:, 1:] * ey[:, 0]
    return Crops(center, (hi - lo).amax(-1) * margin, angle)


def face_crops(lm: torch.Tensor) -> Crops:
    """Face region: the face oval, level with the eyes. ``lm`` ``B x 478 x 2`` normalised."""
    return _box(lm[:, _OVAL.to(lm.device)], _line_angle(lm, *_OUTER_CORNERS), FACE_MARGIN)


def lip_crops(lm: torch.Tensor) -> Crops:
    """Lip region: the outer lip line, level with the mouth corners."""
    return _box(lm[:, _MOUTH.to(lm.device)], _line_angle(lm, *_MOUTH_CORNERS), LIP_MARGIN)


def eye_crops(lm: torch.Tensor) -> Crops:
    """Both eyes, ``2B`` crops (all right eyes, then all left eyes), each level with its corners."""
    out = []
    # corners ordered image-left to image-right on a level face: right eye outer -> inner, left inner -> outer
    for idx, (a, b) in ((_RIGHT_EYE, T.RIGHT_EYE_CORNERS), (_LEFT_EYE, T.LEFT_EYE_CORNERS[::-1])):
        pts = lm[:, idx.to(lm.device)]
        width = (lm[:, int(a)] - lm[:, int(b)]).norm(dim=-1)
        out.append(Crops(pts.mean(1), width * EYE_MARGIN, _line_angle(lm, int(a), int(b))))
    return Crops.cat(out)


def arcface_crops(lm: torch.Tensor) -> Crops:
    """ArcFace-style alignment from the eye and mouth centres (the 112 x 112 template's 5-point layout)."""
    eyes = (lm[:, T.IRIS_CENTERS[0]] + lm[:, T.IRIS_CENTERS[1]]) / 2
    mouth = (lm[:, _MOUTH_CORNERS[0]] + lm[:, _MOUTH_CORNERS[1]]) / 2
    v = mouth - eyes
    dist = v.norm(dim=-1).clamp_min(1e-6)
    angle = torch.atan2(-v[:, 0], v[:, 1])
    side = dist * ARCFACE_SIZE / (ARCFACE_MOUTH_Y - ARCFACE_EYE_Y)
    center = eyes + v * ((ARCFACE_SIZE / 2 - ARCFACE_EYE_Y) / (ARCFACE_MOUTH_Y - ARCFACE_EYE_Y))
    return Crops(center, side, angle)


def crop(images: torch.Tensor, crops: Crops, size: int) -> torch.Tensor:
    """Rotated square crops, bilinear, zero outside: ``N x C x H x W`` -> ``N x C x size x size``.

    ``crops`` has ``N`` entries (or ``k N``: image ``i`` is used for crops ``i, i + N, ...``).
    """
    n = images.shape[0]
    reps = crops.centers.shape[0] // n
    if reps > 1:
        images = images.repeat(reps, 1, 1, 1)
    h = (crops.sides / 2).to(images.dtype)
    c, s = crops.angles.cos().to(images.dtype), crops.angles.sin().to(images.dtype)
    centers = crops.centers.to(images.dtype)
    theta = torch.stack([torch.stack([h * c, -h * s, centers[:, 0]], -1),
                         torch.stack([h * s, h * c, centers[:, 1]], -1)], 1)
    grid = F.affine_grid(theta, [images.shape[0], images.shape[1], size, size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def pixel_grid(size: int, like: torch.Tensor) -> torch.Tensor:
    """``size x size x 2`` normalised (x, y) of the pixel centres."""
    axis = (torch.arange(size, dtype=like.dtype, device=like.device) * 2 + 1) / size - 1
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([x, y], -1)


def inside(crops: Crops, size: int, like: torch.Tensor) -> torch.Tensor:
    """``N x size x size`` float mask of the pixels inside each rotated square."""
    p = pixel_grid(size, like)[None] - crops.centers[:, None, None, :].to(like.dtype)
    c, s = crops.angles.cos()[:, None, None], crops.angles.sin()[:, None, None]
    px = p[..., 0] * c + p[..., 1] * s
    py = -p[..., 0] * s + p[..., 1] * c
    half = (crops.sides / 2)[:, None, None]
    return ((px.abs() <= half) & (py.abs() <= half)).to(like.dtype)


def dilate(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """Grow ``N x H x W`` masks by ``pixels`` (square structuring element)."""
    if pixels < 1:
        return mask
    return F.max_pool2d(mask[:, None], 2 * pixels + 1, stride=1, padding=pixels)[:, 0]


def resize_labels(labels: torch.Tensor, size: int) -> torch.Tensor:
    """``N x S x S`` integer label maps -> ``N x size x size`` (nearest)."""
    if labels.shape[-1] == size:
        return labels
    return F.interpolate(labels[:, None].float(), size=(size, size), mode="nearest")[:, 0].to(labels.dtype)


def eyes_mask(lm: torch.Tensor, labels: torch.Tensor | None, size: int, dilation: float) -> torch.Tensor:
    """M^eyes (Eq. 6): 1 on the eyes (grown by ``dilation`` of the side).

    ``lm`` ``B x 478 x 2``; ``labels`` ``B x S x S`` or None (then boxes from the landmarks) -> ``B x size x size``.
    """
    if labels is not None:
        mask = (resize_labels(labels, size) == EYES).to(lm.dtype)
    else:
        boxes = inside(eye_crops(lm), size, lm)
        mask = torch.maximum(*boxes.chunk(2))
    return dilate(mask, round(dilation * size))


def lip_mask(lm: torch.Tensor, labels: torch.Tensor | None, size: int, dilation: float) -> torch.Tensor:
    """M^lip (Eq. 6): 1 on the lips and the inner mouth."""
    if labels is not None:
        lab = resize_labels(labels, size)
        mask = ((lab == LIPS) | (lab == INNER_MOUTH)).to(lm.dtype)
    else:
        mask = inside(lip_crops(lm), size, lm)
    return dilate(mask, round(dilation * size))


def shoulder_mask(lm: torch.Tensor, labels: torch.Tensor | None, size: int) -> torch.Tensor:
    """1 - M^st (Eq. 5): the shoulder region, where stitching must keep the self-reconstruction.

    With labels: neck and body. Without: everything below the chin by :data:`SHOULDER_GAP` of the face
    height, in the face's own frame.
    """
    if labels is not None:
        return (resize_labels(labels, size) == NECK_BODY).to(lm.dtype)
    face = face_crops(lm)
    c, s = face.angles.cos(), face.angles.sin()
    ey = torch.stack([-s, c], -1)                                            # face "down"
    oval = lm[:, _OVAL.to(lm.device)]
    depth = (oval * ey[:, None]).sum(-1)
    chin, top = depth.amax(1), depth.amin(1)
    below = chin + SHOULDER_GAP * (chin - top)
    p = (pixel_grid(size, lm)[None] * ey[:, None, None, :]).sum(-1)
    return (p > below[:, None, None]).to(lm.dtype)
