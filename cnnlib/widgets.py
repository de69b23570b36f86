"""Callbacks of the chapters' widgets: plain functions from a few numbers to a figure.

A chapter wires each one to ``ipywidgets.interact`` (live in Jupyter) and calls it once with its defaults, so the
rendered page shows a figure even without a kernel. Each returns a closed ``Figure`` (closed so that Jupyter
shows it once, as the value ``interact`` displays), and pytest checks what is drawn.
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import torch

from . import checks, data, layers, mlp, perceptron, photos, plotting
from .actmax import Regularizers, Result, maximize
from .data import split_per_class
from .evolution import follow
from .models import activations
from .occlusion import occlusion_maps
from .topk import top_projections
from .transfer import fit_softmax, mean_class_accuracy

PERCEPTRON_DATASETS = ("separable", "xor")


def _points(fn: str, dataset: str):
    checks.one_of(fn, dataset, PERCEPTRON_DATASETS, "dataset")
    if dataset == "separable":
        return data.make_separable(n=40, margin=0.2, seed=1)
    return data.xor(n_per_corner=10, noise=0.12, seed=1)


def perceptron_view(w1: float = 1.0, w2: float = -1.0, b: float = 0.0, dataset: str = "separable"):
    """The perceptron ``step(w1 x1 + w2 x2 + b)`` over the plane, with the points of ``dataset``.

    The title counts the misclassified points: move the weights until it reads 0 (possible for
    ``"separable"``, impossible for ``"xor"``).
    """
    w1, w2, b = (checks.number("perceptron_view", v, name) for v, name in ((w1, "w1"), (w2, "w2"), (b, "b")))
    X, y = _points("perceptron_view", dataset)
    w = torch.tensor([w1, w2])
    mistakes = int((perceptron.predict_labels(X, w, b) != y).sum())
    fig, ax = plt.subplots(figsize=(4.6, 4))
    plotting.plot_decision_regions(ax, X, y, lambda G: perceptron.predict_labels(G, w, b))
    ax.set_title(f"w = ({w1:.1f}, {w2:.1f}), b = {b:.1f}:  {mistakes} of {len(y)} misclassified")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def mlp_view(hidden_units: int = 4, lr: float = 0.5, num_epochs: int = 400, seed: int = 0):
    """Train a from-scratch MLP ``2 → hidden_units → 2`` (tanh) on noisy XOR; show regions and loss curve."""
    _check_mlp_view("mlp_view", hidden_units, lr, num_epochs, seed)
    fig = plt.figure(figsize=(8.5, 3.6))
    draw_mlp_view(fig, hidden_units, lr, num_epochs, seed)
    plt.close(fig)
    return fig


def _check_mlp_view(fn: str, hidden_units, lr, num_epochs, seed) -> None:
    checks.positive_int(fn, hidden_units, "hidden_units")
    checks.number(fn, lr, "lr", 0, low_open=True)
    checks.positive_int(fn, num_epochs, "num_epochs")
    checks.positive_int(fn, seed, "seed", 0)


def draw_mlp_view(fig, hidden_units: int = 4, lr: float = 0.5, num_epochs: int = 400, seed: int = 0,
                  loss_panel: bool = True):
    """Draw :func:`mlp_view` into an existing figure, e.g. a frame of :func:`cnnlib.plotting.jshtml_slider`.

    Trains ``2 → hidden_units → 2`` (tanh, :func:`cnnlib.mlp.fit_scratch`, full batch) on 100 noisy XOR
    points and draws its decision regions, titled with the training accuracy, and (if ``loss_panel``) the
    loss per epoch.

    Returns:
        The training accuracy as a fraction in [0, 1].
    """
    _check_mlp_view("draw_mlp_view", hidden_units, lr, num_epochs, seed)
    X, y = data.xor(n_per_corner=25, noise=0.15, seed=0)
    params = mlp.init_params([2, int(hidden_units), 2], seed=seed)
    losses = mlp.fit_scratch(params, X, y, lr=lr, num_epochs=num_epochs)
    probs, _ = mlp.forward(params, X)
    acc = float((probs.argmax(1) == y).double().mean())
    ax1 = fig.add_subplot(1, 2 if loss_panel else 1, 1)
    plotting.plot_decision_regions(ax1, X, y, lambda G: mlp.forward(params, G)[0].argmax(1))
    ax1.set_title(f"{hidden_units} hidden units, lr = {lr}: accuracy {acc:.0%}")
    if loss_panel:
        ax2 = fig.add_subplot(1, 2, 2)
        ax2.plot(range(1, len(losses) + 1), losses)
        ax2.set_xlabel("epoch (full batch)")
        ax2.set_ylabel("cross-entropy")
        ax2.set_title("training loss")
        ax2.grid(alpha=0.3)
    fig.tight_layout()
    return acc


def parse_kernel(text: str) -> torch.Tensor:
    """Read a square kernel written row by row: ``"1 0 -1; 2 0 -2; 1 0 -1"`` → a 3×3 tensor.

    Rows are separated by ``;`` or new lines, numbers by spaces or commas.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_kernel: expected the kernel as text, got {type(text).__name__}")
    rows = [r for r in text.replace("\n", ";").split(";") if r.strip()]
    try:
        values = [[float(v) for v in r.replace(",", " ").split()] for r in rows]
    except ValueError:
        raise ValueError(f"parse_kernel: expected numbers like '1 0 -1; 2 0 -2; 1 0 -1', got {text!r}") from None
    n = len(values)
    if n == 0 or any(len(r) != n for r in values):
        raise ValueError("parse_kernel: expected a square grid of numbers (n rows of n), "
                         f"got rows of lengths {[len(r) for r in values]}")
    kernel = torch.tensor(values)
    return checks.finite("parse_kernel", kernel, "the kernel")


