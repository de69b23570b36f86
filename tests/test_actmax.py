"""Regularized activation maximization: the climb, each regularizer, and the errors."""

import json

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
    assert isinstance(result, actmax.Result) and len(result.activations) == 400  # one value before each step
    # the activation recorded before step k + 1 is the linear unit's value w · x of the image after step k
    x1 = (1 - theta) * eta * w  # the first step from x = 0
    assert result.activations[1] == pytest.approx(float((w * x1).sum()))


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


# --- parameterizations ------------------------------------------------------------------------------------------


def test_fourier_scale_is_one_over_frequency_with_a_floor_at_the_constant_term():
    s = actmax.fourier_scale(8, 8)  # (8, 5): rows f_y = 0, 1/8, ..., -1/8; columns f_x = 0, 1/8, ..., 4/8
    assert s.shape == (8, 5)
    assert s[0, 0] == 8 and s[0, 1] == 8 and s[1, 0] == 8 and s[7, 0] == 8  # f = 0 floored at 1/8, f = 1/8
    assert s[0, 2] == 4 and s[0, 4] == 2
    torch.testing.assert_close(s[4, 4], torch.tensor(2 ** 0.5))  # f = sqrt(0.5² + 0.5²)


@pytest.mark.parametrize("h, w", [(8, 8), (7, 10), (9, 5)])
def test_fourier_parameterization_round_trips_an_image(h, w):
    x = torch.rand(2, 3, h, w, dtype=torch.float64)
    coeffs = actmax.image_to_fourier(x)
    assert coeffs.shape == (2, 3, h, w // 2 + 1, 2)
    torch.testing.assert_close(actmax.fourier_to_image(coeffs, h, w), x)


def test_one_fourier_coefficient_is_a_cosine_of_amplitude_one_over_frequency():
    h = w = 16
    c = torch.zeros(1, 1, h, w // 2 + 1, 2, dtype=torch.float64)
    c[0, 0, 0, 2, 0] = 1.0  # frequency f_x = 2/16 cycles per pixel, f = 1/8, scale 8
    x = actmax.fourier_to_image(c, h, w)[0, 0]
    j = torch.arange(w, dtype=torch.float64)
    # orthonormal irfft2 of one (non-DC, non-Nyquist) coefficient c: 2·c·cos(2π f_x j) / sqrt(H W)
    expected = (2 * 8 * torch.cos(2 * torch.pi * 2 / 16 * j) / 16).expand(h, w)
    torch.testing.assert_close(x, expected)


def test_colour_decorrelation_is_the_inverse_of_its_correlation():
    M = actmax.COLOR_MATRIX
    assert M.norm(dim=0).max() == pytest.approx(1.0)
    gram = M.T @ M  # columns of U·sqrt(S) are orthogonal: MᵀM is (nearly) diagonal, the grey axis largest
    assert (gram - torch.diag(gram.diagonal())).abs().max() < 0.02 * gram.diagonal().max()
    assert gram.diagonal().argmax() == 0 and (M[:, 0] > 0).all()
    z = torch.randn(1, 3, 200, 200, dtype=torch.float64)
    rgb = actmax.decorrelated_to_rgb(z)
    torch.testing.assert_close(actmax.rgb_to_decorrelated(rgb), z)
    cov = torch.cov(rgb.flatten(2)[0])  # white z → RGB correlated as M Mᵀ (the measured ImageNet correlation)
    torch.testing.assert_close(cov, (M @ M.T).double(), atol=0.01, rtol=0.05)
    correlated = (torch.linalg.cholesky((M @ M.T).double()) @ torch.randn(3, 40000, dtype=torch.float64))
    white = actmax.rgb_to_decorrelated(correlated.view(1, 3, 200, 200))
    torch.testing.assert_close(torch.cov(white.flatten(2)[0]), torch.eye(3, dtype=torch.float64), atol=0.03, rtol=0)


@pytest.mark.parametrize("fourier, decorrelate", [(False, False), (True, False), (False, True), (True, True)])
def test_every_parameterization_is_inverted_by_from_image(fourier, decorrelate):
    param = actmax.Parameterization(fourier, decorrelate)
    p = param.random(2, (3, 12, 9), 0.1, torch.Generator().manual_seed(0)).double()
    x = param.to_image(p, 12, 9)
    assert x.shape == (2, 3, 12, 9)
    torch.testing.assert_close(param.to_image(param.from_image(x), 12, 9), x)
    if not fourier and not decorrelate:
        assert torch.equal(x, p)


# --- transformations --------------------------------------------------------------------------------------------


def test_jitter_by_k_is_a_shift_and_mirrors_the_border():
    x = torch.arange(64.0).view(1, 1, 8, 8)
    moved = actmax.shift(x, 2, -3)  # down 2, left 3
    torch.testing.assert_close(moved[..., 2:, :5], x[..., :6, 3:])
    torch.testing.assert_close(moved[..., 0, :5], x[..., 2, 3:])  # the mirrored row above the top
    assert torch.equal(actmax.shift(x, 0, 0), x)


def test_rescale_zooms_about_the_centre_and_rotate_turns_counter_clockwise():
    ramp = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 1, 8, 8)
    zoomed = actmax.rescale(ramp, 2.0)  # twice as large: the ramp's slope halves, the centre 3.5 stays
    torch.testing.assert_close(zoomed[0, 0, 3], 3.5 + 0.5 * (torch.arange(8.0) - 3.5))
    torch.testing.assert_close(actmax.rescale(ramp, 1.0), ramp)
    x = torch.rand(2, 3, 9, 9)
    torch.testing.assert_close(actmax.rotate(x, 90), torch.rot90(x, 1, (2, 3)), atol=1e-5, rtol=0)
    torch.testing.assert_close(actmax.rotate(x, -90), torch.rot90(x, -1, (2, 3)), atol=1e-5, rtol=0)
    torch.testing.assert_close(actmax.rotate(x, 0), x)
    disc = ((torch.arange(21.0) - 10).view(-1, 1) ** 2 + (torch.arange(21.0) - 10) ** 2 <= 16).float()[None, None]
    torch.testing.assert_close(actmax.rotate(disc, 37), disc, atol=0.6, rtol=0)  # a disc is turned into itself
    assert actmax.rotate(disc, 37).sum() == pytest.approx(float(disc.sum()), rel=0.05)


def test_robustness_draws_every_shift_in_range_repeatably_and_switches_off():
    rob = actmax.Robustness(jitter=2, scale=(0.9, 1.1), rotate=10)
    draws = [rob.sample(torch.Generator().manual_seed(0)) for _ in range(2)]
    assert draws[0] == draws[1]
    gen = torch.Generator().manual_seed(1)
    many = [rob.sample(gen) for _ in range(500)]
    assert {d[0] for d in many} == {-2, -1, 0, 1, 2} == {d[1] for d in many}
    assert all(0.9 <= d[2] <= 1.1 and -10 <= d[3] <= 10 for d in many)
    off = actmax.Robustness().sample(gen)
    assert off == (0, 0, 1.0, 0.0)
    x = torch.rand(1, 3, 10, 10)
    assert torch.equal(actmax.transform(x, *off), x)


# --- objectives -------------------------------------------------------------------------------------------------


def test_objectives_read_a_unit_a_channel_mean_and_a_logit():
    out = torch.arange(2 * 3 * 3 * 3, dtype=torch.float32).view(2, 3, 3, 3)
    assert torch.equal(actmax.objective(out, 1), out[:, 1, 1, 1])
    assert torch.equal(actmax.objective(out, 2, "channel"), out[:, 2].mean((1, 2)))
    logits = torch.tensor([[1.0, 5.0], [2.0, -1.0]])
    assert torch.equal(actmax.objective(logits, 1), torch.tensor([5.0, -1.0]))


def test_diversity_is_one_for_copies_and_zero_for_images_seen_by_different_channels():
    a = torch.rand(1, 4, 5, 5)
    assert actmax.diversity(torch.cat([a, a, 2 * a])).item() == pytest.approx(1.0, abs=1e-6)
    b = torch.zeros(2, 2, 3, 3)
    b[0, 0] = 1.0  # image 0 lights channel 0 only, image 1 channel 1 only: their Gram matrices are orthogonal
    b[1, 1] = 1.0
    assert actmax.diversity(b).item() == pytest.approx(0.0, abs=1e-7)


# --- the climb --------------------------------------------------------------------------------------------------


def _tiny_classifier():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(8, 8, 3, padding=1),
                          nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    return model.eval()


@pytest.mark.parametrize("fourier, decorrelate, robust", [(True, True, True), (False, False, False)])
def test_the_climb_raises_the_objective_well_above_random_inputs(fourier, decorrelate, robust):
    model = _tiny_classifier()
    kw = dict(param=actmax.Parameterization(fourier, decorrelate),
              robustness=actmax.ROBUST if robust else actmax.Robustness(), steps=60, lr=0.05, seed=3)
    v = actmax.visualize(model, "6", 2, (3, 32, 32), **kw)
    assert v.images.shape == (1, 3, 32, 32) and v.images.min() >= 0 and v.images.max() <= 1
    with torch.no_grad():
        found = model(v.images)[0, 2]
        random = model(torch.rand(256, 3, 32, 32))[:, 2]
    assert found > random.max() + 3 * random.std()
    assert v.objective[-1] > v.objective[0]
    assert isinstance(v, actmax.Visualization) and len(v.objective) == 60  # the objective at every step
    again = actmax.visualize(model, "6", 2, (3, 32, 32), **kw)
    assert torch.equal(again.images, v.images)  # seeded
    assert all(p.grad is None for p in model.parameters())
    assert all(len(m._forward_hooks) == 0 for m in model.modules())


def test_channel_objective_with_diversity_and_yosinski_regularizers():
    model = _tiny_classifier()
    reg = actmax.Regularizers(decay=0.001, blur_every=8, blur_width=0.5, norm_pct=5, contrib_pct=5)
    v = actmax.visualize(model, "1", 5, (3, 24, 24), kind="channel", reg=reg, batch=3, diversity_weight=1.0,
                         steps=60, seed=0)
    assert v.images.shape == (3, 3, 24, 24)
    with torch.no_grad():
        found = model[:2](v.images)[:, 5].mean((1, 2))  # (3,)
        random = model[:2](torch.rand(256, 3, 24, 24))[:, 5].mean((1, 2))
    assert found.min() > random.max()
    assert not torch.equal(v.images[0], v.images[1])


# --- recognisability --------------------------------------------------------------------------------------------


class _Checkerboard(nn.Module):
    """Class 1's logit is 40 × the image's correlation with a one-pixel checkerboard: a 'fooling' detector
    tuned to one exact pixel grid; class 0's logit is 0."""

    def __init__(self, size: int):
        super().__init__()
        i = torch.arange(size)
        self.register_buffer("board", ((i.view(-1, 1) + i) % 2 * 2 - 1.0).expand(3, size, size).clone())
        self.scale = nn.Parameter(torch.tensor(40.0 / (3 * size * size)))

    def forward(self, x):
        s = self.scale * (x - 0.5).mul(self.board).flatten(1).sum(1)
        return torch.stack([torch.zeros_like(s), s], 1)


def test_a_fooling_pattern_loses_its_class_under_transformations_and_a_constant_image_keeps_it():
    model = _Checkerboard(32).eval()
    board = (model.board[None] + 1) / 2  # (1, 3, 32, 32) in {0, 1}
    p = actmax.class_probability(model, board, 1)
    torch.testing.assert_close(p, torch.sigmoid(torch.tensor([20.0])))
    moved = actmax.transformed_probability(model, board, 1, n=32, seed=0)
    assert p.item() > 0.99 and moved.item() < 0.75
    grey = torch.full((2, 3, 32, 32), 0.7)  # every transformation of a constant image is the same image
    torch.testing.assert_close(actmax.transformed_probability(model, grey, [0, 1]),
                               actmax.class_probability(model, grey, [0, 1]))
    half = actmax.class_probability(model, grey, 0, preprocess=lambda x: x * 0)
    torch.testing.assert_close(half, torch.full((2,), 0.5))


class _FixedJudge(nn.Module):
    """A judge whose logits are fixed (log 1, log 2, log 4, log 8 → p = 1/15, 2/15, 4/15, 8/15); it keeps the input
    it was given, to check the resizing and the scaling."""

    input_size, input_mean, input_std = 12, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)

    def __init__(self):
        super().__init__()
        self.register_buffer("where", torch.zeros(1))  # a buffer tells the judge's device

    def forward(self, x):
        self.seen = x.clone()
        return torch.log(torch.tensor([1.0, 2.0, 4.0, 8.0])).expand(len(x), 4)


