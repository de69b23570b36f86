"""Sanity checks of the maps: randomization, the maps of every method, the similarity measures and their floors."""

from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn as nn
from scipy.stats import rankdata

from cnnlib import deconvnet, sanity
from cnnlib.models import ZFNetSmall


def _edge_net() -> nn.Module:
    """conv1 = four fixed edge detectors (Sobel, both signs, both directions); conv2 and fc random."""
    torch.manual_seed(0)
    sob = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    m = nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(1, 4, 3, padding=1)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(4, 16, 3, padding=1)), ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()), ("fc", nn.Linear(16 * 8 * 8, 5))]))
    with torch.no_grad():
        m.conv1.weight.copy_(torch.stack([sob, -sob, sob.T, -sob.T])[:, None])
        m.conv1.bias.zero_()
    return m.eval()


def _rectangles(n: int = 16, side: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(n, 1, side, side)
    for k in range(n):
        i, j = torch.randint(2, side // 2 - 2, (2,), generator=g).tolist()
        h, w = torch.randint(side // 4, side // 2, (2,), generator=g).tolist()
        x[k, 0, i:i + h, j:j + w] = 1.0
    return x + 0.05 * torch.randn(x.shape, generator=g)


def test_randomizing_the_top_changes_the_gradient_not_the_deconvnet():
    """Nie et al.'s point on a network built for it: above fixed edge detectors, re-initialising conv2 and fc leaves
    the deconvnet's maps alike (its switches and rectification recover the edges) and makes the gradient's new."""
    m, x = _edge_net(), _rectangles()
    random_top = sanity.cascade(m, ["fc", "conv2"], seed=1)[-1][1]
    same = {}
    for method in ("deconvnet", "gradient"):
        a, b = (sanity.attribute(net, x, method, target=0) for net in (m, random_top))
        same[method] = sanity.summarize(sanity.similarities(a, b))["spearman"][0]
    assert same["deconvnet"] > 0.4, same
    assert abs(same["gradient"]) < 0.2, same


def test_spearman_of_a_map_with_itself_is_one_and_with_noise_about_zero():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(20, 3, 64, 64, generator=g), torch.randn(20, 3, 64, 64, generator=g)
    same, noise = sanity.similarities(a, a), sanity.similarities(a, b)
    for k in sanity.MEASURES:
        np.testing.assert_allclose(same[k], 1.0, atol=1e-9)
    assert abs(noise["spearman_abs"].mean()) < 0.03 and abs(noise["spearman"].mean()) < 0.03
    assert noise["ssim"].mean() < 0.1 and abs(noise["hog"].mean()) < 0.2


def test_spearman_is_a_rank_correlation_and_a_constant_map_counts_zero():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(4, 1, 16, 16, generator=g)
    b = a ** 3 + 0.5 * torch.randn(4, 1, 16, 16, generator=g)
    for n in range(4):  # Pearson's correlation of the ranks, by hand
        ra, rb = rankdata(a[n].abs().numpy().ravel()), rankdata(b[n].abs().numpy().ravel())
        assert sanity.similarities(a, b)["spearman_abs"][n] == pytest.approx(np.corrcoef(ra, rb)[0, 1], abs=1e-12)
    monotone = sanity.similarities(a, torch.exp(a))["spearman"]
    np.testing.assert_allclose(monotone, 1.0, atol=1e-12)  # ranks only: any increasing function scores 1
    flat = sanity.similarities(a, torch.zeros_like(a))
    assert (flat["spearman_abs"] == 0).all() and (flat["hog"] == 0).all()


def test_ssim_and_hog_as_the_libraries_document():
    """skimage's own cases: SSIM of an image with itself is 1, with noise added it drops (its gallery example on
    the camera image); HOG features of a picture and its transpose differ (edges turned by 90°)."""
    from skimage import data
    from skimage.metrics import structural_similarity

    cam = torch.from_numpy(data.camera()[::4, ::4].astype(np.float64) / 255)[None, None]  # (1, 1, 128, 128)
    noisy = (cam + 0.3 * torch.randn(cam.shape, generator=torch.Generator().manual_seed(0), dtype=cam.dtype)).abs()
    s = sanity.similarities(cam, noisy)
    want = structural_similarity(cam[0, 0].numpy() / cam.max().item(), noisy[0, 0].numpy() / noisy.max().item(),
                                 data_range=1.0)
    assert s["ssim"][0] == pytest.approx(want) and s["ssim"][0] < 0.5
    assert sanity.similarities(cam, cam)["ssim"][0] == pytest.approx(1.0)
    stripes = torch.zeros(1, 1, 56, 56)
    stripes[..., ::8, :] = 1.0  # horizontal lines
    assert sanity.similarities(stripes, stripes.transpose(2, 3))["hog"][0] < 0.0
    assert sanity.similarities(stripes, stripes.roll(3, 2))["hog"][0] > 0.9  # shifted lines: same orientations


def test_edge_maps_are_sobel_magnitudes():
    from skimage.filters import sobel

    x = torch.rand(2, 3, 20, 20, generator=torch.Generator().manual_seed(0))
    e = sanity.edge_maps(x)
    assert e.shape == (2, 1, 20, 20)
    want = sum(sobel(x[1, c].double().numpy()) for c in range(3))
    np.testing.assert_allclose(e[1, 0].numpy(), want, rtol=1e-6)
    assert sanity.summarize(sanity.unrelated(e))["spearman_abs"][0] < 0.2  # two noise images: unrelated edges


def test_cascade_and_independent_share_each_layers_random_weights():
    m = ZFNetSmall().eval()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    steps = sanity.cascade(m, ["fc8", "fc7", "conv5"], seed=3)
    alone = dict(sanity.independent(m, ["fc8", "fc7", "conv5"], seed=3))
    assert [s for s, _ in steps] == ["fc8", "fc7", "conv5"]
    assert all(torch.equal(v, m.state_dict()[k]) for k, v in before.items())  # the trained model is untouched
    last = steps[-1][1].state_dict()
    for name in ("fc8", "fc7", "conv5"):
        key = f"{'classifier' if name.startswith('fc') else 'features'}.{name}.weight"
        assert torch.equal(last[key], alone[name].state_dict()[key])
        assert not torch.equal(last[key], before[key])
    assert torch.equal(last["features.conv4.weight"], before["features.conv4.weight"])
    assert torch.equal(steps[0][1].state_dict()["classifier.fc7.weight"], before["classifier.fc7.weight"])
    grouped = sanity.randomized(m, [("conv4", "conv5")], seed=0).state_dict()
    assert not torch.equal(grouped["features.conv4.weight"], before["features.conv4.weight"])
    twins = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4)).eval()  # two layers of one shape in one group
    r = sanity.randomized(twins, [("0", "1")], seed=0)
    assert not torch.equal(r[0].weight, r[1].weight)
    assert sanity.label(("a", "b", "c")) == "a…c"


def test_cascade_curve_against_a_second_implementation():
    """The cascade of the gradient map on ZFNet-small, done again by hand: each layer re-initialised with
    reset_parameters under its own seed, the gradient by autograd, Spearman by ranks (scipy.stats.rankdata)."""
    m = ZFNetSmall(widths=(8, 8, 8, 8, 8), fc_width=16).eval()
    x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    layers = ["fc8", "fc7", "fc6", "conv5", "conv4", "conv3", "conv2", "conv1"]

    def grad(net):
        xg = x.clone().requires_grad_(True)
        net(xg)[:, 2].sum().backward()
        return xg.grad[:, 0].abs().numpy()

    def rho(u, v):
        return np.mean([np.corrcoef(rankdata(a.ravel()), rankdata(b.ravel()))[0, 1] for a, b in zip(u, v)])

    ours = [sanity.summarize(sanity.similarities(sanity.attribute(m, x, "gradient", target=2),
                                                 sanity.attribute(r, x, "gradient", target=2)))["spearman_abs"][0]
            for _, r in sanity.cascade(m, layers, seed=7)]
    import copy
    net, by_hand, g0 = copy.deepcopy(m), [], grad(m)
    for i, name in enumerate(layers):
        torch.manual_seed(7 + i)
        net.layer(name).reset_parameters()
        by_hand.append(rho(g0, grad(net)))
    np.testing.assert_allclose(ours, by_hand, atol=1e-6)
    assert max(by_hand) < 0.99  # every step changed the map: the comparison is not of a map with itself


def test_unit_gradient_is_the_gradient_of_that_activation():
    m = ZFNetSmall(widths=(8, 8, 8, 8, 8), fc_width=16).eval()
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    pos = sanity.unit_at(m, x, "relu4", 5)
    a = sanity.attribute(m, x, "gradient", unit=("relu4", 5, pos))
    xg = x.clone().requires_grad_(True)
    act = m.features[:12](xg)  # conv1 … relu4
    act[torch.arange(3), 5, pos[:, 0], pos[:, 1]].sum().backward()
    torch.testing.assert_close(a, xg.grad)
    assert (act[:, 5].flatten(1).argmax(1) == pos[:, 0] * act.shape[3] + pos[:, 1]).all()


def test_guided_backprop_sees_relu6():
    """Captum hooks nn.ReLU only; a ReLU6 network (EfficientNet-Lite0) must still get guided backprop, equal to
    the same network with ReLU where no activation reaches 6."""
    torch.manual_seed(0)
    body = [nn.Conv2d(1, 6, 3, padding=1), None, nn.Conv2d(6, 6, 3, padding=1), None, nn.Flatten(),
            nn.Linear(6 * 8 * 8, 3)]
    relu = nn.Sequential(*[nn.ReLU() if b is None else b for b in body]).eval()
    relu6 = nn.Sequential(*[nn.ReLU6() if b is None else b for b in body]).eval()
    x = 0.1 * torch.randn(4, 1, 8, 8)
    g6 = sanity.attribute(relu6, x, "guided_backprop", target=1)
    torch.testing.assert_close(g6, sanity.attribute(relu, x, "guided_backprop", target=1))
    assert not torch.allclose(g6, sanity.attribute(relu6, x, "gradient", target=1))


def test_every_method_gives_a_map_of_the_image():
    m = ZFNetSmall(widths=(8, 8, 8, 8, 8), fc_width=16).eval()
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    pos = sanity.unit_at(m, x, "relu5", 1)
    for method in sanity.METHODS:
        a = sanity.attribute(m, x, method, target=[1, 4], ig_steps=4)
        assert a.shape[0] == 2 and a.shape[2:] == (28, 28) and torch.isfinite(a).all(), method
    for method in sanity.UNIT_METHODS:
        a = sanity.attribute(m, x, method, unit=("relu5", 1, pos), ig_steps=4)
        assert a.shape[0] == 2 and a.shape[2:] == (28, 28), method


def test_occlusion_map_is_the_drop_in_probability():
    from cnnlib.occlusion import occlusion_maps

    m = ZFNetSmall(widths=(8, 8, 8, 8, 8), fc_width=16).eval()
    x = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(4))
    a = sanity.attribute(m, x, "occlusion", target=3, occlusion=(7, 4))
    ref = occlusion_maps(m, x[0], 3, size=7, stride=4, progress=False)
    torch.testing.assert_close(a[0, 0, ::4, ::4], ref.base_prob - ref.prob)
    gray = sanity.attribute(m, x, "occlusion", target=3, occlusion=(7, 4, 0.3))
    ref = occlusion_maps(m, x[0], 3, size=7, stride=4, fill=0.3, progress=False)
    torch.testing.assert_close(gray[0, 0, ::4, ::4], ref.base_prob - ref.prob)


