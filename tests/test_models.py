"""ZFNet-small has the documented layout, shapes and names."""

import pytest
import torch

from cnnlib.models import ZFNetSmall, layer_shapes


def test_layout_and_parameter_count():
    model = ZFNetSmall()
    shapes = {name: shape for name, shape, _ in layer_shapes(model, (1, 28, 28))}
    assert shapes["conv1"] == (32, 28, 28) and shapes["pool1"] == (32, 14, 14)
    assert shapes["conv2"] == (64, 14, 14) and shapes["pool2"] == (64, 7, 7)
    assert shapes["conv5"] == (64, 7, 7) and shapes["pool5"] == (64, 4, 4)
    assert shapes["fc6"] == (256,) and shapes["fc8"] == (10,)
    assert sum(p.numel() for p in model.parameters()) == 576_650
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    fcs = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(convs) == 5 and len(fcs) == 3  # 8 layers, as ZFNet


@pytest.mark.parametrize("size", [36, 64])
def test_colour_and_other_sizes(size):
    model = ZFNetSmall(in_channels=3, image_size=size, num_classes=5).eval()
    side = size
    for _ in range(3):  # a 3×3/2 pooling with padding 1: ⌊(s + 2 − 3) / 2⌋ + 1
        side = (side - 1) // 2 + 1
    shapes = {name: shape for name, shape, _ in layer_shapes(model, (3, size, size))}
    assert shapes["conv1"] == (32, size, size) and shapes["pool5"] == (64, side, side) and shapes["fc8"] == (5,)
    assert model.classifier.fc6.in_features == 64 * side * side
    x = torch.rand(2, 3, size, size)
    out = model(x)
    for c in range(3):  # every colour channel reaches the logits
        y = x.clone()
        y[:, c] += 0.5
        assert not torch.allclose(model(y), out)


def test_named_layers():
    model = ZFNetSmall()
    assert model.layer("conv3") is model.features.conv3
    assert model.layer("fc7") is model.classifier.fc7
    with pytest.raises(ValueError, match="unknown layer 'conv9'"):
        model.layer("conv9")


def test_bad_input_shape():
    with pytest.raises(ValueError, match=r"expected input \(N, 1, 28, 28\)"):
        ZFNetSmall()(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match="image_size"):
        ZFNetSmall(image_size=4)


def test_initial_predictions_are_near_uniform():
    torch.manual_seed(0)
    with torch.no_grad():
        probs = ZFNetSmall().eval()(torch.rand(16, 1, 28, 28)).softmax(1)
    assert float((probs - 0.1).abs().max()) < 0.05


def test_activations_are_the_layer_outputs_and_hooks_are_removed():
    from cnnlib.models import activations

    model = ZFNetSmall().eval()
    x = torch.rand(3, 1, 28, 28)
    acts = activations(model, x, ["conv1", "relu1", "pool5", "fc8"])
    assert acts["conv1"].shape == (3, 32, 28, 28) and acts["pool5"].shape == (3, 64, 4, 4)
    torch.testing.assert_close(acts["relu1"], acts["conv1"].clamp(min=0))
    with torch.no_grad():
        torch.testing.assert_close(acts["fc8"], model(x))
    assert all(not m._forward_hooks for m in model.modules())
    with pytest.raises(ValueError, match="unknown layer"):
        activations(model, x, ["conv1", "nope"])
    assert all(not m._forward_hooks for m in model.modules())


@pytest.mark.parametrize("conv1, sides", [((7, 2), (32, 16, 8, 4, 2)), ((11, 4), (16, 8, 4, 2, 1))])
def test_zfnet_photo_shapes(conv1, sides):
    from cnnlib.models import ZFNetPhoto, layer_shapes

    model = ZFNetPhoto(1000, 64, conv1, (8, 16, 16, 16, 12), 32)
    shapes = {name: shape for name, shape, _ in layer_shapes(model, (3, 64, 64))}
    assert model.features.conv1.kernel_size == (conv1[0],) * 2 and model.features.conv1.stride == (conv1[1],) * 2
    assert [shapes[n][-1] for n in ("conv1", "pool1", "conv2", "pool2", "pool5")] == list(sides)
    assert shapes["fc8"] == (1000,)


def test_zfnet_photo_conv1_starts_small():
    from cnnlib.models import ZFNetPhoto

    torch.manual_seed(0)
    big = ZFNetPhoto(10, 64, (7, 2), conv1_scale=1.0).features.conv1.weight
    torch.manual_seed(0)
    small = ZFNetPhoto(10, 64, (7, 2), conv1_scale=0.1).features.conv1.weight
    assert float(big.std()) == pytest.approx((2 / (3 * 49)) ** 0.5, rel=0.1)  # He initialisation
    torch.testing.assert_close(small, 0.1 * big)
    with pytest.raises(ValueError, match="ZFNetPhoto: expected conv1"):
        ZFNetPhoto(10, 64, (0, 2))