def test_independent_probability_gives_the_judges_probability_rank_and_top1():
    judge = _FixedJudge().eval()
    images = torch.full((3, 3, 20, 30), 0.75)  # resized to 12 × 18, cut to its central 12 × 12
    j = actmax.independent_probability(images, [3, 0, 2], judge)
    assert isinstance(j, actmax.Judgement)
    torch.testing.assert_close(j.probability, torch.tensor([8.0, 1.0, 4.0]) / 15)
    assert j.rank.tolist() == [1, 4, 2] and j.top1.tolist() == [3, 3, 3]
    torch.testing.assert_close(j.top1_probability, torch.full((3,), 8 / 15))
    assert judge.seen.shape == (3, 3, 12, 12)
    torch.testing.assert_close(judge.seen, torch.full((3, 3, 12, 12), 1.0))  # (0.75 − 0.5) / 0.25
    # a judge without input_size sees the images at their own size, unscaled
    plain = _FixedJudge().eval()
    plain.input_size, plain.input_mean, plain.input_std = None, (0.0,), (1.0,)
    actmax.independent_probability(images[:1], 1, plain, batch_size=1)
    torch.testing.assert_close(plain.seen, images[:1])


@pytest.fixture(scope="module")
def lite2():
    from cnnlib import pretrained

    return pretrained.efficientnet_lite2(device="cpu")