def test_bad_input_gets_clear_errors():
    m = ZFNetSmall(widths=(8, 8, 8, 8, 8), fc_width=16).eval()
    x = torch.rand(2, 1, 28, 28)
    with pytest.raises(ValueError, match="similarities: expected two stacks of maps of the same images"):
        sanity.similarities(x, torch.rand(3, 1, 28, 28))
    with pytest.raises(ValueError, match="similarities: .*NaN|similarities: .*finite"):
        sanity.similarities(x, torch.full_like(x, float("nan")))
    with pytest.raises(ValueError, match="cascade: .*eval"):
        sanity.cascade(ZFNetSmall().train(), ["fc8"])
    with pytest.raises(ValueError, match="cascade: unknown layer 'fc9'"):
        sanity.cascade(m, ["fc9"])
    with pytest.raises(TypeError, match="randomized: expected layers to be a non-empty list"):
        sanity.randomized(m, "fc8")
    with pytest.raises(ValueError, match="attribute: expected method to be one of"):
        sanity.attribute(m, x, "lime", target=0)
    with pytest.raises(ValueError, match="attribute: give either target"):
        sanity.attribute(m, x, "gradient")
    with pytest.raises(ValueError, match="attribute: method 'grad_cam' explains a class"):
        sanity.attribute(m, x, "grad_cam", unit=("relu5", 0, torch.zeros(2, 2, dtype=torch.long)))
    with pytest.raises(ValueError, match=r"attribute: expected unit positions \(2, 2\)"):
        sanity.attribute(m, x, "gradient", unit=("relu5", 0, torch.zeros(1, 2, dtype=torch.long)))
    with pytest.raises(ValueError, match="attribute: expected target to be one class or 2 classes"):
        sanity.attribute(m, x, "gradient", target=[1, 2, 3])
    with pytest.raises(ValueError, match="unit_at: unknown layer"):
        sanity.unit_at(m, x, "conv9", 0)
    gray = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()
    rgb = torch.rand(2, 3, 28, 28)  # colour images into a network that takes one channel
    with pytest.raises(ValueError, match=r"^unit_at: the model cannot take x of shape \(2, 3, 28, 28\)"):
        sanity.unit_at(gray, rgb, "0", 0)
    for method in ("gradient", "guided_backprop", "grad_cam"):
        with pytest.raises(ValueError, match=r"^attribute: the model cannot take x of shape \(2, 3, 28, 28\)"):
            sanity.attribute(gray, rgb, method, target=0, grad_cam_layer="0")
    with pytest.raises(ValueError, match=r"^attribute: the model cannot take x of shape \(2, 3, 28, 28\)"):
        sanity.attribute(gray, rgb, "gradient", unit=("0", 0, torch.zeros(2, 2, dtype=torch.long)))
    with pytest.raises(ValueError, match="unrelated: expected the maps of at least 2 images"):
        sanity.unrelated(x[:1])


