"""The widget callbacks draw what their controls say."""

import pytest
import torch

from cnnlib import data, layers, widgets


def test_perceptron_view_counts_mistakes():
    fig = widgets.perceptron_view(0.0, 0.0, 1.0)  # always predicts 1
    X, y = data.make_separable(n=40, margin=0.2, seed=1)
    assert f"{int((y == 0).sum())} of 40 misclassified" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="dataset"):
        widgets.perceptron_view(dataset="spiral")


def test_mlp_view_trains_xor():
    fig = widgets.mlp_view(hidden_units=4, lr=0.5, num_epochs=400)
    assert "accuracy 100%" in fig.axes[0].get_title()
    loss_line = fig.axes[1].lines[0].get_ydata()
    assert len(loss_line) == 400 and loss_line[-1] < loss_line[0]


def test_kernel_view_shows_the_convolution():
    fig = widgets.kernel_view("camera", "vertical edges (Sobel x)")
    img = data.load_photo("camera", size=128, gray=True)
    want = layers.apply_kernel(img, "vertical edges (Sobel x)")
    shown = torch.from_numpy(fig.axes[1].images[0].get_array().data)
    torch.testing.assert_close(shown, want)
    relu_shown = fig.axes[2].images[0].get_array().data
    assert relu_shown.min() >= 0


def test_custom_kernel_text():
    k = widgets.parse_kernel("1 0 -1; 2 0 -2; 1 0 -1")
    assert torch.equal(k, -layers.KERNELS["vertical edges (Sobel x)"])
    fig = widgets.kernel_view(kernel="custom", custom="0 0 0\n0 1 0\n0 0 0")
    torch.testing.assert_close(torch.from_numpy(fig.axes[1].images[0].get_array().data),
                               data.load_photo("camera", size=128, gray=True)[0])
    with pytest.raises(ValueError, match="square grid"):
        widgets.parse_kernel("1 2; 3")
    with pytest.raises(ValueError, match="expected numbers"):
        widgets.parse_kernel("a b; c d")
