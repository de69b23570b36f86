"""The deconvnet: unpooling, transposed filters, and the whole projection against an autograd reference."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from cnnlib import deconvnet, sanity
from cnnlib.models import ZFNetSmall


def test_unpool_puts_values_at_the_switches():
    x = torch.tensor([[[[1.0, 5.0, 2.0, 0.0],
                        [3.0, 4.0, 9.0, 1.0],
                        [0.0, 0.0, 1.0, 2.0],
                        [7.0, 0.0, 3.0, 8.0]]]])
    pooled, switches = deconvnet.pool_with_switches(x, nn.MaxPool2d(2))
    assert pooled.flatten().tolist() == [5.0, 9.0, 7.0, 8.0]
    r = deconvnet.unpool(torch.tensor([[[[10.0, 20.0], [30.0, 40.0]]]]), switches, (4, 4))
    want = torch.zeros(4, 4)
    want[0, 1], want[1, 2], want[3, 0], want[3, 3] = 10, 20, 30, 40
    assert torch.equal(r[0, 0], want)


def test_unpool_adds_values_of_overlapping_windows():
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, 1, 1] = 1.0  # the centre is the maximum of all four overlapping 2×2 windows
    _, switches = deconvnet.pool_with_switches(x, nn.MaxPool2d(2, stride=1))
    r = deconvnet.unpool(torch.ones(1, 1, 2, 2), switches, (3, 3))
    assert float(r[0, 0, 1, 1]) == 4.0 and float(r.sum()) == 4.0


def _spread_by_hand(x, pool, r):
    """Unpooling with ties shared, one window at a time: every position of the window holding its maximum
    gets an equal share of the window's value."""
    k, s, p = pool.kernel_size, pool.stride, pool.padding
    N, C, H, W = x.shape
    out = torch.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(r.shape[2]):
                for j in range(r.shape[3]):
                    cells = [(u, v) for u in range(i * s - p, i * s - p + k) for v in range(j * s - p, j * s - p + k)
                             if 0 <= u < H and 0 <= v < W]
                    best = max(float(x[n, c, u, v]) for u, v in cells)
                    tied = [(u, v) for u, v in cells if float(x[n, c, u, v]) == best]
                    for u, v in tied:
                        out[n, c, u, v] += r[n, c, i, j] / len(tied)
    return out


def test_unpool_spread_shares_a_value_among_tied_maxima():
    x = torch.tensor([[[[0.0, 0.0, 2.0, 2.0],
                        [0.0, 0.0, 1.0, 0.0],
                        [3.0, 1.0, 5.0, 5.0],
                        [0.0, 2.0, 5.0, 5.0]]]])
    r = torch.tensor([[[[8.0, 6.0], [4.0, 12.0]]]])
    got = deconvnet.unpool_spread(x, nn.MaxPool2d(2), r)
    want = torch.tensor([[2.0, 2.0, 3.0, 3.0],   # silent window: a quarter each; two tied 2s: a half each
                         [2.0, 2.0, 0.0, 0.0],
                         [4.0, 0.0, 3.0, 3.0],   # unique maximum: all of it; four tied 5s: a quarter each
                         [0.0, 0.0, 3.0, 3.0]])
    assert torch.equal(got[0, 0], want)
    _, switches = deconvnet.pool_with_switches(x, nn.MaxPool2d(2))
    first = deconvnet.unpool(r, switches, (4, 4))[0, 0]
    assert first[0, 0] == 8.0 and first[0, 2] == 6.0 and first[2, 2] == 12.0  # PyTorch: the first tied position


POOLS = [nn.MaxPool2d(2), nn.MaxPool2d(3, 2, padding=1), nn.MaxPool2d(2, ceil_mode=True),
         nn.MaxPool2d(3, 2), nn.MaxPool2d(3, 2, padding=1, ceil_mode=True), nn.MaxPool2d(2, stride=1)]


@pytest.mark.parametrize("pool", POOLS, ids=repr)
@pytest.mark.parametrize("size", [(7, 7), (8, 6)])
def test_unpool_spread_equals_a_window_by_window_reference(pool, size):
    torch.manual_seed(0)
    x = torch.randint(0, 3, (2, 2, *size)).double()  # small integers: many ties, some windows all equal
    r = torch.randn(pool(x).shape, dtype=torch.float64)
    got = deconvnet.unpool_spread(x, pool, r)
    torch.testing.assert_close(got, _spread_by_hand(x, pool, r), atol=1e-12, rtol=0)
    torch.testing.assert_close(got.sum(), r.sum())  # every value lands somewhere, once