def test_verdict_compares_the_fully_randomized_map_with_the_floor():
    def result(last, floor):
        return {"cascade": [{"vs_trained": {"class/x": {"spearman_abs": [last, 0.1]}}}],
                "floor_unrelated": {"class/x": {"spearman_abs": [floor, 0.1]}}}

    assert sanity.verdict(result(0.9, 0.3), "class/x") == "fails"
    assert sanity.verdict(result(0.32, 0.3), "class/x") == "passes"
    assert sanity.verdict(result(0.0, 0.3), "class/x") == "passes"
    assert sanity.verdict(result(0.95, 0.99), "class/x") == "fails"  # the same map for every image
    with pytest.raises(ValueError, match="verdict: expected one network's results holding 'class/y'"):
        sanity.verdict(result(0.0, 0.3), "class/y")


def test_shipped_networks_learnt_the_labels_they_were_given():
    """The data-randomization pair: both fit their 2,000 training labels; only the true-label one generalises."""
    from cnnlib import data
    from cnnlib.train import evaluate

    runs = sanity.shipped_runs()
    X, y = data.load_fashion_mnist("test")
    for name, lo, hi in (("zfnet-small-true-2k", 0.75, 1.0), ("zfnet-small-permuted-2k", 0.0, 0.2)):
        assert runs[name]["fit"] >= 0.99
        _, acc = evaluate(sanity.load_shipped(name, "cpu"), X[:1000], y[:1000])
        assert lo <= acc <= hi, (name, acc)
    with pytest.raises(ValueError, match="load_shipped: 'zfnet-small-shuffled-2k.pt' is not in"):
        sanity.load_shipped("zfnet-small-shuffled-2k")


