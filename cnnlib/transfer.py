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
  of the mean per-class accuracy over random splits (:func:`cnnlib.data.split_per_class`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import checks
from .data import split_per_class
from .hooks import LayerOutputs


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
        for start in tqdm(range(0, len(X), batch_size), desc="features", leave=False, disable=not progress):
            seen.clear()
            xb = checks.to_model("extract_features", model, X[start: start + batch_size])
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
    (on the CPU for features on Apple's MPS, which has no float64).
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

    with torch.enable_grad():
        opt.step(closure)
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
                   seed: int = 0, progress: bool = False) -> dict[int, tuple[float, float]]:
    """Zeiler & Fergus's protocol for Caltech, for any classifier: for each ``n`` in ``n_per_class``, ``splits``
    random splits (:func:`cnnlib.data.split_per_class`, seeds ``seed``, ``seed + 1``, …) with ``n`` training
    images per class and the rest for testing.

    Args:
        y: labels ``(N,)`` of the whole collection.
        train_and_predict: ``(train_idx, test_idx) → predicted labels of the test images``; it trains on the
            training indices only.

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
        for s in tqdm(range(splits), desc=f"{n} per class", leave=False, disable=not progress):
            train_idx, test_idx = split_per_class(y, n, seed=seed + s)
            accs.append(mean_class_accuracy(y[test_idx], train_and_predict(train_idx, test_idx).cpu()))
        a = torch.tensor(accs, dtype=torch.float64)
        out[n] = (float(a.mean()), float(a.std(unbiased=False)))
    return out


def accuracy_vs_train_size(features: torch.Tensor, y: torch.Tensor, n_per_class: Sequence[int], splits: int = 5,
                           seed: int = 0, weight_decay: float = 1e-2) -> dict[int, tuple[float, float]]:
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

    return split_protocol(y, n_per_class, softmax_on_features, splits, seed)