def test_independent_judge_knows_photos_and_rejects_noise_speckle_and_lite0s_fooling_images(lite2):
    from cnnlib import pretrained
    from cnnlib.photos import load_photo

    names = pretrained.imagenet_classes()
    cat, espresso = names.index("Egyptian cat"), names.index("espresso")
    # Photos of the class at the renders' 128 pixels: the judge's top-1, with probability > 0.3
    # (measured: chelsea 0.65, coffee 0.40; at full size 0.62 and 0.89).
    for name, c in (("chelsea", cat), ("coffee", espresso)):
        j = actmax.independent_probability(load_photo(name, size=128)[None], c, lite2)
        assert j.rank.item() == 1 and j.probability.item() > 0.3, (name, j)
    # White noise and a coloured speckle of 4 × 4 squares: no class of the three above 0.01, no top-1 above 0.5.
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(3, 3, 128, 128, generator=g)
    speckle = F.interpolate(torch.rand(3, 3, 32, 32, generator=g), scale_factor=4, mode="nearest")
    targets = [names.index(c) for c in ("goldfinch", "espresso", "zebra")]
    for x in (noise, speckle):
        j = actmax.independent_probability(x, targets, lite2)
        assert (j.probability < 0.01).all() and (j.top1_probability < 0.5).all(), j
    # Lite0's fooling images (climbed without transformation robustness): certain for Lite0, noise for the judge.
    lite0 = pretrained.efficientnet_lite0(device="cpu")
    fooling = [f"class-no_robustness-{c}.png" for c in ("goldfinch", "king_penguin", "zebra")]
    x = torch.stack([actmax.load_render(f) for f in fooling])
    c = torch.tensor([names.index(n) for n in ("goldfinch", "king penguin", "zebra")])
    assert (actmax.class_probability(lite0, x, c) > 0.99).all()
    j = actmax.independent_probability(x, c, lite2)
    assert (j.probability < 0.01).all() and (j.rank > 50).all(), j  # measured: ranks 101, 353, 396


