"""From-scratch convolution, pooling and ReLU equal torch.nn.functional on random shapes."""

import pytest
import torch
import torch.nn.functional as F

from cnnlib import layers


@pytest.mark.parametrize("trial", range(12))
def test_conv2d_equals_torch(trial):
    g = torch.Generator().manual_seed(trial)
    N, C, O = (int(torch.randint(1, 4, (1,), generator=g)) for _ in range(3))
    kH, kW = (int(torch.randint(1, 6, (1,), generator=g)) for _ in range(2))
    sH, sW = (int(torch.randint(1, 4, (1,), generator=g)) for _ in range(2))
    pH, pW = (int(torch.randint(0, 3, (1,), generator=g)) for _ in range(2))
    H, W = kH + int(torch.randint(0, 12, (1,), generator=g)), kW + int(torch.randint(0, 12, (1,), generator=g))
    x = torch.randn(N, C, H, W, generator=g)
    w = torch.randn(O, C, kH, kW, generator=g)
    b = torch.randn(O, generator=g) if trial % 2 else None
    got = layers.conv2d(x, w, b, stride=(sH, sW), padding=(pH, pW))
    want = F.conv2d(x, w, b, stride=(sH, sW), padding=(pH, pW))
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kernel,stride", [(2, None), (3, 2), ((2, 3), (1, 2)), (3, 1), (1, 1)])
def test_pooling_equals_torch(kernel, stride):
    x = torch.randn(2, 3, 9, 11)
    torch.testing.assert_close(layers.max_pool2d(x, kernel, stride), F.max_pool2d(x, kernel, stride))
    torch.testing.assert_close(layers.avg_pool2d(x, kernel, stride), F.avg_pool2d(x, kernel, stride),
                               atol=1e-6, rtol=1e-5)


def test_relu_is_max_x_0():
    x = torch.tensor([-2.0, -0.0, 0.0, 0.5, 3.0])
    assert layers.relu(x).tolist() == [0.0, 0.0, 0.0, 0.5, 3.0]
    y = torch.randn(4, 5, 6)
    torch.testing.assert_close(layers.relu(y), F.relu(y))


def test_output_size_formula():
    assert layers.output_size(28, 5, 1, 2) == 28
    assert layers.output_size(224, 7, 2, 1) == 110  # ZFNet layer 1
    assert layers.output_size(13, 3, 2) == 6


def test_known_convolution_by_hand():
    # a 3×3 input of 1..9 with a 2×2 kernel of ones: each output is the sum of a 2×2 window
    x = torch.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    w = torch.ones(1, 1, 2, 2)
    assert layers.conv2d(x, w).flatten().tolist() == [12.0, 16.0, 24.0, 28.0]


def test_sobel_finds_vertical_edge():
    img = torch.zeros(1, 8, 8)
    img[:, :, 4:] = 1.0  # dark left half, bright right half
    fmap = layers.apply_kernel(img, "vertical edges (Sobel x)", padding=0)
    assert fmap[:, 2:4].min() > 0 and fmap[:, :2].abs().max() == 0 and fmap[:, 4:].abs().max() == 0


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="4-D input"):
        layers.conv2d(torch.randn(3, 8, 8), torch.randn(2, 3, 3, 3))
    with pytest.raises(ValueError, match="3 channels but the filters expect 2"):
        layers.conv2d(torch.randn(1, 3, 8, 8), torch.randn(4, 2, 3, 3))
    with pytest.raises(ValueError, match="does not fit"):
        layers.conv2d(torch.randn(1, 1, 2, 2), torch.randn(1, 1, 3, 3))
    with pytest.raises(ValueError, match="bias"):
        layers.conv2d(torch.randn(1, 1, 5, 5), torch.randn(2, 1, 3, 3), torch.randn(3))
    with pytest.raises(ValueError, match="window does not fit"):
        layers.max_pool2d(torch.randn(1, 1, 2, 2), 3)
    with pytest.raises(TypeError, match="int or a pair"):
        layers.max_pool2d(torch.randn(1, 1, 4, 4), 2.5)
    with pytest.raises(ValueError, match="apply_kernel: expected kernel to be one of"):
        layers.apply_kernel(torch.randn(1, 8, 8), "nope")


@pytest.mark.parametrize("kernel, stride, padding, ceil_mode", [(3, 2, 1, False), (3, 2, 1, True), (2, 2, 0, True),
                                                                (3, 1, 0, False), ((3, 2), (2, 1), (1, 0), True)])
def test_pool_windows_are_torchs_windows(kernel, stride, padding, ceil_mode):
    """The max over each window is F.max_pool2d with the same geometry (padding and ceil_mode included), and
    output_size gives its shape."""
    from cnnlib.layers import output_size, pair, pool_windows

    x = torch.randn(2, 3, 7, 10)
    windows = pool_windows(x, kernel, stride, padding, ceil_mode)
    want = F.max_pool2d(x, kernel, stride, padding, ceil_mode=ceil_mode)
    torch.testing.assert_close(windows.amax(-1), want)
    (k0, k1), (s0, s1), (p0, p1) = pair(kernel), pair(stride), pair(padding)
    assert windows.shape == (2, 3, output_size(7, k0, s0, p0, ceil_mode), output_size(10, k1, s1, p1, ceil_mode),
                             k0 * k1)


@pytest.mark.parametrize("shape,k,s,p", [
    ((2, 3, 28, 28), (3, 3), (2, 2), (1, 1)),  # ZFNet-small's pools
    ((1, 4, 7, 9), (2, 3), (2, 1), (1, 0)),
    ((3, 2, 5, 5), (5, 5), (1, 1), (2, 2)),
    ((1, 1, 6, 6), (1, 1), (3, 3), (0, 0)),
    ((2, 2, 13, 11), (3, 2), (3, 3), (0, 1)),
])
def test_separable_max_pool2d_equals_torch(shape, k, s, p):
    torch.manual_seed(0)
    x = torch.randn(shape)
    x[0, 0, 0, 0] = -1e30  # far below the others, beside the −∞ padding
    assert torch.equal(layers.separable_max_pool2d(x, k, s, p), F.max_pool2d(x, k, s, p))


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("channels", [1, 3, 8])
def test_local_response_norm_kernel_equals_torch(size, channels):
    torch.manual_seed(size)
    x = torch.randn(2, channels, 5, 4, dtype=torch.float64) * 3
    want = F.local_response_norm(x, size, alpha=0.3, beta=0.75, k=2.0)
    assert torch.allclose(layers.local_response_norm(x, size, 0.3, 0.75, 2.0), want, rtol=1e-12, atol=0)


@pytest.mark.parametrize("k, d", [((3, 3), (1, 1)), ((4, 2), (1, 1)), ((3, 4), (2, 3)), ((1, 1), (1, 1))])
def test_conv_padding_same_pads_as_pytorch(k, d):
    torch.manual_seed(0)
    x, w = torch.randn(1, 2, 9, 10), torch.randn(3, 2, *k)
    top, bottom, left, right = layers.conv_padding("same", k, d)
    ours = F.conv2d(F.pad(x, (left, right, top, bottom)), w, dilation=d)
    assert torch.allclose(ours, F.conv2d(x, w, padding="same", dilation=d), atol=1e-6)  # same size and values
    assert layers.conv_padding("valid", k, d) == (0, 0, 0, 0) and layers.conv_padding((1, 2), k) == (1, 1, 2, 2)
