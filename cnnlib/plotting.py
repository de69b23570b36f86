"""Figures of the course: image grids, decision boundaries, learning curves, and pre-computed sliders.

Every function returns the ``matplotlib.figure.Figure`` (or an HTML object) it made, so a chapter can show it
and a test can inspect it. :func:`jshtml_slider` turns a handful of pre-computed states into an animation with
a slider that runs inside the rendered page, offline, where no kernel is there to run a widget.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import animation
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch, Rectangle

from . import checks
from .sanity import MEASURES
from .train import confusion_matrix


def to_numpy_image(img: torch.Tensor) -> np.ndarray:
    """``(C, H, W)`` or ``(H, W)`` tensor → ``(H, W)`` or ``(H, W, 3)`` array for ``imshow`` (on the CPU)."""
    checks.tensor("to_numpy_image", img, "img")
    if img.numel() == 0:
        raise ValueError(f"to_numpy_image: expected an image, got an empty tensor {tuple(img.shape)}")
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
    if isinstance(images, torch.Tensor) and images.ndim != 4:
        raise ValueError(f"show_images: expected images (N, C, H, W) or a list of (C, H, W), got "
                         f"{tuple(images.shape)}")
    if not isinstance(images, (torch.Tensor, Sequence)) or isinstance(images, str):
        raise TypeError(f"show_images: expected a tensor (N, C, H, W) or a list of images, got "
                        f"{type(images).__name__}")
    images = list(images)
    if not images:
        raise ValueError("show_images: expected at least one image")
    if titles is not None and (isinstance(titles, str) or len(titles) != len(images)):
        raise ValueError(f"show_images: {len(images)} images but titles {titles!r}")
    ncols = checks.positive_int("show_images", ncols, "ncols")
    size = checks.number("show_images", size, "size", 0, low_open=True)
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    # each row gets room for its titles, the figure for its suptitle
    height = size * nrows + (0.25 * nrows if titles is not None else 0) + (0.4 if suptitle else 0)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, height), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        img = to_numpy_image(images[k])
        if normalize:
            img = (img - img.min()) / max(float(img.max() - img.min()), 1e-8)
        ax.imshow(img, cmap=cmap if img.ndim == 2 else None,
                  vmin=None if normalize else 0, vmax=None if normalize else 1)
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
    checks.tensor("plot_decision_regions", X, "X")
    if X.ndim != 2 or X.shape[1] != 2 or len(X) == 0:
        raise ValueError(f"plot_decision_regions: expected 2-D points (N, 2), got {tuple(X.shape)}")
    checks.finite("plot_decision_regions", checks.floating("plot_decision_regions", X, "X"), "X")
    checks.tensor("plot_decision_regions", y, "y")
    if y.shape != (len(X),):
        raise ValueError(f"plot_decision_regions: expected labels y of shape ({len(X)},), got {tuple(y.shape)}")
    if not callable(predict_fn):
        raise TypeError(f"plot_decision_regions: expected predict_fn to be a function, got {predict_fn!r}")
    resolution = checks.positive_int("plot_decision_regions", resolution, "resolution", 2)
    margin = checks.number("plot_decision_regions", margin, "margin", 0)
    X, y = X.detach().cpu().float(), y.detach().cpu()
    lo, hi = X.min(0).values - margin, X.max(0).values + margin
    g1, g2 = torch.meshgrid(torch.linspace(lo[0], hi[0], resolution), torch.linspace(lo[1], hi[1], resolution),
                            indexing="xy")
    grid = torch.stack([g1.flatten(), g2.flatten()], 1)
    with torch.no_grad():
        z = predict_fn(grid)
    if not isinstance(z, torch.Tensor) or z.numel() != grid.shape[0]:
        raise ValueError(f"plot_decision_regions: expected predict_fn to return one class per point ({grid.shape[0]}),"
                         f" got {getattr(z, 'shape', type(z).__name__)}")
    z = z.detach().cpu().reshape(g1.shape).float()
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
    if not isinstance(curves, dict) or not curves:
        raise TypeError(f"plot_curves: expected a non-empty {{name: values}} dict, got {type(curves).__name__}")
    for name, values in curves.items():
        if isinstance(values, str) or not isinstance(values, (Sequence, np.ndarray, torch.Tensor)) \
                or len(values) == 0:
            raise TypeError(f"plot_curves: expected curve {name!r} as a non-empty list of numbers, got {values!r}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    for name, values in curves.items():
        values = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else values
        ax.plot(range(1, len(values) + 1), values, marker="o", ms=3, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.figure.tight_layout()
    return ax.figure


def show_to_scale(
    maps: Sequence[torch.Tensor],
    titles: Sequence[str] | None = None,
    cmap: str | Sequence[str] = "gray",
    inches_per_pixel: float = 0.02,
    suptitle: str | None = None,
):
    """2-D maps side by side at one common pixel scale, so a map with fewer pixels is drawn smaller.

    Panel ``i`` is ``W_i`` pixels wide and every panel spans ``max_i H_i`` pixels in height, all at
    ``inches_per_pixel``: a 64×64 map after 2×2 pooling looks a quarter of the 128×128 map it came from.
    A map with negative values gets colour limits symmetric around 0 (so 0 is the middle of ``cmap``).

    Args:
        maps: tensors ``(H_i, W_i)`` (or ``(1, H_i, W_i)``).
        titles: one per map (the size ``H×W`` is added on a second line).
        cmap: one colormap for all maps, or one per map.
        inches_per_pixel: figure inches per map pixel.

    Returns:
        The ``Figure``; ``fig.axes[i]`` shows map ``i`` with x limits ``(0, W_i)``.
    """
    if isinstance(maps, torch.Tensor) and maps.ndim == 2:
        raise TypeError("show_to_scale: expected a list of maps, got one map (H, W); write [m]")
    arrays = [to_numpy_image(m) for m in maps]
    if any(a.ndim != 2 for a in arrays):
        raise ValueError(f"show_to_scale: expected 2-D maps (H, W), got shapes {[a.shape for a in arrays]}")
    n = len(arrays)
    if n == 0:
        raise ValueError("show_to_scale: expected at least one map")
    if titles is not None and len(titles) != n:
        raise ValueError(f"show_to_scale: {n} maps but {len(titles)} titles")
    cmaps = [cmap] * n if isinstance(cmap, str) else list(cmap)
    if len(cmaps) != n:
        raise ValueError(f"show_to_scale: {n} maps but {len(cmaps)} colormaps")
    widths = [a.shape[1] for a in arrays]
    h_max = max(a.shape[0] for a in arrays)
    fig_w = inches_per_pixel * sum(widths) + 0.45 * n + 0.3
    fig_h = inches_per_pixel * h_max + 1.0 + (0.3 if suptitle else 0)
    fig, axes = plt.subplots(1, n, figsize=(fig_w, fig_h), gridspec_kw={"width_ratios": widths})
    axes = np.atleast_1d(axes)
    for i, (ax, a) in enumerate(zip(axes, arrays, strict=True)):
        h, w = a.shape
        lim = float(np.abs(a).max()) or 1.0
        vmin, vmax = (-lim, lim) if a.min() < 0 else (None, None)
        ax.imshow(a, cmap=cmaps[i], vmin=vmin, vmax=vmax, extent=(0, w, h, 0), interpolation="nearest")
        ax.set_xlim(0, w)
        ax.set_ylim(h_max, 0)
        ax.set_anchor("N")
        ax.tick_params(labelsize=7)
        ax.set_xlabel("pixel", fontsize=7)
        label = f"{h}×{w}"
        ax.set_title(f"{titles[i]}\n{label}" if titles is not None else label, fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def jshtml_slider(draw: Callable, states: Sequence, figsize=(6, 3), dpi: int = 60, interval: int = 700):
    """Pre-compute ``draw(fig, state)`` for every state and return an HTML animation with a slider.

    The result (``IPython.display.HTML``) holds every frame as an embedded PNG and the JavaScript that
    flips between them, so it works in the rendered book without a kernel and without a network.
    """
    from IPython.display import HTML

    if not callable(draw):
        raise TypeError(f"jshtml_slider: expected draw(fig, state) to be a function, got {draw!r}")
    if not isinstance(states, Sequence) or isinstance(states, str) or len(states) == 0:
        raise ValueError(f"jshtml_slider: expected a non-empty list of states, got {states!r}")
    dpi = checks.positive_int("jshtml_slider", dpi, "dpi")
    interval = checks.positive_int("jshtml_slider", interval, "interval")
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


def plot_confusion_matrix(y_true: torch.Tensor, y_pred: torch.Tensor, class_names: Sequence[str], ax=None):
    """Draw the confusion matrix of a classifier: rows are true classes, columns predicted classes.

    Each cell ``(i, j)`` shows the count ``C[i, j]`` of examples of class ``i`` predicted as ``j``
    (:func:`cnnlib.train.confusion_matrix`), coloured by that count; the diagonal holds the correct ones.

    Args:
        y_true, y_pred: int labels ``(N,)`` in ``0 .. K - 1``.
        class_names: ``K`` names, indexed by label.
        ax: the axis to draw on (default: a new figure).

    Returns:
        The ``Figure``.
    """
    if isinstance(class_names, str) or not isinstance(class_names, Sequence) or not class_names:
        raise TypeError(f"plot_confusion_matrix: expected a non-empty list of class names, got {class_names!r}")
    K = len(class_names)
    C = confusion_matrix(y_true, y_pred, K).numpy()  # (K, K)
    if ax is None:
        _, ax = plt.subplots(figsize=(0.55 * K + 2.2, 0.55 * K + 1.6))
    im = ax.imshow(C, cmap="Blues")
    for i in range(K):
        for j in range(K):
            dark = C[i, j] > 0.5 * C.max()
            ax.text(j, i, str(C[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if dark else "black")
    ax.set_xticks(range(K), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(K), class_names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"confusion matrix ({int(C.trace())} of {int(C.sum())} correct)")
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    ax.figure.tight_layout()
    return ax.figure


def mosaic(images: torch.Tensor, ncols: int = 3, pad: int = 1, fill: float = 1.0) -> torch.Tensor:
    """Tile ``images`` ``(k, C, h, w)`` into one image ``(C, H, W)``, ``ncols`` per row, ``pad`` pixels apart."""
    checks.tensor("mosaic", images, "images")
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"mosaic: expected a non-empty batch (k, C, h, w), got {tuple(images.shape)}")
    ncols = checks.positive_int("mosaic", ncols, "ncols")
    pad = checks.positive_int("mosaic", pad, "pad", 0)
    fill = checks.number("mosaic", fill, "fill")
    k, C, h, w = images.shape
    nrows = -(-k // ncols)
    out = images.new_full((C, nrows * (h + pad) - pad, ncols * (w + pad) - pad), fill)
    for n in range(k):
        r, c = divmod(n, ncols)
        out[:, r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = images[n]
    return out


def normalize_projection(r: torch.Tensor, quantile: float = 1.0) -> torch.Tensor:
    """Show a deconvnet projection: each image ``(C, h, w)`` of ``r`` ``(k, C, h, w)`` scaled by its own largest
    magnitude to [−1, 1], then mapped to [0, 1] with 0 at mid-gray (as Zeiler & Fergus display them).

    ``quantile < 1`` scales by that quantile of the magnitudes instead (e.g. 0.999: the few strongest pixels
    saturate), so that a projection with a handful of large values does not show as a blank gray square.
    """
    r = checks.images("normalize_projection", r, ndim=4, name="r")  # one projection (C, h, w): r[None]
    quantile = checks.number("normalize_projection", quantile, "quantile", 0, 1, low_open=True)
    mags = r.flatten(1).abs().float()
    scale = (mags.amax(1) if quantile == 1 else mags.quantile(quantile, dim=1)).clamp_min(1e-12)
    return (r / scale.to(r.dtype).view(-1, 1, 1, 1) * 0.5 + 0.5).clamp(0, 1)


def plot_top_projections(rows: Sequence[tuple[str, torch.Tensor, torch.Tensor]], title: str = "",
                         quantile: float = 1.0, width: float = 8.0):
    """Zeiler & Fergus's Fig. 2 for one layer, at the paper's scale: one feature map per row, its top-k
    projections as a 3×3 mosaic (left) beside the image patches that caused them (right), across the
    book's full content width.

    With the default ``width`` (8 inches: about 800 pixels at the notebook's 100 dpi, the width of the
    book's content column) each projection and each patch is drawn about 120 pixels wide, whatever its own
    size: tiny patches (a 3×3-pixel receptive field) are enlarged with nearest-neighbour sampling, so every
    pixel stays a sharp square.

    Args:
        rows: ``(label, reconstructions (k, C, R, R), patches (k, C, R, R))`` per feature map, e.g. from
            :func:`cnnlib.topk.top_projections`.
        title: the figure's title.
        quantile: contrast of the projections, see :func:`normalize_projection`.
        width: figure width in inches.
    """
    if not isinstance(rows, Sequence) or len(rows) == 0 or not all(
            isinstance(row, (tuple, list)) and len(row) == 3 for row in rows):
        raise ValueError("plot_top_projections: expected a non-empty list of (label, reconstructions, patches), "
                         f"got {type(rows).__name__}")
    for label, recon, patches in rows:
        checks.images("plot_top_projections", recon, ndim=4, name=f"the reconstructions of {label!r}")
        checks.images("plot_top_projections", patches, ndim=4, name=f"the patches of {label!r}")
    width = float(width)
    label_w, gap, head = 0.75, 0.15, (0.45 if title else 0.0) + 0.25  # inches: row labels, between mosaics, top
    panel = (width - label_w - gap - 0.05) / 2  # each mosaic is a panel × panel square
    row_h = panel + 0.1
    height = head + row_h * len(rows)
    fig = plt.figure(figsize=(width, height))
    for n, (label, recon, patches) in enumerate(rows):
        bottom = (height - head - (n + 1) * row_h + 0.05) / height
        ax_r = fig.add_axes((label_w / width, bottom, panel / width, panel / height))
        ax_p = fig.add_axes(((label_w + panel + gap) / width, bottom, panel / width, panel / height))
        ax_r.imshow(to_numpy_image(mosaic(normalize_projection(recon, quantile))), cmap="gray", vmin=0, vmax=1,
                    interpolation="nearest")
        ax_p.imshow(to_numpy_image(mosaic(patches.clamp(0, 1))), cmap="gray", vmin=0, vmax=1,
                    interpolation="nearest")
        ax_r.set_ylabel(label, fontsize=9)
        for ax in (ax_r, ax_p):
            ax.set_xticks([])
            ax.set_yticks([])
        if n == 0:
            ax_r.set_title("deconvnet projections", fontsize=9)
            ax_p.set_title("image patches", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=11, y=1 - 0.12 / height)
    return fig


def draw_occlusion_maps(fig, image: torch.Tensor, maps, class_names: Sequence[str],
                        projection: torch.Tensor | None = None, title: str = ""):
    """Zeiler & Fergus's Fig. 7 for one image, drawn into the empty figure ``fig``: (a) the image with the
    occluder at the position where the target's probability falls lowest, (b) the total activation of the
    feature map ``maps.channel`` per occluder position (if ``maps.feature``), (c) ``projection`` — that map's
    deconvnet projection on the unoccluded image — if given, (d) the probability of the target class, (e) the
    most probable class.

    Args:
        image: what to show of the input, ``(C, H, W)`` in [0, 1] (e.g. RGB before normalisation).
        maps: :class:`cnnlib.occlusion.OcclusionMaps` of that image.
        class_names: names of the model's classes, for the titles and the legend of (e).
        projection: ``(C, H, W)``, shown with :func:`normalize_projection`.
    """
    panels = ["image"] + (["feature"] if maps.feature is not None else []) + \
             (["projection"] if projection is not None else []) + ["prob", "class"]
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    H, W = image.shape[-2:]
    extent = (-0.5, len(maps.cols) * maps.stride - 0.5, len(maps.rows) * maps.stride - 0.5, -0.5)  # cells tile it
    worst = divmod(int(maps.prob.argmin()), len(maps.cols))
    targets = maps.target if isinstance(maps.target, tuple) else (maps.target,)
    target_name = " + ".join(str(class_names[t]) for t in targets) if len(targets) <= 2 else \
        f"{class_names[targets[0]]} + {len(targets) - 1} more"
    for ax, panel in zip(axes, panels):
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlim(-0.5, W - 0.5)
        ax.set_ylim(H - 0.5, -0.5)
        if panel == "image":
            ax.imshow(to_numpy_image(image.clamp(0, 1)), cmap="gray", vmin=0, vmax=1)
            r, c = int(maps.rows[worst[0]]), int(maps.cols[worst[1]])
            ax.add_patch(Rectangle((c - maps.size // 2 - 0.5, r - maps.size // 2 - 0.5), maps.size, maps.size,
                                   facecolor="gray", edgecolor="white", linewidth=1))
            ax.set_title(f"(a) {target_name}\np = {maps.base_prob:.2f}; occluder", fontsize=8)
        elif panel == "feature":
            im = ax.imshow(maps.feature.numpy(), cmap="viridis", extent=extent)
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=6)
            ax.set_title(f"(b) total activation\n{maps.layer} map {maps.channel}", fontsize=8)
        elif panel == "projection":
            ax.imshow(to_numpy_image(normalize_projection(projection[None])[0]), cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"(c) projection of\n{maps.layer} map {maps.channel}", fontsize=8)
        elif panel == "prob":
            im = ax.imshow(maps.prob.numpy(), cmap="magma", vmin=0, vmax=1, extent=extent)
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=6)
            ax.set_title(f"(d) p({target_name})", fontsize=8)
        else:
            present, counts = maps.top_class.unique(return_counts=True)
            order = present[counts.argsort(descending=True)].tolist()[:8]  # the 8 most frequent classes
            index = torch.full_like(maps.top_class, len(order))  # rarer classes share one colour
            for k, cls in enumerate(order):
                index[maps.top_class == cls] = k
            colours = plt.get_cmap("tab10").colors[: len(order)] + ((0.85, 0.85, 0.85),)
            ax.imshow(index.numpy(), cmap=ListedColormap(colours), vmin=-0.5, vmax=len(order) + 0.5,
                      extent=extent, interpolation="nearest")
            handles = [Patch(color=colours[k], label=str(class_names[cls])[:18]) for k, cls in enumerate(order)]
            ax.legend(handles=handles, fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False)
            ax.set_title("(e) most probable class", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_occlusion(image: torch.Tensor, maps, class_names: Sequence[str], projection: torch.Tensor | None = None,
                   title: str = "", size: float = 2.0):
    """:func:`draw_occlusion_maps` in a new figure, one panel ``size`` inches wide (plus room for the legend)."""
    panels = 3 + (maps.feature is not None) + (projection is not None)
    fig = plt.figure(figsize=(size * panels + 1.6, size * 1.25 + (0.3 if title else 0)), layout="constrained")
    return draw_occlusion_maps(fig, image, maps, class_names, projection, title)


def plot_evolution(evolution, title: str = "", size: float = 0.9, quantile: float = 1.0, patches: bool = False):
    """Zeiler & Fergus's Fig. 4 for one layer: a row per feature map, a column per epoch, each cell the
    deconvnet projection of the map's strongest activation over the data at that epoch.

    Args:
        evolution: :class:`cnnlib.evolution.Evolution`.
        quantile: contrast of the projections, see :func:`normalize_projection`.
        patches: also show, under each row, the image patches the projections come from.
    """
    for attr in ("projections", "patches", "channels", "epochs"):
        if not hasattr(evolution, attr):
            raise TypeError(f"plot_evolution: expected an Evolution (cnnlib.evolution), got {type(evolution).__name__}")
    if evolution.projections.ndim != 5 or evolution.projections.shape[1] == 0:
        raise ValueError("plot_evolution: the evolution has no projected feature maps (use evolution.follow with "
                         "some channels)")
    E, M = evolution.projections.shape[:2]
    rows = 2 * M if patches else M
    fig, axes = plt.subplots(rows, E, figsize=(size * E + 0.6, size * rows + (0.5 if title else 0.2)), squeeze=False)
    for e in range(E):
        shown = normalize_projection(evolution.projections[e], quantile)  # (M, C, R, R)
        for m in range(M):
            cells = [(axes[2 * m if patches else m, e], shown[m], f"map {evolution.channels[m]}")]
            if patches:
                cells.append((axes[2 * m + 1, e], evolution.patches[e, m].clamp(0, 1), "patch"))
            for ax, img, label in cells:
                ax.imshow(to_numpy_image(img), cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                if e == 0:
                    ax.set_ylabel(label, fontsize=7)
        axes[0, e].set_title(f"epoch {evolution.epochs[e]}", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def _map_cells(fn: str, maps: dict, steps: Sequence[str]) -> int:
    if not isinstance(maps, dict) or not maps:
        raise ValueError(f"{fn}: expected {{method: maps (S + 1, H, W)}}, got {type(maps).__name__}")
    for name, m in maps.items():
        if not isinstance(m, (torch.Tensor, np.ndarray)) or m.ndim != 3 or m.shape[0] != len(steps) + 1:
            raise ValueError(f"{fn}: maps[{name!r}] must be (1 + {len(steps)} steps, H, W): the trained map, then "
                             f"one per step; got {getattr(m, 'shape', type(m).__name__)}")
    return len(steps) + 1


def _show_map(ax, m) -> None:
    m = np.asarray(m, dtype=np.float64)
    ax.imshow(m / m.max() if m.max() > 0 else m, cmap="magma", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_cascade(image: torch.Tensor, maps: dict, steps: Sequence[str], title: str = "", cell: float = 0.95,
                 headers: Sequence[str] | None = None):
    """Adebayo et al.'s cascade figure (their Fig. 2) for one image: a row per method, the trained network's
    absolute map (``sanity.to_2d``), then the map after each step of cascading randomization (layers re-initialised
    from the top down to the step's layer). Each map is scaled to its own maximum (magma: black 0, pale yellow 1).

    Args:
        image: ``(C, H, W)`` in [0, 1], shown at the top left.
        maps: ``{method: (1 + S, H', W')}``, absolute maps: trained, then one per step.
        steps: the S steps' names (the last layer re-initialised at each).
        cell: inches per map; at the notebook's 100 dpi, 0.95 in is 95 pixels.
        headers: the columns' titles (default ``"trained"``, then ``"→ <step>"``).
    """
    columns = _map_cells("plot_cascade", maps, steps) + 1
    headers = ["trained", *(f"→ {s}" for s in steps)] if headers is None else list(headers)
    if len(headers) != columns - 1:
        raise ValueError(f"plot_cascade: expected {columns - 1} headers, got {len(headers)}")
    checks.images("plot_cascade", image, ndim=3, name="image")
    rows = len(maps)
    label_w, head = 1.3, 0.55 + (0.3 if title else 0)  # inches: the row labels, between the image and the maps
    fig = plt.figure(figsize=(label_w + columns * cell, head + rows * cell))
    W, H = fig.get_size_inches()

    def axes_at(left: float, r: int):
        return fig.add_axes(((left + 0.03) / W, (H - head - (r + 1) * cell + 0.03) / H,
                             (cell - 0.06) / W, (cell - 0.06) / H))

    ax = axes_at(0.0, 0)
    ax.imshow(to_numpy_image(image.clamp(0, 1)), cmap="gray", vmin=0, vmax=1)
    ax.set_title("image", fontsize=8)
    ax.axis("off")
    for r, (name, m) in enumerate(maps.items()):
        for c in range(columns - 1):
            ax = axes_at(cell + label_w + c * cell, r)
            _show_map(ax, m[c])
            if r == 0:
                ax.set_title(textwrap.fill(headers[c], max(8, int(cell * 12))), fontsize=8)
            if c == 0:
                ax.set_ylabel(name.replace("_", " "), fontsize=8, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.12 / H)
    return fig


def plot_similarity_curves(result: dict, measure: str = "spearman_abs", target: str = "class", kind: str = "cascade",
                           methods: Sequence[str] | None = None, title: str = "", ncols: int = 4):
    """The similarity curves of one network's sanity results (``data/sanity/results.json``): one panel per method,
    the mean similarity between the trained map and the randomized one at each step, ± one standard deviation over
    the images (band), with two floors: two different images' maps (dashed) and the map against the image's own
    edges (dotted, the trained map). A curve that stays above the dashed line kept something of the trained map.
    """
    checks.one_of("plot_similarity_curves", measure, MEASURES, "measure")
    checks.one_of("plot_similarity_curves", kind, ("cascade", "independent"), "kind")
    if not isinstance(result, dict) or not result.get(kind):
        raise ValueError(f"plot_similarity_curves: the result has no {kind!r} steps")
    keys = [k for k in result[kind][0]["vs_trained"] if k.startswith(target + "/")]
    names = [k.split("/", 1)[1] for k in keys] if methods is None else list(methods)
    steps = [s["step"] for s in result[kind]]
    x = np.arange(len(steps) + 1)
    nrows = -(-len(names) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.0 * ncols, 2.4 * nrows + 0.6), sharey=True, squeeze=False)
    for ax, name in zip(axes.flat, names):
        key = f"{target}/{name}"
        mean = np.array([1.0] + [s["vs_trained"][key][measure][0] for s in result[kind]])
        std = np.array([0.0] + [s["vs_trained"][key][measure][1] for s in result[kind]])
        ax.plot(x, mean, "o-", color="C0", ms=3)
        ax.fill_between(x, mean - std, mean + std, color="C0", alpha=0.25)
        ax.axhline(result["floor_unrelated"][key][measure][0], color="C3", ls="--", lw=1)
        ax.axhline(result["edges_trained"][key][measure][0], color="C2", ls=":", lw=1.5)
        ax.set_title(name.replace("_", " "), fontsize=9)
        ax.set_xticks(x, ["trained", *steps], rotation=90, fontsize=7)
        ax.set_ylim(-0.3, 1.05)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel(measure.replace("_", " "), fontsize=8)
    fig.legend(handles=[plt.Line2D([], [], color="C0", marker="o", ms=3, label="trained vs randomized (± std)"),
                        plt.Line2D([], [], color="C3", ls="--", label="floor: two different images"),
                        plt.Line2D([], [], color="C2", ls=":", lw=1.5, label="trained map vs the image's edges")],
               loc="lower center", ncol=3, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig
