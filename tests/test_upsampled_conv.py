"""The 3x3 convolution of a nearest-upsampled map computed before upsampling (puppetry/nn/upsampled_conv.py)
gives the direct result, values and gradients, and SPADE uses it only where it is exact."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from puppetry.nn.spade import SPADE
from puppetry.nn.upsampled_conv import conv3x3_of_upsampled


def direct(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, scale: int) -> torch.Tensor:
    return F.conv2d(F.interpolate(x, scale_factor=scale, mode="nearest"), weight, bias, padding=1)


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
@pytest.mark.parametrize("with_bias", [True, False])
def test_same_values_and_gradients_as_upsampling_first(scale, with_bias):
    torch.manual_seed(scale)
    x = torch.randn(2, 5, 7, 9, dtype=torch.float64, requires_grad=True)      # odd, non-square
    weight = torch.randn(6, 5, 3, 3, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(6, dtype=torch.float64, requires_grad=True) if with_bias else None
    ours = conv3x3_of_upsampled(x, weight, bias, scale)
    ref = direct(x, weight, bias, scale)
    assert ours.shape == ref.shape == (2, 6, 7 * scale, 9 * scale)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    upstream = torch.randn_like(ref)
    params = [x, weight] + ([bias] if with_bias else [])
    grads_ours = torch.autograd.grad(ours, params, upstream)
    grads_ref = torch.autograd.grad(ref, params, upstream)
    for a, b in zip(grads_ours, grads_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_only_3x3_kernels():
    with pytest.raises(ValueError, match="3x3 kernel"):
        conv3x3_of_upsampled(torch.zeros(1, 2, 4, 4), torch.zeros(3, 2, 5, 5), None, 2)


@pytest.mark.parametrize("size", [(16, 16), (32, 32), (12, 20)])
def test_spade_label_features_match_the_resized_map(size):
    """Integer factors (2x, 4x) take the fast path; other sizes (1.5 x 2.5) resize first; all give the
    convolution of the nearest-resized label map."""
    torch.manual_seed(0)
    spade = SPADE(norm_nc=4, label_nc=3, hidden=5).double()
    seg = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    expected = spade.mlp_shared(F.interpolate(seg, size=size, mode="nearest"))
    torch.testing.assert_close(spade.label_features(seg, size), expected, rtol=1e-12, atol=1e-12)