# --- bad input ----------------------------------------------------------------------------------------------------

_M = ZFNetSmall().eval()
_T = _tiny_classifier()
_X = torch.rand(1, 3, 8, 8)
_BAD = [
    ("gaussian_blur", lambda: actmax.gaussian_blur(torch.zeros(3, 8, 8), 1.0), ValueError),
    ("gaussian_blur", lambda: actmax.gaussian_blur(torch.zeros(1, 1, 8, 8, dtype=torch.uint8), 1.0), TypeError),
    ("gaussian_blur", lambda: actmax.gaussian_blur(_X, -1.0), ValueError),
    ("gaussian_blur", lambda: actmax.gaussian_blur(_X, float("nan")), ValueError),
    ("regularize", lambda: actmax.regularize(_X, torch.rand(1, 3, 4, 4), 1, actmax.Regularizers()), ValueError),
    ("regularize", lambda: actmax.regularize(_X, _X, 0, actmax.Regularizers()), ValueError),
    ("regularize", lambda: actmax.regularize(_X, _X, 1, {"decay": 0.1}), TypeError),
    ("regularize", lambda: actmax.regularize(_X * float("nan"), _X, 1, actmax.Regularizers()), ValueError),
    ("Regularizers", lambda: actmax.Regularizers(norm_pct=120), ValueError),
    ("Regularizers", lambda: actmax.Regularizers(decay=1.0), ValueError),
    ("maximize", lambda: actmax.maximize(_M, "conv9", 0, (1, 28, 28), steps=1), ValueError),
    ("maximize", lambda: actmax.maximize(_M, "fc8", 10, (1, 28, 28), steps=1), ValueError),
    ("maximize", lambda: actmax.maximize(_M, ["fc8"], 0, (1, 28, 28), steps=1), TypeError),
    ("maximize", lambda: actmax.maximize(_M, "fc8", 0, (1, 28, 28), steps=0), ValueError),
    ("maximize", lambda: actmax.maximize(_M, "fc8", 0, (28, 28), steps=1), ValueError),
    ("maximize", lambda: actmax.maximize(_M, "fc8", 0, (1, 28, 28), steps=1, lr=-1.0), ValueError),
    ("maximize", lambda: actmax.maximize(_M, "fc8", 0, (1, 28, 28), steps=1, bounds=(1, 0)), ValueError),
    ("maximize", lambda: actmax.maximize(_M, "fc8", -1, (1, 28, 28), steps=1), ValueError),
    ("maximize", lambda: actmax.maximize(nn.ReLU(), "0", 0, (1, 28, 28), steps=1), ValueError),
    ("maximize", lambda: actmax.maximize(ZFNetSmall().train(), "fc8", 0, (1, 28, 28), steps=1), ValueError),
    ("unit_activation", lambda: actmax.unit_activation(_M, "fc8", 0, torch.rand(1, 28, 28)), ValueError),
    ("unit_activation", lambda: actmax.unit_activation(_M, "fc8", 0, torch.rand(1, 1, 28, 28).double()),
     TypeError),
    ("fourier_scale", lambda: actmax.fourier_scale(0, 8), ValueError),
    ("fourier_scale", lambda: actmax.fourier_scale(8, 2.5), TypeError),
    ("fourier_to_image", lambda: actmax.fourier_to_image(torch.zeros(1, 3, 8, 5, 2), 8, 10), ValueError),
    ("fourier_to_image", lambda: actmax.fourier_to_image(torch.zeros(1, 3, 8, 5), 8, 8), ValueError),
    ("image_to_fourier", lambda: actmax.image_to_fourier(torch.zeros(3, 8, 8)), ValueError),
    ("decorrelated_to_rgb", lambda: actmax.decorrelated_to_rgb(torch.zeros(1, 1, 8, 8)), ValueError),
    ("rgb_to_decorrelated", lambda: actmax.rgb_to_decorrelated(torch.zeros(1, 4, 8, 8)), ValueError),
    ("rgb_to_decorrelated", lambda: actmax.rgb_to_decorrelated(torch.zeros(1, 3, 8, 8, dtype=torch.int64)),
     TypeError),
    ("shift", lambda: actmax.shift(_X, 8, 0), ValueError),
    ("shift", lambda: actmax.shift(_X, 1.5, 0), TypeError),
    ("shift", lambda: actmax.shift(torch.zeros(0, 3, 8, 8), 1, 0), ValueError),
    ("rescale", lambda: actmax.rescale(_X, 0.0), ValueError),
    ("rescale", lambda: actmax.rescale(_X, "2"), TypeError),
    ("rotate", lambda: actmax.rotate(_X, float("inf")), ValueError),
    ("rotate", lambda: actmax.rotate(_X[0], 10), ValueError),
    ("Robustness", lambda: actmax.Robustness(jitter=-1), ValueError),
    ("Robustness", lambda: actmax.Robustness(scale=(1.1, 0.9)), ValueError),
    ("objective", lambda: actmax.objective(torch.zeros(2, 5), 1, "channel"), ValueError),
    ("objective", lambda: actmax.objective(torch.zeros(2, 5), 5), ValueError),
    ("objective", lambda: actmax.objective(torch.zeros(2, 5), 1, "logit"), ValueError),
    ("objective", lambda: actmax.objective([1.0, 2.0], 1), TypeError),
    ("diversity", lambda: actmax.diversity(torch.zeros(1, 3, 4, 4)), ValueError),
    ("diversity", lambda: actmax.diversity(torch.zeros(2, 3)), ValueError),
    ("visualize", lambda: actmax.visualize(_T, "6", 2, (1, 16, 16), steps=1), ValueError),
    ("visualize: the model cannot take images of shape \\(1, 1, 16, 16\\): .*to have 3 channels",
     lambda: actmax.visualize(_T, "6", 2, (1, 16, 16), steps=1, param=actmax.Parameterization(decorrelate=False)),
     ValueError),
    ("maximize: the model cannot take an input of shape \\(1, 16, 16\\): .*to have 3 channels",
     lambda: actmax.maximize(_T, "6", 2, (1, 16, 16), steps=1), ValueError),
    ("visualize", lambda: actmax.visualize(_T, "6", 2, (3, 16, 16), steps=1, diversity_weight=1.0), ValueError),
    ("visualize", lambda: actmax.visualize(_T, "6", 2, (3, 16, 16), steps=1, kind="mean"), ValueError),
    ("visualize", lambda: actmax.visualize(_T, "6", 2, (3, 16, 16), steps=1, kind="channel"), ValueError),
    ("visualize", lambda: actmax.visualize(_T, "6", 4, (3, 16, 16), steps=1), ValueError),
    ("visualize: layer '6' has 4 units, got channel=4", lambda: actmax.visualize(_T, "6", 4, (3, 16, 16), steps=1),
     ValueError),
    ("objective: the layer has 5 units, got channel=5", lambda: actmax.objective(torch.zeros(2, 5), 5), ValueError),
    ("visualize", lambda: actmax.visualize(_T, "nope", 0, (3, 16, 16), steps=1), ValueError),
    ("visualize", lambda: actmax.visualize(_T, "6", 0, (3, 16, 16), steps=1, param="fourier"), TypeError),
    ("visualize", lambda: actmax.visualize(_T, "6", 0, (3, 16, 16), steps=1, batch=0), ValueError),
    ("visualize", lambda: actmax.visualize(_T, "6", 0, (3, 16, 16), steps=1, lr=0), ValueError),
    ("visualize", lambda: actmax.visualize("model", "6", 0, (3, 16, 16), steps=1), TypeError),
    ("class_probability", lambda: actmax.class_probability(_T, _X, [0, 1]), ValueError),
    ("class_probability", lambda: actmax.class_probability(_T, _X, 0.5), ValueError),
    ("class_probability", lambda: actmax.class_probability(_T, _X[0], 0), ValueError),
    ("class_probability", lambda: actmax.class_probability(_T, _X, 9), ValueError),
    ("transformed_probability", lambda: actmax.transformed_probability(_T, _X, 0, n=0), ValueError),
    ("transformed_probability", lambda: actmax.transformed_probability(_T, _X.byte(), 0), TypeError),
    ("transformed_probability", lambda: actmax.transformed_probability(_T, _X, 0, robustness=(8, 1, 10)),
     TypeError),
    ("independent_probability", lambda: actmax.independent_probability(_X, 0, "lite2"), TypeError),
    ("independent_probability", lambda: actmax.independent_probability(_X, 0, ZFNetSmall().train()),
     ValueError),
    ("independent_probability", lambda: actmax.independent_probability(_X[0], 0, _T), ValueError),
    ("independent_probability", lambda: actmax.independent_probability(_X.byte(), 0, _T), TypeError),
    ("independent_probability", lambda: actmax.independent_probability(_X * 255, 0, _T), ValueError),
    ("independent_probability", lambda: actmax.independent_probability(_X, [0, 1], _T), ValueError),
    ("independent_probability", lambda: actmax.independent_probability(_X, 4, _T), ValueError),
    ("independent_probability", lambda: actmax.independent_probability(_X, 0, _T, batch_size=0), ValueError),
    ("independent_probability", lambda: actmax.independent_probability(torch.rand(1, 1, 12, 12), 0,
                                                                      _FixedJudge().eval()), ValueError),
]


