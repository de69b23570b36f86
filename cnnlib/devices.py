"""Where the computation runs, and how to make it repeatable.

`device()` picks the fastest backend present (CUDA, then Apple's MPS, then the CPU); `seed_everything(s)`
seeds Python, NumPy and PyTorch so that a chapter prints the same numbers on every run on the same machine.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

_CHOICES = ("cuda", "mps", "cpu")


def device(prefer: str | None = None) -> torch.device:
    """Return the device the course computes on.

    Order of preference: CUDA GPU, Apple-silicon GPU (MPS), CPU. The environment variable
    ``CNNLIB_DEVICE`` (``cuda``/``mps``/``cpu``) or the argument ``prefer`` overrides the choice,
    e.g. to compare a GPU run with a CPU run.

    Args:
        prefer: ``"cuda"``, ``"mps"``, ``"cpu"`` or ``None`` (automatic).

    Returns:
        A ``torch.device``.

    Raises:
        ValueError: if ``prefer`` names no known backend or one that is not available here.
    """
    choice = prefer or os.environ.get("CNNLIB_DEVICE") or None
    if choice is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if choice not in _CHOICES:
        raise ValueError(f"device: expected one of {_CHOICES} or None, got {choice!r}")
    available = {
        "cuda": torch.cuda.is_available(),
        "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available(),
        "cpu": True,
    }
    if not available[choice]:
        raise ValueError(f"device: {choice!r} was asked for but is not available on this machine")
    return torch.device(choice)


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python's, NumPy's and PyTorch's random generators (CPU and every GPU).

    Returns a ``torch.Generator`` seeded with the same value, for code that wants its own stream
    (e.g. a shuffling ``DataLoader``) without touching the global one.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed_everything: expected a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
