"""The multilayer perceptron and backpropagation, written out by hand.

An MLP with layer sizes ``[D, H1, ..., K]`` computes, for a batch ``X`` of shape ``(N, D)``,

    A⁰ = X,    Zˡ = Aˡ⁻¹ Wˡ + bˡ,    Aˡ = σ(Zˡ)  (hidden layers),    ŷ = softmax(Zᴸ)  (output: K numbers).

Its output is a vector — one probability per class — where the perceptron's was one bit. The loss is the mean
cross-entropy ``L = −(1/N) Σₙ log ŷₙ,tₙ``. Backpropagation (Rumelhart, Hinton & Williams 1986) applies the
chain rule from the loss down, one layer at a time:

    δᴸ = (ŷ − onehot(t)) / N,
    ∂L/∂Wˡ = (Aˡ⁻¹)ᵀ δˡ,    ∂L/∂bˡ = Σₙ δˡₙ,
    δˡ⁻¹ = (δˡ (Wˡ)ᵀ) ⊙ σ'(Zˡ⁻¹).

:func:`backward` is exactly these lines; the tests and chapter 2 check them against PyTorch's autograd.
:func:`make_mlp` builds the same network from ``torch.nn`` for real work.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from . import checks

ACTIVATIONS = ("sigmoid", "tanh", "relu")


def _act(z: torch.Tensor, name: str) -> torch.Tensor:
    if name == "sigmoid":
        return torch.sigmoid(z)
    if name == "tanh":
        return torch.tanh(z)
    return torch.clamp(z, min=0)


def _act_grad(z: torch.Tensor, name: str) -> torch.Tensor:
    """σ'(z) for each activation."""
    if name == "sigmoid":
        s = torch.sigmoid(z)
        return s * (1 - s)
    if name == "tanh":
        return 1 - torch.tanh(z) ** 2
    return (z > 0).to(z.dtype)


def _check_activation(fn: str, activation: str) -> None:
    checks.one_of(fn, activation, ACTIVATIONS, "activation")


def _check_sizes(fn: str, sizes) -> list[int]:
    if isinstance(sizes, (str, int)) or not isinstance(sizes, Sequence):
        raise TypeError(f"{fn}: expected sizes as a list of ints [inputs, ..., outputs], got {sizes!r}")
    if len(sizes) < 2:
        raise ValueError(f"{fn}: expected sizes with at least two ints [inputs, ..., outputs], got {sizes!r}")
    return [checks.positive_int(fn, s, "sizes") for s in sizes]


def _check_params(fn: str, params) -> None:
    """``params`` as :func:`init_params` makes them: a non-empty list of ``{"W": (n_in, n_out), "b": (n_out,)}``
    that chain (each ``n_out`` is the next ``n_in``)."""
    ok = isinstance(params, Sequence) and len(params) > 0 and all(
        isinstance(p, dict) and isinstance(p.get("W"), torch.Tensor) and isinstance(p.get("b"), torch.Tensor)
        and p["W"].ndim == 2 and p["b"].shape == (p["W"].shape[1],) for p in params)
    if ok:
        ok = all(a["W"].shape[1] == b["W"].shape[0] for a, b in zip(params[:-1], params[1:]))
    if not ok:
        raise TypeError(f"{fn}: expected params from init_params: a list of {{'W': (n_in, n_out), 'b': (n_out,)}} "
                        f"whose sizes chain, got {type(params).__name__}")


def _check_labels(fn: str, y: torch.Tensor, K: int) -> None:
    if y.dtype != torch.int64:
        raise TypeError(f"{fn}: expected int64 class labels y, got dtype {y.dtype} (convert with y.long())")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= K):
        raise ValueError(f"{fn}: expected labels in 0..{K - 1}, got {int(y.min())}..{int(y.max())}")


def init_params(sizes: list[int], seed: int = 0, dtype=torch.float64) -> list[dict[str, torch.Tensor]]:
    """Weights for layer sizes ``[D, H1, ..., K]``: ``W`` ``(n_in, n_out)`` ~ N(0, 1/n_in), ``b`` zeros."""
    sizes = _check_sizes("init_params", sizes)
    seed = checks.positive_int("init_params", seed, "seed", 0)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"init_params: expected a floating-point dtype, got {dtype!r}")
    g = torch.Generator().manual_seed(seed)
    return [
        {"W": torch.randn(n_in, n_out, generator=g, dtype=dtype) / n_in**0.5, "b": torch.zeros(n_out, dtype=dtype)}
        for n_in, n_out in zip(sizes[:-1], sizes[1:])
    ]


