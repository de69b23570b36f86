"""First-layer filter measures: Gabor fits, dead filters, frequency bands, grid artefacts."""

import math

import numpy as np
import pytest
import torch

from cnnlib import filters
from cnnlib.models import ZFNetPhoto


def _gabor_by_loops(size, theta, freq, phase, sx, sy, x0, y0):
    """The Gabor formula written out pixel by pixel (an independent reference)."""
    out = np.zeros((size, size))
    for y in range(size):
        for x in range(size):
            xr = (x - x0) * math.cos(theta) + (y - y0) * math.sin(theta)
            yr = -(x - x0) * math.sin(theta) + (y - y0) * math.cos(theta)
            out[y, x] = math.exp(-xr * xr / (2 * sx * sx) - yr * yr / (2 * sy * sy)) * math.cos(
                2 * math.pi * freq * xr + phase)
    return out


def test_gabor_matches_the_formula():
    args = (9, 0.6, 0.18, 0.3, 1.4, 2.2, 3.7, 4.4)
    np.testing.assert_allclose(filters.gabor(*args), _gabor_by_loops(*args), rtol=1e-12, atol=1e-14)
    g = filters.gabor(7, 0.0, 0.25, 0.0, 50.0, 50.0)  # wide envelope: a grating along x, period 4 pixels
    np.testing.assert_allclose(g[3, 3], 1.0)
    np.testing.assert_allclose(g[:, 3], g[3, 3], rtol=1e-2)  # constant along y
    np.testing.assert_allclose(g[3, 5], math.cos(math.pi), atol=1e-2)  # half a period away


@pytest.mark.parametrize("colour", [(1.0,), (0.5, 0.3, -0.2), (0.4, 0.4, 0.4)])
def test_fit_recovers_a_generated_gabor(colour):
    g = filters.gabor(7, 0.7, 0.22, 0.4, 1.3, 2.0, 3.2, 2.8)
    w = np.asarray(colour)[:, None, None] * g[None] + 0.01
    fit = filters.fit_gabor(torch.from_numpy(w).float())
    assert isinstance(fit, filters.GaborFit) and fit.r2 > 0.999
    np.testing.assert_allclose(fit.model(7), w, atol=1e-3)
    assert abs(fit.freq - 0.22) < 0.01
    assert sorted([fit.sigma_x, fit.sigma_y]) == pytest.approx([1.3, 2.0], abs=0.05)


def test_fit_takes_a_colour_opponent_blob():
    blob = filters.gabor(7, 0.0, 0.0, 0.0, 1.5, 1.5)
    w = np.stack([blob, -blob, 0.2 * blob])  # red-on, green-off centre
    fit = filters.fit_gabor(w)
    assert fit.r2 > 0.999
    assert fit.colour[0] * fit.colour[1] < 0  # opponent


def test_noise_is_not_gabor_like_and_the_score_falls_with_noise():
    rng = np.random.default_rng(0)
    r2 = filters.gabor_r2(rng.standard_normal((12, 3, 7, 7)))
    assert r2.max() < 0.45 and filters.gabor_share(rng.standard_normal((6, 3, 7, 7))) == 0.0
    g = filters.gabor(7, 1.0, 0.2, 0.0, 1.5, 1.5)[None].repeat(3, 0)
    clean, noisy = (filters.fit_gabor(g + s * rng.standard_normal(g.shape)).r2 for s in (0.02, 0.3))
    assert clean > 0.97 > noisy > 0.1


def test_constant_filter_and_bad_input():
    assert filters.fit_gabor(np.ones((3, 5, 5))).r2 == 0.0
    # one flat colour has no spatial structure: not a blob, whatever its colour
    rng = np.random.default_rng(3)
    flat = np.array([0.8, -0.3, 0.5])[:, None, None] + 0.02 * rng.standard_normal((3, 7, 7))
    assert filters.fit_gabor(flat).r2 < 0.45
    with pytest.raises(ValueError, match="fit_gabor: expected"):
        filters.fit_gabor(np.ones((5, 5)))
    with pytest.raises(ValueError, match="fit_gabor: expected square filters"):
        filters.fit_gabor(np.ones((3, 5, 4)))
    with pytest.raises(ValueError, match="gabor_r2: expected"):
        filters.gabor_r2(np.ones((3, 5, 5)))


def test_dead_share():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((10, 3, 7, 7))
    w[[2, 5, 7]] *= 0.01
    np.testing.assert_array_equal(np.flatnonzero(filters.dead_mask(w)), [2, 5, 7])
    norms = filters.filter_norms(torch.from_numpy(w))  # ‖w_f‖₂ over the C·k·k weights of each filter
    np.testing.assert_allclose(norms, [np.linalg.norm(f.ravel()) for f in w], rtol=1e-6)
    assert norms.shape == (10,) and filters.filter_norms(np.full((1, 1, 3, 3), 2.0))[0] == pytest.approx(6.0)
    assert filters.dead_share(w) == pytest.approx(0.3)
    assert filters.dead_share(rng.standard_normal((10, 3, 7, 7))) == 0.0