@pytest.mark.parametrize("pool", POOLS, ids=repr)
def test_unpool_spread_equals_the_switches_where_maxima_are_unique(pool):
    torch.manual_seed(1)
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)  # continuous values: no ties
    pooled, switches = deconvnet.pool_with_switches(x, pool)
    r = torch.randn_like(pooled)
    torch.testing.assert_close(deconvnet.unpool_spread(x, pool, r), deconvnet.unpool(r, switches, (9, 9)))


def test_ties_option_of_the_projection():
    torch.manual_seed(0)
    no_ties = nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2), nn.ReLU(), nn.Conv2d(4, 5, 3)).double()
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)  # the pool sees a convolution's output: no ties
    torch.testing.assert_close(deconvnet.project(no_ties, x, "3", 1, ties="spread"),
                               deconvnet.project(no_ties, x, "3", 1, ties="first"))
    silent = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 5, 3)).double()
    with torch.no_grad():
        silent[0].bias.fill_(-2.0)  # most of the first layer is rectified to zero: its pooling windows tie
    first = deconvnet.project(silent, x, "3", 1, ties="first")
    spread = deconvnet.project(silent, x, "3", 1, ties="spread")
    assert (first - spread).abs().max() > 1e-3
    rec = deconvnet.record(silent, x, "3", ties="spread")
    assert len(rec.pool_inputs) == 1 and not rec.switches  # the pool's input is kept instead of its switches
    with pytest.raises(ValueError, match="expected ties to be one of"):
        deconvnet.project(silent, x, "3", 1, ties="random")


def test_tied_windows_counts_windows_whose_maximum_is_not_unique():
    x = torch.tensor([[[[0.0, 0.0, 2.0, 2.0],
                        [0.0, 0.0, 1.0, 0.0],
                        [3.0, 1.0, 5.0, 5.0],
                        [0.0, 2.0, 5.0, 5.0]]]])
    net = nn.Sequential(nn.Identity(), nn.MaxPool2d(2), nn.Conv2d(1, 1, 1), nn.MaxPool2d(2))
    assert deconvnet.tied_windows(net, x) == {"1": 0.75, "3": 0.0}  # 3 of 4 windows tie; one window, one value
    assert deconvnet.tied_windows(net, x, layer="1") == {"1": 0.75}
    torch.manual_seed(0)
    silent = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2))
    with torch.no_grad():
        silent[0].bias.fill_(-100.0)
    assert deconvnet.tied_windows(silent, torch.rand(2, 3, 10, 10)) == {"2": 1.0}


def test_one_layer_projection_is_the_transposed_convolution_of_the_masked_map():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 5, stride=2, padding=1)
    x = torch.randn(2, 3, 13, 13)
    got = deconvnet.project(nn.Sequential(conv), x, "0", channel=2, position=(3, 1))
    a = conv(x).detach()
    masked = torch.zeros_like(a)
    masked[:, 2, 3, 1] = a[:, 2, 3, 1]
    want = F.conv_transpose2d(masked, conv.weight, stride=2, padding=1, output_padding=0)
    assert want.shape == x.shape
    torch.testing.assert_close(got, want.detach())


class _DeconvReLU(torch.autograd.Function):
    """ReLU forward; on the way back the *deconvnet rule*: ReLU of the incoming signal, whatever the input was."""

    @staticmethod
    def forward(ctx, x):
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        return g.clamp(min=0)


class _PassBack(torch.autograd.Function):
    """A module applied forward (e.g. LRN) that the deconvnet passes straight through on the way back."""

    @staticmethod
    def forward(ctx, x, fn):
        return fn(x)

    @staticmethod
    def backward(ctx, g):
        return g, None


def _backward_from_strongest(h, x, channel):
    """Back-propagate from the strongest unit of map ``channel`` of ``h``, seeded with its own activation."""
    a = h.detach()
    fmap = a[:, channel].flatten(1)
    flat = fmap.argmax(1)
    grad = torch.zeros_like(a)
    grad[:, channel].view(len(x), -1)[torch.arange(len(x)), flat] = fmap[torch.arange(len(x)), flat]
    h.backward(grad)
    return x.grad