def forward(params, X: torch.Tensor, activation: str = "tanh"):
    """Forward pass. Returns ``(probs (N, K), cache)``; ``cache`` holds every Aˡ and Zˡ for :func:`backward`.

    ``X`` ``(N, D)`` is moved to the device and dtype of the parameters (float64 by default).
    """
    _check_activation("forward", activation)
    _check_params("forward", params)
    checks.tensor("forward", X, "X")
    if X.ndim != 2 or X.shape[1] != params[0]["W"].shape[0] or X.shape[0] == 0:
        raise ValueError(f"forward: expected X of shape (N, {params[0]['W'].shape[0]}) with N >= 1, "
                         f"got {tuple(X.shape)}")
    checks.finite("forward", checks.floating("forward", X, "X"), "X")
    W = params[0]["W"]
    A = X.to(W.device).to(W.dtype)  # to the device first: MPS has no float64
    cache = {"A": [A], "Z": []}
    for i, layer in enumerate(params):
        Z = A @ layer["W"] + layer["b"]  # (N, n_out)
        cache["Z"].append(Z)
        A = torch.softmax(Z, dim=1) if i == len(params) - 1 else _act(Z, activation)
        cache["A"].append(A)
    return A, cache


def cross_entropy(probs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy ``−(1/N) Σ log probs[n, y[n]]``."""
    checks.tensor("cross_entropy", probs, "probs")
    checks.tensor("cross_entropy", y, "y")
    if probs.ndim != 2 or y.shape != (probs.shape[0],) or len(y) == 0:
        raise ValueError(f"cross_entropy: expected probs (N, K) and labels y (N,) with N >= 1, got "
                         f"{tuple(probs.shape)} and {tuple(y.shape)}")
    _check_labels("cross_entropy", y, probs.shape[1])
    return -torch.log(probs[torch.arange(len(y)), y].clamp_min(1e-12)).mean()


def backward(params, cache, y: torch.Tensor, activation: str = "tanh") -> list[dict[str, torch.Tensor]]:
    """Backpropagation of the mean cross-entropy: the gradient of every ``W`` and ``b`` (same layout as params)."""
    _check_activation("backward", activation)
    _check_params("backward", params)
    if not isinstance(cache, dict) or len(cache.get("A", ())) != len(params) + 1 \
            or len(cache.get("Z", ())) != len(params):
        raise TypeError("backward: expected the cache that forward(params, X) returned with these params")
    probs = cache["A"][-1]
    N, K = probs.shape
    checks.tensor("backward", y, "y")
    if y.shape != (N,):
        raise ValueError(f"backward: expected labels y of shape ({N},), got {tuple(y.shape)}")
    _check_labels("backward", y, K)
    y = y.to(probs.device)
    delta = (probs - torch.nn.functional.one_hot(y, K).to(probs.dtype)) / N  # δᴸ (N, K)
    grads = [None] * len(params)
    for l in range(len(params) - 1, -1, -1):
        A_prev = cache["A"][l]
        grads[l] = {"W": A_prev.T @ delta, "b": delta.sum(0)}
        if l > 0:
            delta = (delta @ params[l]["W"].T) * _act_grad(cache["Z"][l - 1], activation)
    return grads


def fit_scratch(params, X, y, lr: float = 0.5, num_epochs: int = 1000, activation: str = "tanh"):
    """Full-batch gradient descent with :func:`backward`. Returns the loss after each epoch."""
    lr = checks.number("fit_scratch", lr, "lr", 0, low_open=True)
    num_epochs = checks.positive_int("fit_scratch", num_epochs, "num_epochs")
    _check_activation("fit_scratch", activation)
    _check_params("fit_scratch", params)
    checks.tensor("fit_scratch", X, "X")
    checks.tensor("fit_scratch", y, "y")
    if X.ndim != 2 or X.shape[0] == 0 or y.shape != (X.shape[0],):
        raise ValueError(f"fit_scratch: expected X (N, D) and y (N,) with N >= 1, got {tuple(X.shape)} and "
                         f"{tuple(y.shape)}")
    _check_labels("fit_scratch", y, params[-1]["W"].shape[1])
    losses = []
    for _ in range(num_epochs):
        probs, cache = forward(params, X, activation)
        losses.append(float(cross_entropy(probs, y)))
        for layer, grad in zip(params, backward(params, cache, y, activation)):
            layer["W"] -= lr * grad["W"]
            layer["b"] -= lr * grad["b"]
    return losses


def make_mlp(sizes: list[int], activation: str = "relu") -> nn.Sequential:
    """The same network from ``torch.nn``: Flatten, then Linear + activation per hidden layer, then Linear.

    The output is the logits ``Zᴸ`` (softmax is inside ``nn.CrossEntropyLoss``).
    """
    _check_activation("make_mlp", activation)
    sizes = _check_sizes("make_mlp", sizes)
    act = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}[activation]
    layers: list[nn.Module] = [nn.Flatten()]
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)
