"""Training and evaluating a classifier with mini-batch stochastic gradient descent.

One step on a mini-batch ``B`` of examples with parameters ``θ``, learning rate ``η`` and momentum ``μ``:

    L(θ) = (1/|B|) Σ_{n∈B} −log softmax(f_θ(xₙ))_{yₙ},    v ← μ v + ∇L(θ),    θ ← θ − η v.

:func:`fit` runs whole epochs of such steps in a seeded order (the same numbers on every run on one machine)
and records the loss and accuracy of every epoch; :func:`evaluate` measures a model without changing it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm  # text bars on stderr: live in Jupyter, dropped from the rendered book

from .devices import device as default_device


@dataclass
class History:
    """Per-epoch loss and accuracy (accuracy as a fraction in [0, 1])."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)


def _check_data(X: torch.Tensor, y: torch.Tensor, name: str) -> None:
    if not isinstance(X, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"{name}: expected tensors X and y, got {type(X).__name__} and {type(y).__name__}")
    if y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise ValueError(f"{name}: expected X (N, ...) and y (N,) with the same N, got {tuple(X.shape)} and {tuple(y.shape)}")


@torch.no_grad()
def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 1000, device=None):
    """Mean cross-entropy and accuracy of ``model`` on ``(X, y)``, in eval mode, without gradients.

    Returns:
        ``(loss, accuracy)`` as Python floats.
    """
    _check_data(X, y, "evaluate")
    dev = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    for i in range(0, len(X), batch_size):
        xb, yb = X[i: i + batch_size].to(dev), y[i: i + batch_size].to(dev)
        logits = model(xb)
        total_loss += float(F.cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(1) == yb).sum())
    model.train(was_training)
    return total_loss / len(X), correct / len(X)


@torch.no_grad()
def predict(model: nn.Module, X: torch.Tensor, batch_size: int = 1000, device=None) -> torch.Tensor:
    """Class scores (logits) ``(N, K)`` of ``model`` for ``X``, on the CPU."""
    dev = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = torch.cat([model(X[i: i + batch_size].to(dev)).cpu() for i in range(0, len(X), batch_size)])
    model.train(was_training)
    return out


def fit(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    num_epochs: int = 5,
    lr: float = 0.05,
    batch_size: int = 128,
    momentum: float = 0.9,
    seed: int = 0,
    X_test: torch.Tensor | None = None,
    y_test: torch.Tensor | None = None,
    device=None,
    progress: bool = True,
) -> History:
    """Train ``model`` on ``(X, y)`` with mini-batch SGD and cross-entropy; returns the per-epoch :class:`History`.

    Args:
        model: a classifier mapping ``(B, ...)`` to logits ``(B, K)``; moved to ``device``.
        X, y: training inputs ``(N, ...)`` and int64 labels ``(N,)``.
        num_epochs, lr, batch_size, momentum: the optimisation (see the module docstring).
        seed: seeds the order of the examples in every epoch.
        X_test, y_test: if given, evaluated after every epoch.
        device: default :func:`cnnlib.device`.
        progress: show a progress bar over the mini-batches of each epoch.
    """
    _check_data(X, y, "fit")
    if X_test is not None:
        _check_data(X_test, y_test, "fit (test set)")
    if num_epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(f"fit: expected num_epochs >= 1, batch_size >= 1, lr > 0; got {num_epochs}, {batch_size}, {lr}")
    dev = device or default_device()
    model.to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    gen = torch.Generator().manual_seed(seed)
    history = History()
    for epoch in range(1, num_epochs + 1):
        model.train()
        order = torch.randperm(len(X), generator=gen)
        total_loss, correct = 0.0, 0
        batches = range(0, len(X), batch_size)
        for i in tqdm(batches, desc=f"epoch {epoch}/{num_epochs}", leave=False, disable=not progress):
            idx = order[i: i + batch_size]
            xb, yb = X[idx].to(dev), y[idx].to(dev)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total_loss += loss.item() * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
        history.train_loss.append(total_loss / len(X))
        history.train_acc.append(correct / len(X))
        if X_test is not None:
            test_loss, test_acc = evaluate(model, X_test, y_test)
            history.test_loss.append(test_loss)
            history.test_acc.append(test_acc)
    model.eval()
    return history
