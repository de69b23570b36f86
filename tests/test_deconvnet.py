"""The deconvnet: unpooling, transposed filters, and the whole projection against an autograd reference."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from cnnlib import deconvnet
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
    path = deconvnet.path_to(silent, "3")
    rec = deconvnet.forward_record(path, x, ties="spread")
    assert set(rec.pool_inputs) == {2} and not rec.switches
    with pytest.raises(ValueError, match="ties must be one of"):
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


def test_bad_input_raises_clear_errors():
    model = ZFNetSmall().eval()
    x = torch.rand(1, 1, 28, 28)
    with pytest.raises(ValueError, match="unknown layer 'conv9'"):
        deconvnet.project(model, x, "conv9", 0)
    with pytest.raises(ValueError, match="has 32 feature maps"):
        deconvnet.project(model, x, "conv1", 32)
    with pytest.raises(ValueError, match=r"expected images \(N, C, H, W\)"):
        deconvnet.project(model, x[0], "conv1", 0)
    with pytest.raises(ValueError, match="1-channel images"):
        deconvnet.project(model, torch.rand(1, 3, 28, 28), "conv1", 0)
    with pytest.raises(ValueError, match="must lie in the 28×28 map"):
        deconvnet.project(model, x, "conv1", 0, position=(28, 0))
    with pytest.raises(TypeError, match=r"cannot invert layer '1' of type BatchNorm2d"):
        deconvnet.project(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU()), x, "2", 0)
    with pytest.raises(TypeError, match="expected an nn.Sequential"):
        deconvnet.project(torchvision.models.resnet18(weights=None), torch.rand(1, 3, 32, 32), "conv1", 0)


def test_agrees_with_captum_deconvolution_where_the_rules_agree():
    pytest.importorskip("captum")
    torch.manual_seed(0)
    vgg_like = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
                             nn.Conv2d(16, 8, 3), nn.ReLU()).double().eval()
    x = torch.randn(3, 3, 32, 32, dtype=torch.float64)
    ours = deconvnet.project(vgg_like, x, "7", channel=5)
    torch.testing.assert_close(ours, deconvnet.captum_projection(vgg_like, x, "7", 5), atol=1e-10, rtol=1e-8)


def test_differs_from_captum_through_contrast_normalisation():
    # Zeiler & Fergus pass straight through contrast normalisation; Captum back-propagates through it
    pytest.importorskip("captum")
    torch.manual_seed(0)
    model = ZFNetSmall().double().eval()
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64)  # conv1 … relu3 has norm1 and norm2 inside
    ours = deconvnet.project(model, x, "relu3", channel=4)
    theirs = deconvnet.captum_projection(model, x, "relu3", 4)
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
    got = deconvnet.captum_projection(net, x, "7", 1, method=method)
    want = _unit_backward(list(net)[:8], x, 1, relu)
    assert float(got.abs().sum()) > 0
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-8)
    assert not torch.allclose(got, deconvnet.project(net, x, "7", 1))  # neither is the deconvnet


def test_captum_projection_checks_its_arguments():
    pytest.importorskip("captum")
    x = torch.rand(1, 1, 28, 28)
    with pytest.raises(ValueError, match="method must be one of"):
        deconvnet.captum_projection(ZFNetSmall().eval(), x, "conv2", 0, method="lrp")
    with pytest.raises(ValueError, match="is not a map of it"):
        deconvnet.captum_projection(ZFNetSmall().eval(), x, "conv2", 64)


def test_captum_projection_handles_in_place_relus_and_leaves_them_so():
    pytest.importorskip("captum")
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                        nn.Conv2d(4, 5, 3), nn.ReLU(inplace=True)).double().eval()  # as torchvision's VGG
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    got = deconvnet.captum_projection(net, x, "4", 2)
    torch.testing.assert_close(got, deconvnet.project(net, x, "4", 2), atol=1e-10, rtol=1e-8)
    assert net[1].inplace and net[4].inplace
    assert not any(m._backward_hooks or m._forward_hooks for m in net)  # Captum's hooks are gone