def kernel_view(photo: str = "camera", kernel: str = "vertical edges (Sobel x)", custom: str = "", pool: str = "max"):
    """A gray photo through one convolution, ReLU ``max(x, 0)`` and 2×2 pooling: four panels.

    ``kernel`` names one of :data:`cnnlib.layers.KERNELS`, or is ``"custom"`` to use the ``custom`` text
    (see :func:`parse_kernel`). ``pool`` is ``"max"`` or ``"avg"``.
    """
    checks.one_of("kernel_view", pool, ("max", "avg"), "pool")
    checks.one_of("kernel_view", kernel, ("custom",) + tuple(layers.KERNELS), "kernel")
    checks.one_of("kernel_view", photo, photos.PHOTOS + photos.TEXTURES, "photo")
    if kernel == "custom":
        try:
            k = parse_kernel(custom)
        except (TypeError, ValueError) as e:
            raise type(e)(f"kernel_view: {e}") from None
        if k.shape[0] > 128:
            raise ValueError(f"kernel_view: expected a kernel of at most 128×128, got {tuple(k.shape)}")
    else:
        k = layers.KERNELS[kernel]
    img = photos.load_photo(photo, size=128, gray=True)  # (1, 128, W)
    fmap = layers.apply_kernel(img, k, padding=k.shape[0] // 2)  # same size as the input for odd kernels
    rect = layers.relu(fmap)
    pool_fn = layers.max_pool2d if pool == "max" else layers.avg_pool2d
    pooled = pool_fn(rect[None, None], 2)[0, 0]
    panels = [
        (img[0], "input (gray)", "gray"),
        (fmap, f"convolution: {kernel}", "RdBu_r"),
        (rect, "ReLU: max(x, 0)", "magma"),
        (pooled, f"{pool}-pool 2×2 → {tuple(pooled.shape)}", "magma"),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.3))
    for ax, (m, title, cmap) in zip(axes, panels):
        m = m.detach().cpu().numpy()
        if cmap == "RdBu_r":
            lim = max(abs(m.min()), abs(m.max()), 1e-8)
            im = ax.imshow(m, cmap=cmap, vmin=-lim, vmax=lim)
        else:
            im = ax.imshow(m, cmap=cmap)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    fig.tight_layout()
    plt.close(fig)
    return fig


def activations_view(model, images: torch.Tensor, index: int = 0,
                     layers_to_show=("conv1", "conv2", "conv3", "conv4", "conv5"),
                     maps_per_layer: int = 8, class_names=None):
    """One image and the feature maps it causes in each conv layer (first ``maps_per_layer`` maps of each),
    with the network's top-3 classes in the title.

    Args:
        model: e.g. ``cnnlib.pretrained.load()``; images: ``(N, C, H, W)``; index: which image.
    """
    _check_activations_view("activations_view", model, images, index, layers_to_show, maps_per_layer)
    rows = len([n for n in layers_to_show if n != "fc8"])
    fig = plt.figure(figsize=(1.25 * (maps_per_layer + 1), 1.3 * max(rows, 1)))
    draw_activations(fig, model, images, index, layers_to_show, maps_per_layer, class_names)
    plt.close(fig)
    return fig


