"""Occlusion sensitivity: the occluder, the maps against one-image-at-a-time and Captum, and the errors."""

import pytest
import torch
import torch.nn as nn

from cnnlib import occlusion
from cnnlib.models import ZFNetSmall


def _small_cnn(seed=0, channels=3):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(channels, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 6 * 6, 5))
    return net.double().eval()


def test_occlude_sets_the_square_and_cuts_it_at_the_border():
    x = torch.zeros(2, 6, 6)
    out = occlusion.occlude(x, (2, 3), size=3, fill=(1.0, 2.0))
    want = torch.zeros(2, 6, 6)
    want[0, 1:4, 2:5], want[1, 1:4, 2:5] = 1.0, 2.0
    assert torch.equal(out, want) and x.abs().sum() == 0  # a copy; the input is left alone
    corner = occlusion.occlude(torch.zeros(1, 6, 6), (0, 0), size=4, fill=7.0)
    assert corner[0, :2, :2].eq(7).all() and corner.sum() == 4 * 7.0
    assert occlusion.centers(28, 4).tolist() == [2, 6, 10, 14, 18, 22, 26]


@pytest.mark.parametrize("size,stride", [(4, 2), (5, 3), (12, 12)])
def test_maps_equal_running_each_occluded_image_alone(size, stride):
    model = _small_cnn()
    x = torch.randn(3, 12, 12, dtype=torch.float64)
    got = occlusion.occlusion_maps(model, x, target=2, size=size, stride=stride, fill=0.5, layer="3", channel=1,
                                   batch_size=5, progress=False)
    rows, cols = occlusion.centers(12, stride), occlusion.centers(12, stride)
    assert got.prob.shape == (len(rows), len(cols))
    for a, r in enumerate(rows.tolist()):
        for b, c in enumerate(cols.tolist()):
            xo = occlusion.occlude(x, (r, c), size, 0.5)[None]
            p = model(xo).softmax(1)[0]
            assert torch.isclose(got.prob[a, b], p[2])
            assert got.top_class[a, b] == p.argmax() and torch.isclose(got.top_prob[a, b], p.max())
            assert torch.isclose(got.feature[a, b], model[:4](xo)[0, 1].sum())
    with torch.no_grad():
        assert got.base_prob == pytest.approx(float(model(x[None]).softmax(1)[0, 2]))


class _LooksAtTopLeft(nn.Module):
    """Two logits: 0 and the sum of the top-left 4×4 pixels; the rest of the image is ignored."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        s = x[:, 0, :4, :4].sum((1, 2)) * self.scale  # (N,)
        return torch.stack([torch.zeros_like(s), s], dim=1)  # (N, 2)


def test_occluding_what_the_model_ignores_changes_nothing():
    x = torch.ones(1, 12, 12)
    maps = occlusion.occlusion_maps(_LooksAtTopLeft(), x, target=1, size=2, stride=2, progress=False)
    assert maps.base_class == 1 and maps.base_prob == pytest.approx(torch.tensor(16.0).sigmoid().item())
    touches = torch.zeros(6, 6, dtype=torch.bool)
    touches[:2, :2] = True  # squares centred at rows/columns 1 and 3 cover pixels 0..3
    assert torch.equal(maps.prob[~touches], torch.full((32,), maps.base_prob))
    assert (maps.prob[touches] < maps.base_prob).all()
    assert maps.prob[0, 0] == pytest.approx(torch.tensor(12.0).sigmoid().item())  # 4 of 16 pixels set to 0


def test_agrees_with_captum_occlusion_on_non_overlapping_squares():
    captum = pytest.importorskip("captum.attr")
    model = _small_cnn(seed=1)
    x = torch.randn(1, 3, 12, 12, dtype=torch.float64)
    ours = occlusion.occlusion_maps(model, x, target=4, size=3, stride=3, fill=0.0, progress=False)
    attr = captum.Occlusion(lambda inp: model(inp).softmax(1)).attribute(
        x, sliding_window_shapes=(3, 3, 3), strides=(3, 3, 3), baselines=0.0, target=4)  # (1, 3, 12, 12)
    # Captum: attribution at a pixel = p(x) − p(x with the square over it occluded)
    from_captum = ours.base_prob - attr[0, 0, ::3, ::3]  # one pixel per square
    torch.testing.assert_close(ours.prob, from_captum.double(), atol=1e-6, rtol=0)  # Captum sums in float32


def test_default_channel_is_the_strongest_map_and_a_dead_map_stays_zero():
    model = ZFNetSmall().eval()
    x = torch.rand(1, 1, 28, 28)
    maps = occlusion.occlusion_maps(model, x, layer="conv5", size=8, stride=7, progress=False)
    from cnnlib.models import activations
    a = activations(model, x, ["conv5"])["conv5"][0]  # (K, h, w)
    assert maps.channel == int(a.flatten(1).amax(1).argmax())
    assert maps.base_feature == pytest.approx(float(a[maps.channel].sum()), rel=1e-5)
    dead = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 26 * 26, 3)).eval()
    with torch.no_grad():
        dead[0].weight.fill_(1.0)
        dead[0].bias.fill_(-50.0)  # inputs in [0, 1]: every activation is rectified to zero
    maps = occlusion.occlusion_maps(dead, x, layer="1", channel=1, size=4, stride=4, fill=1.0, progress=False)
    assert maps.feature.abs().sum() == 0 and maps.base_feature == 0


def test_bad_input_raises_clear_errors_and_leaves_no_hook():
    model = ZFNetSmall().eval()
    x = torch.rand(1, 28, 28)
    with pytest.raises(ValueError, match=r"expected one image \(C, H, W\)"):
        occlusion.occlusion_maps(model, torch.rand(2, 1, 28, 28))
    with pytest.raises(ValueError, match="target must be a class 0..9"):
        occlusion.occlusion_maps(model, x, target=10, progress=False)
    with pytest.raises(ValueError, match="size and stride must be 1..28"):
        occlusion.occlusion_maps(model, x, size=40)
    with pytest.raises(ValueError, match="unknown layer 'conv9'"):
        occlusion.occlusion_maps(model, x, layer="conv9")
    with pytest.raises(ValueError, match="has 64 feature maps"):
        occlusion.occlusion_maps(model, x, layer="conv5", channel=64, progress=False)
    with pytest.raises(ValueError, match="fill must be one number or 1"):
        occlusion.occlusion_maps(model, x, fill=(0.1, 0.2, 0.3))
    with pytest.raises(ValueError, match=r"must return logits \(N, K\)"):
        occlusion.occlusion_maps(nn.Sequential(nn.Conv2d(1, 2, 3)), x)
    assert all(len(m._forward_hooks) == 0 for m in model.modules())


def test_several_target_classes_sum_their_probabilities():
    model = _small_cnn(seed=2)
    x = torch.randn(3, 12, 12, dtype=torch.float64)
    maps = {t: occlusion.occlusion_maps(model, x, target=t, size=4, stride=4, progress=False) for t in (0, 3, (0, 3))}
    torch.testing.assert_close(maps[(0, 3)].prob, maps[0].prob + maps[3].prob)
    assert maps[(0, 3)].target == (0, 3)
    assert maps[(0, 3)].base_prob == pytest.approx(maps[0].base_prob + maps[3].base_prob)
    with pytest.raises(ValueError, match="distinct such classes"):
        occlusion.occlusion_maps(model, x, target=(1, 1), progress=False)
    with pytest.raises(ValueError, match="target must be a class 0..4"):
        occlusion.occlusion_maps(model, x, target=(1, 7), progress=False)
