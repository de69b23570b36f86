"""First-layer filter measures: Gabor fits, dead filters, frequency bands, grid artefacts."""

import math

import numpy as np
import pytest
import torch

from cnnlib import filters, models
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


def _dct_matrix(k):
    """Orthonormal DCT-II basis written out (an independent reference for scipy.fft.dctn)."""
    n = np.arange(k)
    m = np.cos(np.pi * (2 * n[None, :] + 1) * n[:, None] / (2 * k)) * math.sqrt(2 / k)
    m[0] /= math.sqrt(2)
    return m


def test_measures_against_references_and_known_cases():
    rng = np.random.default_rng(5)
    w = rng.standard_normal((4, 3, 7, 7))
    ch = filters.filter_character(torch.from_numpy(w).float())
    assert isinstance(ch, filters.FilterCharacter) and len(ch.kind) == 4 and set(ch.kind) <= set(filters.KINDS)
    means = w.mean((2, 3))
    np.testing.assert_allclose(ch.flat, 49 * (means ** 2).sum(1) / (w ** 2).sum((1, 2, 3)), rtol=1e-5)
    D = _dct_matrix(7)
    power = np.stack([sum((D @ (w[f, c] - means[f, c]) @ D.T) ** 2 for c in range(3)) for f in range(4)])
    low = [(0, 1), (1, 0), (1, 1), (0, 2), (2, 0)]  # u² + v² ≤ 4, DC excluded
    np.testing.assert_allclose(ch.smooth, [sum(p[i] for i in low) / p.sum() for p in power], rtol=1e-5)
    # the coherence against skimage's structure tensor, filter by filter and channel by channel
    from skimage.feature import structure_tensor

    S = w - means[:, :, None, None]
    for f in range(4):
        jyy, jxy, jxx = (sum(float(structure_tensor(S[f, c], sigma=0.5, mode="reflect", order="rc")[i].sum())
                             for c in range(3)) for i in range(3))
        eig = np.linalg.eigvalsh(np.array([[jxx, jxy], [jxy, jyy]]))
        assert ch.coherence[f] == pytest.approx((eig[1] - eig[0]) / (eig[1] + eig[0]), rel=1e-5)
    # a vertical step: gradient along x only, so the structure tensor is diagonal and κ = 1 exactly
    step = np.where(np.arange(7) < 3, -1.0, 1.0)[None, None, None, :].repeat(7, 2)
    ch = filters.filter_character(step)
    assert ch.coherence[0] == pytest.approx(1.0) and ch.orientation[0] == pytest.approx(0.0, abs=1e-9)
    assert ch.flat[0] == pytest.approx(1 / 49)  # (3·(−1) + 4·1)/7 = 1/7 per pixel: 49 · (1/7)² / 49
    assert list(ch.kind) == ["oriented"]
    # one flat colour: all energy in the means; a zero filter: unstructured
    ch = filters.filter_character(np.stack([np.full((3, 5, 5), 0.3) * np.array([1, -2, 0.5])[:, None, None],
                                            np.zeros((3, 5, 5))]))
    assert ch.flat[0] == pytest.approx(1.0) and list(ch.kind) == ["blob", "unstructured"]


@pytest.mark.parametrize("theta", [0.0, 0.4, 1.1, 2.0, 2.9])
def test_gratings_and_edges_are_oriented_with_their_orientation(theta):
    y, x = np.mgrid[0:9, 0:9] - 4.0
    d = x * math.cos(theta) + y * math.sin(theta)  # distance along the gradient direction θ
    grating = np.cos(2 * math.pi * 0.22 * d)  # an unwindowed sinusoid, not from filters.gabor
    step = np.sign(d + 0.3)
    ch = filters.filter_character(np.stack([np.stack([grating, 0.5 * grating, -0.8 * grating]),  # colour-opponent
                                            np.stack([step, step, step])]))
    assert list(ch.kind) == ["oriented", "oriented"]
    for o in ch.orientation:  # same direction, modulo π
        assert min(abs(o - theta), math.pi - abs(o - theta)) < 0.12


KIND_OF = {"gabor": "oriented", "edge": "oriented", "flat": "blob", "blob": "blob", "noise": "unstructured",
           "speckle": "unstructured"}


@pytest.mark.parametrize("size, channels", [(5, 1), (7, 3), (11, 3)])
@pytest.mark.parametrize("kind", filters.SYNTHETIC)
def test_synthetic_filters_get_their_kind(kind, size, channels):
    w = filters.synthetic_filters(kind, 200, size, channels, seed=11)
    assert w.shape == (200, channels, size, size)
    shares = filters.kind_shares(w)
    assert shares[KIND_OF[kind]] >= 0.9, shares
    if kind in ("noise", "speckle"):
        assert shares["oriented"] <= 0.08, shares


def test_random_initialisations_are_unstructured():
    for seed in range(3):
        torch.manual_seed(seed)
        for net in (models.ZFNetSmall(), ZFNetPhoto(10, 64, (7, 2)), ZFNetPhoto(10, 64, (11, 4))):
            shares = filters.kind_shares(net.features.conv1.weight)
            assert shares["unstructured"] >= 0.9, (seed, type(net).__name__, shares)


def test_the_kind_falls_apart_with_noise_and_ignores_scale():
    g = filters.synthetic_filters("gabor", 100, 7, 3, seed=2)
    rms = np.sqrt((g ** 2).mean((1, 2, 3), keepdims=True))
    rng = np.random.default_rng(0)
    clean = filters.kind_shares(g + 0.1 * rms * rng.standard_normal(g.shape))["oriented"]
    noisy = filters.kind_shares(g + 3.0 * rms * rng.standard_normal(g.shape))["oriented"]
    assert clean >= 0.95 and noisy <= 0.1
    a, b = filters.filter_character(g), filters.filter_character(-250.0 * g)
    assert list(a.kind) == list(b.kind)
    np.testing.assert_allclose(a.coherence, b.coherence, atol=1e-9)
    assert sum(a.shares().values()) == pytest.approx(1.0) and sum(a.counts().values()) == 100


def test_filter_character_thresholds_decide():
    flat_edge = np.ones((1, 3, 7, 7)) + 0.3 * np.sign(np.arange(7) - 3.0)  # a colour with a weak edge on it
    assert filters.filter_character(flat_edge).kind[0] == "blob"  # D ≈ 0.92 ≥ 0.5
    assert filters.filter_character(flat_edge, flat_min=0.95).kind[0] == "oriented"


def test_filter_character_bad_input():
    with pytest.raises(ValueError, match="filter_character: expected weights of shape"):
        filters.filter_character(np.ones((3, 5, 5)))
    with pytest.raises(ValueError, match="filter_character: expected square filters"):
        filters.filter_character(np.ones((2, 3, 5, 4)))
    with pytest.raises(ValueError, match="filter_character: expected filters of at least 3×3"):
        filters.filter_character(np.ones((2, 3, 2, 2)))
    with pytest.raises(ValueError, match=r"filter_character: expected coherence_min in \[0, 1\]"):
        filters.filter_character(np.ones((2, 3, 5, 5)), coherence_min=1.5)
    with pytest.raises(ValueError, match="synthetic_filters: expected kind in"):
        filters.synthetic_filters("stripes", 3, 5)
    with pytest.raises(TypeError, match="synthetic_filters: expected n to be an integer"):
        filters.synthetic_filters("noise", 2.5, 5)


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
