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


def _check_xy(X: torch.Tensor, y: torch.Tensor | None = None) -> None:
    if not isinstance(X, torch.Tensor) or X.ndim != 2:
        got = tuple(X.shape) if isinstance(X, torch.Tensor) else type(X).__name__
        raise ValueError(f"X: expected a 2-D tensor (N, D), got {got}")
    if y is not None:
        if y.shape != (X.shape[0],):
            raise ValueError(f"y: expected shape ({X.shape[0]},) to match X, got {tuple(y.shape)}")
        bad = set(torch.unique(y).tolist()) - {0, 1}
        if bad:
            raise ValueError(f"y: the perceptron's targets are 0 or 1, got also {sorted(bad)}")


def predict(X: torch.Tensor, w: torch.Tensor, b: float | torch.Tensor) -> torch.Tensor:
    """Binary output of the perceptron: ``step(X @ w + b)``.

    Args:
        X: ``(N, D)`` inputs; w: ``(D,)`` weights; b: bias.

    Returns:
        int64 ``(N,)`` of 0/1.
    """
    _check_xy(X)
    if w.shape != (X.shape[1],):
        raise ValueError(
            f"w: expected shape ({X.shape[1]},) for inputs with {X.shape[1]} features, got {tuple(w.shape)}")
    return (X @ w + b > 0).long()


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
    _check_xy(X, y)
    if lr <= 0:
        raise ValueError(f"lr: expected a positive learning rate, got {lr}")
    X = X.double()
    w = torch.zeros(X.shape[1], dtype=torch.float64) if w0 is None else w0.detach().clone().double()
    b = float(b0)
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