@pytest.mark.parametrize("fn, call, error", _BAD, ids=[f"{i}-{b[0]}" for i, b in enumerate(_BAD)])
def test_bad_input_raises_a_clear_error_naming_the_function(fn, call, error):
    with pytest.raises(error, match=f"^{fn}"):
        call()


# --- shipped renders ----------------------------------------------------------------------------------------------


def test_renders_load_after_their_checksum_and_refuse_a_corrupted_file(tmp_path):
    from PIL import Image

    img = (torch.rand(3, 6, 5) * 255).round().to(torch.uint8)
    Image.fromarray(img.permute(1, 2, 0).numpy()).save(tmp_path / "class-x.png")
    (tmp_path / "results.json").write_text('{"images": {}}')
    with pytest.raises(FileNotFoundError, match="^load_render: .*MANIFEST.json is missing"):
        actmax.load_render("class-x.png", tmp_path)
    actmax.write_render_manifest(tmp_path)
    torch.testing.assert_close(actmax.load_render("class-x.png", tmp_path), img.float() / 255)
    assert actmax.render_results(tmp_path) == {"images": {}}
    with pytest.raises(ValueError, match="^load_render: 'class-y.png' is not in"):
        actmax.load_render("class-y.png", tmp_path)
    data = bytearray((tmp_path / "class-x.png").read_bytes())
    data[-20] ^= 0xFF
    (tmp_path / "class-x.png").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="^load_render: .* does not match"):
        actmax.load_render("class-x.png", tmp_path)
    (tmp_path / "MANIFEST.json").write_text("{not json")
    with pytest.raises(ValueError, match="^render_results: .* is corrupted"):
        actmax.render_results(tmp_path)


