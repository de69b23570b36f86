"""Figures of the course: image grids, decision boundaries, learning curves, and pre-computed sliders.

Every function returns the ``matplotlib.figure.Figure`` (or an HTML object) it made, so a chapter can show it
and a test can inspect it. :func:`jshtml_slider` turns a handful of pre-computed states into an animation with
a slider that runs inside the rendered page, offline, where no kernel is there to run a widget.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import animation


def to_numpy_image(img: torch.Tensor) -> np.ndarray:
    """``(C, H, W)`` or ``(H, W)`` tensor → ``(H, W)`` or ``(H, W, 3)`` array for ``imshow``."""
    img = img.detach().cpu().float()
    if img.ndim == 3:
        if img.shape[0] == 1:
            img = img[0]
        elif img.shape[0] == 3:
            img = img.permute(1, 2, 0)
        else:
            raise ValueError(f"to_numpy_image: expected 1 or 3 channels, got shape {tuple(img.shape)}")
    elif img.ndim != 2:
        raise ValueError(f"to_numpy_image: expected (C, H, W) or (H, W), got shape {tuple(img.shape)}")
    return img.numpy()


def show_images(
    images: torch.Tensor | Sequence[torch.Tensor],
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    cmap: str = "gray",
    size: float = 1.4,
    suptitle: str | None = None,
    normalize: bool = False,
):
    """A grid of images ``(N, C, H, W)`` (or a list of ``(C, H, W)``/``(H, W)``), each with an optional title.

    ``normalize=True`` rescales each image to its own [min, max] (for filters and feature maps).
    """
    images = list(images)
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"show_images: {len(images)} images but {len(titles)} titles")
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if suptitle else 0)), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        img = to_numpy_image(images[k])
        if normalize:
            img = (img - img.min()) / max(float(img.max() - img.min()), 1e-8)
        ax.imshow(img, cmap=cmap if img.ndim == 2 else None, vmin=None if normalize else 0, vmax=None if normalize else 1)
        if titles is not None:
            ax.set_title(titles[k], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_decision_regions(
    ax,
    X: torch.Tensor,
    y: torch.Tensor,
    predict_fn: Callable[[torch.Tensor], torch.Tensor],
    resolution: int = 200,
    margin: float = 0.3,
):
    """Colour the plane by ``predict_fn`` (``(M, 2)`` → class ``(M,)``) and scatter the points ``X (N, 2)``, ``y``."""
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"plot_decision_regions: expected 2-D points (N, 2), got {tuple(X.shape)}")
    lo, hi = X.min(0).values - margin, X.max(0).values + margin
    g1, g2 = torch.meshgrid(torch.linspace(lo[0], hi[0], resolution), torch.linspace(lo[1], hi[1], resolution), indexing="xy")
    grid = torch.stack([g1.flatten(), g2.flatten()], 1)
    with torch.no_grad():
        z = predict_fn(grid).reshape(g1.shape).float()
    ax.contourf(g1.numpy(), g2.numpy(), z.numpy(), levels=[-0.5, 0.5, 1.5], colors=["#cfe2f3", "#f9d9c5"], alpha=0.9)
    for c, marker, color in ((0, "o", "#1f77b4"), (1, "s", "#d62728")):
        pts = X[y == c]
        ax.scatter(pts[:, 0], pts[:, 1], marker=marker, c=color, edgecolors="k", s=36, label=f"class {c}")
    ax.set_xlim(float(lo[0]), float(hi[0]))
    ax.set_ylim(float(lo[1]), float(hi[1]))
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    return ax


def plot_curves(curves: dict[str, Sequence[float]], xlabel: str = "epoch", ylabel: str = "", title: str = "", ax=None):
    """Several named curves against 1, 2, 3, … on one axis (e.g. train and test accuracy per epoch)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, marker="o", ms=3, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.figure.tight_layout()
    return ax.figure


def jshtml_slider(draw: Callable, states: Sequence, figsize=(6, 3), dpi: int = 60, interval: int = 700):
    """Pre-compute ``draw(fig, state)`` for every state and return an HTML animation with a slider.

    The result (``IPython.display.HTML``) holds every frame as an embedded PNG and the JavaScript that
    flips between them, so it works in the rendered book without a kernel and without a network.
    """
    from IPython.display import HTML

    if len(states) == 0:
        raise ValueError("jshtml_slider: expected at least one state")
    fig = plt.figure(figsize=figsize, dpi=dpi)

    def frame(k):
        fig.clear()
        draw(fig, states[k])
        return []

    anim = animation.FuncAnimation(fig, frame, frames=len(states), interval=interval, blit=False)
    html = anim.to_jshtml(fps=1000 / interval, default_mode="once")
    plt.close(fig)
    return HTML(_offline_buttons(html))


# matplotlib's player links Font Awesome from a CDN for its button icons; we draw them with plain characters.
_ICONS = {
    "fa fa-play fa-flip-horizontal": "◀", "fa fa-play": "▶", "fa fa-pause": "❚❚", "fa fa-minus": "−",
    "fa fa-plus": "+", "fa fa-fast-backward": "⇤", "fa fa-step-backward": "←", "fa fa-step-forward": "→",
    "fa fa-fast-forward": "⇥",
}


def _offline_buttons(html: str) -> str:
    html = re.sub(r'<link rel="stylesheet"\s*href="https?://[^"]*font-awesome[^"]*">', "", html)
    for cls, char in _ICONS.items():
        html = html.replace(f'<i class="{cls}"></i>', char)
    if "<link" in html or '<i class="fa' in html:
        raise RuntimeError("jshtml_slider: matplotlib's player changed; update _offline_buttons")
    return html
