"""ZFNet-small for the book's live page: the shipped weights in the layout tensorflow.js computes in.

The page ``chapters/06b_live_network.md`` runs ZFNet-small in the reader's browser, with no kernel and no
network (``live/zfnet-live.js`` on the vendored tensorflow.js WebAssembly backend). It computes in NHWC
(channels last), so the weights are stored as it takes them:

* a convolution's ``w[o, c, u, v]`` (PyTorch ``(O, C, kh, kw)``) as ``(kh, kw, C, O)``;
* a fully connected layer's ``W[o, i]`` as ``(I, O)`` (``x @ W``); for fc6, whose input is pool5 flattened,
  the rows are reordered from PyTorch's ``(c, h, w)`` to the page's ``(h, w, c)`` flattening:
  ``W_page[(h·w5 + w)·C + c, o] = W[o, c·h5·w5 + h·w5 + w]``.

The weights keep the snapshot's float16 values (``cnnlib.pretrained.load`` widens the same values to float32),
written as base64 of their bytes. :func:`numpy_forward` runs the exported arrays through the network in numpy,
in the page's layout: the test compares it with the PyTorch model, which checks every permutation above.

:func:`export` gathers the weights, the layer settings (read from the model, not assumed), each layer's
receptive field (:func:`cnnlib.receptive.receptive_field`), the occluder gray of chapter 6 and sample test images;
:func:`write_js` writes them as one script, ``window.ZFNET_LIVE = {...}``, that a page opened from ``file://``
can load with a ``<script>`` tag (it could not ``fetch`` a JSON file).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from . import checks, data, pretrained, receptive, snapshots
from .models import ZFNetSmall

#: The maps the page shows and projects: the rectified output of each convolution.
LAYERS = ("relu1", "relu2", "relu3", "relu4", "relu5")


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _half(fn: str, name: str, t: torch.Tensor) -> np.ndarray:
    """The float16 values of ``t``; refuses weights that float16 would change (not a shipped snapshot's)."""
    h = t.detach().cpu().half()
    if not torch.equal(h.float(), t.detach().cpu().float()):
        raise ValueError(f"{fn}: {name} has values float16 cannot hold exactly; export a shipped snapshot "
                         "(cnnlib.pretrained.load), whose weights are float16")
    return h.numpy()


def export(model: ZFNetSmall, samples_per_class: int = 10, provenance: dict | None = None) -> dict:
    """Everything the live page needs, as JSON-ready values.

    Args:
        model: a ZFNet-small with float16-exact weights (a shipped snapshot), 1 input channel, in eval mode.
        samples_per_class: how many Fashion-MNIST test images of each class the page offers (the first ones).
        provenance: shown on the page (which snapshot, its test accuracy, its sha256).

    Returns:
        A dict: ``layers`` (per conv/fc: kind, shape, padding, base64 float16 weights and bias), ``lrn``,
        ``pool``, ``geometry`` (per entry of :data:`LAYERS`), ``gray``, ``classes``, ``samples`` (base64 uint8
        images ``(n, 28, 28)``, labels, test-set indices), ``provenance``.
    """
    fn = "live.export"
    if not isinstance(model, ZFNetSmall):
        raise TypeError(f"{fn}: expected a cnnlib.models.ZFNetSmall, got {type(model).__name__}")
    checks.eval_mode(fn, model)
    if model.in_channels != 1 or model.image_size != 28:
        raise ValueError(f"{fn}: the page draws 28×28 gray images; got a model for {model.in_channels} channel(s) "
                         f"of {model.image_size}×{model.image_size}")
    samples_per_class = checks.positive_int(fn, samples_per_class, "samples_per_class")
    mods = dict(model.named_modules())
    layers = {}
    for name in ZFNetSmall.CONV_LAYERS:
        conv = mods[f"features.{name}"]
        if conv.stride != (1, 1) or conv.dilation != (1, 1) or conv.groups != 1 or conv.padding_mode != "zeros":
            raise ValueError(f"{fn}: {name} is not a plain stride-1 convolution; the page cannot compute it")
        w = _half(fn, f"{name}.weight", conv.weight).transpose(2, 3, 1, 0)  # (O, C, kh, kw) -> (kh, kw, C, O)
        layers[name] = {"kind": "conv", "shape": list(w.shape), "padding": list(conv.padding),
                        "weight": _b64(w), "bias": _b64(_half(fn, f"{name}.bias", conv.bias))}
    C5 = mods["features.conv5"].out_channels
    side = int(round((mods["classifier.fc6"].in_features // C5) ** 0.5))
    for name in ZFNetSmall.FC_LAYERS:
        fc = mods[f"classifier.{name}"]
        W = _half(fn, f"{name}.weight", fc.weight)  # (O, I)
        if name == "fc6":  # PyTorch flattens pool5 as (c, h, w); the page, channels last, as (h, w, c)
            W = W.reshape(-1, C5, side, side).transpose(0, 2, 3, 1).reshape(W.shape[0], -1)
        layers[name] = {"kind": "fc", "shape": [W.shape[1], W.shape[0]], "weight": _b64(W.T),
                        "bias": _b64(_half(fn, f"{name}.bias", fc.bias))}
    norms = [m for m in model.features if isinstance(m, nn.LocalResponseNorm)]
    pools = [m for m in model.features if isinstance(m, nn.MaxPool2d)]
    if len(pools) != 3 or any((p.kernel_size, p.stride, p.padding, p.ceil_mode) != (3, 2, 1, False) for p in pools):
        raise ValueError(f"{fn}: expected ZFNet-small's three 3×3/2 max-poolings with padding 1")
    lrn = None
    if norms:
        n = norms[0]
        lrn = {"size": n.size, "alpha": n.alpha, "beta": n.beta, "k": n.k}
    X_train, _ = data.load_fashion_mnist("train")
    X_test, y_test = data.load_fashion_mnist("test")
    index = torch.cat([(y_test == c).nonzero()[:samples_per_class, 0] for c in range(10)])
    images = (X_test[index, 0] * 255).round().to(torch.uint8).numpy()  # (n, 28, 28), the files' own bytes
    geometry = {}
    for layer in LAYERS:
        g = receptive.receptive_field(model, layer)
        geometry[layer] = {"size": g.size[0], "jump": g.jump[0], "padding": g.padding[0]}
    return {
        "layers": layers,
        "lrn": lrn,
        "pool": {"size": 3, "stride": 2, "padding": 1},
        "geometry": geometry,
        "gray": round(float(X_train.mean()), 6),  # chapter 6's occluder: the training set's mean pixel
        "classes": list(data.FASHION_MNIST_CLASSES),
        "samples": {"images": _b64(images), "labels": y_test[index].tolist(), "indices": index.tolist()},
        "provenance": provenance or {},
    }


def write_js(path: str | os.PathLike, name: str = "zfnet-small-fashion", epoch: int | None = None) -> Path:
    """Export the shipped snapshot ``name`` (default: its last epoch) to ``path`` as ``window.ZFNET_LIVE = {...};``."""
    snap = snapshots.load_snapshot(name, epoch, fn="live.write_js")
    model = pretrained.load(name, snap["epoch"], device="cpu")
    (sha,) = snapshots.made_from(name, [snap["epoch"]]).values()
    provenance = {"name": name, "epoch": snap["epoch"], "test_acc": snap.get("test_acc"), "sha256": sha}
    content = export(model, provenance=provenance)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("// Written by cnnlib.live.write_js (scripts/export_live.py); do not edit.\n"
                   f"window.ZFNET_LIVE = {json.dumps(content, separators=(',', ':'))};\n")
    os.replace(tmp, path)
    return path


def _array(entry: dict, key: str, shape) -> np.ndarray:
    return np.frombuffer(base64.b64decode(entry[key]), dtype=np.float16).astype(np.float32).reshape(shape)


def numpy_forward(content: dict, images: np.ndarray) -> np.ndarray:
    """Logits ``(N, 10)`` of images ``(N, 28, 28)`` in [0, 1] computed in numpy from :func:`export`'s arrays, in
    the page's NHWC layout: an implementation independent of PyTorch, to check the export."""
    x = np.asarray(images, dtype=np.float64)[..., None]  # (N, H, W, 1)
    L, lrn = content["layers"], content["lrn"]

    def conv(x, name):
        e = L[name]
        kh, kw, C, O = e["shape"]
        w, b, p = _array(e, "weight", e["shape"]).astype(np.float64), _array(e, "bias", (O,)), e["padding"][0]
        xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
        H, W = x.shape[1:3]
        out = np.zeros(x.shape[:3] + (O,))
        for u in range(kh):
            for v in range(kw):
                out += xp[:, u:u + H, v:v + W, :] @ w[u, v]
        return np.maximum(out + b, 0)

    def pool(x):
        N, H, W, C = x.shape
        h, w = (H - 1) // 2 + 1, (W - 1) // 2 + 1
        xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
        return np.max([xp[:, u:u + 2 * h:2, v:v + 2 * w:2] for u in range(3) for v in range(3)], axis=0)

    def norm(x):
        if lrn is None:
            return x
        n, C = lrn["size"], x.shape[-1]
        sq = np.pad(x * x, ((0, 0), (0, 0), (0, 0), (n // 2, (n - 1) // 2)))
        total = sum(sq[..., i:i + C] for i in range(n))
        return x / (lrn["k"] + lrn["alpha"] * total / n) ** lrn["beta"]

    x = norm(pool(conv(x, "conv1")))
    x = norm(pool(conv(x, "conv2")))
    x = pool(conv(conv(conv(x, "conv3"), "conv4"), "conv5")).reshape(len(x), -1)
    for name in ("fc6", "fc7", "fc8"):
        e = L[name]
        x = x @ _array(e, "weight", e["shape"]) + _array(e, "bias", (e["shape"][1],))
        if name != "fc8":
            x = np.maximum(x, 0)
    return x