def _check_activations_view(fn: str, model, images, index, layers_to_show, maps_per_layer) -> None:
    checks.module(fn, model)
    checks.images(fn, images, ndim=4, name="images")
    checks.positive_int(fn, index, "index", 0, len(images) - 1)
    checks.layer_list(fn, layers_to_show, "layers_to_show")
    checks.positive_int(fn, maps_per_layer, "maps_per_layer")


def draw_activations(fig, model, images: torch.Tensor, index: int = 0,
                     layers_to_show=("conv1", "conv2", "conv3", "conv4", "conv5"), maps_per_layer: int = 8,
                     class_names=None) -> torch.Tensor:
    """Draw :func:`activations_view` into an existing figure, e.g. a frame of :func:`cnnlib.plotting.jshtml_slider`.

    One row per layer of ``layers_to_show`` whose output is a stack of feature maps ``(C, h, w)``: the input image,
    then maps ``0 .. maps_per_layer - 1`` after that layer (each on its own colour scale from 0, magma; values
    below 0 are black, as the next ReLU would make them), the layer's
    name and map shape on the left; the title gives the top-3 classes of ``softmax(fc8)``.

    Args:
        fig: an empty ``Figure``; model: a network with named layers and a ``"fc8"`` (e.g. ZFNet-small).
        images: ``(N, C, H, W)``; index: which image, ``0 .. N - 1``.
        class_names: names of the classes, indexed by label (default: the label numbers).

    Returns:
        The class probabilities ``(K,)`` of the image.
    """
    _check_activations_view("draw_activations", model, images, index, layers_to_show, maps_per_layer)
    x = images[index: index + 1]  # (1, C, H, W)
    names = list(layers_to_show) + ([] if "fc8" in layers_to_show else ["fc8"])
    acts = activations(model, x, names)
    probs = acts["fc8"].softmax(1)[0]  # (K,)
    top = probs.topk(min(3, len(probs)))
    label = lambda k: class_names[k] if class_names else str(k)  # noqa: E731
    title = ", ".join(f"{label(int(k))} {float(p):.0%}" for p, k in zip(top.values, top.indices))
    rows = [n for n in layers_to_show if acts[n].ndim == 4]
    if not rows:
        raise ValueError(f"draw_activations: expected in layers_to_show at least one layer with feature maps, got "
                         f"{tuple(layers_to_show)}")
    axes = fig.subplots(len(rows), maps_per_layer + 1, squeeze=False)
    for r, name in enumerate(rows):
        a = acts[name][0]  # (C, h, w)
        axes[r, 0].imshow(plotting.to_numpy_image(x[0]), cmap="gray")
        axes[r, 0].set_ylabel(f"{name}\n{tuple(a.shape)}", fontsize=7)
        for c in range(maps_per_layer + 1):
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        for c in range(min(maps_per_layer, a.shape[0])):
            # black = 0 or below (what the ReLU after a conv layer passes on as 0), even for an all-negative map
            axes[r, c + 1].imshow(a[c].cpu().numpy(), cmap="magma", vmin=0, vmax=max(float(a[c].max()), 1e-6))
    axes[0, 0].set_title("input", fontsize=8)
    fig.suptitle(f"image {index}: {title}", fontsize=10)
    fig.tight_layout()
    return probs


def _check_mined(fn: str, mined, layer) -> None:
    """``mined`` a non-empty ``{layer: result}`` dict and ``layer`` one of its keys."""
    if not isinstance(mined, dict) or not mined:
        raise TypeError(f"{fn}: expected the mined results as a non-empty {{layer: ...}} dict, got "
                        f"{type(mined).__name__}")
    checks.one_of(fn, layer, list(mined), "layer (one of the mined layers)")