def test_the_shipped_renders_match_their_manifest():
    manifest = json.loads((actmax.RENDER_DIR / "MANIFEST.json").read_text())
    assert "results.json" in manifest and any(name.startswith("class-all_on-") for name in manifest)
    for name in manifest:
        if name.endswith(".png"):
            assert actmax.load_render(name).shape == (3, 128, 128)


def test_contribution_clipping_adds_nothing_at_the_norm_clippings_percentile_and_acts_above_it():
    torch.manual_seed(0)
    x, grad = torch.randn(1, 3, 10, 10), torch.randn(1, 3, 10, 10)
    norm_only = actmax.regularize(x, grad, 1, actmax.Regularizers(norm_pct=20))
    both = actmax.regularize(x, grad, 1, actmax.Regularizers(norm_pct=20, contrib_pct=20))
    assert torch.equal(both, norm_only) and int((norm_only[0, 0] == 0).sum()) == 20
    more = actmax.regularize(x, grad, 1, actmax.Regularizers(norm_pct=20, contrib_pct=40))
    assert int((more[0, 0] == 0).sum()) == 40


# --- shipped climbs on ZFNet-small (chapter 9) ---------------------------------------------------------------------


def test_the_shipped_zfnet_climbs_load_and_are_what_their_script_would_climb():
    shipped = actmax.load_shipped_climbs()
    assert list(shipped["found"]) == ["no regularizer", "decay", "decay + blur", "all four"]
    assert all(isinstance(r, actmax.Regularizers) for r in shipped["settings"].values())
    assert (shipped["steps"], shipped["lr"], shipped["bounds"]) == (200, 0.05, (0.0, 1.0))
    for results in shipped["found"].values():
        assert len(results) == 10 and all(r.image.shape == (1, 28, 28) and len(r.activations) == 200 for r in results)
        assert all(0 <= float(r.image.min()) and float(r.image.max()) <= 1 for r in results)
    top = shipped["conv5"]["top"]
    assert top.values.shape == (64, 9) and top.image_index.shape == (64, 9) and top.position.shape == (64, 9, 2)
    assert shipped["conv5"]["maps"] == top.values[:, 0].topk(6).indices.tolist()
    # one climb again, a few steps: the shipped curve starts where a fresh climb starts (independent of the file)
    from cnnlib import pretrained

    model = pretrained.load("zfnet-small-fashion", device=torch.device("cpu"))
    reg = shipped["settings"]["all four"]
    again = actmax.maximize(model, "fc8", 5, (1, 28, 28), reg, steps=3, lr=0.05, bounds=(0, 1))
    assert again.activations == pytest.approx(shipped["found"]["all four"][5].activations[:3], rel=1e-4)


