"""The augmentation ``A`` and the mask perturbations ``P_train`` and ``P_test`` of paper 004 (Sec. 3.1).

The masks carry the driver's pose *and* his shape; the perturbations remove the shape, so that the
refinement network ``r`` learns to put the source's shape back (Eq. 2, Eq. 5):

- ``A`` (training, driving frames): brightness, contrast and saturation scaled by factors drawn from
  their ranges and the hue shifted by a fraction of the colour circle, so that ``m`` cannot lean on
  colour (source and driver come from one video);
- ``P_train`` (training, the driver's mask ``m(A(d))``): two passes, one per direction. A pass cuts the
  mask into ``strips`` equal strips across one axis, rescales each along that axis by its own factor
  from ``strip_scale`` (the strips stay side by side, centred on the mask), and rescales the whole along
  the other axis by a factor from ``global_scale`` about the centre; the first pass cuts vertical strips,
  the second horizontal ones. Then pixels under the mask's median are zeroed (``rho``, as for
  ``P_test``) and Poisson noise of ``lambda`` is added on the 0-255 scale with a random sign (zero mean),
  the result clipped to [0, 1];
- ``P_test`` (test, ``m(d)``): pixels under the mask's median zeroed, then the mask scaled down by
  ``shrink`` about the centre (zeros come in at the border).

All functions are batched (``B x C x H x W`` tensors) and draw from a ``torch.Generator`` for
reproducible training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from puppetry.methods.perturbed_masks.config import PerturbSettings


def _uniform(lo_hi: tuple[float, float], n: int, generator: torch.Generator | None,
             device: torch.device) -> torch.Tensor:
    lo, hi = lo_hi
    return lo + (hi - lo) * torch.rand(n, generator=generator, device="cpu").to(device)


def _gray(x: torch.Tensor) -> torch.Tensor:
    """``B x 1 x H x W`` luma of ``B x 3 x H x W`` RGB (ITU-R 601 weights)."""
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])


def _rotate_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """RGB ``B x 3 x H x W`` in [0, 1] with the HSV hue shifted by ``shift`` (``B``, fraction of a turn)."""
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    high, _ = x.max(1)
    low, _ = x.min(1)
    span = high - low
    safe = torch.where(span > 0, span, torch.ones_like(span))
    hue = torch.where(high == r, ((g - b) / safe) % 6,
                      torch.where(high == g, (b - r) / safe + 2, (r - g) / safe + 4)) / 6
    hue = torch.where(span > 0, hue, torch.zeros_like(hue))
    hue = (hue + shift.view(-1, 1, 1)) % 1.0
    sat = torch.where(high > 0, span / torch.where(high > 0, high, torch.ones_like(high)), torch.zeros_like(high))
    # HSV -> RGB: channel k = v - v s max(0, min(t, 4 - t, 1)), t = (k + 6 h) mod 6 with k = 5, 3, 1
    out = []
    for k in (5.0, 3.0, 1.0):
        t = (k + 6 * hue) % 6
        out.append(high - high * sat * torch.clamp(torch.minimum(t, 4 - t), 0, 1))
    return torch.stack(out, 1)


def augment(x: torch.Tensor, settings: PerturbSettings = PerturbSettings(),
            generator: torch.Generator | None = None) -> torch.Tensor:
    """``A``: colour jitter of frames ``B x 3 x H x W`` in [0, 1], one draw per frame (Sec. 3.1)."""
    n, dev = x.shape[0], x.device
    view = (n, 1, 1, 1)
    x = x * _uniform(settings.brightness, n, generator, dev).view(view)
    mean = _gray(x).mean((2, 3), keepdim=True)
    x = mean + (x - mean) * _uniform(settings.contrast, n, generator, dev).view(view)
    gray = _gray(x)
    x = gray + (x - gray) * _uniform(settings.saturation, n, generator, dev).view(view)
    x = x.clamp(0, 1)
    return _rotate_hue(x, _uniform(settings.hue, n, generator, dev)).clamp(0, 1)


def median_threshold(mask: torch.Tensor) -> torch.Tensor:
    """Pixels under each mask's median set to zero (``rho`` = the median; ``B x 1 x H x W``)."""
    rho = mask.flatten(1).median(1).values.view(-1, 1, 1, 1)
    return torch.where(mask < rho, torch.zeros_like(mask), mask)