def test_band_shares_of_gratings_and_parseval():
    flat = filters.gabor(11, 0.0, 0.0, 0.0, 2.5, 2.5)[None, None].repeat(3, 1)  # a smooth blob
    mid = filters.gabor(11, 0.3, 0.2, 0.0, 4.0, 4.0)[None, None].repeat(3, 1)
    checker = ((-1.0) ** np.add.outer(np.arange(11), np.arange(11)))[None, None]
    shares = filters.band_shares(np.concatenate([flat, mid, checker.repeat(3, 1)]))
    np.testing.assert_allclose(shares.sum(1), 1.0)
    assert shares[0, 0] > 0.9 and shares[1, 1] > 0.9 and shares[2, 2] > 0.9
    power, r = filters.radial_spectrum(mid, n=32)  # Parseval: Σ|FFT|² = n²·Σw² (zero padding keeps energy)
    np.testing.assert_allclose(power.sum() / 32 ** 2, (mid ** 2).sum(), rtol=1e-10)
    assert r.max() == pytest.approx(math.sqrt(0.5), abs=1e-12)


def test_mid_frequency_share_ignores_dead_filters():
    mid = filters.gabor(11, 0.3, 0.2, 0.0, 4.0, 4.0)[None, None].repeat(3, 1)
    dead = 1e-4 * np.ones((1, 3, 11, 11))
    assert filters.mid_frequency_share(np.concatenate([mid, mid, dead])) == pytest.approx(
        filters.band_shares(mid)[0, 1])


def test_grid_share():
    rng = np.random.default_rng(2)
    tile = rng.standard_normal((4, 4))
    periodic = np.tile(tile, (8, 8))[None]  # period 4: all energy on the grid frequencies
    assert filters.grid_share(periodic, 4) == pytest.approx(1.0)
    y, x = np.mgrid[0:32, 0:32]
    smooth = np.exp(-((x - 15.5) ** 2 + (y - 15.5) ** 2) / 50.0)[None]
    assert filters.grid_share(smooth, 4) < 1e-6
    noise = rng.standard_normal((200, 32, 32))
    assert filters.grid_share(noise, 4) == pytest.approx(15 / 1023, rel=0.15)
    with pytest.raises(ValueError, match="grid_share: expected H and W multiples"):
        filters.grid_share(noise[:, :30], 4)


def test_layer2_projections_are_input_gradients():
    torch.manual_seed(0)
    model = ZFNetPhoto(10, 32, (7, 2), (4, 6, 4, 4, 4), 8, conv1_scale=1.0).eval()
    x = torch.randn(3, 3, 32, 32)
    p = filters.layer2_projections(model, x, units=2)
    assert p.shape == (6, 3, 32, 32)
    # reference: the gradient of channel 1's centre unit of conv2 for image 2, through the layers by hand
    f = model.features
    xi = x[2:3].clone().requires_grad_(True)
    a = f.conv2(f.norm1(f.pool1(f.relu1(f.conv1(xi)))))
    a[0, 1, a.shape[2] // 2, a.shape[3] // 2].backward()
    torch.testing.assert_close(p[2 * 2 + 1], xi.grad[0])


def test_filter_images_and_banks():
    w = torch.zeros(2, 1, 5, 5)
    w[0, 0, 2, 2], w[1, 0, 0, 0] = 2.0, -4.0
    img = filters.filter_images(w, px=64)
    assert img.shape == (2, 3, 65, 65)  # 5 · ⌈64/5⌉: each weight a 13×13 square
    assert float(img[0, 0, 26:39, 26:39].min()) == 1.0 and float(img[0, 1, 0, 0]) == 0.5  # +max → white, 0 → gray
    assert float(img[1, 2, :13, :13].max()) == 0.0  # −max → black
    torch.testing.assert_close(img[:, 0], img[:, 2])  # gray: R = G = B
    fig = filters.plot_filter_banks({"a": torch.randn(16, 3, 7, 7), "b": w}, ncols=8, px=64)
    assert len(fig.axes) == 2 and fig.get_figwidth() * fig.dpi >= 8 * 64
    fig = filters.plot_filter_banks({"a": torch.randn(4, 3, 11, 11), "b": torch.randn(4, 3, 7, 7)}, ncols=4,
                                    side_by_side=True)
    assert fig.axes[0].get_position().x1 <= fig.axes[1].get_position().x0
    with pytest.raises(ValueError, match="filter_images: expected 1 or 3 channels"):
        filters.filter_images(torch.zeros(2, 2, 3, 3))
    import matplotlib.pyplot as plt
    plt.close("all")


def test_strongest_projections_match_one_unit_at_a_time():
    torch.manual_seed(1)
    model = ZFNetPhoto(10, 32, (7, 2), (4, 5, 4, 4, 4), 8, conv1_scale=1.0).eval()
    x = torch.randn(6, 3, 32, 32)
    proj, values = filters.strongest_projections(model, x, "conv2", per_unit=2)
    assert proj.shape == (5, 2, 3, 32, 32) and values.shape == (5, 2)
    from cnnlib.models import activations
    a = activations(model, x, ["conv2"])["conv2"]
    centre = a[:, :, a.shape[2] // 2, a.shape[3] // 2]
    for c in range(5):
        best = centre[:, c].argsort(descending=True)[:2]
        torch.testing.assert_close(values[c], centre[best, c])
        for j, n in enumerate(best):
            one = filters.layer2_projections(model, x[n:n + 1], "conv2")  # all channels for image n
            torch.testing.assert_close(proj[c, j], one[c])