def top_projections_view(model, X: torch.Tensor, tops: dict, layer: str = "conv1", channel: int = 0):
    """One cell of Zeiler & Fergus's Fig. 2: the top-k deconvnet projections of a feature map beside their patches.

    Args:
        model: the network mined; X: the images mined ``(N, C, H, W)``;
        tops: ``cnnlib.topk.mine_topk(model, X, layers)``; layer, channel: which feature map.
    """
    _check_mined("top_projections_view", tops, layer)
    recon, patches = top_projections(model, X, tops[layer], channel)
    fig = plotting.plot_top_projections([(f"{layer} map {channel}", recon, patches)])
    plt.close(fig)
    return fig


def draw_top_projections(fig, model, X: torch.Tensor, tops: dict, layer: str = "conv1", channel: int = 0):
    """Draw :func:`top_projections_view` into an existing figure, e.g. a frame of :func:`cnnlib.plotting.jshtml_slider`.

    Two panels: the top-k deconvnet projections of feature map ``channel`` of ``layer``, each cropped to the
    unit's receptive field and scaled by :func:`cnnlib.plotting.normalize_projection` (mid-gray = 0), as a
    3×3 mosaic; beside it the image patches ``(k, C, R, R)`` that caused them.

    Args:
        fig: an empty ``Figure``; model, X, tops: as for :func:`top_projections_view`.

    Returns:
        The top-k activations ``(k,)`` of that map, strongest first.
    """
    _check_mined("draw_top_projections", tops, layer)
    recon, patches = top_projections(model, X, tops[layer], channel)  # each (k, C, R, R)
    ax_r, ax_p = fig.subplots(1, 2)
    ax_r.imshow(plotting.to_numpy_image(plotting.mosaic(plotting.normalize_projection(recon))), cmap="gray",
                vmin=0, vmax=1, interpolation="nearest")  # nearest: tiny patches enlarged as sharp squares
    ax_p.imshow(plotting.to_numpy_image(plotting.mosaic(patches.clamp(0, 1))), cmap="gray", vmin=0, vmax=1,
                interpolation="nearest")
    ax_r.set_title("deconvnet projections", fontsize=9)
    ax_p.set_title("image patches", fontsize=9)
    for ax in (ax_r, ax_p):
        ax.set_xticks([])
        ax.set_yticks([])
    values = tops[layer].values[channel]  # (k,), strongest first
    fig.suptitle(f"{layer}, map {channel}: top-{len(values)} activations "
                 f"{float(values[-1]):.1f} … {float(values[0]):.1f}", fontsize=10)
    fig.tight_layout()
    return values


def occlusion_view(model, x: torch.Tensor, image: torch.Tensor, class_names, target: int | None = None,
                   size: int = 8, stride: int = 2, fill=0.0, layer: str | None = None):
    """Zeiler & Fergus's Fig. 7 for one image with an occluder of side ``size``: see
    :func:`cnnlib.occlusion.occlusion_maps` (``x``: the model's input ``(C, H, W)``; ``target``, ``stride``,
    ``fill``, ``layer``) and :func:`cnnlib.plotting.plot_occlusion` (``image``: what to show, ``(C, H, W)`` in
    [0, 1]; ``class_names``)."""
    fig = plt.figure(figsize=(9.6, 2.8), layout="constrained")
    occlude_and_draw(fig, model, x, image, class_names, target, size, stride, fill, layer)
    plt.close(fig)
    return fig


def occlude_and_draw(fig, model, x: torch.Tensor, image: torch.Tensor, class_names, target: int | None = None,
                     size: int = 8, stride: int = 2, fill=0.0, layer: str | None = None):
    """Compute the occlusion maps and draw them (:func:`cnnlib.plotting.draw_occlusion_maps`) into an existing
    figure, e.g. a frame of :func:`cnnlib.plotting.jshtml_slider`; :func:`occlusion_view` in a new figure.

    Returns:
        The :class:`cnnlib.occlusion.OcclusionMaps` drawn.
    """
    maps = occlusion_maps(model, x, target=target, size=size, stride=stride, fill=fill, layer=layer, progress=False)
    plotting.draw_occlusion_maps(fig, image, maps, class_names, title=f"occluder {size}×{size}, step {stride}")
    return maps


