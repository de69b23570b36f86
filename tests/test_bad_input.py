"""Bad input, everywhere: every case is refused by cnnlib itself, with a message that starts with the name of the
public function called and says what it expected — never a result computed from nonsense, never an error from
deep inside torch or numpy, never a hang.

One row per case: ``(id, call, exception type, regex)``; the regex is anchored at the start of the message, so it
checks the function's name too. The classes of bad input: wrong rank, wrong channel count, uint8/float64/int
tensors, empty batches, NaN/inf, a string where a list of layer names is expected, a layer the forward pass never
reaches, sizes and counts <= 0 or not integers, positions outside the image, impossible requests, a model without
parameters, a model in train mode where BatchNorm/dropout would change the answer, corrupted files.
(deconvnet, occlusion and actmax have their own bad-input tests.)
"""

from __future__ import annotations

import functools
import gzip
import json
import tempfile
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from cnnlib import (
    autoencoder,
    data,
    devices,
    evolution,
    hed,
    layers,
    mlp,
    models,
    perceptron,
    photos,
    plotting,
    pretrained,
    snapshots,
    topk,
    train,
    transfer,
    widgets,
)

NAN = float("nan")


# --- small models and files the cases use (built on first use) ------------------------------------------------


def conv_net() -> nn.Sequential:
    """(N, 1, 8, 8) → conv1 (4 maps 8×8) → relu1 → pool1 (4×4) → conv2 (4 maps 4×4); eval mode."""
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict(conv1=nn.Conv2d(1, 4, 3, padding=1), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2),
                                     conv2=nn.Conv2d(4, 4, 3, padding=1))).eval()


def bn_net() -> nn.Sequential:
    """A conv and a BatchNorm, left in training mode (as a fresh module is)."""
    return nn.Sequential(OrderedDict(conv1=nn.Conv2d(1, 4, 3, padding=1), bn1=nn.BatchNorm2d(4)))


