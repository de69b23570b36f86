"""The restricted Boltzmann machine and the stacked autoencoder built from it (the lecture's "SAE").

A restricted Boltzmann machine (RBM) with ``D`` binary visible units ``v`` and ``H`` binary hidden units ``h``
gives every joint state an energy

    E(v, h) = −vᵀ W h − bᵀ v − cᵀ h,    W: (D, H), b: (D,), c: (H,),

and the probability ``p(v, h) = exp(−E(v, h)) / Z`` with ``Z = Σ_{v,h} exp(−E(v, h))``. There are no
visible–visible or hidden–hidden connections, so the units of one layer are independent given the other:

    p(h_j = 1 | v) = σ(c_j + (vᵀ W)_j),    p(v_i = 1 | h) = σ(b_i + (W h)_i).

Summing out ``h`` gives the free energy ``F(v) = −bᵀ v − Σ_j softplus(c_j + (vᵀ W)_j)`` with
``p(v) = exp(−F(v)) / Z``. The gradient of the mean log-likelihood of data ``v`` is

    ∂ log p(v) / ∂W = ⟨v hᵀ⟩_data − ⟨v hᵀ⟩_model    (likewise ``b`` with ``v``, ``c`` with ``h``),

and the model term needs samples from ``p``. Contrastive divergence CD-k (Hinton 2002) replaces them by the
state reached after ``k`` steps of Gibbs sampling started at the data; as ``k`` grows, the estimate tends to
the true gradient (``tests/test_rbm.py`` checks that on an RBM small enough to enumerate).

A stack of RBMs is trained greedily, one layer at a time, each on the hidden probabilities of the one below
(Hinton, Osindero & Teh 2006). Unrolled — encoder ``σ(x W₁ + c₁) → σ(· W₂ + c₂) …``, decoder with the
transposed weights and the visible biases — it is an autoencoder that reproduces its input, and fine-tuning
all its weights on the reconstruction error makes it better (Hinton & Salakhutdinov, Science 2006).

Gray images are used as Bernoulli visibles by reading each pixel in [0, 1] as the probability that it is on,
as Hinton & Salakhutdinov did for MNIST; values outside [0, 1] are refused.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from . import checks
from .progress import hidden
from .snapshots import DATA_DIR, checked_file

MAX_ENUMERATE = 20  # exact sums over 2^n states are offered up to n = 20 (a million states)


def _generator(fn: str, generator) -> torch.Generator:
    if generator is None:
        return torch.Generator().manual_seed(0)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"{fn}: expected generator to be a torch.Generator or None, got {type(generator).__name__}")
    return generator


def bernoulli(p: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Binary samples ``(u < p)`` with ``u`` uniform, drawn on the generator's device and moved to ``p``'s
    (so a CPU generator gives the same samples whatever device ``p`` is on). Same shape and dtype as ``p``."""
    u = torch.rand(p.shape, generator=generator, device=generator.device, dtype=p.dtype).to(p.device)
    return (u < p).to(p.dtype)


