"""The argument checks every public function of cnnlib starts with: what each lets through, and what it refuses."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from cnnlib import checks


def test_positive_int_keeps_integers_in_range_and_refuses_the_rest():
    assert checks.positive_int("f", np.int64(3), "k") == 3 and type(checks.positive_int("f", np.int64(3), "k")) is int
    assert checks.positive_int("f", 0, "k", 0) == 0 and checks.positive_int("f", 5, "k", 1, 5) == 5
    for value in (True, 2.0, "2", None):  # a bool is an int to Python, not a count to us
        with pytest.raises(TypeError, match="^f: expected k to be an integer"):
            checks.positive_int("f", value, "k")
    with pytest.raises(ValueError, match=r"^f: expected k in >= 1, got 0"):
        checks.positive_int("f", 0, "k")
    with pytest.raises(ValueError, match=r"^f: expected k in 1\.\.5, got 6"):
        checks.positive_int("f", 6, "k", 1, 5)


def test_layer_list_refuses_a_bare_string():
    assert checks.layer_list("f", ("conv1", "conv5")) == ["conv1", "conv5"]
    with pytest.raises(TypeError, match=r"^f: expected layers to be a list of layer names, got the string 'conv1' "
                                        r"\(write \['conv1'\]\)"):
        checks.layer_list("f", "conv1")
    for bad in ([], ["conv1", 3], None):
        with pytest.raises(TypeError, match="^f: expected layers to be a non-empty list of layer names"):
            checks.layer_list("f", bad)


def test_model_device_and_to_model():
    net = nn.Linear(3, 2)
    assert checks.model_device("f", net) == torch.device("cpu")
    stats = nn.BatchNorm1d(3, affine=False)  # buffers only
    assert checks.model_device("f", stats) == torch.device("cpu")
    with pytest.raises(ValueError, match="^f: expected a model with parameters .* got a ReLU without any"):
        checks.model_device("f", nn.ReLU())
    with pytest.raises(TypeError, match="^f: expected model to be a torch.nn.Module, got str"):
        checks.model_device("f", "net")
    x = torch.rand(4, 3)
    assert checks.to_model("f", net, x) is x  # already there: no copy
    with pytest.raises(TypeError, match=r"^f: expected x of dtype torch.float32 like the model's parameters, got "
                                        r"torch.float64 \(convert with x.to\(torch.float32\)\)"):
        checks.to_model("f", net, x.double())
    assert checks.to_model("f", net.double(), x.double()).dtype == torch.float64


def test_eval_mode_names_the_layer_in_training_mode():
    net = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5), nn.ReLU())
    with pytest.raises(ValueError, match=r"^f: expected the model in eval mode .* in 1 BatchNorm/dropout layer\(s\), "
                                         r"e.g. '1'"):
        checks.eval_mode("f", net)
    assert checks.eval_mode("f", net.eval()) is net
    net[1].train()  # one layer switched back is enough to be refused
    with pytest.raises(ValueError, match="^f: expected the model in eval mode"):
        checks.eval_mode("f", net)
    plain = nn.Sequential(nn.Linear(3, 3), nn.ReLU())  # nothing stochastic: training mode changes nothing
    assert checks.eval_mode("f", plain.train()) is plain


def test_one_of_lists_the_choices():
    assert checks.one_of("f", "b", ("a", "b"), "mode") == "b"
    with pytest.raises(ValueError, match=r"^f: expected mode to be one of \['a', 'b'\], got 'c'"):
        checks.one_of("f", "c", ("a", "b"), "mode")


def test_model_input_turns_torch_shape_errors_into_a_clear_error_and_lets_the_rest_pass():
    """A layer that cannot take the input (channels, the size a linear layer was built for, an image too small
    for a pooling or a kernel) raises from deep inside torch; model_input names the function and the shape."""
    fixed = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 8 * 8, 2))  # 3 × 8 × 8 only
    cases = [(fixed, torch.rand(1, 1, 8, 8), r"to have 3 channels, but got 1"),
             (fixed, torch.rand(1, 3, 16, 16), r"mat1 and mat2 shapes cannot be multiplied"),
             (nn.Sequential(nn.MaxPool2d(2), nn.MaxPool2d(2)), torch.rand(1, 3, 2, 2), "Output size is too small"),
             (nn.Conv2d(3, 3, 5), torch.rand(1, 3, 2, 2), "Kernel size can't be greater")]
    for net, x, torch_says in cases:
        with pytest.raises(RuntimeError, match=torch_says):  # what torch alone says: no function, no shape
            net(x)
        with pytest.raises(ValueError, match=rf"^f: the model cannot take x of shape \({x.shape[0]}, {x.shape[1]}, "
                                             rf"{x.shape[2]}, {x.shape[3]}\): .*{torch_says}") as info:
            with checks.model_input("f", x.shape):
                net(x)
        assert isinstance(info.value.__cause__, RuntimeError)  # torch's own error stays in the chain
    with checks.model_input("f", (1, 3, 8, 8)):  # a model that takes its input: nothing happens
        out = fixed(torch.rand(1, 3, 8, 8))
    assert out.shape == (1, 2)
    with pytest.raises(RuntimeError, match="^something else"):  # any other error passes unchanged
        with checks.model_input("f", (1,)):
            raise RuntimeError("something else")