def test_shipped_results_are_refused_when_made_from_another_snapshot(tmp_path, monkeypatch):
    import json
    import shutil

    shutil.copytree(sanity.DATA_DIR / "sanity", tmp_path / "sanity")
    shutil.copy(sanity.DATA_DIR / "MANIFEST.json", tmp_path / "MANIFEST.json")
    monkeypatch.setattr(sanity, "DATA_DIR", tmp_path)
    sanity.load_results()  # the copy as shipped: no error
    snaps = json.loads((tmp_path / "MANIFEST.json").read_text())
    (rel,) = json.loads((tmp_path / "sanity" / "MANIFEST.json").read_text())["maps.npz"]["snapshots"]
    snaps[rel]["sha256"] = "0" * 64  # as if ZFNet-small had been trained again
    (tmp_path / "MANIFEST.json").write_text(json.dumps(snaps))
    with pytest.raises(ValueError, match=f"load_results: .*results.json was made from other snapshots .*{rel}"):
        sanity.load_results()


def test_shipped_results_hold_every_network_step_and_map():
    results, maps = sanity.load_results()
    assert set(results) == {"zfnet-small", "photo", "efficientnet-lite0"}
    for name, r in results.items():
        S = len(r["cascade"])
        for method in sanity.METHODS:
            assert maps[f"{name}|class/{method}"].shape[0] == 1 + S
            assert set(r["cascade"][-1]["vs_trained"][f"class/{method}"]) == set(sanity.MEASURES)
        # a conv unit cannot depend on the layers above it: those steps leave its maps exactly as they were
        for step in r["cascade"]:
            if step["step"] in ("fc8", "fc7", "fc6", "fc", "head"):
                assert all(v[0] == 1 for k, m in step["vs_trained"].items() if k.startswith("unit/")
                           for v in m.values()), (name, step["step"])


