"""Inner-mouth fill for the landmark warp.

A 2D warp cannot show what the source hides: when a closed mouth opens, the warp only stretches the
lips' edge pixels. This module paints the opening between the target's inner lips:

* from the driving frame's own inner mouth (teeth, tongue) when driving pixels exist, mapped onto the
  target lips by an affine fit of the lip landmarks and colour-matched to the source's lips (mean and
  contrast; what is darker than the driver's lips keeps at least its full depth), in the measure that
  the driving mouth is itself open as wide as the target's (:meth:`MouthFiller.driving_share`);
* otherwise (templates, procedural motion, controls), and for the rest of that measure, with a
  synthetic mouth: a dark cavity whose tint comes from the source's lips, an upper-teeth band and a
  dimmer lower-teeth band.

The fill fades in with how much wider the target mouth is than the source's, so an already-open
source mouth keeps its own teeth.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from puppetry.face import topology as T
from puppetry.face.pose import lip_open_ratio

_MOUTH_POINTS = np.concatenate([T.OUTER_MOUTH, T.INNER_MOUTH])


@dataclass(frozen=True)
class MouthConfig:
    """Fill settings. ``fade`` is the lip-open ratio over which the fill goes from 0 to full."""

    fade: float = 0.05
    feather: float = 0.06        # mask blur, as a share of the mouth width
    shrink: float = 0.04         # the fill stops this share of the mouth width inside the lips
    closed: float = 0.03         # a driving lip-open ratio at or below this shows no inner mouth
    rim: float = 0.08            # the shadow along the lip line reaches this share of the mouth width inside
    rim_shade: float = 0.3      # brightness at the lip line (1: no shadow)


def _polygon_mask(shape: tuple[int, int], polygon: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(polygon * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
    return mask


def _lip_stats(image: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (RGB, float) of the lip pixels between the outer and inner lip contours."""
    lo = np.floor(points[_MOUTH_POINTS, :2].min(0)).astype(int)
    hi = np.ceil(points[_MOUTH_POINTS, :2].max(0)).astype(int) + 1
    h, w = image.shape[:2]
    x0, y0 = np.clip(lo, 0, [w, h])
    x1, y1 = np.clip(hi, 0, [w, h])
    patch = image[y0:y1, x0:x1]
    if patch.size == 0:
        return np.full(3, 128.0), np.full(3, 30.0)
    off = np.array([x0, y0])
    lips = (_polygon_mask(patch.shape[:2], points[T.OUTER_MOUTH, :2] - off) > 127) & \
           (_polygon_mask(patch.shape[:2], points[T.INNER_MOUTH, :2] - off) < 128)
    pix = patch[lips].astype(np.float64)
    if len(pix) < 8:
        pix = patch.reshape(-1, 3).astype(np.float64)
    return pix.mean(0), np.maximum(pix.std(0), 4.0)


