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

import torch
import torch.nn as nn

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


def _check_activation(activation: str) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {ACTIVATIONS}, got {activation!r}")


def init_params(sizes: list[int], seed: int = 0, dtype=torch.float64) -> list[dict[str, torch.Tensor]]:
    """Weights for layer sizes ``[D, H1, ..., K]``: ``W`` ``(n_in, n_out)`` ~ N(0, 1/n_in), ``b`` zeros."""
    if len(sizes) < 2 or any(int(s) != s or s < 1 for s in sizes):
        raise ValueError(f"sizes: expected at least two positive ints [inputs, ..., outputs], got {sizes}")
    g = torch.Generator().manual_seed(seed)
    return [
        {"W": torch.randn(n_in, n_out, generator=g, dtype=dtype) / n_in**0.5, "b": torch.zeros(n_out, dtype=dtype)}
        for n_in, n_out in zip(sizes[:-1], sizes[1:])
    ]


def forward(params, X: torch.Tensor, activation: str = "tanh"):
    """Forward pass. Returns ``(probs (N, K), cache)``; ``cache`` holds every Aˡ and Zˡ for :func:`backward`."""
    _check_activation(activation)
    if X.ndim != 2 or X.shape[1] != params[0]["W"].shape[0]:
        raise ValueError(f"X: expected (N, {params[0]['W'].shape[0]}), got {tuple(X.shape)}")
    A = X.to(params[0]["W"].dtype)
    cache = {"A": [A], "Z": []}
    for i, layer in enumerate(params):
        Z = A @ layer["W"] + layer["b"]  # (N, n_out)
        cache["Z"].append(Z)
        A = torch.softmax(Z, dim=1) if i == len(params) - 1 else _act(Z, activation)
        cache["A"].append(A)
    return A, cache


def cross_entropy(probs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy ``−(1/N) Σ log probs[n, y[n]]``."""
    return -torch.log(probs[torch.arange(len(y)), y].clamp_min(1e-12)).mean()


def backward(params, cache, y: torch.Tensor, activation: str = "tanh") -> list[dict[str, torch.Tensor]]:
    """Backpropagation of the mean cross-entropy: the gradient of every ``W`` and ``b`` (same layout as params)."""
    probs = cache["A"][-1]
    N, K = probs.shape
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
    _check_activation(activation)
    if len(sizes) < 2:
        raise ValueError(f"sizes: expected at least [inputs, outputs], got {sizes}")
    act = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}[activation]
    layers: list[nn.Module] = [nn.Flatten()]
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)