def test_the_shipped_zfnet_climbs_are_refused_when_changed_or_made_on_another_snapshot(tmp_path):
    import shutil

    for name in ("MANIFEST.json", actmax.ZFNET_CLIMBS):
        shutil.copy(actmax.RENDER_DIR / name, tmp_path / name)
    assert actmax.load_shipped_climbs(tmp_path)["steps"] == 200
    manifest = json.loads((tmp_path / "MANIFEST.json").read_text())
    (rel,) = manifest[actmax.ZFNET_CLIMBS]["snapshots"]
    assert rel == "zfnet-small-fashion/epoch-064.pt"  # the snapshot pretrained.load gives by default
    manifest[actmax.ZFNET_CLIMBS]["snapshots"][rel] = "0" * 64
    (tmp_path / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="^load_shipped_climbs: .* other snapshots than those here "
                                         r"\(zfnet-small-fashion/epoch-064.pt\); .*climb_zfnet_small"):
        actmax.load_shipped_climbs(tmp_path)
    del manifest[actmax.ZFNET_CLIMBS]["snapshots"]
    (tmp_path / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="^load_shipped_climbs: .* does not record the snapshots"):
        actmax.load_shipped_climbs(tmp_path)
    shutil.copy(actmax.RENDER_DIR / "MANIFEST.json", tmp_path / "MANIFEST.json")
    data = bytearray((tmp_path / actmax.ZFNET_CLIMBS).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / actmax.ZFNET_CLIMBS).write_bytes(bytes(data))
    with pytest.raises(ValueError, match="^load_shipped_climbs: .* does not match .*climb_zfnet_small"):
        actmax.load_shipped_climbs(tmp_path)
    (tmp_path / actmax.ZFNET_CLIMBS).unlink()
    with pytest.raises(FileNotFoundError, match="^load_shipped_climbs: .* is missing"):
        actmax.load_shipped_climbs(tmp_path)


def test_write_render_manifest_keeps_the_entries_of_other_shipped_files(tmp_path):
    from cnnlib import snapshots

    (tmp_path / "climbs.pt").write_bytes(b"climbs")
    snapshots.record_in_manifest(tmp_path, "climbs.pt", model="abc")
    (tmp_path / "results.json").write_text("{}")
    actmax.write_render_manifest(tmp_path)
    manifest = json.loads((tmp_path / "MANIFEST.json").read_text())
    assert manifest["climbs.pt"]["model"] == "abc" and "results.json" in manifest
    (tmp_path / "climbs.pt").unlink()  # a file no longer there loses its entry
    actmax.write_render_manifest(tmp_path)
    assert "climbs.pt" not in json.loads((tmp_path / "MANIFEST.json").read_text())