def _autograd_reference(seq, x, upto, channel):
    x = x.clone().requires_grad_(True)
    h = x
    for m in list(seq)[: upto + 1]:
        if isinstance(m, nn.ReLU):
            h = _DeconvReLU.apply(h)
        elif isinstance(m, nn.LocalResponseNorm):
            h = _PassBack.apply(h, m)
        else:
            h = m(h)  # conv: its own backward is the transposed convolution; max-pool: routes to the switches
    return _backward_from_strongest(h, x, channel)


def _random_net(seed):
    g = torch.Generator().manual_seed(seed)
    c1, c2, c3 = (int(torch.randint(2, 6, (1,), generator=g)) for _ in range(3))
    net = nn.Sequential(
        nn.Conv2d(3, c1, 5, stride=int(torch.randint(1, 3, (1,), generator=g)), padding=2), nn.ReLU(),
        nn.MaxPool2d(3, 2, padding=int(torch.randint(0, 2, (1,), generator=g))), nn.LocalResponseNorm(3),
        nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(),
        nn.Conv2d(c2, c3, 3, stride=2, padding=0), nn.ReLU(),
        nn.MaxPool2d(2, ceil_mode=bool(seed % 2)),
    )
    torch.manual_seed(seed)
    for m in net:
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, std=0.5)
    return net.double()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("upto", [0, 1, 2, 3, 5, 7, 8])
def test_projection_equals_the_autograd_deconvnet_reference(seed, upto):
    net = _random_net(seed)
    x = torch.randn(3, 3, 29, 31, dtype=torch.float64)
    channel = seed % net[0].out_channels if upto < 4 else 1
    got = deconvnet.project(net, x, str(upto), channel)
    want = _autograd_reference(net, x, upto, channel)
    assert float(got.abs().sum()) > 0
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-9)


def test_it_is_not_the_gradient():
    # the deconvnet differs from plain backprop: a gradient would be masked by the forward ReLU pattern
    net = _random_net(1)
    x = torch.randn(2, 3, 29, 31, dtype=torch.float64, requires_grad=True)
    got = deconvnet.project(net, x.detach(), "5", 1)
    a = net[:6](x)
    fmap = a.detach()[:, 1].flatten(1)
    grad = torch.zeros_like(a)
    grad[:, 1].view(2, -1)[torch.arange(2), fmap.argmax(1)] = fmap.max(1).values
    a.backward(grad)
    assert not torch.allclose(got, x.grad)


def test_zero_activation_gives_zero_reconstruction():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2))
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[0].bias.fill_(-50.0)  # inputs in [0, 1]: every activation is rectified to zero
    r = deconvnet.project(net, torch.rand(2, 1, 10, 10), "2", channel=0)
    assert torch.equal(r, torch.zeros(2, 1, 10, 10))


def test_works_on_zfnet_small_alexnet_and_vgg():
    torch.manual_seed(0)
    for model, x, layer in [
        (ZFNetSmall().eval(), torch.rand(2, 1, 28, 28), "conv5"),
        (torchvision.models.alexnet(weights=None).eval(), torch.rand(1, 3, 96, 96), "features.10"),
        (torchvision.models.vgg11(weights=None).features.eval(), torch.rand(1, 3, 64, 64), "12"),
    ]:
        r = deconvnet.project(model, x, layer, channel=0)
        assert r.shape == x.shape and torch.isfinite(r).all()


def test_position_chooses_the_unit():
    torch.manual_seed(0)
    model = ZFNetSmall().eval()
    x = torch.rand(1, 1, 28, 28)
    r = deconvnet.project(model, x, "conv1", 0, position=(0, 0))
    # conv1 is 5×5 with padding 2: the unit at (0, 0) sees rows and columns 0..2 only
    assert r[0, 0, 3:, :].abs().sum() == 0 and r[0, 0, :, 3:].abs().sum() == 0
    per_image = deconvnet.project(model, torch.rand(2, 1, 28, 28), "conv1", 0,
                                  position=torch.tensor([[0, 0], [27, 27]]))
    assert per_image[1, 0, :25, :].abs().sum() == 0


def test_agrees_with_captum_deconvolution_where_the_rules_agree():
    pytest.importorskip("captum")
    torch.manual_seed(0)
    vgg_like = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
                             nn.Conv2d(16, 8, 3), nn.ReLU()).double().eval()
    x = torch.randn(3, 3, 32, 32, dtype=torch.float64)
    ours = deconvnet.project(vgg_like, x, "7", channel=5)
    torch.testing.assert_close(ours, sanity.captum_projection(vgg_like, x, "7", 5), atol=1e-10, rtol=1e-8)


