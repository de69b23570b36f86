"""Occlusion sensitivity: the occluder, the maps against one-image-at-a-time and Captum, and the errors."""

import warnings

import pytest
import torch
import torch.nn as nn

from cnnlib import incremental, occlusion
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


@pytest.mark.parametrize("method", ["incremental", "plain"])
def test_inside_keeps_the_squares_wholly_inside_the_image(method):
    model = _small_cnn()
    x = torch.randn(3, 12, 12, dtype=torch.float64)
    kw = dict(target=2, size=5, fill=0.5, layer="3", channel=1, batch_size=5, progress=False, method=method)
    every = occlusion.occlusion_maps(model, x, stride=1, **kw)  # centres 0 … 11, squares cut at the border
    inside = occlusion.occlusion_maps(model, x, stride=3, inside=True, **kw)
    assert inside.rows.tolist() == inside.cols.tolist() == [2, 5, 8]  # squares at rows 0–4, 3–7, 6–10
    assert inside.prob.shape == ((12 - 5) // 3 + 1,) * 2
    pick = (inside.rows[:, None], inside.cols[None, :])
    for name in ("prob", "top_prob", "feature"):
        torch.testing.assert_close(getattr(inside, name), getattr(every, name)[pick])
    assert torch.equal(inside.top_class, every.top_class[pick])
    assert occlusion.centers(28, 1, inside=7).tolist() == list(range(3, 25))  # Captum's 22 windows


@pytest.mark.parametrize("method", ["incremental", "plain"])
def test_squares_that_change_no_pixel_are_skipped_and_the_maps_stay_exact(method):
    model = _small_cnn()
    x = torch.zeros(3, 12, 12, dtype=torch.float64)
    x[:, 3:7, 5:9] = torch.randn(3, 4, 4, dtype=torch.float64)  # an object on a background equal to the fill
    got = occlusion.occlusion_maps(model, x, target=1, size=3, stride=1, fill=0.0, layer="3", channel=0,
                                   batch_size=7, progress=False, method=method)
    centres = occlusion.centers(12, 1).tolist()
    changes = 0
    for a, r in enumerate(centres):
        for b, c in enumerate(centres):
            xo = occlusion.occlude(x, (r, c), 3, 0.0)[None]
            changes += not torch.equal(xo[0], x)
            p = model(xo).softmax(1)[0]
            assert torch.isclose(got.prob[a, b], p[1]) and got.top_class[a, b] == p.argmax()
            assert torch.isclose(got.top_prob[a, b], p.max())
            assert torch.isclose(got.feature[a, b], model[:4](xo)[0, 0].sum())
    assert got.computed == changes == 6 * 6  # rows 2..7 by columns 4..9 touch the object
    assert occlusion.changing_squares(x, torch.tensor([[0, 0], [4, 6], [2, 10]]), 3,
                                      torch.zeros(3, 1, 1, dtype=torch.float64)).tolist() == [False, True, False]


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
    assert isinstance(maps, occlusion.OcclusionMaps) and maps.target == 1 and maps.feature is None
    assert maps.rows.tolist() == maps.cols.tolist() == [1, 3, 5, 7, 9, 11]  # the occluders' centres
    assert (maps.top_class == 1).all() and torch.equal(maps.top_prob, maps.prob)  # class 1 wins everywhere


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


# --- incremental occlusion: the same maps as the plain path ------------------------------------------------

def _zfnet():
    torch.manual_seed(0)
    return ZFNetSmall().eval(), torch.rand(1, 28, 28), "conv2"


def _torchvision(name, layer):
    def make():
        tv = pytest.importorskip("torchvision")
        torch.manual_seed(0)
        return getattr(tv.models, name)(weights=None).eval(), torch.randn(3, 64, 64), layer
    return make


def _efficientnet():
    from cnnlib import pretrained
    try:
        model = pretrained.efficientnet_lite0(device="cpu")
    except ModuleNotFoundError as e:
        pytest.skip(str(e))
    torch.manual_seed(0)
    return model, torch.randn(3, 224, 224), "_blocks.3"


MODELS = {"zfnet-small": _zfnet, "resnet18": _torchvision("resnet18", "layer2"),
          "mobilenet_v2": _torchvision("mobilenet_v2", "features.4"), "efficientnet-lite0": _efficientnet}
# (size, stride) per model: squares cut by the border (size/2 > stride/2), overlapping and disjoint ones
GRIDS = {"zfnet-small": [(7, 1), (4, 4), (12, 5)], "resnet18": [(9, 6), (20, 16)],
         "mobilenet_v2": [(9, 6), (20, 16)], "efficientnet-lite0": [(16, 48), (60, 50)]}


def _assert_same_maps(a, b):
    torch.testing.assert_close(b.prob, a.prob, atol=1e-5, rtol=0)
    torch.testing.assert_close(b.top_prob, a.top_prob, atol=1e-5, rtol=0)
    assert ((a.top_class == b.top_class) | ((a.top_prob - b.top_prob).abs() < 1e-6)).all()
    if a.feature is not None:
        scale = a.feature.abs().max().clamp_min(1e-12)
        assert ((a.feature - b.feature).abs().max() / scale) < 1e-5


@pytest.mark.parametrize("name,size,stride", [(n, s, t) for n, grid in GRIDS.items() for s, t in grid])
def test_incremental_maps_equal_the_plain_maps(name, size, stride, monkeypatch):
    monkeypatch.setattr(incremental, "WHOLE_ABOVE", 1.01)  # windows wherever they are smaller than the map
    model, x, layer = MODELS[name]()
    kw = dict(size=size, stride=stride, fill=0.0, layer=layer, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", incremental.IncrementalFallbackWarning)  # no layer falls back
        fast = occlusion.occlusion_maps(model, x, batch_size=7, **kw)
    plain = occlusion.occlusion_maps(model, x, batch_size=7, method="plain", **kw)
    assert fast.method == "incremental" and plain.method == "plain"
    _assert_same_maps(plain, fast)
    assert fast.channel == plain.channel and fast.base_feature == plain.base_feature


@pytest.mark.parametrize("whole_above", [incremental.WHOLE_ABOVE, 1.01])  # 1.01: windows all the way down
def test_incremental_windows_are_exact_through_strides_pads_groups_and_pools(whole_above, monkeypatch):
    monkeypatch.setattr(incremental, "WHOLE_ABOVE", whole_above)
    torch.manual_seed(3)
    model = nn.Sequential(
        nn.Conv2d(2, 6, 5, stride=2, padding=3), nn.BatchNorm2d(6), nn.ReLU6(),
        nn.Conv2d(6, 6, 3, padding=2, dilation=2, groups=3), nn.ZeroPad2d((1, 0, 2, 1)),
        nn.MaxPool2d(3, 2, padding=1, ceil_mode=True), nn.Conv2d(6, 6, 3, groups=6, padding=1),
        nn.AvgPool2d(2), nn.LocalResponseNorm(3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 4)).eval()
    with torch.no_grad():
        model[1].running_mean.uniform_(-1, 1)
        model[1].running_var.uniform_(0.5, 2)
    x = torch.randn(2, 37, 41)
    for size, stride in [(3, 2), (8, 5), (15, 9)]:
        kw = dict(size=size, stride=stride, fill=0.3, layer="6", progress=False, batch_size=5)
        with warnings.catch_warnings():
            warnings.simplefilter("error", incremental.IncrementalFallbackWarning)
            fast = occlusion.occlusion_maps(model, x, **kw)
        _assert_same_maps(occlusion.occlusion_maps(model, x, method="plain", **kw), fast)


class _Flips(nn.Module):
    """A layer the incremental path cannot window (it mirrors the map: a change moves)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 3, 3, padding=1), nn.Conv2d(3, 3, 3, padding=1)
        self.fc = nn.Linear(3 * 12 * 12, 5)

    def forward(self, x):
        return self.fc(self.conv2(self.conv1(x).flip(-1)).flatten(1))


class _BranchesOnData(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.fc = nn.Linear(2 * 10 * 10, 3)

    def forward(self, x):
        y = self.conv(x)
        if y.mean() > 0:  # the branch an occluded image takes may differ: no graph can hold this
            y = -y
        return self.fc(y.flatten(1))


def test_a_layer_it_cannot_window_runs_whole_with_a_one_line_note():
    torch.manual_seed(0)
    model, x = _Flips().eval(), torch.randn(1, 12, 12)
    with pytest.warns(incremental.IncrementalFallbackWarning, match=r"flip.*whole maps") as rec:
        fast = occlusion.occlusion_maps(model, x, size=3, stride=2, progress=False)
    assert len(rec) == 1 and "\n" not in str(rec[0].message)
    assert fast.method == "incremental"
    _assert_same_maps(occlusion.occlusion_maps(model, x, size=3, stride=2, method="plain", progress=False), fast)


def test_a_model_it_cannot_trace_falls_back_to_the_plain_path_and_says_so():
    torch.manual_seed(0)
    model, x = _BranchesOnData().eval(), torch.randn(1, 12, 12)
    with pytest.warns(incremental.IncrementalFallbackWarning, match="plain path, not incremental.*control flow"):
        maps = occlusion.occlusion_maps(model, x, size=4, stride=3, progress=False)
    assert maps.method == "plain"
    _assert_same_maps(occlusion.occlusion_maps(model, x, size=4, stride=3, method="plain", progress=False), maps)


def test_automatic_batch_size_gives_the_same_maps():
    model, x, _ = _zfnet()
    auto = occlusion.occlusion_maps(model, x, size=5, stride=2, progress=False)
    assert auto.batch_size >= 1
    _assert_same_maps(occlusion.occlusion_maps(model, x, size=5, stride=2, batch_size=3, progress=False), auto)


# --- bad input: clear errors from cnnlib, never a map computed from nonsense --------------------------------

class _NoParams(nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :3]


class _Unused(nn.Module):
    """Has a layer its forward never calls."""

    def __init__(self):
        super().__init__()
        self.unused, self.fc = nn.Conv2d(1, 2, 3), nn.Linear(28 * 28, 3)

    def forward(self, x):
        return self.fc(x.flatten(1))


def _nan_image():
    x = torch.rand(1, 28, 28)
    x[0, 3, 4] = float("nan")
    return x


def _train_mode():
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2 * 26 * 26, 3)).train()


def _dropout_train():
    return nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(28 * 28, 3)).train()


_ZF = ZFNetSmall().eval()
_X = torch.rand(1, 28, 28)
BAD = [
    # (id, call, error type, message pattern)
    ("maps-rank-2", lambda: occlusion.occlusion_maps(_ZF, torch.rand(28, 28)), ValueError, r"\(C, H, W\)"),
    ("maps-batch-of-2", lambda: occlusion.occlusion_maps(_ZF, torch.rand(2, 1, 28, 28)), ValueError, "one image"),
    ("maps-uint8", lambda: occlusion.occlusion_maps(_ZF, torch.zeros(1, 28, 28, dtype=torch.uint8)), TypeError,
     "floating-point"),
    ("maps-float64", lambda: occlusion.occlusion_maps(_ZF, _X.double()), TypeError, "dtype torch.float32"),
    ("maps-nan", lambda: occlusion.occlusion_maps(_ZF, _nan_image()), ValueError, "1 NaN or infinite"),
    ("maps-not-tensor", lambda: occlusion.occlusion_maps(_ZF, [[0.0]]), TypeError, "torch.Tensor"),
    ("maps-size-0", lambda: occlusion.occlusion_maps(_ZF, _X, size=0), ValueError, r"size in 1..28, got 0"),
    ("maps-size-neg", lambda: occlusion.occlusion_maps(_ZF, _X, size=-4), ValueError, r"size in 1..28, got -4"),
    ("maps-size-float", lambda: occlusion.occlusion_maps(_ZF, _X, size=4.5), TypeError, "size to be an integer"),
    ("maps-size-too-big", lambda: occlusion.occlusion_maps(_ZF, _X, size=40), ValueError, r"size in 1..28"),
    ("maps-stride-0", lambda: occlusion.occlusion_maps(_ZF, _X, stride=0), ValueError, r"stride in 1..28, got 0"),
    ("maps-stride-float", lambda: occlusion.occlusion_maps(_ZF, _X, stride=2.0), TypeError, "stride to be an int"),
    ("maps-batch-size-0", lambda: occlusion.occlusion_maps(_ZF, _X, batch_size=0), ValueError, "batch_size"),
    ("maps-target-10", lambda: occlusion.occlusion_maps(_ZF, _X, target=10), ValueError, "target must be a class 0..9"),
    ("maps-target-neg", lambda: occlusion.occlusion_maps(_ZF, _X, target=-1), ValueError, "class 0..9"),
    ("maps-target-float", lambda: occlusion.occlusion_maps(_ZF, _X, target=2.5), ValueError, "class 0..9"),
    ("maps-target-repeated", lambda: occlusion.occlusion_maps(_ZF, _X, target=(1, 1)), ValueError, "distinct"),
    ("maps-train-batchnorm", lambda: occlusion.occlusion_maps(_train_mode(), _X), ValueError, "eval mode"),
    ("maps-train-dropout", lambda: occlusion.occlusion_maps(_dropout_train(), _X), ValueError, "eval mode"),
    ("maps-no-parameters", lambda: occlusion.occlusion_maps(_NoParams(), _X), ValueError, "without any"),
    ("maps-not-a-model", lambda: occlusion.occlusion_maps(lambda t: t, _X), TypeError, "torch.nn.Module"),
    ("maps-unknown-layer", lambda: occlusion.occlusion_maps(_ZF, _X, layer="conv9"), ValueError,
     "^occlusion_maps: unknown layer 'conv9'"),  # named once, not "occlusion_maps: named_layer: ..."
    ("maps-channels", lambda: occlusion.occlusion_maps(_small_cnn(), torch.rand(1, 12, 12).double(), progress=False),
     ValueError, r"^occlusion_maps: the model cannot take x of shape \(1, 12, 12\): .*to have 3 channels"),
    ("maps-size-for-the-linear-layer", lambda: occlusion.occlusion_maps(_small_cnn(), torch.rand(3, 16, 16).double(),
                                                                        progress=False),
     ValueError, r"^occlusion_maps: the model cannot take x of shape \(3, 16, 16\): mat1 and mat2"),
    ("maps-layer-not-reached", lambda: occlusion.occlusion_maps(_Unused(), _X, layer="unused"), ValueError,
     "'unused' was not reached"),
    ("maps-layer-list", lambda: occlusion.occlusion_maps(_ZF, _X, layer=["conv5"]), TypeError, "layer name"),
    ("maps-layer-not-4d", lambda: occlusion.occlusion_maps(_ZF, _X, layer="fc7"), ValueError, r"\(N, K, h, w\)"),
    ("maps-channel-64", lambda: occlusion.occlusion_maps(_ZF, _X, layer="conv5", channel=64), ValueError,
     "has 64 feature maps"),
    ("maps-fill-3-values", lambda: occlusion.occlusion_maps(_ZF, _X, fill=(0.1, 0.2, 0.3)), ValueError,
     "fill must be one number or 1"),
    ("maps-fill-nan", lambda: occlusion.occlusion_maps(_ZF, _X, fill=float("nan")), ValueError, "fill"),
    ("maps-fill-str", lambda: occlusion.occlusion_maps(_ZF, _X, fill="gray"), TypeError, "fill to be a number"),
    ("maps-not-logits", lambda: occlusion.occlusion_maps(nn.Sequential(nn.Conv2d(1, 2, 3)).eval(), _X), ValueError,
     r"must return logits \(N, K\)"),
    ("maps-method", lambda: occlusion.occlusion_maps(_ZF, _X, method="fast"), ValueError, "method"),
    ("occlude-rank-4", lambda: occlusion.occlude(torch.rand(1, 1, 6, 6), (2, 2), 2), ValueError, r"\(C, H, W\)"),
    ("occlude-uint8", lambda: occlusion.occlude(torch.zeros(1, 6, 6, dtype=torch.uint8), (2, 2), 2), TypeError,
     "floating-point"),
    ("occlude-nan", lambda: occlusion.occlude(torch.full((1, 6, 6), float("nan")), (2, 2), 2), ValueError, "NaN"),
    ("occlude-size-0", lambda: occlusion.occlude(torch.rand(1, 6, 6), (2, 2), 0), ValueError, "size in >= 1"),
    ("occlude-size-neg", lambda: occlusion.occlude(torch.rand(1, 6, 6), (2, 2), -4), ValueError, "got -4"),
    ("occlude-size-float", lambda: occlusion.occlude(torch.rand(1, 6, 6), (2, 2), 2.5), TypeError, "integer"),
    ("occlude-outside", lambda: occlusion.occlude(torch.rand(1, 22, 22), (-10, -10), 5), ValueError,
     "lies outside the 22×22 image"),
    ("occlude-outside-far", lambda: occlusion.occlude(torch.rand(1, 6, 6), (3, 40), 3), ValueError, "outside"),
    ("occlude-center-1", lambda: occlusion.occlude(torch.rand(1, 6, 6), (3,), 3), TypeError, r"\(row, column\)"),
    ("occlude-center-float", lambda: occlusion.occlude(torch.rand(1, 6, 6), (2.5, 3), 3), TypeError, "integers"),
    ("occlude-fill-2", lambda: occlusion.occlude(torch.rand(3, 6, 6), (2, 2), 2, fill=(1.0, 2.0)), ValueError,
     "one number or 3"),
    ("centers-stride-0", lambda: occlusion.centers(28, 0), ValueError, "stride in >= 1"),
    ("centers-length-float", lambda: occlusion.centers(28.0, 4), TypeError, "length to be an integer"),
    ("centers-inside-too-big", lambda: occlusion.centers(28, 4, inside=29), ValueError, "inside in 1..28"),
    ("maps-inside-not-bool", lambda: occlusion.occlusion_maps(_small_cnn(), torch.randn(3, 12, 12), inside=1,
                                                              progress=False), TypeError, "inside to be True"),
]


@pytest.mark.parametrize("call,error,pattern", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_raises_a_clear_error_from_cnnlib(call, error, pattern):
    with pytest.raises(error, match=pattern) as info:
        call()
    assert str(info.value).split(":")[0] in ("occlusion_maps", "occlude", "centers")
    assert all(len(m._forward_hooks) == 0 for m in _ZF.modules())  # no hook left behind


def test_the_old_silent_cases_are_gone():
    # a square half outside is still cut at the border; one fully outside is refused (above)
    corner = occlusion.occlude(torch.zeros(1, 22, 22), (-1, -1), 5, fill=1.0)
    assert corner.sum() == 2 * 2
