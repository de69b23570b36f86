"""Transfer learning: features learned on one data set, a new classifier trained on another (Zeiler & Fergus,
ECCV 2014, Sec. 5.2, their Tables 4-5 and 7).

Zeiler and Fergus kept the layers of their ImageNet network fixed and trained only a new softmax on top, with
15, 30, 45 or 60 training images per class of Caltech-101/256, and reported the mean per-class accuracy ± std
over random splits. The pieces:

* :func:`extract_features` — the outputs of some layers of a fixed network, averaged over the positions of
  each feature map (global average pooling), so a layer gives one vector of ``K`` numbers per image;
* :func:`fit_softmax` — a multinomial logistic regression on such vectors: standardise each feature with the
  training images' mean and std, then minimise the cross-entropy plus ``½ λ ‖W‖²`` with L-BFGS (full batch,
  deterministic);
* :func:`mean_class_accuracy` — the accuracy of each class, averaged over the classes (so a big class does not
  dominate, as in the Caltech protocol);
* :func:`accuracy_vs_train_size` — the table: for each number of training images per class, the mean and std
  of the mean per-class accuracy over random splits (:func:`cnnlib.data.split_per_class`), with a fixed penalty;
* :func:`cross_validate` and :func:`selected_accuracy` — the same table when the layer and the penalty are chosen,
  in every split, by stratified k-fold cross-validation on that split's *training* images only (the test
  images of a split never take part in a choice);
* :func:`fine_tune` — the other way to transfer ("training (tuning)" in the lecture): train *all* the layers of
  a network on the new images, starting from its pretrained weights; the same call on randomly initialised
  weights is training from scratch with the same architecture (``scripts/transfer_finetune.py`` runs both on
  the splits of Chapter 8 and ships the table in ``data/transfer``);
* :func:`shipped_features` and :func:`shipped_selected` — Chapter 8's features of its photos and its
  cross-validated tables, computed once by ``scripts/transfer_features.py`` and loaded checked by sha256.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import checks
from .data import split_per_class
from .hooks import LayerOutputs
from .photos import check_shipped
from .progress import hidden
from .snapshots import DATA_DIR, check_made_from, checked_file
from .train import apply_augment, augment_params


@torch.no_grad()
def extract_features(model: nn.Module, X: torch.Tensor, layers: Sequence[str], batch_size: int = 64,
                     transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                     progress: bool = True) -> dict[str, torch.Tensor]:
    """Globally average-pooled outputs of ``layers`` of a fixed ``model`` for the images ``X``.

    Args:
        model: any network (eval mode is the caller's business); it runs on the device of its parameters.
        X: images ``(N, C, H, W)``.
        layers: names for :func:`cnnlib.models.named_layer`; an output ``(B, K, h, w)`` becomes ``(B, K)`` (the mean
            over positions), an output ``(B, K)`` is kept.
        transform: applied to each batch on the device before the model (e.g. normalisation).

    Returns:
        ``{layer: (N, K) float32 on the CPU}``.
    """
    layers = checks.layer_list("extract_features", layers)
    checks.images("extract_features", X)
    batch_size = checks.positive_int("extract_features", batch_size, "batch_size")
    checks.eval_mode("extract_features", model)
    out: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    with LayerOutputs(model, layers, fn="extract_features") as seen:
        for start in tqdm(range(0, len(X), batch_size), desc="features", leave=False, disable=hidden(progress)):
            seen.clear()
            xb = checks.to_model("extract_features", model, X[start: start + batch_size])
            with checks.model_input("extract_features", X.shape, "X"):
                model(transform(xb) if transform is not None else xb)
            for name in layers:
                a = seen[name]
                if a.ndim == 4:
                    a = a.mean((2, 3))
                elif a.ndim != 2:
                    raise ValueError(f"extract_features: layer {name!r} gives {tuple(a.shape)}, expected "
                                     "(B, K, h, w) or (B, K)")
                out[name].append(a.float().cpu())
    return {name: torch.cat(parts) for name, parts in out.items()}


class SoftmaxProbe(nn.Module):
    """``softmax(W · (f − μ) / σ + b)``: a linear classifier on standardised features."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, num_classes: int):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.linear = nn.Linear(mean.numel(), num_classes, dtype=mean.dtype, device=mean.device)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` of features ``(N, K)`` (moved to the probe's device and dtype)."""
        checks.tensor("SoftmaxProbe", features, "features")
        if features.ndim != 2 or features.shape[1] != self.mean.numel():
            raise ValueError(f"SoftmaxProbe: expected features (N, {self.mean.numel()}), got {tuple(features.shape)}")
        f = features.to(self.mean.device).to(self.mean.dtype)
        return self.linear((f - self.mean) / self.std)  # (N, num_classes) logits


def fit_softmax(features: torch.Tensor, y: torch.Tensor, num_classes: int | None = None, weight_decay: float = 1e-2,
                max_iter: int = 300) -> SoftmaxProbe:
    """Multinomial logistic regression on ``features`` ``(N, K)`` with labels ``y`` ``(N,)``.

    Minimises ``mean cross-entropy + ½ · weight_decay · ‖W‖²_F`` (the bias is not penalised) with L-BFGS, in
    float64, starting from zero: the result depends only on the data. The probe lives on the features' device
    (on the CPU for features on Apple's MPS, which has no float64). On the CPU it runs on one thread: full-batch
    L-BFGS on a few hundred vectors is thousands of tiny operations, which several threads only slow down
    (10 to 27 times slower with 2 threads, measured on a busy 2-core machine).
    """
    checks.tensor("fit_softmax", features, "features")
    checks.tensor("fit_softmax", y, "y")
    if features.ndim != 2 or y.shape != (len(features),) or len(y) == 0:
        raise ValueError(f"fit_softmax: expected features (N, K) and labels (N,) with N >= 1, got "
                         f"{tuple(features.shape)} and {tuple(y.shape)}")
    checks.finite("fit_softmax", checks.floating("fit_softmax", features, "features"), "features")
    if y.dtype != torch.int64:
        raise TypeError(f"fit_softmax: expected int64 labels y, got dtype {y.dtype} (convert with y.long())")
    if int(y.min()) < 0:
        raise ValueError(f"fit_softmax: expected labels >= 0, got {int(y.min())}")
    num_classes = int(y.max()) + 1 if num_classes is None else num_classes
    num_classes = checks.positive_int("fit_softmax", num_classes, f"num_classes (labels go up to {int(y.max())})",
                                      max(2, int(y.max()) + 1))
    weight_decay = checks.number("fit_softmax", weight_decay, "weight_decay", 0)
    max_iter = checks.positive_int("fit_softmax", max_iter, "max_iter")
    dev = torch.device("cpu") if features.device.type == "mps" else features.device
    f = features.detach().to(dev).double()
    y = y.to(dev)
    std = f.std(0, unbiased=False)
    probe = SoftmaxProbe(f.mean(0), torch.where(std > 0, std, torch.ones_like(std)), num_classes)
    nn.init.zeros_(probe.linear.weight)
    nn.init.zeros_(probe.linear.bias)
    opt = torch.optim.LBFGS(probe.linear.parameters(), lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(probe(f), y) + 0.5 * weight_decay * probe.linear.weight.pow(2).sum()
        loss.backward()
        return loss

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # thousands of tiny operations: one thread, no synchronisation between threads
    try:
        with torch.enable_grad():
            opt.step(closure)
    finally:
        torch.set_num_threads(threads)
    return probe.eval()


def mean_class_accuracy(y_true: torch.Tensor, y_pred: torch.Tensor) -> float:
    """The accuracy of each class present in ``y_true``, averaged over those classes."""
    for name, labels in (("y_true", y_true), ("y_pred", y_pred)):
        checks.tensor("mean_class_accuracy", labels, name)
        if labels.is_floating_point():
            raise TypeError(f"mean_class_accuracy: expected integer labels {name}, got dtype {labels.dtype}")
    if y_true.ndim != 1 or y_true.shape != y_pred.shape or y_true.numel() == 0:
        raise ValueError(f"mean_class_accuracy: expected two label vectors of one shape, got {tuple(y_true.shape)} "
                         f"and {tuple(y_pred.shape)}")
    y_true, y_pred = y_true.cpu(), y_pred.cpu()
    return float(torch.stack([(y_pred[y_true == c] == c).double().mean() for c in y_true.unique()]).mean())


def split_protocol(y: torch.Tensor, n_per_class: Sequence[int],
                   train_and_predict: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], splits: int = 5,
                   seed: int = 0, progress: bool = False,
                   max_test_per_class: int | None = None) -> dict[int, tuple[float, float]]:
    """Zeiler & Fergus's protocol for Caltech, for any classifier: for each ``n`` in ``n_per_class``, ``splits``
    random splits (:func:`cnnlib.data.split_per_class`, seeds ``seed``, ``seed + 1``, …) with ``n`` training
    images per class and the rest for testing.

    Args:
        y: labels ``(N,)`` of the whole collection.
        train_and_predict: ``(train_idx, test_idx) → predicted labels of the test images``; it trains on the
            training indices only.
        max_test_per_class: at most this many test images per class (a random subset; ``None``: all the rest).

    Returns:
        ``{n: (mean, std)}`` of the mean per-class test accuracy over the splits (std over splits, ``ddof=0``).
    """
    checks.tensor("split_protocol", y, "y")
    if y.ndim != 1 or y.is_floating_point() or len(y) == 0:
        raise ValueError(f"split_protocol: expected integer labels y (N,), got {y.dtype} {tuple(y.shape)}")
    if isinstance(n_per_class, int) or not isinstance(n_per_class, Sequence) or not n_per_class:
        raise TypeError(f"split_protocol: expected n_per_class as a non-empty list of ints, got {n_per_class!r}")
    n_per_class = [checks.positive_int("split_protocol", n, "n_per_class") for n in n_per_class]
    splits = checks.positive_int("split_protocol", splits, "splits")
    if not callable(train_and_predict):
        raise TypeError(f"split_protocol: expected train_and_predict to be a function, got {train_and_predict!r}")
    out = {}
    for n in n_per_class:
        accs = []
        for s in tqdm(range(splits), desc=f"{n} per class", leave=False, disable=hidden(progress)):
            train_idx, test_idx = split_per_class(y, n, seed=seed + s, n_test=max_test_per_class)
            accs.append(mean_class_accuracy(y[test_idx], train_and_predict(train_idx, test_idx).cpu()))
        a = torch.tensor(accs, dtype=torch.float64)
        out[n] = (float(a.mean()), float(a.std(unbiased=False)))
    return out


def accuracy_vs_train_size(features: torch.Tensor, y: torch.Tensor, n_per_class: Sequence[int], splits: int = 5,
                           seed: int = 0, weight_decay: float = 1e-2,
                           max_test_per_class: int | None = None) -> dict[int, tuple[float, float]]:
    """:func:`split_protocol` with a :func:`fit_softmax` on fixed ``features`` ``(N, K)`` per split: Zeiler and
    Fergus's "ImageNet-pretrained" rows."""
    checks.tensor("accuracy_vs_train_size", features, "features")
    checks.tensor("accuracy_vs_train_size", y, "y")
    if features.ndim != 2 or y.shape != (len(features),):
        raise ValueError(f"accuracy_vs_train_size: expected features (N, K) and labels (N,), got "
                         f"{tuple(features.shape)} and {tuple(y.shape)}")
    checks.finite("accuracy_vs_train_size", checks.floating("accuracy_vs_train_size", features, "features"),
                  "features")

    @torch.no_grad()
    def softmax_on_features(train_idx, test_idx):
        probe = fit_softmax(features[train_idx], y[train_idx], int(y.max()) + 1, weight_decay)
        return probe(features[test_idx]).argmax(1)

    return split_protocol(y, n_per_class, softmax_on_features, splits, seed, max_test_per_class=max_test_per_class)


def _folds(y: torch.Tensor, folds: int, seed: int) -> list[torch.Tensor]:
    """Stratified folds: each class's indices shuffled (seeded) and dealt round-robin into ``folds`` parts."""
    g = torch.Generator().manual_seed(seed)
    parts: list[list[torch.Tensor]] = [[] for _ in range(folds)]
    for c in y.unique().tolist():
        idx = torch.nonzero(y == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        for f in range(folds):
            parts[f].append(idx[f::folds])
    return [torch.cat(p).sort().values for p in parts]


def cross_validate(features: Mapping[str, torch.Tensor], y: torch.Tensor, weight_decays: Sequence[float],
                   folds: int = 5, seed: int = 0) -> tuple[str, float, dict[tuple[str, float], float]]:
    """Choose a layer and a penalty by stratified k-fold cross-validation on *training* images only.

    Every class's images are dealt into ``k = min(folds, smallest class size)`` folds; each candidate
    ``(layer, λ)`` is fitted (:func:`fit_softmax`) on ``k − 1`` folds and scored by the mean per-class accuracy
    on the held-out fold, averaged over the ``k`` folds. The highest score wins; ties go to the earlier layer
    of ``features``, then to the larger ``λ`` (the simpler model).

    Args:
        features: ``{layer: (N, K_layer)}`` features of the training images only.
        y: their labels ``(N,)``; every class needs at least 2 images (one to fit, one to validate).
        weight_decays: the candidate penalties ``λ`` (positive).

    Returns:
        ``(layer, λ, {(layer, λ): validation score})``.
    """
    if not isinstance(features, Mapping) or not features:
        raise TypeError(f"cross_validate: expected features as a non-empty {{layer: (N, K)}} dict, got "
                        f"{type(features).__name__}")
    if y.ndim != 1 or any(f.ndim != 2 or len(f) != len(y) for f in features.values()):
        raise ValueError(f"cross_validate: expected features (N, K) and labels (N,), got "
                         f"{[tuple(f.shape) for f in features.values()]} and {tuple(y.shape)}")
    decays = sorted((checks.number("cross_validate", w, "weight decay", low=0, low_open=True) for w in weight_decays),
                    reverse=True)
    if not decays:
        raise ValueError("cross_validate: expected at least one weight decay")
    folds = checks.positive_int("cross_validate", folds, "folds")
    smallest = min(int((y == c).sum()) for c in y.unique().tolist()) if len(y) else 0
    k = min(folds, smallest)
    if k < 2:
        raise ValueError(f"cross_validate: every class needs at least 2 training images to validate on one, "
                         f"the smallest has {smallest}")
    num_classes = int(y.max()) + 1
    parts = _folds(y, k, seed)
    scores: dict[tuple[str, float], float] = {}
    for layer, f in features.items():
        for lam in decays:
            accs = []
            for held_out in parts:
                fit_idx = torch.ones(len(y), dtype=torch.bool)
                fit_idx[held_out] = False
                probe = fit_softmax(f[fit_idx], y[fit_idx], num_classes, lam)
                with torch.no_grad():
                    accs.append(mean_class_accuracy(y[held_out], probe(f[held_out]).argmax(1)))
            scores[(layer, lam)] = sum(accs) / len(accs)
    best = max(scores.values())
    layer, lam = next(key for key, v in scores.items() if v == best)  # dict order: layers, then larger λ first
    return layer, lam, scores


@dataclass
class SelectedAccuracy:
    """:func:`selected_accuracy`'s result."""

    table: dict[int, tuple[float, float]]  # {n: (mean, std)} of the mean per-class test accuracy over the splits
    choices: dict[int, list[tuple[str, float]]]  # {n: [(layer, λ) chosen in each split]}
    accuracies: dict[int, list[float]] = field(default_factory=dict)  # {n: [test score of each split]}


def selected_accuracy(features: Mapping[str, torch.Tensor], y: torch.Tensor, n_per_class: Sequence[int],
                      weight_decays: Sequence[float] = (1e-3, 1e-2, 1e-1, 1.0), folds: int = 5, splits: int = 5,
                      seed: int = 0, max_test_per_class: int | None = None) -> SelectedAccuracy:
    """Zeiler and Fergus's table with the layer and the penalty chosen on training images only.

    For each ``n`` and each of ``splits`` random splits (:func:`cnnlib.data.split_per_class`, seeds ``seed``,
    ``seed + 1``, …): :func:`cross_validate` picks ``(layer, λ)`` among ``features × weight_decays`` on the ``n``
    training images per class; :func:`fit_softmax` then fits that choice on all of them and the test images
    (at most ``max_test_per_class`` per class) are scored once.

    Args:
        features: ``{layer: (N, K_layer)}`` for the whole collection; y: labels ``(N,)``.
        n_per_class: training images per class, each at least 2 (cross-validation needs one to hold out).

    Returns:
        :class:`SelectedAccuracy`: the ``{n: (mean, std)}`` table (std over splits, ``ddof=0``), the choices and
        the score of each split. ``splits=1, seed=s`` gives split ``s`` of the full call alone (same training and
        test images, same folds).
    """
    if not isinstance(features, Mapping) or not features:
        raise TypeError(f"selected_accuracy: expected features as a non-empty {{layer: (N, K)}} dict, got "
                        f"{type(features).__name__}")
    if any(f.ndim != 2 or len(f) != len(y) for f in features.values()) or y.ndim != 1:
        raise ValueError(f"selected_accuracy: expected features (N, K) and labels (N,), got "
                         f"{[tuple(f.shape) for f in features.values()]} and {tuple(y.shape)}")
    num_classes = int(y.max()) + 1
    table, choices, accuracies = {}, {}, {}
    for n in n_per_class:
        if checks.positive_int("selected_accuracy", n, "n_per_class") < 2:
            raise ValueError(f"selected_accuracy: cross-validation needs at least 2 training images per class, "
                             f"got n_per_class {n}")
        accs, chosen = [], []
        for s in range(splits):
            train_idx, test_idx = split_per_class(y, n, seed=seed + s, n_test=max_test_per_class)
            layer, lam, _ = cross_validate({k: f[train_idx] for k, f in features.items()}, y[train_idx],
                                           weight_decays, folds, seed=seed + s)
            probe = fit_softmax(features[layer][train_idx], y[train_idx], num_classes, lam)
            with torch.no_grad():
                accs.append(mean_class_accuracy(y[test_idx], probe(features[layer][test_idx]).argmax(1)))
            chosen.append((layer, lam))
        a = torch.tensor(accs, dtype=torch.float64)
        table[n] = (float(a.mean()), float(a.std(unbiased=False)))
        choices[n] = chosen
        accuracies[n] = accs
    return SelectedAccuracy(table, choices, accuracies)


def fine_tune(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, epochs: int = 20, lr: float = 0.01,
              batch_size: int = 16, momentum: float = 0.9, weight_decay: float = 1e-4, shift: int = 8,
              freeze_batchnorm: bool = False, seed: int = 0, device=None, progress: bool = False) -> nn.Module:
    """Train every parameter of ``model`` on ``(X, y)``: fine-tuning when its weights are pretrained, training
    from scratch when they are random.

    Mini-batch SGD with momentum on the cross-entropy, the learning rate decaying from ``lr`` to 0 along a
    cosine over all ``epochs · ⌈N / batch_size⌉`` steps, weight decay ``weight_decay`` on every parameter, and
    the augmentation of Chapter 4b (random horizontal flips and shifts of up to ``shift`` pixels). BatchNorm
    layers train as usual (batch statistics), and at the end their running statistics are set to those of the
    training images (:func:`recalibrate_batchnorm`: a slow running average, EfficientNet's momentum 0.01, has
    not forgotten its starting values after a few dozen steps, and the trained network would be evaluated
    with statistics it never saw); or, with ``freeze_batchnorm``, they keep
    the statistics they have (each normalises with its running mean and variance, which stay as they are; its
    scale and shift still train): the usual choice when fine-tuning on a few images, whose mini-batch
    statistics are too noisy to replace a pretrained network's. The order, augmentation and dropout are seeded
    by ``seed``.

    Args:
        model: a classifier ``(B, C, H, W) → (B, K)`` logits, ``K`` at least the number of classes in ``y``
            (replace a pretrained network's last layer first); moved to ``device``.
        X: float images ``(N, C, H, W)``, as the model takes them (normalised); y: int64 labels ``(N,)``.

    Returns:
        ``model``, trained, in eval mode.
    """
    fn = "fine_tune"
    checks.module(fn, model)
    X = checks.images(fn, X, ndim=4, name="X")
    checks.tensor(fn, y, "y")
    if y.is_floating_point() or y.shape != (len(X),):
        raise ValueError(f"{fn}: expected integer labels y ({len(X)},), got {y.dtype} {tuple(y.shape)}")
    epochs = checks.positive_int(fn, epochs, "epochs")
    batch_size = checks.positive_int(fn, batch_size, "batch_size")
    lr = checks.number(fn, lr, "lr", 0, low_open=True)
    momentum = checks.number(fn, momentum, "momentum", 0, 1)
    weight_decay = checks.number(fn, weight_decay, "weight_decay", 0)
    shift = checks.positive_int(fn, shift, "shift", 0)
    dev = torch.device(device) if device is not None else checks.model_device(fn, model)
    model.to(dev)
    with torch.no_grad():
        was = model.training
        model.eval()
        logits = model(checks.to_model(fn, model, X[:1], "X"))
        model.train(was)
    if logits.ndim != 2 or logits.shape[1] <= int(y.max()):
        raise ValueError(f"{fn}: the model gives {tuple(logits.shape)} for one image, expected logits (1, K) with "
                         f"K > {int(y.max())} (the largest label); replace its last layer first")
    steps = epochs * -(-len(X) // batch_size)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + math.cos(math.pi * i / steps)))
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout
    model.train()
    if freeze_batchnorm:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
    for _ in tqdm(range(epochs), desc=fn, leave=False, disable=hidden(progress)):
        order = torch.randperm(len(X), generator=gen)
        for i in range(0, len(X), batch_size):
            idx = order[i: i + batch_size]
            xb = X[idx].to(dev)
            if shift:
                flip, offsets = augment_params(len(idx), X.shape[-1], gen, shift)
                xb = apply_augment(xb, flip, offsets, shift)
            loss = F.cross_entropy(model(xb), y[idx].to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    if not freeze_batchnorm:
        recalibrate_batchnorm(model, X)
    return model.eval()


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, X: torch.Tensor, batch_size: int = 256) -> nn.Module:
    """Set the running mean and variance of every BatchNorm layer of ``model`` to the statistics of its inputs
    over the images ``X`` ``(N, C, H, W)`` (the other layers in eval mode, so dropout and drop-connect are off).

    Each layer's running mean becomes the mean over the batches of ``batch_size`` images of the per-channel
    batch mean, its running variance the mean of the (unbiased) batch variances (PyTorch's ``momentum=None``);
    with one batch (``N ≤ batch_size``) they are exactly the mean and unbiased variance over ``X``. Returns
    ``model`` in eval mode.
    """
    checks.module("recalibrate_batchnorm", model)
    X = checks.images("recalibrate_batchnorm", X, ndim=4, name="X")
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    momenta = [m.momentum for m in norms]
    model.eval()
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches
            m.train()
        dev = checks.model_device("recalibrate_batchnorm", model)
        for i in range(0, len(X), checks.positive_int("recalibrate_batchnorm", batch_size, "batch_size")):
            model(X[i:i + batch_size].to(dev))
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.eval()
    return model


def shipped_finetune_table(folder=None) -> tuple[dict[str, dict[int, tuple[float, float]]], dict]:
    """The rows that ``scripts/transfer_finetune.py`` ships in ``data/transfer``, after checking the file's
    sha256: ``({row: {n: (mean, std)}}, the whole record)`` — mean and std (``ddof=0``) over the splits of the
    mean per-class test accuracy, as :func:`split_protocol` gives them; the Tux Paint stamps here must be those
    the table was made from (:func:`cnnlib.photos.check_pool`), since the chapter compares it with rows it
    computes on them. Rows: ``"fine-tuned"``, ``"scratch"``
    and ``"frozen"`` (the pretrained features at the same image size, :func:`selected_accuracy`)."""
    folder = Path(folder or DATA_DIR / "transfer")
    remedy = "re-create it from these stamps with 'make transfer'"
    path = checked_file("shipped_finetune_table", folder, "finetune.json", remedy)
    check_shipped("shipped_finetune_table", folder, path.name, f"the shipped table {path}", remedy)
    record = json.loads(path.read_text())
    table: dict[str, dict[int, tuple[float, float]]] = {}
    for row in record["rows"]:
        table[row] = {}
        for n in record["config"]["n_per_class"]:
            a = torch.tensor([record["runs"][f"{row}/{n}/{s}"]["accuracy"]
                              for s in range(record["config"]["splits"])], dtype=torch.float64)
            table[row][n] = (float(a.mean()), float(a.std(unbiased=False)))
    table["frozen"] = {int(n): (float(m), float(s)) for n, (m, s) in record["frozen"]["table"].items()}
    return table, record


def shipped_features(folder=None) -> tuple[dict[str, dict[str, torch.Tensor]], dict]:
    """Chapter 8's features, shipped by ``scripts/transfer_features.py`` in ``data/transfer/features.pt``, after
    checking the file's sha256 and that the Tux Paint stamps here are those it was computed from
    (:func:`cnnlib.photos.check_pool`).

    Returns:
        ``({network: {layer: (N, K) float32}}, record)``: networks ``"pretrained"`` (EfficientNet-Lite0 with its
        ImageNet weights) and ``"untrained"`` (the same architecture, seeded random weights), the globally
        average-pooled outputs of :func:`extract_features` for the ``N`` photos of ``photos.load_stamps`` in its
        order; ``record`` holds ``"y"`` (N,), ``"classes"`` and ``"config"`` (the settings it was made with).
    """
    folder = Path(folder or DATA_DIR / "transfer")
    remedy = "re-create it from these stamps with 'python scripts/transfer_features.py'"
    path = checked_file("shipped_features", folder, "features.pt", remedy)
    check_shipped("shipped_features", folder, path.name, f"the shipped features {path}", remedy)
    record = torch.load(path, map_location="cpu", weights_only=True)
    return record.pop("features"), record


def shipped_selected(folder=None) -> tuple[dict[str, SelectedAccuracy], dict]:
    """Chapter 8's tables with the layer and penalty chosen by cross-validation (:func:`selected_accuracy`),
    shipped by ``scripts/transfer_features.py`` in ``data/transfer/selected.json``, after checking its sha256,
    the Tux Paint stamps and the ZFNet-small snapshot it was made from.

    Returns:
        ``({row: SelectedAccuracy}, record)`` with rows ``"pretrained"``, ``"untrained"`` (on
        :func:`shipped_features`) and ``"fashion"`` (ZFNet-small's ``pool5``/``fc7`` features of the photos in
        gray at 28 × 28 px); ``record["config"]`` holds the settings.
    """
    folder = Path(folder or DATA_DIR / "transfer")
    remedy = "re-create it from these stamps with 'python scripts/transfer_features.py'"
    path = checked_file("shipped_selected", folder, "selected.json", remedy)
    check_shipped("shipped_selected", folder, path.name, f"the shipped tables {path}", remedy)
    check_made_from("shipped_selected", folder, path.name, remedy, folder.parent)  # the "fashion" row's ZFNet-small
    record = json.loads(path.read_text())
    rows = {}
    for row, r in record["rows"].items():
        rows[row] = SelectedAccuracy(
            table={int(n): (float(m), float(s)) for n, (m, s) in r["table"].items()},
            choices={int(n): [(str(layer), float(lam)) for layer, lam in c] for n, c in r["choices"].items()},
            accuracies={int(n): [float(a) for a in accs] for n, accs in r["accuracies"].items()})
    return rows, record