def test_differs_from_captum_through_contrast_normalisation():
    # Zeiler & Fergus pass straight through contrast normalisation; Captum back-propagates through it
    pytest.importorskip("captum")
    torch.manual_seed(0)
    model = ZFNetSmall().double().eval()
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64)  # conv1 … relu3 has norm1 and norm2 inside
    ours = deconvnet.project(model, x, "relu3", channel=4)
    theirs = sanity.captum_projection(model, x, "relu3", 4)
    assert not torch.allclose(ours, theirs)
    cos = torch.nn.functional.cosine_similarity(ours.flatten(1), theirs.flatten(1))
    assert (cos > 0.5).all()  # the same pattern, weighted differently


class _GuidedReLU(torch.autograd.Function):
    """ReLU forward; guided backprop back: the gradient's mask [z > 0] *and* the deconvnet's ReLU of the signal."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g.clamp(min=0) * (x > 0)


def _unit_backward(seq, x, channel, relu=None):
    """Autograd from the strongest unit of map ``channel`` (seeded with its activation) to the input."""
    x = x.clone().requires_grad_(True)
    h = x
    for m in seq:
        h = relu.apply(h) if relu is not None and isinstance(m, nn.ReLU) else m(h)
    return _backward_from_strongest(h, x, channel)


@pytest.mark.parametrize("method, relu", [("gradient", None), ("guided_backprop", _GuidedReLU)])
def test_captum_gradient_and_guided_backprop_equal_their_autograd_rules(method, relu):
    pytest.importorskip("captum")
    net = _random_net(3)  # with LRN inside: Captum and autograd both go through it
    x = torch.randn(2, 3, 29, 31, dtype=torch.float64)
    got = sanity.captum_projection(net, x, "7", 1, method=method)
    want = _unit_backward(list(net)[:8], x, 1, relu)
    assert float(got.abs().sum()) > 0
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-8)
    assert not torch.allclose(got, deconvnet.project(net, x, "7", 1))  # neither is the deconvnet


# ---------------------------------------------------------------------------------------------------------------
# Any CNN: ResNet-18, MobileNetV2, EfficientNet-Lite0 and functional networks against an autograd reference
# ---------------------------------------------------------------------------------------------------------------

class _DeconvRect(torch.autograd.Function):
    """A rectifier (ReLU, or ReLU6 with ``hi=6``) forward; back, the deconvnet rule: ReLU of the incoming signal."""

    @staticmethod
    def forward(ctx, x, hi):
        return x.clamp(0.0, hi)

    @staticmethod
    def backward(ctx, g):
        return g.clamp(min=0), None


class _RefRect(nn.Module):
    def __init__(self, hi=None):
        super().__init__()
        self.hi = hi

    def forward(self, x):
        return _DeconvRect.apply(x, self.hi)


def _reference_model(model):
    """A copy of ``model`` whose every ReLU/ReLU6 module rectifies forward and applies the deconvnet rule back."""
    import copy

    ref = copy.deepcopy(model)
    for name, m in list(ref.named_modules()):
        if isinstance(m, (nn.ReLU, nn.ReLU6)):
            parent = ref.get_submodule(name.rpartition(".")[0]) if "." in name else ref
            setattr(parent, name.rpartition(".")[2], _RefRect(6.0 if isinstance(m, nn.ReLU6) else None))
    return ref


def _reference(model, x, layer, channel):
    """Autograd from the strongest unit of map ``channel`` of ``layer`` (its last call), seeded with its
    activation, through ``model`` with the deconvnet rule at every rectifier."""
    from cnnlib.models import named_layer

    ref = _reference_model(model)
    kept = {}
    # a clone: ResNet's `out += identity` would change the kept tensor in place (and its place in the graph)
    handle = named_layer(ref, layer).register_forward_hook(lambda m, i, o: kept.__setitem__("h", o.clone()))
    try:
        x = x.clone().requires_grad_(True)
        with torch.enable_grad():
            ref(x)
            h = kept["h"]
            a = h.detach().reshape(len(x), h.shape[1], -1)
            flat = a[:, channel].argmax(1)
            grad = torch.zeros_like(a)
            rows = torch.arange(len(x))
            grad[rows, channel, flat] = a[rows, channel, flat]
            h.backward(grad.view_as(h))
    finally:
        handle.remove()
    return x.grad


def _randomize(model, seed):
    """Random eval-mode BatchNorm statistics and scales (else a random network's signal dies away), float64."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(0.2 * torch.randn(m.num_features, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
            m.weight.data.copy_(0.5 + torch.rand(m.num_features, generator=g))
            m.bias.data.copy_(0.2 * torch.randn(m.num_features, generator=g))
    return model.double().eval()


def _efficientnet_lite0_random():
    lite = pytest.importorskip("efficientnet_lite_pytorch")
    torch.manual_seed(0)
    return lite.EfficientNet.from_name("efficientnet-lite0")


NETWORKS = {
    "resnet18": (lambda: torchvision.models.resnet18(weights=None), 64,
                 [("relu", 3), ("maxpool", 10), ("layer1.0.relu", 5), ("layer2.0", 7), ("layer3.1.bn2", 40),
                  ("layer4", 100), ("avgpool", 9), ("fc", 17)]),
    "mobilenet_v2": (lambda: torchvision.models.mobilenet_v2(weights=None), 64,
                     [("features.0", 2), ("features.2", 11), ("features.3", 20), ("features.6.conv.1", 40),
                      ("features.14", 100), ("features.18", 300), ("classifier.1", 5)]),
    "efficientnet_lite0": (_efficientnet_lite0_random, 96,
                           [("_bn0", 4), ("_swish", 4), ("_blocks.0", 3), ("_blocks.2", 10),
                            ("_blocks.4._depthwise_conv", 30), ("_blocks.7", 50), ("_blocks.15", 200),
                            ("_conv_head", 600), ("_fc", 42)]),
}
CASES = [(net, layer, c) for net, (_, _, layers) in NETWORKS.items() for layer, c in layers]


@pytest.fixture(scope="module")
def networks():
    out = {}
    for k, (build, size, _) in NETWORKS.items():
        torch.manual_seed(0)
        x = torch.rand(2, 3, size, size, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        out[k] = (_randomize(build(), 0), x)
    return out


@pytest.mark.parametrize("net, layer, channel", CASES, ids=[f"{n}-{lay}-{c}" for n, lay, c in CASES])
def test_any_cnn_equals_the_autograd_deconvnet_reference(networks, net, layer, channel):
    model, x = networks[net]
    a = deconvnet.record(model, x, layer).activation  # (N, K, ...)
    strongest = a.transpose(0, 1).reshape(a.shape[1], -1).amax(1).argsort(descending=True)
    channel = int(strongest[channel % (len(strongest) // 4)])  # a map that fires (a random net has dead ones)
    got = deconvnet.project(model, x, layer, channel)
    want = _reference(model, x, layer, channel)
    assert got.shape == x.shape and float(got.abs().max()) > 0
    scale = float(want.abs().max())
    assert float((got - want).abs().max()) <= 1e-5 * scale  # 1e-5 relative to the projection's largest value


@pytest.mark.parametrize("net", list(NETWORKS))
def test_the_recorded_activation_is_the_layer_output(networks, net):
    """The graph node taken for a layer (a module's last call, or the last node inside a traced-through
    block) holds what the module returns: compared with a forward hook."""
    from cnnlib.models import activations

    model, x = networks[net]
    layers = [layer for layer, _ in NETWORKS[net][2]]
    hooked = activations(model, x, layers)
    for layer in layers:
        rec = deconvnet.record(model, x, layer)
        torch.testing.assert_close(rec.activation.cpu(), hooked[layer], rtol=1e-12, atol=1e-12)


def test_it_is_not_the_gradient_on_a_resnet(networks):
    model, x = networks["resnet18"]
    got = deconvnet.project(model, x, "layer2", 7)
    x = x.clone().requires_grad_(True)
    from cnnlib.hooks import LayerOutputs

    with LayerOutputs(model, ["layer2"], detach=False) as out:
        model(x)
        h = out["layer2"]
        a = h.detach().flatten(2)
        grad = torch.zeros_like(a)
        flat = a[:, 7].argmax(1)
        grad[torch.arange(2), 7, flat] = a[torch.arange(2), 7, flat]
        h.backward(grad.view_as(h))
    assert not torch.allclose(got, x.grad, rtol=1e-3, atol=1e-6 * float(got.abs().max()))


class _Functional(nn.Module):
    """A small CNN written with functional calls: in-place and plain ReLU, "same" padding, a depthwise and a
    dilated convolution, concatenation, subtraction, scaling, average, max and adaptive max pooling, zero
    padding, flatten and a linear layer. ``rect`` chooses the rectifier (the reference swaps it)."""

    def __init__(self, rect=None):
        super().__init__()
        self.rect = rect
        self.a = nn.Conv2d(3, 6, 3, padding="same")
        self.dw = nn.Conv2d(6, 6, 5, stride=2, padding=2, groups=6, bias=False)
        self.b = nn.Conv2d(6, 4, 3, padding=2, dilation=2)
        self.c = nn.Conv2d(6, 4, 1)
        self.e = nn.Conv2d(6, 4, 1, bias=False)
        self.pad = nn.ZeroPad2d((0, 1, 0, 1))
        self.fc = nn.Linear(8 * 4 * 4 + 8 * 2 * 2, 5)

    def relu(self, v, inplace=False, fn=None):
        if self.rect is not None:
            return self.rect(v)
        return fn(v) if fn is not None else F.relu(v, inplace=inplace)

    def forward(self, x):
        h = self.relu(self.a(x), inplace=True)                        # (N, 6, H, W)
        h = F.max_pool2d(h, 3, stride=2, padding=1)                   # (N, 6, H/2, W/2)
        d = self.relu(self.dw(h))
        h = torch.cat([self.b(d), 0.5 * self.c(d) - self.e(d)], 1)    # (N, 8, H/4, W/4)
        h = self.relu(F.avg_pool2d(self.pad(h), 2))                   # (N, 8, ., .)
        g = self.relu(F.adaptive_max_pool2d(h, 2), fn=torch.relu)     # (N, 8, 2, 2)
        flat = torch.cat([torch.flatten(F.adaptive_avg_pool2d(h, 4), 1), g.flatten(1)], 1)  # (N, 160)
        return self.fc(flat)


@pytest.mark.parametrize("layer, channel", [("a", 1), ("dw", 3), ("b", 2), ("c", 0), ("pad", 5), ("fc", 3)])
def test_functional_network_equals_the_reference(layer, channel):
    torch.manual_seed(0)
    model = _Functional().double().eval()
    x = torch.randn(3, 3, 32, 32, dtype=torch.float64)
    got = deconvnet.project(model, x, layer, channel)
    ref = _Functional(rect=lambda v: _DeconvRect.apply(v, None)).double().eval()
    ref.load_state_dict(model.state_dict())
    want = _reference(ref, x, layer, channel)
    assert float(got.abs().max()) > 0
    torch.testing.assert_close(got, want, rtol=0, atol=1e-10 * float(want.abs().max()))


def test_in_place_relus_and_reused_modules_are_left_as_they_were(networks):
    model, x = networks["resnet18"]
    torchvision_model = torchvision.models.resnet18(weights=None).eval()
    assert torchvision_model.relu.inplace  # torchvision's ResNet: one in-place ReLU module per block, called twice
    before = {n: (type(m), getattr(m, "inplace", None)) for n, m in model.named_modules()}
    deconvnet.project(model, x, "layer1.1", 0)
    assert before == {n: (type(m), getattr(m, "inplace", None)) for n, m in model.named_modules()}
    assert not any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks for m in model.modules())


def test_the_kept_graph_follows_the_model_and_does_not_keep_it_alive():
    """project keeps each model's traced graph: it must be traced again when a module is replaced, give the
    same answer under torch.no_grad, and not keep a model alive that the caller has let go of."""
    import gc
    import weakref

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 5, 3)).double().eval()
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    first = deconvnet.project(net, x, "3", 1)
    with torch.no_grad():
        torch.testing.assert_close(deconvnet.project(net, x, "3", 1), first, rtol=0, atol=0)
        assert not torch.is_grad_enabled()  # the caller's grad mode is left as it was
    net[1] = nn.SiLU()
    with pytest.raises(TypeError, match=r"module '1' \(SiLU\)"):
        deconvnet.project(net, x, "3", 1)
    net[1] = nn.Sequential(nn.ReLU(), nn.Identity())  # a block fx traces through: a new graph
    torch.testing.assert_close(deconvnet.project(net, x, "3", 1), first, rtol=0, atol=0)
    alive = weakref.ref(net)
    del net
    gc.collect()
    assert alive() is None


class _SiLUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3)
        self.act = nn.SiLU()
        self.conv2 = nn.Conv2d(4, 4, 3)

    def forward(self, x):
        return self.conv2(self.act(self.conv1(x)))


class _GatedNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3)
        self.gate = nn.Conv2d(4, 4, 1)
        self.post = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        h = F.relu(self.conv1(x))
        return self.post(h * torch.sigmoid(self.gate(h)))  # squeeze-and-excitation-like gating