def evolution_view(models, X: torch.Tensor, evolutions: dict, layer: str = "conv5", channel: int = 0):
    """Fig. 4 for one feature map: its strongest activation's projection and patch at every snapshot.

    Args:
        models: ``{epoch: model}``; X: the images mined;
        evolutions: ``cnnlib.evolution.strongest_projections(models, X, ...)``; layer, channel: which map.
    """
    _check_mined("evolution_view", evolutions, layer)
    evo = follow(models, X, evolutions[layer], [channel])
    fig = plotting.plot_evolution(evo, title=f"{layer}, map {channel}: strongest activation at each epoch",
                                  size=1.1, patches=True)
    plt.close(fig)
    return fig


def draw_evolution_epoch(fig, evolutions: dict, epoch: int):
    """One frame of Fig. 4 as a film: for each layer of ``evolutions`` (a row), the projections of its maps
    at snapshot ``epoch``; drawn into the empty figure ``fig`` (a frame of :func:`cnnlib.plotting.jshtml_slider`).

    Returns:
        ``{layer: (M,) strongest activations}`` at that epoch.
    """
    if not isinstance(evolutions, dict) or not evolutions:
        raise TypeError(f"draw_evolution_epoch: expected a non-empty {{layer: Evolution}} dict, got "
                        f"{type(evolutions).__name__}")
    layers = list(evolutions)
    epochs = evolutions[layers[0]].epochs
    checks.one_of("draw_evolution_epoch", epoch, epochs, "epoch (one of the snapshots)")
    e = epochs.index(epoch)
    M = max(len(evolutions[layer].channels) for layer in layers)
    axes = fig.subplots(len(layers), M, squeeze=False)
    values = {}
    for r, layer in enumerate(layers):
        evo = evolutions[layer]
        shown = plotting.normalize_projection(evo.projections[e])  # (M, C, R, R)
        for m in range(M):
            ax = axes[r, m]
            ax.set_xticks([])
            ax.set_yticks([])
            if m < len(evo.channels):
                ax.imshow(plotting.to_numpy_image(shown[m]), cmap="gray", vmin=0, vmax=1)
            if m == 0:
                ax.set_ylabel(layer, fontsize=8)
        values[layer] = evo.values[e]
    fig.suptitle(f"epoch {epoch}", fontsize=10)
    return values


def draw_transfer(fig, features: dict, y: torch.Tensor, class_names, layer: str, n_per_class: int = 5,
                  split: int = 0, weight_decay: float = 1e-2):
    """One split of the transfer protocol drawn into the empty figure ``fig``: a softmax trained on
    ``n_per_class`` images per class of ``features[layer]`` (:func:`cnnlib.transfer.fit_softmax`), and the
    confusion matrix of the other images.

    Args:
        features: ``{layer: (N, K)}`` from :func:`cnnlib.transfer.extract_features`; y: labels ``(N,)``.
        split: the seed of :func:`cnnlib.data.split_per_class`.

    Returns:
        The mean per-class accuracy of the test images.
    """
    _check_mined("draw_transfer", features, layer)
    checks.positive_int("draw_transfer", n_per_class, "n_per_class")
    checks.positive_int("draw_transfer", split, "split", 0)
    train_idx, test_idx = split_per_class(y, n_per_class, seed=split)
    probe = fit_softmax(features[layer][train_idx], y[train_idx], len(class_names), weight_decay)
    with torch.no_grad():
        y_pred = probe(features[layer][test_idx]).argmax(1)
    accuracy = mean_class_accuracy(y[test_idx], y_pred)
    plotting.plot_confusion_matrix(y[test_idx], y_pred, class_names, ax=fig.subplots())
    fig.suptitle(f"{layer}, {n_per_class} per class, split {split}: "
                 f"mean per-class accuracy {100 * accuracy:.1f} %", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.95))  # room for the title above the matrix's own
    return accuracy


def transfer_view(features: dict, y: torch.Tensor, class_names, layer: str, n_per_class: int = 5, split: int = 0):
    """:func:`draw_transfer` in a new figure, for ``interact``."""
    _check_mined("transfer_view", features, layer)
    checks.positive_int("transfer_view", n_per_class, "n_per_class")
    checks.positive_int("transfer_view", split, "split", 0)
    fig = plt.figure(figsize=(6.2, 5.2))
    draw_transfer(fig, features, y, class_names, layer, n_per_class, split)
    plt.close(fig)
    return fig