class MouthFiller:
    """Paints the inner mouth of one source face.

    Args:
        image: ``H x W x 3`` uint8 source image.
        landmarks: ``478 x 3`` source landmarks of the face.
    """

    def __init__(self, image: np.ndarray, landmarks: np.ndarray, config: MouthConfig = MouthConfig()):
        self.config = config
        self.open_ratio = float(lip_open_ratio(landmarks[:, :2]))
        self.lip_mean, self.lip_std = _lip_stats(image, landmarks)
        chroma = np.abs(image.astype(np.int16) - image.mean(2, keepdims=True)).mean()
        self.grayscale = bool(chroma < 2.0)

    def strength(self, target: np.ndarray) -> float:
        """How much fill the target mouth (``478 x 2``) needs, 0..1."""
        opening = float(lip_open_ratio(target)) - max(self.open_ratio, 0.02)
        return float(np.clip(opening / self.config.fade, 0.0, 1.0))

    def driving_share(self, target: np.ndarray, driving_landmarks: np.ndarray | None) -> float:
        """How much of the fill comes from the driving frame's own mouth, 0..1: all of it when the driving
        mouth is open at least 70 % as wide as the target's, none below 30 % or when it is closed. (A
        source that starts more open than the driver keeps an open mouth while the driver's is closed or
        nearly so; a squashed picture of closed lips is no open mouth, and the synthetic mouth takes over.)"""
        if driving_landmarks is None:
            return 0.0
        wanted = float(lip_open_ratio(target[:, :2]))
        shown = float(lip_open_ratio(np.asarray(driving_landmarks)[:, :2]))
        if shown <= self.config.closed:
            return 0.0
        t = float(np.clip((shown / max(wanted, 1e-6) - 0.3) / 0.4, 0.0, 1.0))
        return t * t * (3.0 - 2.0 * t)

    def _synthetic(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Mouth texture at mouth coordinates ``u`` (-1..1, corner to corner) and ``v`` (0 upper lip,
        1 lower lip); returns ``... x 3`` float RGB."""
        u, v = np.asarray(u, np.float32), np.asarray(v, np.float32)      # float32 throughout: per pixel work
        lip = self.lip_mean.astype(np.float32)
        cavity = lip * np.array([0.45, 0.30, 0.30], np.float32) + np.float32(8.0)
        depth = np.float32(1.0) - np.float32(0.5) * np.exp(-((u / np.float32(0.6)) ** 2)
                                                            - ((v - np.float32(0.55)) / np.float32(0.35)) ** 2)
        tex = cavity * depth[..., None]
        tooth = np.float32(np.clip(lip.mean() * 1.3 + 85.0, 175.0, 240.0)) * np.array([1.0, 0.98, 0.93], np.float32)
        side = np.clip(1.0 - np.abs(u) ** 3, 0.0, 1.0)[..., None]
        upper = np.clip((0.30 - v) / 0.08, 0.0, 1.0)[..., None] * side
        lower = np.clip((v - 0.86) / 0.08, 0.0, 1.0)[..., None] * side * 0.55
        tex = tex + upper * (tooth * (0.75 + 0.25 * side) - tex)
        tex = tex + lower * (tooth * 0.8 - tex)
        return tex

    def fill(self, out: np.ndarray, target: np.ndarray, driving: np.ndarray | None = None,
             driving_landmarks: np.ndarray | None = None) -> None:
        """Paint the opening of the ``478 x 2`` target mouth into ``out`` (in place)."""
        alpha = self.strength(target)
        if alpha <= 0.0:
            return
        cfg = self.config
        inner = target[T.INNER_MOUTH, :2]
        width = float(np.linalg.norm(target[T.MOUTH_CORNERS[1], :2] - target[T.MOUTH_CORNERS[0], :2]))
        pad = int(np.ceil(width * (cfg.feather * 2 + 0.05))) + 2
        h, w = out.shape[:2]
        x0, y0 = np.maximum(np.floor(inner.min(0)).astype(int) - pad, 0)
        x1, y1 = np.minimum(np.ceil(inner.max(0)).astype(int) + pad + 1, [w, h])
        if x1 - x0 < 2 or y1 - y0 < 2:
            return
        off = np.array([x0, y0], dtype=np.float64)
        centre = inner.mean(0)
        shrunk = centre + (inner - centre) * (1.0 - cfg.shrink * width / max(np.ptp(inner[:, 1]), 1.0) * 0.5)
        polygon = _polygon_mask((y1 - y0, x1 - x0), shrunk - off)
        mask = polygon.astype(np.float32) / 255.0
        sigma = max(width * cfg.feather * 0.5, 0.6)
        mask = cv2.GaussianBlur(mask, (0, 0), sigma) * alpha
        box = (x0, y0, x1, y1)
        ys, xs = np.nonzero(mask > 0.5 / 255)             # the painted pixels only (a third of the box)
        weight = mask[ys, xs][:, None]
        share = self.driving_share(target, driving_landmarks) if driving is not None else 0.0
        shown = self._from_driving(driving, driving_landmarks, target, box) if share > 0.0 else None
        share = share if shown is not None else 0.0
        tex = self._synthetic_patch(target, xs + x0, ys + y0) if share < 1.0 else 0.0
        if share > 0.0:
            tex = tex + share * (shown[ys, xs] - tex)
        if cfg.rim > 0:
            # the shadow where the lips meet the opening: darkest at the lip line, gone rim x width inside
            inside = cv2.distanceTransform((polygon > 127).astype(np.uint8), cv2.DIST_L2, 3)[ys, xs]
            t = np.clip(inside / (cfg.rim * width), 0.0, 1.0)
            tex = tex * (cfg.rim_shade + (1.0 - cfg.rim_shade) * t * t * (3.0 - 2.0 * t))[:, None]
        if self.grayscale:
            tex[:] = tex.mean(1, keepdims=True)
        region = out[y0:y1, x0:x1]
        pixels = region[ys, xs].astype(np.float32)
        pixels += weight * (tex - pixels)
        region[ys, xs] = np.clip(pixels + 0.5, 0, 255).astype(np.uint8)

    def _from_driving(self, driving: np.ndarray, dlm: np.ndarray, target: np.ndarray, box) -> np.ndarray | None:
        """The driving mouth mapped onto the target's box, ``h x w x 3`` float32 (None: no affine fit)."""
        x0, y0, x1, y1 = box
        src = dlm[_MOUTH_POINTS, :2].astype(np.float32)
        dst = (target[_MOUTH_POINTS, :2] - [x0, y0]).astype(np.float32)
        m, _ = cv2.estimateAffine2D(src, dst, method=cv2.LMEDS)
        if m is None:
            return None
        patch = cv2.warpAffine(driving, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        mean, std = _lip_stats(driving, dlm)
        gain = np.clip(self.lip_std / std, 0.6, 1.6).astype(np.float32)
        diff = patch - mean.astype(np.float32)
        # A low-contrast source (a painting's lips) would flatten the driver's dark cavity into a lip-coloured
        # band that reads as closed lips: what is darker than the driver's lips keeps at least its full depth.
        gain = np.where(diff < 0, np.maximum(gain, 1.0), gain)
        return diff * gain + self.lip_mean.astype(np.float32)

    def _synthetic_patch(self, target: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The synthetic mouth at image pixels ``x``, ``y`` (``P`` each); returns ``P x 3`` float32 RGB."""
        left, right = target[T.INNER_MOUTH_CORNERS[0], :2], target[T.INNER_MOUTH_CORNERS[1], :2]
        axis = right - left
        length = max(float(np.linalg.norm(axis)), 1e-6)
        ex = axis / length
        ey = np.array([-ex[1], ex[0]])
        if ey[1] < 0:
            ey = -ey
        mid = (left + right) / 2
        dx = x.astype(np.float32) - np.float32(mid[0])
        dy = y.astype(np.float32) - np.float32(mid[1])
        along = dx * np.float32(ex[0]) + dy * np.float32(ex[1])
        across = dx * np.float32(ey[0]) + dy * np.float32(ey[1])
        up = (target[T.LIP_UPPER_INNER, :2] - mid) @ np.stack([ex, ey], 1)
        lo = (target[T.LIP_LOWER_INNER, :2] - mid) @ np.stack([ex, ey], 1)
        ends = np.array([[-length / 2, 0.0], [length / 2, 0.0]])
        up = np.concatenate([ends[:1], up[np.argsort(up[:, 0])], ends[1:]])
        lo = np.concatenate([ends[:1], lo[np.argsort(lo[:, 0])], ends[1:]])
        top = np.interp(along, up[:, 0], up[:, 1])
        bottom = np.interp(along, lo[:, 0], lo[:, 1])
        v = np.clip((across - top) / np.maximum(bottom - top, 1e-3), 0.0, 1.0)
        u = np.clip(along / (length / 2), -1.0, 1.0)
        return self._synthetic(u, v).astype(np.float32)