def test_operations_without_a_deconvnet_step_are_named():
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(TypeError, match=r"project: the deconvnet cannot take the signal back through module 'act' "
                                        r"\(SiLU\)"):
        deconvnet.project(_SiLUNet().eval(), x, "conv2", 0)
    assert deconvnet.project(_SiLUNet().eval(), x, "conv1", 0).shape == x.shape  # below the SiLU it works
    with pytest.raises(TypeError, match="cannot take the signal back through 'sigmoid'"):
        deconvnet.project(_GatedNet().eval(), x, "post", 0)


def test_efficientnet_lite0_pretrained_projects_at_every_depth():
    pytest.importorskip("efficientnet_lite_pytorch")
    from cnnlib import pretrained

    try:
        model = pretrained.efficientnet_lite0("cpu")
    except (ModuleNotFoundError, FileNotFoundError):
        pytest.skip("EfficientNet-Lite0 weights not installed")
    x = torch.rand(1, 3, 224, 224)
    for layer in ["_bn0", "_blocks.2", "_blocks.5", "_blocks.10", "_blocks.15"]:
        r = deconvnet.project(model, x, layer, 0)
        assert r.shape == x.shape and torch.isfinite(r).all()


# ---------------------------------------------------------------------------------------------------------------
# Bad input: clear errors that name the function
# ---------------------------------------------------------------------------------------------------------------