def draw_actmax(fig, model, layer: str, channel: int, shape: tuple[int, int, int], reg=None, steps: int = 200,
                lr: float = 0.05, bounds: tuple[float, float] | None = (0.0, 1.0), title: str = "", result=None):
    """Regularized activation maximization (:func:`cnnlib.actmax.maximize`) drawn into the empty figure ``fig``:
    the input found (scaled by its largest pixel so that faint images show) and the unit's activation
    during the climb.

    Args:
        result: a :class:`cnnlib.actmax.Result` of this very climb made before (e.g. shipped): drawn as it is,
            without climbing again; ``model``, ``shape``, ``reg``, ``steps`` and ``lr`` are then not used.

    Returns:
        The :class:`cnnlib.actmax.Result`.
    """
    if result is None:
        result = maximize(model, layer, channel, shape, reg or Regularizers(), steps=steps, lr=lr, bounds=bounds)
    elif not isinstance(result, Result):
        raise TypeError(f"draw_actmax: expected result to be an actmax.Result, got {type(result).__name__}")
    ax_img, ax_curve = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.4]})
    img = result.image
    shown = (img - img.min()) / (img.max() - img.min()).clamp_min(1e-12) if bounds is None else \
        img / img.max().clamp_min(1e-12)
    ax_img.imshow(plotting.to_numpy_image(shown), cmap="gray", vmin=0, vmax=1)
    ax_img.set_xticks([])
    ax_img.set_yticks([])
    ax_img.set_title(title or f"{layer}[{channel}]", fontsize=9)
    ax_curve.plot(range(1, len(result.activations) + 1), result.activations)
    ax_curve.set_xlabel("step")
    ax_curve.set_ylabel("activation")
    ax_curve.set_title(f"reached {result.activations[-1]:.1f}", fontsize=9)
    ax_curve.grid(alpha=0.3)
    fig.tight_layout()
    return result


def actmax_view(model, class_names, channel: int = 5, decay: float = 0.02, blur_width: float = 0.5,
                norm_pct: float = 30, contrib_pct: float = 30, steps: int = 200):
    """A class of ZFNet-small (``fc8`` unit ``channel``) visualized with the chosen regularizers (blur every 4
    steps; 0 switches a regularizer off)."""
    reg = Regularizers(decay=decay, blur_every=4 if blur_width else 0, blur_width=blur_width, norm_pct=norm_pct,
                       contrib_pct=contrib_pct)
    fig = plt.figure(figsize=(6, 2.6))
    draw_actmax(fig, model, "fc8", channel, (1, 28, 28), reg, steps=steps, title=str(class_names[channel]))
    plt.close(fig)
    return fig


def draw_cascade_step(fig, maps: dict, steps, step: int, scores: dict | None = None):
    """One frame of the cascade walk (Chapter 10): per method (a column), the trained network's absolute map
    (top) and the map once the layers from the top down to ``steps[step]`` are re-initialised (bottom), with
    a Spearman correlation from ``scores`` (``{method: (S,) values}``, e.g. the mean over many images) when given.

    Args:
        maps: ``{method: (1 + S, H, W)}``: trained, then one map per step (as :func:`cnnlib.plotting.plot_cascade`).
        steps: the S steps' names; step: which one, 0 … S − 1.
    """
    plotting._map_cells("draw_cascade_step", maps, steps)
    step = checks.positive_int("draw_cascade_step", step, "step", 0, len(steps) - 1)
    axes = fig.subplots(2, len(maps), squeeze=False)
    for c, (name, m) in enumerate(maps.items()):
        plotting._show_map(axes[0, c], m[0])
        plotting._show_map(axes[1, c], m[step + 1])
        axes[0, c].set_title(textwrap.fill(name.replace("_", " "), 11), fontsize=8)
        if scores is not None:
            axes[1, c].set_xlabel(f"ρ = {float(scores[name][step]):.2f}", fontsize=8)
    axes[0, 0].set_ylabel("trained", fontsize=8)
    axes[1, 0].set_ylabel(f"→ {steps[step]}", fontsize=8)
    fig.suptitle(f"re-initialised from the top down to {steps[step]}", fontsize=10)
    fig.tight_layout()


def cascade_view(maps: dict, steps, step: int = 0, scores: dict | None = None):
    """:func:`draw_cascade_step` in a figure of its own (the callback of Chapter 10's slider)."""
    fig = plt.figure(figsize=(1.2 * len(maps) + 0.4, 3.2))
    draw_cascade_step(fig, maps, steps, step, scores)
    plt.close(fig)
    return fig