def shrink(mask: torch.Tensor, amount: float) -> torch.Tensor:
    """The mask scaled down by ``amount`` (0.25: to 75 % of its size) about the centre, zeros outside."""
    if amount == 0:
        return mask
    n = mask.shape[0]
    theta = torch.zeros(n, 2, 3, device=mask.device, dtype=mask.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / (1.0 - amount)     # output coordinate -> input coordinate
    grid = F.affine_grid(theta, list(mask.shape), align_corners=False)
    return F.grid_sample(mask, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def perturb_test(mask: torch.Tensor, amount: float = 0.25) -> torch.Tensor:
    """``P_test``: threshold at the median, then scale down by ``amount`` (Sec. 3.1)."""
    return shrink(median_threshold(mask), amount)


def _strip_pass(mask: torch.Tensor, axis: int, settings: PerturbSettings,
                generator: torch.Generator | None) -> torch.Tensor:
    """One pass of ``P_train``'s warp: strips across ``axis`` (-1: x, -2: y) rescaled along it, the whole
    rescaled along the other axis; one bilinear resampling per pass."""
    n, _, h, w = mask.shape
    dev, k = mask.device, settings.strips
    length = w if axis == -1 else h
    factors = _uniform(settings.strip_scale, n * k, generator, dev).view(n, k)
    across = _uniform(settings.global_scale, n, generator, dev)
    # Strip borders in input pixels (equal strips) and in output pixels (rescaled, centred).
    edges_in = torch.linspace(0, length, k + 1, device=dev).expand(n, k + 1)
    widths = factors * (length / k)
    edges_out = torch.cat([torch.zeros(n, 1, device=dev), widths.cumsum(1)], 1)
    edges_out = edges_out + (length - edges_out[:, -1:]) / 2
    # Piecewise-linear inverse map: output pixel centre -> input position (outside -> off the mask).
    pos = torch.arange(length, device=dev, dtype=torch.float32).expand(n, length) + 0.5
    i = torch.searchsorted(edges_out.contiguous(), pos.contiguous()).clamp(1, k) - 1
    o0, o1 = edges_out.gather(1, i), edges_out.gather(1, i + 1)
    t = (pos - o0) / (o1 - o0)
    src = edges_in.gather(1, i) + t * (length / k)
    src = torch.where((pos < edges_out[:, :1]) | (pos > edges_out[:, -1:]), torch.full_like(src, -1e4), src)
    along = src / length * 2 - 1                                         # normalised, align_corners=False
    other_len = h if axis == -1 else w
    other = (torch.arange(other_len, device=dev, dtype=torch.float32) + 0.5) / other_len * 2 - 1
    other = other.view(1, -1) / across.view(-1, 1)                       # scale about the centre
    if axis == -1:
        gx, gy = along.view(n, 1, w).expand(n, h, w), other.view(n, h, 1).expand(n, h, w)
    else:
        gx, gy = other.view(n, 1, w).expand(n, h, w), along.view(n, h, 1).expand(n, h, w)
    grid = torch.stack([gx, gy], -1).to(mask.dtype)
    return F.grid_sample(mask, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def perturb_train(mask: torch.Tensor, settings: PerturbSettings = PerturbSettings(),
                  generator: torch.Generator | None = None, noise: bool = True) -> torch.Tensor:
    """``P_train`` of masks ``B x 1 x H x W`` in [0, 1] (Sec. 3.1; see the module docstring).

    ``noise=False`` leaves out the Poisson noise (for checking the warp and the threshold alone).
    """
    out = _strip_pass(mask, -1, settings, generator)
    out = _strip_pass(out, -2, settings, generator)
    out = median_threshold(out)
    if noise and settings.poisson_lambda > 0:
        rate = torch.full(out.shape, float(settings.poisson_lambda))
        counts = torch.poisson(rate, generator=generator)
        sign = torch.randint(0, 2, out.shape, generator=generator) * 2 - 1
        out = (out + (counts * sign).to(out.device, out.dtype) / 255.0).clamp(0, 1)
    return out