class RBM(nn.Module):
    """A Bernoulli–Bernoulli restricted Boltzmann machine (Smolensky 1986; Hinton 2002).

    Parameters: ``W`` ``(D, H)`` (initialised N(0, ``weight_std``²)), visible biases ``b`` ``(D,)`` and hidden
    biases ``c`` ``(H,)`` (zeros). Energy ``E(v, h) = −vᵀWh − bᵀv − cᵀh``. Every method takes a batch of
    visible vectors ``v`` ``(N, D)`` with values in [0, 1] (binary states, or probabilities for gray images)
    or hidden vectors ``h`` ``(N, H)``.
    """

    def __init__(self, n_visible: int, n_hidden: int, weight_std: float = 0.01, seed: int = 0):
        super().__init__()
        n_visible = checks.positive_int("RBM", n_visible, "n_visible")
        n_hidden = checks.positive_int("RBM", n_hidden, "n_hidden")
        weight_std = checks.number("RBM", weight_std, "weight_std", low=0.0)
        seed = checks.positive_int("RBM", seed, "seed", minimum=0)
        gen = torch.Generator().manual_seed(seed)
        self.W = nn.Parameter(torch.randn(n_visible, n_hidden, generator=gen) * weight_std)  # (D, H)
        self.b = nn.Parameter(torch.zeros(n_visible))  # (D,) visible biases
        self.c = nn.Parameter(torch.zeros(n_hidden))  # (H,) hidden biases

    @property
    def n_visible(self) -> int:
        return self.W.shape[0]

    @property
    def n_hidden(self) -> int:
        return self.W.shape[1]

    def extra_repr(self) -> str:
        return f"n_visible={self.n_visible}, n_hidden={self.n_hidden}"

    def _units(self, fn: str, x, width: int, name: str) -> torch.Tensor:
        """``x`` ``(N, width)``, float, finite, in [0, 1], on the RBM's device; else a clear error."""
        checks.tensor(fn, x, name)
        if x.ndim != 2:
            hint = " (flatten images with x.flatten(1))" if x.ndim == 4 else ""
            raise ValueError(f"{fn}: expected {name} of shape (N, {width}), got {tuple(x.shape)}{hint}")
        checks.images(fn, x, ndim=2, name=name)
        if x.shape[1] != width:
            raise ValueError(f"{fn}: expected {name} of shape (N, {width}), got {tuple(x.shape)}")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"{fn}: expected {name} in [0, 1] (Bernoulli units: states or probabilities), got "
                             f"values in [{lo:g}, {hi:g}]")
        return checks.to_model(fn, self, x, name)

    def visible(self, fn: str, v) -> torch.Tensor:
        return self._units(fn, v, self.n_visible, "v")

    def hidden(self, fn: str, h) -> torch.Tensor:
        return self._units(fn, h, self.n_hidden, "h")

    def energy(self, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """``E(v, h) = −vᵀWh − bᵀv − cᵀh`` for each pair of rows: ``v`` ``(N, D)``, ``h`` ``(N, H)`` → ``(N,)``."""
        v, h = self.visible("RBM.energy", v), self.hidden("RBM.energy", h)
        if len(v) != len(h):
            raise ValueError(f"RBM.energy: expected as many rows in v as in h, got {len(v)} and {len(h)}")
        return -((v @ self.W) * h).sum(1) - v @ self.b - h @ self.c

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """``F(v) = −log Σ_h exp(−E(v, h)) = −bᵀv − Σ_j softplus(c_j + (vᵀW)_j)``: ``(N, D)`` → ``(N,)``."""
        v = self.visible("RBM.free_energy", v)
        return -(v @ self.b) - F.softplus(v @ self.W + self.c).sum(1)

    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        """``p(h_j = 1 | v) = σ(c_j + (vᵀW)_j)``: ``(N, D)`` → ``(N, H)``."""
        v = self.visible("RBM.hidden_probs", v)
        return torch.sigmoid(v @ self.W + self.c)

    def visible_probs(self, h: torch.Tensor) -> torch.Tensor:
        """``p(v_i = 1 | h) = σ(b_i + (Wh)_i)``: ``(N, H)`` → ``(N, D)``."""
        h = self.hidden("RBM.visible_probs", h)
        return torch.sigmoid(h @ self.W.T + self.b)

    def reconstruct(self, v: torch.Tensor) -> torch.Tensor:
        """The mean-field reconstruction ``p(v | h = p(h | v))``: up and down once without sampling, ``(N, D)``."""
        return self.visible_probs(self.hidden_probs(v))


def gibbs_chain(rbm: RBM, v0: torch.Tensor, num_steps: int, every: int = 1,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Run Gibbs sampling ``v → h ~ p(h | v) → v ~ p(v | h) → …`` for ``num_steps`` steps from ``v0``.

    Each step samples all hidden units at once given ``v`` and then all visible units given ``h`` (block Gibbs
    sampling, possible because the units of a layer are independent given the other layer). After many steps
    ``v`` is a sample from the model's ``p(v)``.

    Args:
        rbm: the machine.
        v0: ``(N, D)`` starting states in [0, 1] (probabilities are sampled to binary states first).
        num_steps: number of steps (>= 1).
        every: keep every ``every``-th step.
        generator: random stream (default: a fresh one seeded with 0).

    Returns:
        ``(num_steps // every + 1, N, D)``: the starting ``v0`` and then, at each kept step, the probabilities
        ``p(v | h)`` from which that step's binary ``v`` was drawn (smoother to look at than the binary state).
    """
    fn = "gibbs_chain"
    checks.module(fn, rbm)
    v = rbm.visible(fn, v0)
    num_steps = checks.positive_int(fn, num_steps, "num_steps")
    every = checks.positive_int(fn, every, "every")
    gen = _generator(fn, generator)
    kept = [v.detach().clone()]
    with torch.no_grad():
        v = bernoulli(v, gen)
        for step in range(1, num_steps + 1):
            h = bernoulli(torch.sigmoid(v @ rbm.W + rbm.c), gen)  # (N, H)
            pv = torch.sigmoid(h @ rbm.W.T + rbm.b)  # (N, D)
            v = bernoulli(pv, gen)
            if step % every == 0:
                kept.append(pv.clone())
    return torch.stack(kept)  # (S, N, D)


def cd_gradient(rbm: RBM, v: torch.Tensor, k: int = 1,
                generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """The CD-k estimate of the gradient of the mean log-likelihood ``(1/N) Σₙ log p(vₙ)`` (Hinton 2002).

    Positive phase: ``⟨v hᵀ⟩_data = (1/N) Σₙ vₙ p(h | vₙ)ᵀ`` (exact). Negative phase: from each ``vₙ`` sample
    ``h⁰ ~ p(h | vₙ)``, then ``k`` times ``v ~ p(v | h)``, ``h ~ p(h | v)``; with ``vᵏ`` the visible state
    reached, ``⟨v hᵀ⟩ ≈ (1/N) Σₙ vᵏₙ p(h | vᵏₙ)ᵀ``. So

        ΔW = (1/N) [vᵀ p(h|v) − vᵏᵀ p(h|vᵏ)],  Δb = mean(v − vᵏ),  Δc = mean(p(h|v) − p(h|vᵏ)).

    For ``k → ∞`` the chain forgets its start and the estimate's mean tends to the exact gradient
    (``exact_gradient``); for small ``k`` it is biased but cheap, and good enough to learn with.

    Args:
        rbm: the machine.
        v: ``(N, D)`` data in [0, 1].
        k: number of Gibbs steps (>= 1).
        generator: random stream (default: a fresh one seeded with 0).

    Returns:
        ``{"W": (D, H), "b": (D,), "c": (H,)}``, the ascent direction (add ``lr`` times it to learn).
    """
    fn = "cd_gradient"
    checks.module(fn, rbm)
    v = rbm.visible(fn, v)
    k = checks.positive_int(fn, k, "k")
    gen = _generator(fn, generator)
    with torch.no_grad():
        ph0 = torch.sigmoid(v @ rbm.W + rbm.c)  # (N, H) positive phase
        h = bernoulli(ph0, gen)
        for step in range(k):
            vk = bernoulli(torch.sigmoid(h @ rbm.W.T + rbm.b), gen)  # (N, D)
            phk = torch.sigmoid(vk @ rbm.W + rbm.c)  # (N, H)
            if step < k - 1:
                h = bernoulli(phk, gen)
        n = len(v)
        return {"W": (v.T @ ph0 - vk.T @ phk) / n, "b": (v - vk).mean(0), "c": (ph0 - phk).mean(0)}


def all_states(n: int) -> torch.Tensor:
    """All ``2ⁿ`` binary vectors of length ``n`` as a float tensor ``(2ⁿ, n)``, in binary counting order."""
    n = checks.positive_int("all_states", n, "n", maximum=MAX_ENUMERATE)
    return torch.tensor(list(itertools.product((0.0, 1.0), repeat=n)))


def log_partition(rbm: RBM) -> torch.Tensor:
    """``log Z = log Σ_v exp(−F(v))`` exactly, by enumerating the ``2^D`` visible states (``D`` <= 20).

    Returns:
        A 0-dimensional tensor (differentiable with respect to the RBM's parameters).
    """
    fn = "log_partition"
    checks.module(fn, rbm)
    if rbm.n_visible > MAX_ENUMERATE:
        raise ValueError(f"{fn}: expected at most {MAX_ENUMERATE} visible units to enumerate 2^D states, got "
                         f"{rbm.n_visible}")
    vs = all_states(rbm.n_visible).to(rbm.W.device)  # (2^D, D)
    return torch.logsumexp(-rbm.free_energy(vs), 0)


def log_likelihood(rbm: RBM, v: torch.Tensor) -> torch.Tensor:
    """``log p(v) = −F(v) − log Z`` exactly (``D`` <= 20): ``(N, D)`` → ``(N,)``."""
    return -rbm.free_energy(v) - log_partition(rbm)


def exact_gradient(rbm: RBM, v: torch.Tensor) -> dict[str, torch.Tensor]:
    """The exact gradient of ``(1/N) Σₙ log p(vₙ)``, with the model term ``Σ_v p(v) v p(h|v)ᵀ`` summed over all
    ``2^D`` visible states (``D`` <= 20). Same keys and shapes as ``cd_gradient``."""
    fn = "exact_gradient"
    checks.module(fn, rbm)
    v = rbm.visible(fn, v)
    if rbm.n_visible > MAX_ENUMERATE:
        raise ValueError(f"{fn}: expected at most {MAX_ENUMERATE} visible units to enumerate 2^D states, got "
                         f"{rbm.n_visible}")
    with torch.no_grad():
        vs = all_states(rbm.n_visible).to(rbm.W.device)  # (2^D, D)
        p = torch.softmax(-rbm.free_energy(vs), 0)  # (2^D,) p(v) of every state
        ph_model = torch.sigmoid(vs @ rbm.W + rbm.c)  # (2^D, H)
        ph_data = torch.sigmoid(v @ rbm.W + rbm.c)  # (N, H)
        return {"W": v.T @ ph_data / len(v) - (vs * p[:, None]).T @ ph_model,
                "b": v.mean(0) - p @ vs,
                "c": ph_data.mean(0) - p @ ph_model}


def _conditional_table(p: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    """``P[n, s] = Π_j p[n, j]^{s_j} (1 − p[n, j])^{1 − s_j}`` for factorised Bernoulli probabilities ``p``
    ``(N, n)`` and binary states ``(S, n)`` → ``(N, S)``."""
    return torch.exp(torch.log(p) @ states.T + torch.log1p(-p) @ (1 - states).T)


def cd_expected_gradient(rbm: RBM, v: torch.Tensor, k: int = 1) -> dict[str, torch.Tensor]:
    """The mean of the CD-k estimate (``cd_gradient``) over its random steps, computed exactly by enumeration
    (``D``, ``H`` <= 20): the distribution of ``vᵏ`` is ``p(h | v) · [P(v | h) P(h | v)]^{k−1} · P(v | h)``
    with the Gibbs transition tables over all states. Computed in float64. Same keys and shapes as
    ``cd_gradient``; its distance to ``exact_gradient`` is the bias of CD-k, without sampling noise."""
    fn = "cd_expected_gradient"
    checks.module(fn, rbm)
    v = rbm.visible(fn, v)
    k = checks.positive_int(fn, k, "k")
    if max(rbm.n_visible, rbm.n_hidden) > MAX_ENUMERATE:
        raise ValueError(f"{fn}: expected at most {MAX_ENUMERATE} visible and hidden units to enumerate, got "
                         f"{rbm.n_visible} and {rbm.n_hidden}")
    with torch.no_grad():
        W, b, c, v = rbm.W.double(), rbm.b.double(), rbm.c.double(), v.double()
        vs = all_states(rbm.n_visible).to(W)  # (S_v, D)
        hs = all_states(rbm.n_hidden).to(W)  # (S_h, H)
        v_given_h = _conditional_table(torch.sigmoid(hs @ W.T + b), vs)  # (S_h, S_v)
        h_given_v = _conditional_table(torch.sigmoid(vs @ W + c), hs)  # (S_v, S_h)
        ph_data = torch.sigmoid(v @ W + c)  # (N, H)
        q = _conditional_table(ph_data, hs) @ v_given_h  # (N, S_v): distribution of v¹
        step = h_given_v @ v_given_h  # (S_v, S_v): one Gibbs step v → h → v'
        for _ in range(k - 1):
            q = q @ step
        q = q.mean(0)  # (S_v,) distribution of vᵏ averaged over the data
        ph_model = torch.sigmoid(vs @ W + c)  # (S_v, H)
        grad = {"W": v.T @ ph_data / len(v) - (vs * q[:, None]).T @ ph_model,
                "b": v.mean(0) - q @ vs,
                "c": ph_data.mean(0) - q @ ph_model}
    return {name: g.to(rbm.W.dtype) for name, g in grad.items()}


def reconstruction_error(rbm: RBM, v: torch.Tensor) -> float:
    """Mean squared error between ``v`` ``(N, D)`` and its mean-field reconstruction ``rbm.reconstruct(v)``."""
    with torch.no_grad():
        v = rbm.visible("reconstruction_error", v)
        return float(F.mse_loss(rbm.reconstruct(v), v))


def fit_rbm(rbm: RBM, X: torch.Tensor, *, num_epochs: int = 5, lr: float = 0.05, k: int = 1, batch_size: int = 100,
            momentum: float = 0.9, weight_decay: float = 2e-4, seed: int = 0, progress: bool = True) -> list[float]:
    """Train ``rbm`` on ``X`` ``(N, D)`` in [0, 1] by CD-k with momentum and weight decay (Hinton 2002; the
    settings of Hinton's "practical guide", 2010: momentum 0.5 for the first epoch, then ``momentum``).

    Update per mini-batch: ``velocity ← m · velocity + lr · (Δ − weight_decay · W)``, ``θ ← θ + velocity``
    with ``Δ`` from ``cd_gradient`` (weight decay on ``W`` only).

    Returns:
        The mean-field reconstruction error (``reconstruction_error``) averaged over the mini-batches of each
        epoch, one number per epoch. It is not the likelihood, but a broken update shows in it.
    """
    fn = "fit_rbm"
    checks.module(fn, rbm)
    X = rbm.visible(fn, X)
    num_epochs = checks.positive_int(fn, num_epochs, "num_epochs")
    lr = checks.number(fn, lr, "lr", low=0.0, low_open=True)
    k = checks.positive_int(fn, k, "k")
    batch_size = checks.positive_int(fn, batch_size, "batch_size")
    momentum = checks.number(fn, momentum, "momentum", low=0.0, high=1.0)
    weight_decay = checks.number(fn, weight_decay, "weight_decay", low=0.0)
    seed = checks.positive_int(fn, seed, "seed", minimum=0)
    gen = torch.Generator().manual_seed(seed)
    velocity = {name: torch.zeros_like(p) for name, p in rbm.named_parameters()}
    errors = []
    for epoch in range(num_epochs):
        m = 0.5 if epoch == 0 else momentum
        order, total = torch.randperm(len(X), generator=gen).to(X.device), 0.0
        for i in tqdm(range(0, len(X), batch_size), desc=f"RBM {rbm.n_visible}-{rbm.n_hidden} epoch {epoch + 1}",
                      leave=False, disable=hidden(progress)):
            xb = X[order[i: i + batch_size]]  # (B, D)
            grad = cd_gradient(rbm, xb, k=k, generator=gen)
            with torch.no_grad():
                grad["W"] = grad["W"] - weight_decay * rbm.W
                for name, p in rbm.named_parameters():
                    velocity[name].mul_(m).add_(grad[name], alpha=lr)
                    p.add_(velocity[name])
                total += float(F.mse_loss(rbm.reconstruct(xb), xb, reduction="sum")) / X.shape[1]
        errors.append(total / len(X))
    return errors


def pretrain_stack(X: torch.Tensor, sizes: list[int], *, num_epochs: int = 5, lr: float = 0.05, k: int = 1,
                   batch_size: int = 100, seed: int = 0, device=None, progress: bool = True,
                   ) -> tuple[list[RBM], list[list[float]]]:
    """Greedy layer-wise pre-training (Hinton, Osindero & Teh 2006): train an RBM ``sizes[0]–sizes[1]`` on ``X``,
    then an RBM ``sizes[1]–sizes[2]`` on the hidden probabilities ``p(h | x)`` of the first, and so on.

    Args:
        X: ``(N, D)`` data in [0, 1] (images flattened with ``X.flatten(1)``), ``D == sizes[0]``.
        sizes: layer widths, e.g. ``[784, 256, 64]`` (at least two).
        num_epochs, lr, k, batch_size: as in ``fit_rbm``, the same for every layer.
        seed: layer ``i`` is initialised and trained with seed ``seed + i``.
        device: where to train (default: ``X``'s device).

    Returns:
        ``(rbms, errors)``: the trained RBMs, bottom first, and each one's per-epoch reconstruction errors.
    """
    fn = "pretrain_stack"
    if not isinstance(sizes, (list, tuple)) or len(sizes) < 2:
        raise ValueError(f"{fn}: expected sizes to be a list of at least two layer widths, got {sizes!r}")
    sizes = [checks.positive_int(fn, s, "every entry of sizes") for s in sizes]
    checks.images(fn, X, ndim=2, name="X")
    if X.shape[1] != sizes[0]:
        raise ValueError(f"{fn}: expected X of shape (N, {sizes[0]}) to match sizes[0], got {tuple(X.shape)}")
    seed = checks.positive_int(fn, seed, "seed", minimum=0)
    dev = torch.device(device) if device is not None else X.device
    rbms, errors, inputs = [], [], X.to(dev)
    for i, (n_visible, n_hidden) in enumerate(zip(sizes[:-1], sizes[1:])):
        rbm = RBM(n_visible, n_hidden, seed=seed + i).to(dev)
        errors.append(fit_rbm(rbm, inputs, num_epochs=num_epochs, lr=lr, k=k, batch_size=batch_size, seed=seed + i,
                              progress=progress))
        with torch.no_grad():
            inputs = rbm.hidden_probs(inputs)  # (N, n_hidden): the data of the next RBM
        rbms.append(rbm)
    return rbms, errors


def generate(rbms: list[RBM], num_samples: int, num_steps: int = 1000,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Samples from the deep belief net of a stack (Hinton, Osindero & Teh 2006): run Gibbs sampling for
    ``num_steps`` in the top RBM from random states, then go down once through ``p(v | h)`` of each lower RBM.

    Returns:
        ``(num_samples, D)`` visible probabilities of the bottom layer.
    """
    fn = "generate"
    _check_stack(fn, rbms)
    num_samples = checks.positive_int(fn, num_samples, "num_samples")
    gen = _generator(fn, generator)
    top = rbms[-1]
    with torch.no_grad():
        v0 = torch.rand(num_samples, top.n_visible, generator=gen, device=gen.device).to(top.W.device)
        x = gibbs_chain(top, v0, num_steps, every=num_steps, generator=gen)[-1]  # (S, D_top)
        for rbm in reversed(rbms[:-1]):
            x = rbm.visible_probs(x)
    return x


def _check_stack(fn: str, rbms) -> list[RBM]:
    if not isinstance(rbms, (list, tuple)) or not rbms or not all(isinstance(r, RBM) for r in rbms):
        raise TypeError(f"{fn}: expected a non-empty list of RBMs, got {rbms!r}")
    for i, (lower, upper) in enumerate(zip(rbms[:-1], rbms[1:])):
        if lower.n_hidden != upper.n_visible:
            raise ValueError(f"{fn}: RBM {i} has {lower.n_hidden} hidden units but RBM {i + 1} has "
                             f"{upper.n_visible} visible units; they must match to stack")
    return list(rbms)


class StackedAutoencoder(nn.Module):
    """A stack of RBMs unrolled into an autoencoder (Hinton & Salakhutdinov 2006, Fig. 1).

    Encoder: ``z₁ = σ(x W₁ + c₁)``, ``z₂ = σ(z₁ W₂ + c₂)``, … — each layer is its RBM's ``p(h | v)``.
    Decoder: the same RBMs in reverse, ``σ(z Wᵀ + b)`` — each layer is ``p(v | h)``. At the start the encoder
    and decoder share their weights (transposed); they are copies, so fine-tuning may move them apart.

    ``forward`` takes ``(N, D)`` or images ``(N, C, H, W)`` with ``C·H·W = D`` in [0, 1] and returns the
    reconstruction in the same shape (so ``cnnlib.autoencoder.fit_autoencoder`` fine-tunes it).
    """

    def __init__(self, rbms: list[RBM]):
        super().__init__()
        rbms = _check_stack("StackedAutoencoder", rbms)
        enc, dec = [], []
        for rbm in rbms:
            layer = nn.Linear(rbm.n_visible, rbm.n_hidden)
            with torch.no_grad():
                layer.weight.copy_(rbm.W.T)
                layer.bias.copy_(rbm.c)
            enc += [layer, nn.Sigmoid()]
        for rbm in reversed(rbms):
            layer = nn.Linear(rbm.n_hidden, rbm.n_visible)
            with torch.no_grad():
                layer.weight.copy_(rbm.W)
                layer.bias.copy_(rbm.b)
            dec += [layer, nn.Sigmoid()]
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)
        self.sizes = [rbms[0].n_visible] + [r.n_hidden for r in rbms]
        self.to(rbms[0].W.device)

    def _flat(self, fn: str, x) -> torch.Tensor:
        checks.tensor(fn, x)
        if x.ndim not in (2, 4):
            raise ValueError(f"{fn}: expected x of shape (N, {self.sizes[0]}) or (N, C, H, W), got {tuple(x.shape)}")
        flat = x.flatten(1) if x.ndim == 4 else x
        checks.images(fn, flat, ndim=2)
        if flat.shape[1] != self.sizes[0]:
            raise ValueError(f"{fn}: expected {self.sizes[0]} values per example, got {flat.shape[1]} "
                             f"(shape {tuple(x.shape)})")
        lo, hi = float(flat.min()), float(flat.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"{fn}: expected x in [0, 1], got values in [{lo:g}, {hi:g}]")
        return checks.to_model(fn, self, flat)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code ``(N, sizes[-1])`` of ``x`` ``(N, D)`` or ``(N, C, H, W)``."""
        return self.encoder(self._flat("StackedAutoencoder.encode", x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(self._flat("StackedAutoencoder", x))).reshape(x.shape)


def save_stack(path, rbms: list[RBM], sae: StackedAutoencoder | None = None, info: dict | None = None) -> None:
    """Save a stack (and optionally its fine-tuned autoencoder) as float16 weights plus a JSON-able ``info``."""
    rbms = _check_stack("save_stack", rbms)
    blob = {"sizes": [rbms[0].n_visible] + [r.n_hidden for r in rbms],
            "rbms": [{k: t.detach().cpu().half() for k, t in r.state_dict().items()} for r in rbms],
            "sae": None if sae is None else {k: t.detach().cpu().half() for k, t in sae.state_dict().items()},
            "info": info or {}}
    torch.save(blob, path)


def load_stack(path, device=None) -> tuple[list[RBM], StackedAutoencoder | None, dict]:
    """The ``(rbms, sae, info)`` saved by ``save_stack``, float32 on ``device`` (default: the CPU); the
    autoencoder is in eval mode, ``None`` if none was saved."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    sizes, rbms = blob["sizes"], []
    for i, state in enumerate(blob["rbms"]):
        rbm = RBM(sizes[i], sizes[i + 1])
        rbm.load_state_dict({k: t.float() for k, t in state.items()})
        rbms.append(rbm.to(device or "cpu"))
    sae = None
    if blob["sae"] is not None:
        sae = StackedAutoencoder(rbms)
        sae.load_state_dict({k: t.float() for k, t in blob["sae"].items()})
        sae.eval()
    return rbms, sae, blob["info"]


def load_shipped(name: str = "fashion-784-256-64", device=None, data_dir=None):
    """The stack shipped in ``data/sae/<name>.pt`` (made by ``scripts/train_sae.py``), checked against the sha256
    in ``data/sae/MANIFEST.json`` first. Returns ``(rbms, sae, info)`` as ``load_stack``."""
    folder = Path(data_dir) if data_dir is not None else DATA_DIR / "sae"
    path = checked_file("load_shipped", folder, f"{name}.pt", "re-create it with scripts/train_sae.py")
    return load_stack(path, device=device)
