"""Rosenblatt's perceptron (1958): one neuron with a binary output and its learning rule.

The neuron computes ``y = step(w·x + b)`` with ``step(z) = 1 if z > 0 else 0``. Shown an example ``x`` with
target ``t ∈ {0, 1}``, the rule moves the weights towards examples it gets wrong:

    w ← w + η (t − y) x,        b ← b + η (t − y).

If the two classes can be split by a line (a hyperplane), the rule stops making mistakes after a finite
number of updates, at most (R / γ)² where R bounds ‖x‖ and γ is the margin (Novikoff 1962). If they cannot,
as for XOR (Minsky & Papert 1969), it never stops.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from . import checks


def _check_xy(fn: str, X, y=None) -> None:
    """``X`` a finite float ``(N, D)`` with ``N >= 1``; ``y`` (if given) integer 0/1 targets ``(N,)``."""
    checks.tensor(fn, X, "X")
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"{fn}: expected X to be a non-empty 2-D tensor (N, D), got {tuple(X.shape)}")
    checks.finite(fn, checks.floating(fn, X, "X"), "X")
    if y is not None:
        checks.tensor(fn, y, "y")
        if y.shape != (X.shape[0],):
            raise ValueError(f"{fn}: expected y of shape ({X.shape[0]},) to match X, got {tuple(y.shape)}")
        if y.is_floating_point():
            raise TypeError(f"{fn}: expected integer targets y (0 or 1), got dtype {y.dtype}")
        bad = set(torch.unique(y).tolist()) - {0, 1}
        if bad:
            raise ValueError(f"{fn}: the perceptron's targets are 0 or 1, got also {sorted(bad)}")


def predict_labels(X: torch.Tensor, w: torch.Tensor, b: float | torch.Tensor) -> torch.Tensor:
    """Binary output of the perceptron, its class labels: ``step(X @ w + b)``.

    Args:
        X: ``(N, D)`` inputs; w: ``(D,)`` weights; b: bias.

    Returns:
        int64 ``(N,)`` of 0/1.
    """
    _check_xy("predict_labels", X)
    checks.tensor("predict_labels", w, "w")
    if w.shape != (X.shape[1],):
        raise ValueError(f"predict_labels: expected w of shape ({X.shape[1]},) for inputs with {X.shape[1]} "
                         f"features, got {tuple(w.shape)}")
    checks.finite("predict_labels", checks.floating("predict_labels", w, "w"), "w")
    if isinstance(b, torch.Tensor):
        if b.numel() != 1:
            raise ValueError(f"predict_labels: expected a single bias b, got shape {tuple(b.shape)}")
        b = float(b)
    b = checks.number("predict_labels", b, "b")
    return (X @ w.to(X) + b > 0).long()


@dataclass(frozen=True)
class PerceptronResult:
    """What :func:`train_perceptron` learned and how it got there."""

    w: torch.Tensor  # (D,)
    b: float
    converged: bool  # True if an epoch passed with no mistake
    mistakes_per_epoch: list[int] = field(default_factory=list)
    history: list[tuple[torch.Tensor, float]] = field(default_factory=list)  # (w, b) after each epoch


def train_perceptron(
    X: torch.Tensor,
    y: torch.Tensor,
    lr: float = 1.0,
    max_epochs: int = 100,
    w0: torch.Tensor | None = None,
    b0: float = 0.0,
) -> PerceptronResult:
    """Train with the perceptron rule, one example at a time in the order given, until an epoch has no mistake.

    Args:
        X: ``(N, D)`` inputs. y: ``(N,)`` targets in {0, 1}.
        lr: the learning rate η (> 0). max_epochs: stop after this many passes even if mistakes remain.
        w0, b0: starting weights (default zeros) and bias.

    Returns:
        A :class:`PerceptronResult` with the final weights, whether it converged, the number of mistakes
        in each epoch and the weights after each epoch.
    """
    _check_xy("train_perceptron", X, y)
    lr = checks.number("train_perceptron", lr, "lr", 0, low_open=True)
    max_epochs = checks.positive_int("train_perceptron", max_epochs, "max_epochs")
    X, y = X.detach().cpu().double(), y.cpu()  # one example at a time: the CPU, in float64 (MPS has none)
    if w0 is not None:
        checks.tensor("train_perceptron", w0, "w0")
        if w0.shape != (X.shape[1],):
            raise ValueError(f"train_perceptron: expected w0 of shape ({X.shape[1]},), got {tuple(w0.shape)}")
        checks.finite("train_perceptron", checks.floating("train_perceptron", w0, "w0"), "w0")
    w = torch.zeros(X.shape[1], dtype=torch.float64) if w0 is None else w0.detach().cpu().clone().double()
    b = checks.number("train_perceptron", b0, "b0")
    mistakes_per_epoch, history = [], []
    converged = False
    for _ in range(max_epochs):
        mistakes = 0
        for x_i, t_i in zip(X, y.tolist()):
            y_i = int(float(x_i @ w) + b > 0)
            if y_i != t_i:
                w = w + lr * (t_i - y_i) * x_i
                b = b + lr * (t_i - y_i)
                mistakes += 1
        mistakes_per_epoch.append(mistakes)
        history.append((w.float().clone(), b))
        if mistakes == 0:
            converged = True
            break
    return PerceptronResult(w.float(), b, converged, mistakes_per_epoch, history)