class Skips(nn.Module):
    """A model with a layer its forward pass never uses."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.unused = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        return self.conv1(x)


def no_params() -> nn.Module:
    return nn.Sequential(OrderedDict(relu1=nn.ReLU())).eval()


def zf() -> models.ZFNetSmall:
    torch.manual_seed(0)
    return models.ZFNetSmall(image_size=8).eval()


def fake_imagenet(classes: int = 1000, dropout: bool = False) -> nn.Module:
    """RGB → (N, classes) logits; with a Dropout in train mode if asked."""
    net = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5) if dropout else nn.Identity(),
                        nn.Linear(3, classes))
    return net.train() if dropout else net.eval()


def X8(n: int = 4, c: int = 1, dtype=torch.float32) -> torch.Tensor:
    return torch.rand(n, c, 8, 8).to(dtype)


def with_nan(x: torch.Tensor) -> torch.Tensor:
    x = x.clone()
    x.view(-1)[1] = NAN
    return x


def with_inf(x: torch.Tensor) -> torch.Tensor:
    x = x.clone()
    x.view(-1)[0] = float("inf")
    return x


def labels(*v) -> torch.Tensor:
    return torch.tensor(v, dtype=torch.int64)


@functools.cache
def tmp() -> Path:
    return Path(tempfile.mkdtemp(prefix="cnnlib-bad-input-"))


@functools.cache
def data_dirs() -> dict[str, Path]:
    """Snapshot folders, each broken in one way."""
    root, out = tmp() / "snapshots", {}
    for name in ("no_manifest", "not_json", "bad_entry", "bad_sha", "bad_history", "no_history"):
        out[name] = root / name
        (root / name / "tiny").mkdir(parents=True)
    (out["not_json"] / "MANIFEST.json").write_text("{not json")
    (out["bad_entry"] / "MANIFEST.json").write_text(json.dumps({"tiny/epoch-001.pt": {"sha256": "xyz", "bytes": 1}}))
    for name in ("bad_sha", "bad_history", "no_history"):
        torch.save({"name": "tiny"}, out[name] / "tiny/epoch-001.pt")
        snapshots.write_manifest(out[name])
    manifest = json.loads((out["bad_sha"] / "MANIFEST.json").read_text())
    manifest["tiny/epoch-001.pt"]["sha256"] = "0" * 64  # the file no longer matches its manifest
    (out["bad_sha"] / "MANIFEST.json").write_text(json.dumps(manifest))
    (out["bad_history"] / "tiny/history.json").write_text("[1, 2")
    return out


@functools.cache
def idx_files() -> dict[str, Path]:
    out = {"bad_magic": tmp() / "bad-magic-idx1-ubyte", "truncated": tmp() / "truncated-idx3-ubyte.gz",
           "short_header": tmp() / "short-idx3-ubyte"}
    out["bad_magic"].write_bytes(b"\x01\x02\x03\x04rest")
    out["truncated"].write_bytes(gzip.compress(b"\x00\x00\x08\x03" + (10).to_bytes(4, "big") * 3 + b"\x00" * 50)[:30])
    out["short_header"].write_bytes(b"\x00\x00\x08\x03\x00")
    return out


def mined():
    return topk.mine_topk(conv_net(), X8(5), ["conv1"], k=2, progress=False)


def fake_evolution(K: int = 4) -> evolution.Evolution:
    z = torch.zeros(1, K, dtype=torch.int64)
    return evolution.Evolution("conv1", [1], torch.zeros(1, K), z, torch.zeros(1, K, 2, dtype=torch.int64), [],
                               torch.zeros(1, 0), torch.zeros(1, 0))


def fit(model, X, y, **kw):
    return train.fit(model, X, y, device="cpu", progress=False, **kw)


MLP = functools.partial(mlp.make_mlp, [4, 3])


# --- the cases ---------------------------------------------------------------------------------------------------

CASES = [
    # data
    ("make_separable-impossible-margin", lambda: data.make_separable(margin=3), ValueError,
     r"make_separable: expected margin < 2\.504"),
    ("make_separable-n-0", lambda: data.make_separable(n=0), ValueError, r"make_separable: expected n in >= 2"),
    ("make_separable-n-float", lambda: data.make_separable(n=2.5), TypeError,
     "make_separable: expected n to be an int"),
    ("make_separable-negative-margin", lambda: data.make_separable(margin=-1), ValueError, "make_separable: .*margin"),
    ("make_separable-nan-margin", lambda: data.make_separable(margin=NAN), ValueError, "make_separable: .*finite"),
    ("make_separable-negative-seed", lambda: data.make_separable(seed=-1), ValueError, "make_separable: .*seed"),
    ("xor-n-0", lambda: data.xor(n_per_corner=0), ValueError, "xor: expected n_per_corner"),
    ("xor-negative-noise", lambda: data.xor(noise=-0.1), ValueError, "xor: expected noise"),
    ("xor-n-string", lambda: data.xor(n_per_corner="4"), TypeError, "xor: expected n_per_corner to be an int"),
    ("load_photo-unknown", lambda: photos.load_photo("mona_lisa"), ValueError,
     "load_photo: expected name to be one of"),
    ("load_photo-size-0", lambda: photos.load_photo("camera", size=0), ValueError, "load_photo: expected size"),
    ("load_photo-size-float", lambda: photos.load_photo("camera", size=12.5), TypeError, "load_photo: expected size"),
    ("load_dataset-unknown", lambda: data.load_dataset("cifar10"), ValueError, "load_dataset: expected name"),
    ("load_dataset-split", lambda: data.load_dataset("digits", "val"), ValueError, "load_dataset: expected split"),
    ("load_digits-split", lambda: data.load_digits("validation"), ValueError, "load_digits: expected split"),
    ("load_fashion_mnist-split", lambda: data.load_fashion_mnist("val"), ValueError,
     "load_fashion_mnist: expected split"),
    ("class_names-unknown", lambda: data.class_names("imagenet"), ValueError, "class_names: expected name"),
    ("split_per_class-float-labels", lambda: data.split_per_class(torch.rand(10), 2), ValueError,
     "split_per_class: expected integer labels"),
    ("split_per_class-empty", lambda: data.split_per_class(labels(), 2), ValueError,
     "split_per_class: expected integer labels"),
    ("split_per_class-n-0", lambda: data.split_per_class(labels(0, 0, 1, 1), 0), ValueError,
     "split_per_class: expected n_train"),
    ("split_per_class-impossible", lambda: data.split_per_class(labels(0, 0, 1, 1), 2), ValueError,
     "split_per_class: class 0 has 2 images"),
    ("read_idx-bad-magic", lambda: data.read_idx(idx_files()["bad_magic"]), ValueError, "read_idx: .*magic"),
    ("read_idx-truncated-gz", lambda: data.read_idx(idx_files()["truncated"]), ValueError,
     "read_idx: .*cannot be read"),
    ("read_idx-short-header", lambda: data.read_idx(idx_files()["short_header"]), ValueError, "read_idx: .*cut off"),
    ("read_idx-missing", lambda: data.read_idx(tmp() / "nope.gz"), FileNotFoundError, "read_idx: .*not a file"),
    ("ImageFolder-missing", lambda: data.ImageFolder(tmp() / "no-such-folder"), FileNotFoundError,
     "ImageFolder: .*not a folder"),
    ("ImageFolder-size-0", lambda: data.ImageFolder(tmp(), size=0), ValueError, "ImageFolder: expected size"),
    ("load_stamps-size-0", lambda: photos.load_stamps(size=0), ValueError, "load_stamps: expected size"),
    ("load_stamps-string-categories", lambda: photos.load_stamps(categories="animals/birds", root=tmp()), TypeError,
     "load_stamps: expected categories as a non-empty list"),
    # devices
    ("device-unknown", lambda: devices.device("tpu"), ValueError, "device: expected one of"),
    ("seed_everything-negative", lambda: devices.seed_everything(-1), ValueError, "seed_everything: expected"),
    ("seed_everything-float", lambda: devices.seed_everything(1.5), ValueError, "seed_everything: expected"),
    # perceptron
    ("predict_labels-rank-1", lambda: perceptron.predict_labels(torch.randn(4), torch.randn(4), 0.0), ValueError,
     r"predict_labels: expected X to be a non-empty 2-D tensor"),
    ("predict_labels-uint8", lambda: perceptron.predict_labels(torch.zeros(3, 2, dtype=torch.uint8),
                                                               torch.randn(2), 0.0), TypeError,
     "predict_labels: expected X to be a floating-point"),
    ("predict_labels-nan", lambda: perceptron.predict_labels(with_nan(torch.randn(3, 2)), torch.randn(2), 0.0),
     ValueError, "predict_labels: expected finite values in X"),
    ("predict_labels-empty", lambda: perceptron.predict_labels(torch.zeros(0, 2), torch.randn(2), 0.0), ValueError,
     "predict_labels: expected X to be a non-empty"),
    ("predict_labels-w-shape", lambda: perceptron.predict_labels(torch.randn(4, 3), torch.randn(2), 0.0), ValueError,
     "predict_labels: expected w of shape"),
    ("predict_labels-b-string", lambda: perceptron.predict_labels(torch.randn(4, 2), torch.randn(2), "1"), TypeError,
     "predict_labels: expected b to be a number"),
    ("train_perceptron-targets", lambda: perceptron.train_perceptron(torch.randn(4, 2), labels(0, 1, 2, 1)),
     ValueError, "train_perceptron: the perceptron's targets are 0 or 1"),
    ("train_perceptron-float-targets", lambda: perceptron.train_perceptron(torch.randn(4, 2), torch.ones(4)),
     TypeError, "train_perceptron: expected integer targets"),
    ("train_perceptron-lr-0", lambda: perceptron.train_perceptron(torch.randn(4, 2), labels(0, 1, 0, 1), lr=0),
     ValueError, r"train_perceptron: expected lr in \(0, inf\]"),
    ("train_perceptron-max_epochs-0", lambda: perceptron.train_perceptron(torch.randn(4, 2), labels(0, 1, 0, 1),
                                                                          max_epochs=0),
     ValueError, "train_perceptron: expected max_epochs"),
    ("train_perceptron-max_epochs-float", lambda: perceptron.train_perceptron(torch.randn(4, 2), labels(0, 1, 0, 1),
                                                                              max_epochs=2.5),
     TypeError, "train_perceptron: expected max_epochs to be an int"),
    ("train_perceptron-inf", lambda: perceptron.train_perceptron(with_inf(torch.randn(4, 2)), labels(0, 1, 0, 1)),
     ValueError, "train_perceptron: expected finite values in X"),
    # mlp
    ("init_params-one-size", lambda: mlp.init_params([3]), ValueError, "init_params: expected sizes with at least two"),
    ("init_params-string", lambda: mlp.init_params("2,3"), TypeError, "init_params: expected sizes as a list"),
    ("init_params-size-0", lambda: mlp.init_params([2, 0, 2]), ValueError, "init_params: expected sizes in >= 1"),
    ("init_params-size-float", lambda: mlp.init_params([2, 2.5, 2]), TypeError, "init_params: expected sizes to be"),
    ("forward-wrong-D", lambda: mlp.forward(mlp.init_params([2, 2]), torch.randn(3, 5)), ValueError,
     r"forward: expected X of shape \(N, 2\)"),
    ("forward-int", lambda: mlp.forward(mlp.init_params([2, 2]), torch.ones(3, 2, dtype=torch.int64)), TypeError,
     "forward: expected X to be a floating-point"),
    ("forward-nan", lambda: mlp.forward(mlp.init_params([2, 2]), with_nan(torch.randn(3, 2))), ValueError,
     "forward: expected finite values"),
    ("forward-empty", lambda: mlp.forward(mlp.init_params([2, 2]), torch.zeros(0, 2)), ValueError,
     r"forward: expected X of shape \(N, 2\) with N >= 1"),
    ("forward-activation", lambda: mlp.forward(mlp.init_params([2, 2]), torch.randn(3, 2), "softsign"), ValueError,
     "forward: expected activation to be one of"),
    ("forward-params", lambda: mlp.forward({"W": torch.zeros(2, 2)}, torch.randn(3, 2)), TypeError,
     "forward: expected params from init_params"),
    ("cross_entropy-label-range", lambda: mlp.cross_entropy(torch.full((2, 3), 1 / 3), labels(0, 3)), ValueError,
     r"cross_entropy: expected labels in 0\.\.2"),
    ("cross_entropy-float-labels", lambda: mlp.cross_entropy(torch.full((2, 3), 1 / 3), torch.zeros(2)), TypeError,
     "cross_entropy: expected int64 class labels"),
    ("backward-cache", lambda: mlp.backward(mlp.init_params([2, 2]), {}, labels(0)), TypeError,
     "backward: expected the cache"),
    ("fit_scratch-lr-0", lambda: mlp.fit_scratch(mlp.init_params([2, 2]), torch.randn(3, 2), labels(0, 1, 0), lr=0),
     ValueError, "fit_scratch: expected lr"),
    ("fit_scratch-epochs-0", lambda: mlp.fit_scratch(mlp.init_params([2, 2]), torch.randn(3, 2), labels(0, 1, 0),
                                                     num_epochs=0), ValueError, "fit_scratch: expected num_epochs"),
    ("fit_scratch-labels", lambda: mlp.fit_scratch(mlp.init_params([2, 2]), torch.randn(3, 2), labels(0, 1, 5)),
     ValueError, r"fit_scratch: expected labels in 0\.\.1"),
    ("make_mlp-activation", lambda: mlp.make_mlp([2, 2], activation="softsign"), ValueError,
     "make_mlp: expected activation"),
    ("make_mlp-one-size", lambda: mlp.make_mlp([4]), ValueError, "make_mlp: expected sizes with at least two"),
    # layers
    ("conv2d-rank-3", lambda: layers.conv2d(torch.rand(1, 5, 5), torch.rand(2, 1, 3, 3)), ValueError,
     r"conv2d: expected a 4-D input .*x\[None\]"),
    ("conv2d-channels", lambda: layers.conv2d(torch.rand(1, 3, 5, 5), torch.rand(2, 2, 3, 3)), ValueError,
     "conv2d: input has 3 channels but the filters expect 2"),
    ("conv2d-uint8", lambda: layers.conv2d(torch.zeros(1, 1, 5, 5, dtype=torch.uint8), torch.rand(2, 1, 3, 3)),
     TypeError, r"conv2d: expected x to be a floating-point .*x.float\(\) / 255"),
    ("conv2d-float64", lambda: layers.conv2d(torch.rand(1, 1, 5, 5, dtype=torch.float64), torch.rand(2, 1, 3, 3)),
     TypeError, "conv2d: expected weight and bias of the dtype of x"),
    ("conv2d-stride-0", lambda: layers.conv2d(torch.rand(1, 1, 5, 5), torch.rand(2, 1, 3, 3), stride=0), ValueError,
     "conv2d: stride must be >= 1"),
    ("conv2d-stride-float", lambda: layers.conv2d(torch.rand(1, 1, 5, 5), torch.rand(2, 1, 3, 3), stride=1.5),
     TypeError, "conv2d: expected stride to be an int or a pair"),
    ("conv2d-kernel-too-big", lambda: layers.conv2d(torch.rand(1, 1, 2, 2), torch.rand(2, 1, 3, 3)), ValueError,
     "conv2d: a 3×3 kernel does not fit"),
    ("conv2d-empty", lambda: layers.conv2d(torch.rand(0, 1, 5, 5), torch.rand(2, 1, 3, 3)), ValueError,
     "conv2d: expected at least one image"),
    ("conv2d-nan", lambda: layers.conv2d(with_nan(torch.rand(1, 1, 5, 5)), torch.rand(2, 1, 3, 3)), ValueError,
     "conv2d: expected finite values"),
    ("max_pool2d-kernel-0", lambda: layers.max_pool2d(torch.rand(1, 1, 4, 4), 0), ValueError,
     "max_pool2d: expected kernel_size and stride >= 1"),
    ("max_pool2d-too-big", lambda: layers.max_pool2d(torch.rand(1, 1, 2, 2), 3), ValueError,
     "max_pool2d: a 3×3 window does not fit"),
    ("avg_pool2d-rank-3", lambda: layers.avg_pool2d(torch.rand(1, 4, 4)), ValueError, "avg_pool2d: expected a 4-D"),
    ("pool_windows-padding", lambda: layers.pool_windows(torch.rand(1, 1, 4, 4), 2, padding=2), ValueError,
     r"pool_windows: expected .* 0 <= padding <= kernel_size / 2"),
    ("relu-list", lambda: layers.relu([1.0, -1.0]), TypeError, "relu: expected x to be a torch.Tensor"),
    ("apply_kernel-unknown", lambda: layers.apply_kernel(torch.rand(1, 8, 8), "blur"), ValueError,
     "apply_kernel: expected kernel to be one of"),
    ("apply_kernel-rgb", lambda: layers.apply_kernel(torch.rand(3, 8, 8), "sharpen"), ValueError,
     r"apply_kernel: expected a gray image \(1, H, W\)"),
    ("apply_kernel-kernel-3d", lambda: layers.apply_kernel(torch.rand(1, 8, 8), torch.rand(1, 3, 3)), ValueError,
     "apply_kernel: expected a 2-D kernel"),
    ("apply_kernel-stride-0", lambda: layers.apply_kernel(torch.rand(1, 8, 8), "sharpen", stride=0), ValueError,
     "apply_kernel: expected stride"),
    ("apply_kernel-too-big", lambda: layers.apply_kernel(torch.rand(1, 4, 4), torch.rand(9, 9), padding=0),
     ValueError, "apply_kernel: a .* kernel does not fit"),
    ("pair-string", lambda: layers.pair("3", "kernel_size"), TypeError, "pair: expected kernel_size to be an int"),
    # models
    ("ZFNetSmall-image_size-4", lambda: models.ZFNetSmall(image_size=4), ValueError, "ZFNetSmall: expected image_size"),
    ("ZFNetSmall-in_channels-0", lambda: models.ZFNetSmall(in_channels=0), ValueError,
     "ZFNetSmall: expected in_channels"),
    ("ZFNetSmall-one-class", lambda: models.ZFNetSmall(num_classes=1), ValueError, "ZFNetSmall: expected num_classes"),
    ("ZFNetSmall-three-widths", lambda: models.ZFNetSmall(widths=(1, 2, 3)), ValueError,
     "ZFNetSmall: expected 5 widths"),
    ("ZFNetSmall-dropout-1.5", lambda: models.ZFNetSmall(dropout=1.5), ValueError, "ZFNetSmall: expected dropout"),
    ("ZFNetSmall-channels", lambda: zf()(X8(2, c=3)), ValueError, r"ZFNetSmall: expected input \(N, 1, 8, 8\)"),
    ("ZFNetSmall-uint8", lambda: zf()(X8(2, dtype=torch.uint8)), TypeError, "ZFNetSmall: expected x to be a floating"),
    ("activations-string", lambda: models.activations(zf(), X8(), "conv1"), TypeError,
     r"activations: expected layers to be a list .*\(write \['conv1'\]\)"),
    ("activations-unknown-layer", lambda: models.activations(zf(), X8(), ["conv9"]), ValueError,
     "activations: unknown layer 'conv9'"),
    ("activations-not-reached", lambda: models.activations(Skips().eval(), X8(), ["unused"]), ValueError,
     "activations: layer 'unused' was not reached"),
    ("activations-channels", lambda: models.activations(conv_net(), X8(c=3), ["conv1"]), ValueError,
     r"activations: the model cannot take x of shape \(4, 3, 8, 8\): .*to have 1 channels"),
    ("activations-uint8", lambda: models.activations(zf(), X8(dtype=torch.uint8), ["conv1"]), TypeError,
     "activations: expected x to be a floating-point"),
    ("activations-float64", lambda: models.activations(zf(), X8(dtype=torch.float64), ["conv1"]), TypeError,
     "activations: expected x of dtype torch.float32 like the model's parameters"),
    ("activations-empty", lambda: models.activations(zf(), X8(0), ["conv1"]), ValueError,
     "activations: expected at least one image"),
    ("activations-nan", lambda: models.activations(zf(), with_nan(X8()), ["conv1"]), ValueError,
     "activations: expected finite values"),
    ("activations-rank-3", lambda: models.activations(zf(), torch.rand(1, 8, 8), ["conv1"]), ValueError,
     r"activations: expected x of shape \(N, D\) or \(N, C, H, W\)"),
    ("activations-train-mode", lambda: models.activations(zf().train(), X8(), ["conv1"]), ValueError,
     r"activations: expected the model in eval mode"),
    ("activations-no-parameters", lambda: models.activations(no_params(), X8(), ["relu1"]), ValueError,
     "activations: expected a model with parameters"),
    ("layer_shapes-int-shape", lambda: models.layer_shapes(zf(), 8), TypeError,
     "layer_shapes: expected input_shape as a tuple"),
    ("layer_shapes-no-parameters", lambda: models.layer_shapes(no_params(), (1, 8, 8)), ValueError,
     "layer_shapes: expected a model with parameters"),
    ("named_layer-int", lambda: models.named_layer(zf(), 3), TypeError, "named_layer: expected a layer name"),
    ("named_layer-unknown", lambda: models.named_layer(zf(), "conv9"), ValueError, "named_layer: unknown layer"),
    # train
    ("fit-empty-batch", lambda: fit(MLP(), torch.zeros(0, 4), labels()), ValueError,
     "fit: expected at least one example"),
    ("evaluate-empty-batch", lambda: train.evaluate(MLP(), torch.zeros(0, 4), labels()), ValueError,
     "evaluate: expected at least one example"),
    ("fit-float-labels", lambda: fit(MLP(), torch.randn(5, 4), torch.zeros(5)), TypeError,
     "fit: expected int64 class labels"),
    ("fit-int32-labels", lambda: fit(MLP(), torch.randn(5, 4), torch.zeros(5, dtype=torch.int32)), TypeError,
     "fit: expected int64 class labels"),
    ("fit-uint8", lambda: fit(models.ZFNetSmall(image_size=8), X8(5, dtype=torch.uint8), labels(0, 1, 2, 3, 4)),
     TypeError, "fit: expected X to be a floating-point"),
    ("fit-float64", lambda: fit(MLP(), torch.randn(5, 4, dtype=torch.float64), labels(0, 1, 2, 0, 1)), TypeError,
     "fit: expected X of dtype torch.float32"),
    ("fit-nan", lambda: fit(MLP(), with_nan(torch.randn(5, 4)), labels(0, 1, 2, 0, 1)), ValueError,
     "fit: expected finite values in X"),
    ("fit-lr-0", lambda: fit(MLP(), torch.randn(5, 4), labels(0, 1, 2, 0, 1), lr=0), ValueError, "fit: expected lr"),
    ("fit-epochs-0", lambda: fit(MLP(), torch.randn(5, 4), labels(0, 1, 2, 0, 1), num_epochs=0), ValueError,
     "fit: expected num_epochs"),
    ("fit-batch-float", lambda: fit(MLP(), torch.randn(5, 4), labels(0, 1, 2, 0, 1), batch_size=2.5), TypeError,
     "fit: expected batch_size to be an int"),
    ("fit-label-beyond-classes", lambda: fit(MLP(), torch.randn(5, 4), labels(0, 1, 2, 0, 7)), ValueError,
     "fit: the model has 3 classes, got label 7"),
    ("fit-negative-label", lambda: fit(MLP(), torch.randn(5, 4), labels(0, 1, 2, 0, -1)), ValueError,
     "fit: expected class labels >= 0"),
    ("fit-X_test-alone", lambda: fit(MLP(), torch.randn(5, 4), labels(0, 1, 2, 0, 1), X_test=torch.randn(2, 4)),
     ValueError, "fit: expected both X_test and y_test"),
    ("fit-momentum-1.5", lambda: fit(MLP(), torch.randn(5, 4), labels(0, 1, 2, 0, 1), momentum=1.5), ValueError,
     "fit: expected momentum"),
    ("fit-no-parameters", lambda: fit(nn.Flatten(), torch.randn(5, 4), labels(0, 1, 2, 0, 1)), ValueError,
     "fit: expected a model with parameters"),
    ("evaluate-mismatch", lambda: train.evaluate(MLP(), torch.randn(5, 4), labels(0, 1)), ValueError,
     "evaluate: expected X .* with the same N"),
    ("evaluate-batch-0", lambda: train.evaluate(MLP(), torch.randn(5, 4), labels(0, 1, 2, 0, 1), batch_size=0),
     ValueError, "evaluate: expected batch_size"),
    ("evaluate-other-device", lambda: train.evaluate(MLP(), torch.randn(5, 4), labels(0, 1, 2, 0, 1), device="meta"),
     ValueError, "evaluate: the model is on cpu, device= asks for meta"),
    ("predict_logits-empty", lambda: train.predict_logits(MLP(), torch.zeros(0, 4)), ValueError,
     "predict_logits: expected a non-empty batch"),
    ("predict_logits-uint8", lambda: train.predict_logits(MLP(), torch.zeros(2, 4, dtype=torch.uint8)), TypeError,
     "predict_logits: expected X to be a floating-point"),
    ("confusion_matrix-float", lambda: train.confusion_matrix(torch.zeros(3), torch.zeros(3), 2), TypeError,
     "confusion_matrix: expected integer labels"),
    ("confusion_matrix-classes-0", lambda: train.confusion_matrix(labels(0), labels(0), 0), ValueError,
     "confusion_matrix: expected num_classes"),
    ("confusion_matrix-range", lambda: train.confusion_matrix(labels(0, 3), labels(0, 1), 3), ValueError,
     r"confusion_matrix: y_true must lie in 0\.\.2"),
    ("SnapshotConfig-epochs", lambda: train.SnapshotConfig(num_epochs=3, snapshot_epochs=(1, 5)), ValueError,
     r"SnapshotConfig: expected snapshot_epochs in 1\.\.3"),
    ("SnapshotConfig-dataset", lambda: train.SnapshotConfig(dataset="cifar10"), ValueError,
     "SnapshotConfig: expected dataset to be one of"),
    ("SnapshotConfig-lr-0", lambda: train.SnapshotConfig(lr=0), ValueError, "SnapshotConfig: expected lr"),
    ("train_snapshots-cfg-dict", lambda: train.train_snapshots({"name": "tiny"}, tmp(), tmp()), TypeError,
     "train_snapshots: expected cfg to be a SnapshotConfig"),
    # snapshots and pretrained
    ("available-no-manifest", lambda: snapshots.available(data_dirs()["no_manifest"]), FileNotFoundError,
     "available: .*MANIFEST.json is missing"),
    ("available-not-json", lambda: pretrained.available(data_dirs()["not_json"]), ValueError,
     "available: .*MANIFEST.json is corrupted"),
    ("load_snapshot-bad-entry", lambda: pretrained.load_snapshot("tiny", data_dir=data_dirs()["bad_entry"]),
     ValueError, "load_snapshot: .*MANIFEST.json is corrupted"),
    ("load_snapshot-sha-mismatch", lambda: pretrained.load_snapshot("tiny", data_dir=data_dirs()["bad_sha"]),
     ValueError, "load_snapshot: .*corrupted or truncated"),
    ("load_snapshot-not-a-snapshot", lambda: pretrained.load_snapshot("tiny", data_dir=data_dirs()["no_history"]),
     ValueError, r"load_snapshot: .*is not a snapshot: keys \['epoch'"),
    ("load-not-a-snapshot", lambda: pretrained.load("tiny", data_dir=data_dirs()["no_history"], device="cpu"),
     ValueError, "load: .*is not a snapshot"),
    ("load_snapshot-epoch-string", lambda: pretrained.load_snapshot("tiny", "last", data_dirs()["no_history"]),
     TypeError, "load_snapshot: expected epoch to be an int"),
    ("load_snapshot-epoch-absent", lambda: pretrained.load_snapshot("tiny", 7, data_dirs()["no_history"]),
     ValueError, "load_snapshot: tiny has no snapshot at epoch 7"),
    ("load_snapshot-unknown", lambda: pretrained.load_snapshot("alexnet", data_dir=data_dirs()["no_history"]),
     ValueError, "load_snapshot: unknown network 'alexnet'"),
    ("load_snapshot-name-int", lambda: pretrained.load_snapshot(3, data_dir=data_dirs()["no_history"]), TypeError,
     "load_snapshot: expected name to be a string"),
    ("history-not-json", lambda: pretrained.history("tiny", data_dirs()["bad_history"]), ValueError,
     "history: .*history.json is corrupted"),
    ("history-missing", lambda: pretrained.history("tiny", data_dirs()["no_history"]), FileNotFoundError,
     "history: .*history.json is missing"),
    ("imagenet_preprocess-gray", lambda: pretrained.imagenet_preprocess(torch.rand(1, 1, 64, 64)), ValueError,
     "imagenet_preprocess: expected 3 channels"),
    ("imagenet_preprocess-uint8", lambda: pretrained.imagenet_preprocess(torch.zeros(3, 64, 64, dtype=torch.uint8)),
     TypeError, "imagenet_preprocess: expected x to be a floating-point"),
    ("imagenet_preprocess-resize", lambda: pretrained.imagenet_preprocess(torch.rand(3, 64, 64), resize=100),
     ValueError, r"imagenet_preprocess: expected resize \(at least size\) in >= 224"),
    ("imagenet_preprocess-std-0", lambda: pretrained.imagenet_preprocess(torch.rand(3, 64, 64), std=(1, 0, 1)),
     ValueError, "imagenet_preprocess: expected std > 0"),
    ("imagenet_preprocess-mean-2", lambda: pretrained.imagenet_preprocess(torch.rand(3, 64, 64), mean=(0.5, 0.5)),
     ValueError, "imagenet_preprocess: expected mean as 3 numbers"),
    ("imagenet_preprocess-empty", lambda: pretrained.imagenet_preprocess(torch.rand(0, 3, 64, 64)), ValueError,
     "imagenet_preprocess: expected at least one image"),
    ("classify-topk-0", lambda: pretrained.classify(fake_imagenet(), torch.rand(3, 32, 32), topk=0), ValueError,
     "classify: expected topk"),
    ("classify-not-imagenet", lambda: pretrained.classify(fake_imagenet(10), torch.rand(3, 32, 32)), ValueError,
     r"classify: expected a model giving \(N, 1000\)"),
    ("classify-train-mode", lambda: pretrained.classify(fake_imagenet(dropout=True), torch.rand(3, 32, 32)),
     ValueError, "classify: expected the model in eval mode"),
    ("classify-float64", lambda: pretrained.classify(fake_imagenet(), torch.rand(3, 32, 32, dtype=torch.float64)),
     TypeError, "classify: expected x of dtype torch.float32"),
    ("torchvision_cached-int", lambda: pretrained.torchvision_cached(3), TypeError,
     "torchvision_cached: expected arch to be a string"),
    ("torchvision_cached-unknown", lambda: pretrained.torchvision_cached("lenet9000"), ValueError,
     "torchvision_cached: unknown torchvision architecture"),
    ("hed_preprocess-gray", lambda: hed.hed_preprocess(torch.rand(1, 1, 8, 8)), ValueError,
     "hed_preprocess: expected 3 channels"),
    ("hed_to_rgb-rank-2", lambda: hed.hed_to_rgb(torch.rand(8, 8)), ValueError, "hed_to_rgb: expected x of shape"),
    ("hed_edges-uint8", lambda: hed.hed_edges(torch.zeros(3, 8, 8, dtype=torch.uint8)), TypeError,
     "hed_edges: expected x to be a floating-point"),
    # topk
    ("mine_topk-string", lambda: topk.mine_topk(conv_net(), X8(), "conv1", progress=False), TypeError,
     "mine_topk: expected layers to be a list"),
    ("mine_topk-k-0", lambda: topk.mine_topk(conv_net(), X8(), ["conv1"], k=0, progress=False), ValueError,
     "mine_topk: expected k"),
    ("mine_topk-k-too-many", lambda: topk.mine_topk(conv_net(), X8(3), ["conv1"], k=9, progress=False), ValueError,
     r"mine_topk: expected k .* in 1\.\.3, got 9"),
    ("mine_topk-uint8", lambda: topk.mine_topk(conv_net(), X8(dtype=torch.uint8), ["conv1"], progress=False),
     TypeError, "mine_topk: expected x to be a floating-point"),
    ("mine_topk-float64", lambda: topk.mine_topk(conv_net(), X8(dtype=torch.float64), ["conv1"], k=2,
                                                 progress=False), TypeError, "mine_topk: expected x of dtype"),
    ("mine_topk-empty", lambda: topk.mine_topk(conv_net(), X8(0), ["conv1"], progress=False), ValueError,
     "mine_topk: expected at least one image"),
    ("mine_topk-rank-3", lambda: topk.mine_topk(conv_net(), torch.rand(1, 8, 8), ["conv1"], progress=False),
     ValueError, r"mine_topk: expected x of shape \(N, C, H, W\)"),
    ("mine_topk-batchnorm-train", lambda: topk.mine_topk(bn_net(), X8(), ["conv1"], k=2, progress=False),
     ValueError, "mine_topk: expected the model in eval mode"),
    ("mine_topk-not-reached", lambda: topk.mine_topk(Skips().eval(), X8(), ["unused"], k=2, progress=False),
     ValueError, "mine_topk: layer 'unused' was not reached"),
    ("mine_topk-no-parameters", lambda: topk.mine_topk(no_params(), X8(), ["relu1"], k=2, progress=False),
     ValueError, "mine_topk: expected a model with parameters"),
    ("mine_topk-channels", lambda: topk.mine_topk(conv_net(), X8(c=3), ["conv1"], k=2, progress=False), ValueError,
     r"mine_topk: the model cannot take X of shape \(4, 3, 8, 8\): .*to have 1 channels, but got 3"),
    ("mine_topk-inf", lambda: topk.mine_topk(conv_net(), with_inf(X8()), ["conv1"], k=2, progress=False), ValueError,
     "mine_topk: expected finite values"),
    ("receptive_field-unknown", lambda: topk.receptive_field(conv_net(), "conv9"), ValueError,
     "receptive_field: unknown layer 'conv9'"),
    ("receptive_field-int", lambda: topk.receptive_field(conv_net(), 1), TypeError,
     "receptive_field: expected a layer name"),
    ("crop-outside", lambda: topk.crop(torch.rand(1, 8, 8), topk.receptive_field(conv_net(), "conv1"), 20, 0),
     ValueError, r"crop: unit \(20, 0\) .* outside the 8×8 image"),
    ("crop-negative", lambda: topk.crop(torch.rand(1, 8, 8), topk.receptive_field(conv_net(), "conv1"), -1, 0),
     ValueError, "crop: expected row i"),
    ("crop-rank-4", lambda: topk.crop(torch.rand(1, 1, 8, 8), topk.receptive_field(conv_net(), "conv1"), 0, 0),
     ValueError, r"crop: expected image of shape \(C, H, W\)"),
    ("crop-rf", lambda: topk.crop(torch.rand(1, 8, 8), (3, 1, 1), 0, 0), TypeError,
     "crop: expected rf to be a ReceptiveField"),
    ("top_projections-channel", lambda: topk.top_projections(conv_net(), X8(5), mined()["conv1"], 4), ValueError,
     r"top_projections: expected channel .* in 0\.\.3, got 4"),
    ("top_projections-not-topk", lambda: topk.top_projections(conv_net(), X8(5), {"conv1": 1}, 0), TypeError,
     "top_projections: expected top to be a TopK"),
    ("project_units-image-index", lambda: topk.project_units(conv_net(), X8(3), "conv1", 0, labels(5),
                                                             torch.zeros(1, 2, dtype=torch.int64)),
     ValueError, r"project_units: image_index must lie in 0\.\.2"),
    ("project_units-float-position", lambda: topk.project_units(conv_net(), X8(3), "conv1", 0, labels(0),
                                                                torch.zeros(1, 2)),
     ValueError, "project_units: expected integer image_index"),
    # autoencoder
    ("ConvAutoencoder-width-0", lambda: autoencoder.ConvAutoencoder(width=0), ValueError,
     "ConvAutoencoder: expected width"),
    ("ConvAutoencoder-channels", lambda: autoencoder.ConvAutoencoder()(torch.rand(2, 3, 28, 28)), ValueError,
     "ConvAutoencoder: expected 1 channels"),
    ("ConvAutoencoder-size", lambda: autoencoder.ConvAutoencoder()(torch.rand(2, 1, 30, 30)), ValueError,
     "ConvAutoencoder: expected a height and width divisible by 4"),
    ("fit_autoencoder-empty", lambda: autoencoder.fit_autoencoder(autoencoder.ConvAutoencoder(), torch.rand(0, 1, 8, 8),
                                                                  device="cpu", progress=False),
     ValueError, "fit_autoencoder: expected at least one image"),
    ("fit_autoencoder-lr", lambda: autoencoder.fit_autoencoder(autoencoder.ConvAutoencoder(), torch.rand(2, 1, 8, 8),
                                                               lr=-1, device="cpu", progress=False),
     ValueError, "fit_autoencoder: expected lr"),
    ("fit_autoencoder-uint8", lambda: autoencoder.fit_autoencoder(autoencoder.ConvAutoencoder(),
                                                                  torch.zeros(2, 1, 8, 8, dtype=torch.uint8),
                                                                  device="cpu", progress=False),
     TypeError, "fit_autoencoder: expected x to be a floating-point"),
    ("fit_autoencoder-shape", lambda: autoencoder.fit_autoencoder(nn.Conv2d(1, 1, 3), torch.rand(2, 1, 8, 8),
                                                                  device="cpu", progress=False),
     ValueError, "fit_autoencoder: expected the model to return the shape of its input"),
    # evolution
    ("linear_cka-one-input", lambda: evolution.linear_cka(torch.rand(1, 3), torch.rand(1, 3)), ValueError,
     "linear_cka: expected the same n >= 2 inputs"),
    ("linear_cka-nan", lambda: evolution.linear_cka(with_nan(torch.rand(4, 3)), torch.rand(4, 3)), ValueError,
     "linear_cka: expected finite values in X"),
    ("linear_cka-int", lambda: evolution.linear_cka(torch.ones(4, 3, dtype=torch.int64), torch.rand(4, 3)), TypeError,
     "linear_cka: expected X to be a floating-point"),
    ("linear_cka-constant", lambda: evolution.linear_cka(torch.ones(4, 3), torch.rand(4, 3)), ValueError,
     "linear_cka: a representation is constant"),
    ("layer_similarity-no-models", lambda: evolution.layer_similarity({}, X8(), ["conv1"]), TypeError,
     "layer_similarity: expected models as a non-empty"),
    ("layer_similarity-string", lambda: evolution.layer_similarity({1: conv_net()}, X8(), "conv1"), TypeError,
     "layer_similarity: expected layers to be a list"),
    ("layer_similarity-train-mode", lambda: evolution.layer_similarity({1: bn_net()}, X8(), ["conv1"]), ValueError,
     "layer_similarity: expected the model in eval mode"),
    ("layer_similarity-reference", lambda: evolution.layer_similarity({1: conv_net()}, X8(), ["conv1"], 5),
     ValueError, "layer_similarity: reference epoch 5"),
    ("strongest_projections-list", lambda: evolution.strongest_projections({1: conv_net()}, X8(), ["conv1"]),
     TypeError, "strongest_projections: expected channels as a non-empty"),
    ("strongest_projections-int-maps", lambda: evolution.strongest_projections({1: conv_net()}, X8(), {"conv1": 0}),
     TypeError, "strongest_projections: expected a non-empty list of feature maps"),
    ("follow-not-evolution", lambda: evolution.follow({1: conv_net()}, X8(), {"conv1": 0}, [0]), TypeError,
     "follow: expected an Evolution"),
    ("follow-channel", lambda: evolution.follow({1: conv_net()}, X8(), fake_evolution(), [7]), ValueError,
     r"follow: expected feature maps of 'conv1' \(4 maps\) in 0\.\.3, got 7"),
    # transfer
    ("extract_features-channels", lambda: transfer.extract_features(conv_net(), X8(c=3), ["conv1"], progress=False),
     ValueError, r"extract_features: the model cannot take X of shape \(4, 3, 8, 8\): .*to have 1 channels"),
    ("extract_features-string", lambda: transfer.extract_features(conv_net(), X8(), "conv1", progress=False),
     TypeError, "extract_features: expected layers to be a list"),
    ("extract_features-uint8", lambda: transfer.extract_features(conv_net(), X8(dtype=torch.uint8), ["conv1"],
                                                                 progress=False),
     TypeError, "extract_features: expected x to be a floating-point"),
    ("extract_features-batch-0", lambda: transfer.extract_features(conv_net(), X8(), ["conv1"], batch_size=0,
                                                                   progress=False),
     ValueError, "extract_features: expected batch_size"),
    ("extract_features-train-mode", lambda: transfer.extract_features(bn_net(), X8(), ["conv1"], progress=False),
     ValueError, "extract_features: expected the model in eval mode"),
    ("extract_features-not-reached", lambda: transfer.extract_features(Skips().eval(), X8(), ["unused"],
                                                                       progress=False),
     ValueError, "extract_features: layer 'unused' was not reached"),
    ("fit_softmax-nan", lambda: transfer.fit_softmax(with_nan(torch.rand(6, 3)), labels(0, 1, 0, 1, 0, 1)), ValueError,
     "fit_softmax: expected finite values in features"),
    ("fit_softmax-float-labels", lambda: transfer.fit_softmax(torch.rand(6, 3), torch.zeros(6)), TypeError,
     "fit_softmax: expected int64 labels"),
    ("fit_softmax-classes", lambda: transfer.fit_softmax(torch.rand(4, 3), labels(0, 1, 2, 3), num_classes=2),
     ValueError, r"fit_softmax: expected num_classes \(labels go up to 3\) in >= 4"),
    ("fit_softmax-empty", lambda: transfer.fit_softmax(torch.rand(0, 3), labels()), ValueError,
     r"fit_softmax: expected features \(N, K\) and labels \(N,\) with N >= 1"),
    ("fit_softmax-max_iter", lambda: transfer.fit_softmax(torch.rand(4, 3), labels(0, 1, 0, 1), max_iter=0),
     ValueError, "fit_softmax: expected max_iter"),
    ("SoftmaxProbe-features", lambda: transfer.fit_softmax(torch.rand(4, 3), labels(0, 1, 0, 1))(torch.rand(2, 5)),
     ValueError, r"SoftmaxProbe: expected features \(N, 3\)"),
    ("mean_class_accuracy-empty", lambda: transfer.mean_class_accuracy(labels(), labels()), ValueError,
     "mean_class_accuracy: expected two label vectors"),
    ("mean_class_accuracy-float", lambda: transfer.mean_class_accuracy(torch.zeros(3), labels(0, 0, 0)), TypeError,
     "mean_class_accuracy: expected integer labels"),
    ("split_protocol-int-n", lambda: transfer.split_protocol(labels(0, 0, 1, 1), 1, lambda a, b: b), TypeError,
     "split_protocol: expected n_per_class as a non-empty list"),
    ("split_protocol-splits-0", lambda: transfer.split_protocol(labels(0, 0, 1, 1), [1], lambda a, b: b, splits=0),
     ValueError, "split_protocol: expected splits"),
    ("accuracy_vs_train_size-inf", lambda: transfer.accuracy_vs_train_size(with_inf(torch.rand(4, 3)),
                                                                           labels(0, 0, 1, 1), [1]),
     ValueError, "accuracy_vs_train_size: expected finite values"),
    # plotting
    ("normalize_projection-one-image", lambda: plotting.normalize_projection(torch.rand(3, 5, 5)), ValueError,
     r"normalize_projection: expected r of shape \(N, C, H, W\), got \(3, 5, 5\)"),
    ("normalize_projection-quantile-0", lambda: plotting.normalize_projection(torch.rand(1, 3, 5, 5), 0), ValueError,
     r"normalize_projection: expected quantile in \(0, 1\]"),
    ("normalize_projection-nan", lambda: plotting.normalize_projection(with_nan(torch.rand(1, 3, 5, 5))), ValueError,
     "normalize_projection: expected finite values"),
    ("normalize_projection-uint8", lambda: plotting.normalize_projection(torch.zeros(1, 3, 5, 5, dtype=torch.uint8)),
     TypeError, "normalize_projection: expected r to be a floating-point"),
    ("mosaic-rank-3", lambda: plotting.mosaic(torch.rand(3, 5, 5)), ValueError, "mosaic: expected a non-empty batch"),
    ("mosaic-ncols-0", lambda: plotting.mosaic(torch.rand(2, 1, 5, 5), ncols=0), ValueError, "mosaic: expected ncols"),
    ("show_images-empty", lambda: plotting.show_images([]), ValueError, "show_images: expected at least one image"),
    ("show_images-rank-3", lambda: plotting.show_images(torch.rand(3, 8, 8)), ValueError,
     r"show_images: expected images \(N, C, H, W\)"),
    ("show_images-titles", lambda: plotting.show_images(torch.rand(3, 1, 8, 8), titles=["a"]), ValueError,
     "show_images: 3 images but titles"),
    ("to_numpy_image-channels", lambda: plotting.to_numpy_image(torch.rand(4, 8, 8)), ValueError,
     "to_numpy_image: expected 1 or 3 channels"),
    ("to_numpy_image-list", lambda: plotting.to_numpy_image([[0.0]]), TypeError,
     "to_numpy_image: expected img to be a torch.Tensor"),
    ("plot_decision_regions-3d", lambda: plotting.plot_decision_regions(None, torch.rand(4, 3), labels(0, 1, 0, 1),
                                                                        lambda g: g[:, 0] > 0),
     ValueError, r"plot_decision_regions: expected 2-D points \(N, 2\)"),
    ("plot_decision_regions-nan", lambda: plotting.plot_decision_regions(None, with_nan(torch.rand(4, 2)),
                                                                         labels(0, 1, 0, 1), lambda g: g[:, 0] > 0),
     ValueError, "plot_decision_regions: expected finite values"),
    ("plot_decision_regions-fn", lambda: plotting.plot_decision_regions(None, torch.rand(4, 2), labels(0, 1, 0, 1),
                                                                        "perceptron"),
     TypeError, "plot_decision_regions: expected predict_fn to be a function"),
    ("plot_curves-empty", lambda: plotting.plot_curves({}), TypeError, "plot_curves: expected a non-empty"),
    ("plot_curves-list", lambda: plotting.plot_curves([0.1, 0.2]), TypeError, "plot_curves: expected a non-empty"),
    ("show_to_scale-one-map", lambda: plotting.show_to_scale(torch.rand(4, 4)), TypeError,
     "show_to_scale: expected a list of maps"),
    ("jshtml_slider-no-states", lambda: plotting.jshtml_slider(lambda fig, s: None, []), ValueError,
     "jshtml_slider: expected a non-empty list of states"),
    ("plot_confusion_matrix-string", lambda: plotting.plot_confusion_matrix(labels(0), labels(0), "ab"), TypeError,
     "plot_confusion_matrix: expected a non-empty list of class names"),
    ("plot_top_projections-empty", lambda: plotting.plot_top_projections([]), ValueError,
     "plot_top_projections: expected a non-empty list"),
    ("plot_evolution-type", lambda: plotting.plot_evolution({"conv1": 1}), TypeError,
     "plot_evolution: expected an Evolution"),
    # widgets
    ("perceptron_view-dataset", lambda: widgets.perceptron_view(dataset="moons"), ValueError,
     "perceptron_view: expected dataset to be one of"),
    ("perceptron_view-w1-string", lambda: widgets.perceptron_view(w1="a"), TypeError,
     "perceptron_view: expected w1 to be a number"),
    ("mlp_view-hidden-0", lambda: widgets.mlp_view(hidden_units=0), ValueError, "mlp_view: expected hidden_units"),
    ("mlp_view-hidden-float", lambda: widgets.mlp_view(hidden_units=2.5), TypeError,
     "mlp_view: expected hidden_units to be an int"),
    ("parse_kernel-ragged", lambda: widgets.parse_kernel("1 2; 3"), ValueError,
     "parse_kernel: expected a square grid"),
    ("parse_kernel-int", lambda: widgets.parse_kernel(3), TypeError, "parse_kernel: expected the kernel as text"),
    ("parse_kernel-nan", lambda: widgets.parse_kernel("nan 0; 0 0"), ValueError, "parse_kernel: expected finite"),
    ("kernel_view-pool", lambda: widgets.kernel_view(pool="min"), ValueError, "kernel_view: expected pool"),
    ("kernel_view-kernel", lambda: widgets.kernel_view(kernel="blur"), ValueError, "kernel_view: expected kernel"),
    ("kernel_view-custom-empty", lambda: widgets.kernel_view(kernel="custom", custom=""), ValueError,
     "kernel_view: parse_kernel: expected a square grid"),
    ("activations_view-index", lambda: widgets.activations_view(zf(), X8(3), index=3), ValueError,
     r"activations_view: expected index in 0\.\.2"),
    ("activations_view-string", lambda: widgets.activations_view(zf(), X8(3), layers_to_show="conv1"), TypeError,
     "activations_view: expected layers_to_show to be a list"),
    ("activations_view-maps-0", lambda: widgets.activations_view(zf(), X8(3), maps_per_layer=0), ValueError,
     "activations_view: expected maps_per_layer"),
    ("top_projections_view-layer", lambda: widgets.top_projections_view(conv_net(), X8(5), mined(), layer="conv2"),
     ValueError, r"top_projections_view: expected layer \(one of the mined layers\)"),
    ("draw_evolution_epoch-epoch", lambda: widgets.draw_evolution_epoch(None, {"conv1": fake_evolution()}, 7),
     ValueError, r"draw_evolution_epoch: expected epoch \(one of the snapshots\)"),
    ("draw_transfer-layer", lambda: widgets.draw_transfer(None, {"conv1": torch.rand(4, 3)}, labels(0, 0, 1, 1),
                                                          ["a", "b"], "fc8"),
     ValueError, "draw_transfer: expected layer"),
    ("transfer_view-n-0", lambda: widgets.transfer_view({"conv1": torch.rand(4, 3)}, labels(0, 0, 1, 1), ["a", "b"],
                                                        "conv1", n_per_class=0),
     ValueError, "transfer_view: expected n_per_class"),
]


def test_every_error_names_a_public_function_of_cnnlib():
    """The name an error starts with is one a student can look up: a public function, class or method of
    cnnlib (not a private helper, nor a name that no longer exists)."""
    import importlib
    import pkgutil
    import re

    import cnnlib

    modules = [importlib.import_module(f"cnnlib.{m.name}") for m in pkgutil.iter_modules(cnnlib.__path__)]
    public = {n for m in modules for n in dir(m) if not n.startswith("_")}
    public |= {n for m in modules for c in vars(m).values() if isinstance(c, type) and c.__module__ == m.__name__
               for n in dir(c) if not n.startswith("_")}
    named = {case[0]: re.match(r"[A-Za-z]\w*", case[3]).group(0) for case in CASES}
    assert {case: name for case, name in named.items() if name not in public} == {}


@pytest.mark.parametrize("call, error, pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_clearly(call, error, pattern):
    with pytest.raises(error, match="^" + pattern) as info:
        call()
    assert type(info.value) in (TypeError, ValueError, FileNotFoundError), type(info.value)
    # raised by cnnlib's own check, not by torch or numpy deeper down with a message that happens to match
    raised_in = Path(str(info.traceback[-1].path))
    assert "cnnlib" in raised_in.parts, f"raised in {raised_in}"


@pytest.mark.parametrize("margin", [3, 2.6, 2.5039, 2.5])
def test_an_impossible_margin_is_an_error_not_a_hang(margin, monkeypatch):
    # refused at once (no point of the square lies that far from the line), or once the bounded number of draws
    # is spent (here made small): never an endless loop. No clock: the bound is the count in the message.
    monkeypatch.setattr(data, "_SEPARABLE_MAX_DRAWS", 3 * 4096)
    if margin > data._SEPARABLE_MAX_MARGIN:
        pattern = r"expected margin < 2\.504"
    else:  # 12,288 points drawn, too few outside the band; or enough, but all of class 0
        pattern = f"margin {margin:g} (is too wide: 12288 points drawn|leaves room for class 0 only)"
    with pytest.raises(ValueError, match="^make_separable: " + pattern):
        data.make_separable(n=1000, margin=margin)