class _Unused(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.spare = nn.Conv2d(2, 2, 3)  # never called

    def forward(self, x):
        return self.conv(x)


class _NoParams(nn.Module):
    def forward(self, x):
        return F.relu(x)


def _zf():
    return ZFNetSmall().eval()


def _bn_train():
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU()).train()


X1 = torch.rand(1, 1, 28, 28)
NAN = X1.clone()
NAN[0, 0, 3, 3] = float("nan")

BAD = [
    # (id, call, error, message)
    ("rank-3", lambda: deconvnet.project(_zf(), X1[0], "conv1", 0), ValueError, r"project: expected x of shape"),
    ("rank-2", lambda: deconvnet.project(_zf(), X1[0, 0], "conv1", 0), ValueError, r"project: expected x of shape"),
    ("not-a-tensor", lambda: deconvnet.project(_zf(), X1.numpy(), "conv1", 0), TypeError,
     "project: expected x to be a torch.Tensor"),
    ("uint8", lambda: deconvnet.project(_zf(), (X1 * 255).to(torch.uint8), "conv1", 0), TypeError,
     "project: expected x to be a floating-point tensor"),
    ("float64-vs-float32", lambda: deconvnet.project(_zf(), X1.double(), "conv1", 0), TypeError,
     "project: expected x of dtype torch.float32"),
    ("nan", lambda: deconvnet.project(_zf(), NAN, "conv1", 0), ValueError, "project: expected finite values"),
    ("empty", lambda: deconvnet.project(_zf(), X1[:0], "conv1", 0), ValueError, "project: expected at least one"),
    ("wrong-channels", lambda: deconvnet.project(_zf(), torch.rand(1, 3, 28, 28), "conv1", 0), ValueError,
     r"project: module 'features.conv1' \(Conv2d\) takes 1-channel input \(the network's input\)"),
    ("channel-too-big", lambda: deconvnet.project(_zf(), X1, "conv1", 32), ValueError,
     "project: layer 'conv1' has 32 feature maps, got channel=32"),
    ("channel-negative", lambda: deconvnet.project(_zf(), X1, "conv1", -1), ValueError,
     "project: expected channel in >= 0"),
    ("channel-float", lambda: deconvnet.project(_zf(), X1, "conv1", 1.5), TypeError,
     "project: expected channel to be an integer"),
    ("position-outside", lambda: deconvnet.project(_zf(), X1, "conv1", 0, position=(28, 0)), ValueError,
     "project: position must lie in the 28×28 map"),
    ("position-negative", lambda: deconvnet.project(_zf(), X1, "conv1", 0, position=(0, -1)), ValueError,
     "project: position must lie in"),
    ("position-shape", lambda: deconvnet.project(_zf(), X1, "conv1", 0, position=(1, 2, 3)), ValueError,
     r"project: expected position \(i, j\)"),
    ("position-on-units", lambda: deconvnet.project(torchvision.models.resnet18(weights=None).eval(),
                                                    torch.rand(1, 3, 32, 32), "fc", 0, position=(0, 0)),
     ValueError, "project: layer 'fc' gives units"),
    ("unknown-layer", lambda: deconvnet.project(_zf(), X1, "conv9", 0), ValueError, "project: unknown layer 'conv9'"),
    ("ambiguous-layer", lambda: deconvnet.project(torchvision.models.resnet18(weights=None).eval(),
                                                  torch.rand(1, 3, 32, 32), "conv2", 0), ValueError,
     "project: ambiguous layer 'conv2'"),
    ("layer-not-str", lambda: deconvnet.project(_zf(), X1, 3, 0), TypeError, "project: expected layer to be a"),
    ("layer-never-reached", lambda: deconvnet.project(_Unused().eval(), X1, "spare", 0), ValueError,
     "project: layer 'spare' is never reached"),
    ("train-mode-batchnorm", lambda: deconvnet.project(_bn_train(), X1, "2", 0), ValueError,
     "project: expected the model in eval mode"),
    ("train-mode-dropout", lambda: deconvnet.project(ZFNetSmall().train(), X1, "conv1", 0), ValueError,
     "project: expected the model in eval mode"),
    ("no-parameters", lambda: deconvnet.project(_NoParams(), X1, "", 0), ValueError,
     "project: expected a model with parameters"),
    ("not-a-model", lambda: deconvnet.project("zfnet", X1, "conv1", 0), TypeError,
     "project: expected model to be a torch.nn.Module"),
    ("bad-ties", lambda: deconvnet.project(_zf(), X1, "conv1", 0, ties="random"), ValueError,
     "project: expected ties to be one of"),
    ("size-for-the-linear-layer", lambda: deconvnet.project(
        nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 8 * 8, 4)).eval(),
        torch.rand(1, 3, 9, 9), "3", 0), ValueError,
     r"^project: the model cannot take x of shape \(1, 3, 9, 9\): mat1 and mat2 shapes"),
    ("silu", lambda: deconvnet.project(_SiLUNet().eval(), torch.rand(1, 3, 9, 9), "conv2", 0), TypeError,
     "project: the deconvnet cannot take the signal back through module 'act'"),
    ("tied-rank", lambda: deconvnet.tied_windows(_zf(), X1[0]), ValueError, "tied_windows: expected x of shape"),
    ("tied-uint8", lambda: deconvnet.tied_windows(_zf(), X1.to(torch.uint8)), TypeError,
     "tied_windows: expected x to be a floating-point tensor"),
    ("tied-float64", lambda: deconvnet.tied_windows(_zf(), X1.double()), TypeError,
     "tied_windows: expected x of dtype torch.float32"),
    ("tied-nan", lambda: deconvnet.tied_windows(_zf(), NAN), ValueError, "tied_windows: expected finite values"),
    ("tied-train", lambda: deconvnet.tied_windows(_bn_train(), X1, "2"), ValueError,
     "tied_windows: expected the model in eval mode"),
    ("tied-unknown-layer", lambda: deconvnet.tied_windows(_zf(), X1, "pool9"), ValueError,
     "tied_windows: unknown layer 'pool9'"),
    ("tied-no-parameters", lambda: deconvnet.tied_windows(_NoParams(), X1), ValueError,
     "tied_windows: expected a model with parameters"),
]


@pytest.mark.parametrize("call, error, message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_raises_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_project_from_a_start_value_scales_where_the_unit_fired():
    """Started from 1, the projection of a unit that fired with activation a > 0 is the ZF projection / a: every
    step down is linear in a positive signal (rectification keeps positives positive)."""
    torch.manual_seed(0)
    m = ZFNetSmall(widths=(8, 8, 8, 8, 8), fc_width=16).eval()
    x = torch.rand(4, 1, 28, 28)
    zf = deconvnet.project(m, x, "relu4", 2)
    one = deconvnet.project(m, x, "relu4", 2, start=1.0)
    from cnnlib.models import activations
    a = activations(m, x, ["relu4"])["relu4"][:, 2].flatten(1).amax(1)
    fired = a > 0
    assert fired.any()
    torch.testing.assert_close(one[fired] * a[fired].view(-1, 1, 1, 1), zf[fired])
    with pytest.raises(ValueError, match="project: expected start"):
        deconvnet.project(m, x, "relu4", 2, start=float("nan"))
