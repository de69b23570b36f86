"""Regularized activation maximization: the climb, each regularizer, and the errors."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from cnnlib import actmax
from cnnlib.models import ZFNetSmall


def test_decay_alone_converges_to_its_fixed_point_on_a_linear_unit():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 4, 3, bias=False)).double()
    w = model[1].weight[1].detach().view(2, 4, 4)
    theta, eta = 0.1, 0.5
    result = actmax.maximize(model, "1", 1, (2, 4, 4), actmax.Regularizers(decay=theta), steps=400, lr=eta)
    # x ← (1 − θ)(x + η w) has the fixed point x* = (1 − θ) η w / θ
    torch.testing.assert_close(result.image, (1 - theta) * eta / theta * w, atol=1e-9, rtol=1e-9)
    assert result.activations[0] == 0.0 and result.activations[-1] > 0


def test_unregularized_ascent_makes_a_conv5_unit_fire_more_than_any_test_image():
    torch.manual_seed(0)
    model = ZFNetSmall().eval()
    result = actmax.maximize(model, "conv5", 7, (1, 28, 28), steps=30, lr=0.5, init_std=0.01)
    assert result.activations[-1] > result.activations[0]
    assert result.activations[-1] > actmax.unit_activation(model, "conv5", 7, torch.rand(64, 1, 28, 28)).max()
    final = actmax.unit_activation(model, "conv5", 7, result.image[None])
    assert final.item() >= result.activations[-1]  # one more step was taken after the last recorded value
    assert all(p.grad is None for p in model.parameters())  # the weights are left alone
    bounded = actmax.maximize(model, "conv5", 7, (1, 28, 28), steps=10, lr=5.0, init_std=0.3, bounds=(0.0, 1.0))
    assert bounded.image.min() >= 0 and bounded.image.max() <= 1 and bounded.image.max() > 0


def test_gaussian_blur_keeps_constants_smooths_noise_and_matches_a_2d_convolution():
    torch.manual_seed(0)
    const = torch.full((1, 3, 12, 12), 0.7)
    torch.testing.assert_close(actmax.gaussian_blur(const, 1.0), const)
    noise = torch.randn(2, 3, 20, 20)
    blurred = actmax.gaussian_blur(noise, 1.0)
    assert blurred.std() < 0.5 * noise.std()
    assert torch.equal(actmax.gaussian_blur(noise, 0.0), noise)
    t = torch.arange(-3, 4, dtype=torch.float32)
    k1 = torch.exp(-0.5 * t ** 2)
    k2 = torch.outer(k1, k1) / k1.sum() ** 2  # (7, 7)
    inner = F.conv2d(noise.view(6, 1, 20, 20), k2.view(1, 1, 7, 7)).view(2, 3, 14, 14)  # away from the border
    torch.testing.assert_close(blurred[..., 3:-3, 3:-3], inner, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="too wide"):
        actmax.gaussian_blur(torch.zeros(1, 1, 4, 4), 2.0)


def test_clipping_by_norm_and_by_contribution_zero_the_weakest_pixels():
    x = torch.arange(1.0, 17.0).view(1, 1, 4, 4)  # pixel norms 1..16, all distinct
    grad = torch.ones_like(x)
    out = actmax.regularize(x, grad, 1, actmax.Regularizers(norm_pct=25))
    assert int((out == 0).sum()) == 4 and torch.equal(out[x > 4.5], x[x > 4.5])  # the 4 weakest of 16
    grad = torch.zeros_like(x)
    grad[0, 0, 0, :] = 1.0  # only the first row contributes: x·g is 1, 2, 3, 4 there, 0 elsewhere
    out = actmax.regularize(x, grad, 1, actmax.Regularizers(contrib_pct=80))
    assert torch.equal(out.flatten().nonzero().flatten(), torch.tensor([1, 2, 3]))
    decayed = actmax.regularize(x, grad, 1, actmax.Regularizers(decay=0.5))
    torch.testing.assert_close(decayed, x / 2)
    not_yet = actmax.regularize(x, grad, 3, actmax.Regularizers(blur_every=4, blur_width=0.5))
    assert torch.equal(not_yet, x)  # blur only every 4th step


def test_bad_arguments_raise_clear_errors():
    model = ZFNetSmall().eval()
    with pytest.raises(ValueError, match="percentiles must be in 0..100"):
        actmax.Regularizers(norm_pct=120)
    with pytest.raises(ValueError, match="0 <= decay < 1"):
        actmax.Regularizers(decay=1.0)
    with pytest.raises(ValueError, match="unknown layer 'conv9'"):
        actmax.maximize(model, "conv9", 0, (1, 28, 28), steps=1)
    with pytest.raises(ValueError, match="has 10 units, got channel=10"):
        actmax.maximize(model, "fc8", 10, (1, 28, 28), steps=1)
    assert all(len(m._forward_hooks) == 0 for m in model.modules())