@pytest.mark.parametrize("call, error, message", [
    (lambda x: sanity.captum_projection(ZFNetSmall().eval(), x, "conv2", 0, method="lrp"), ValueError,
     "captum_projection: expected method to be one of"),
    (lambda x: sanity.captum_projection(ZFNetSmall().eval(), x, "conv2", 64), ValueError,
     r"captum_projection: layer 'conv2' gives \(1, 64, 14, 14\); channel=64 is not a map of it"),
    (lambda x: sanity.captum_projection(ZFNetSmall().eval(), x, "conv9", 0), ValueError,
     "captum_projection: unknown layer 'conv9'"),
    (lambda x: sanity.captum_projection(ZFNetSmall().eval(), x.to(torch.uint8), "conv2", 0), TypeError,
     "captum_projection: expected x to be a floating-point tensor"),
    (lambda x: sanity.captum_projection(ZFNetSmall().train(), x, "conv2", 0), ValueError,
     "captum_projection: expected the model in eval mode"),
])
def test_captum_projection_checks_its_arguments(call, error, message):
    pytest.importorskip("captum")
    with pytest.raises(error, match=message):
        call(torch.rand(1, 1, 28, 28))


def test_captum_projection_handles_in_place_relus_and_relu6_and_leaves_them_so():
    pytest.importorskip("captum")
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                        nn.Conv2d(4, 5, 3), nn.ReLU6(inplace=True)).double().eval()  # in place, as torchvision's VGG
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    got = sanity.captum_projection(net, x, "4", 2)
    torch.testing.assert_close(got, deconvnet.project(net, x, "4", 2), atol=1e-10, rtol=1e-8)
    assert net[1].inplace and net[4].inplace and type(net[4]) is nn.ReLU6  # the model itself is not changed
    assert not any(m._backward_hooks or m._forward_hooks for m in net)  # Captum's hooks are gone
    six = nn.Sequential(*list(net)[:4], nn.ReLU6(), nn.Conv2d(5, 5, 1).double()).eval()  # a ReLU6 on the way
    torch.testing.assert_close(sanity.captum_projection(six, x, "5", 2), deconvnet.project(six, x, "5", 2),
                               atol=1e-10, rtol=1e-8)


def test_to_2d_sums_the_colour_channels_with_or_without_their_sign():
    m = torch.tensor([[1.0, -2.0], [0.5, 0.0]]).expand(1, 2, 2, 2).clone()
    m[0, 1] *= -1  # the second channel the negative of the first
    np.testing.assert_allclose(sanity.to_2d(m), [[[2.0, 4.0], [1.0, 0.0]]])
    np.testing.assert_allclose(sanity.to_2d(m, absolute=False), np.zeros((1, 2, 2)))
