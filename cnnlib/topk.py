"""The strongest activations of every feature map over a dataset, and the image patch each one sees.

Zeiler & Fergus (2014, Fig. 2) show, for each of some feature maps of layers 1-5, the 9 images of the
dataset that excite it most, the unit's projection to pixel space and the image patch under it. This module
does the mining: one pass over the data (batched, with a progress bar), keeping per layer and feature map the
``k`` largest values — one per image, at that image's strongest position — with the image index and position.
It costs little beyond the forward pass itself: a max over each map and a running top-k.

The paper's nine images are nine different photographs. When the images are crops of fewer photos (the
course's photo pool), ``groups=`` names each image's source photo and the top-``k`` keeps at most one image
per source: for map ``c`` with activations ``a_n`` (each image ``n``'s strongest unit), source ``g`` scores
``max_{n: group(n) = g} a_n`` (at its strongest image), and the ``k`` best-scoring sources are kept.

Which pixels can a unit see? :func:`receptive_field` (from :mod:`cnnlib.receptive`) gives the field of a layer's
units; :func:`crop` cuts the patch under one unit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from . import checks
from .deconvnet import project
from .hooks import LayerOutputs
from .photos import check_shipped
from .progress import hidden
from .receptive import ReceptiveField, receptive_field
from .snapshots import DATA_DIR, checked_file


def crop(image: torch.Tensor, rf: ReceptiveField, i: int, j: int, inside: bool = False) -> torch.Tensor:
    """The patch ``(C, R, R)`` of ``image`` ``(C, H, W)`` under unit ``(i, j)``; zeros where it leaves the image.

    With ``inside=True`` the patch is at most the image: a window of ``min(R, H) × min(R, W)`` pixels around
    the unit's field, shifted to lie inside the image (the whole image once ``R`` exceeds it). Use it when the
    fields of deep units are larger than the images and a zero border would fill most of the patch.
    """
    image = checks.images("crop", image, ndim=3, name="image")
    if not isinstance(rf, ReceptiveField):
        raise TypeError(f"crop: expected rf to be a ReceptiveField (from receptive_field), got {type(rf).__name__}")
    C, H, W = image.shape
    i = checks.positive_int("crop", i, "row i", 0)
    j = checks.positive_int("crop", j, "column j", 0)
    top, bottom, left, right = rf.box(i, j)
    if top >= H or left >= W or bottom <= 0 or right <= 0:
        raise ValueError(f"crop: unit ({i}, {j}) sees rows {top}..{bottom - 1}, columns {left}..{right - 1}: "
                         f"outside the {H}×{W} image")
    if inside:
        h, w = min(rf.size[0], H), min(rf.size[1], W)
        t, l = min(max(top, 0), H - h), min(max(left, 0), W - w)
        return image[:, t: t + h, l: l + w].clone()
    out = image.new_zeros(C, *rf.size)
    t, b, l, r = max(top, 0), min(bottom, H), max(left, 0), min(right, W)
    if b > t and r > l:
        out[:, t - top: b - top, l - left: r - left] = image[:, t:b, l:r]
    return out


@dataclass
class TopK:
    """The ``k`` strongest activations of each of the ``K`` feature maps of one layer, strongest first."""

    layer: str
    values: torch.Tensor  # (K, k) float
    image_index: torch.Tensor  # (K, k) int64, into the mined dataset
    position: torch.Tensor  # (K, k, 2) int64, (row, column) in the feature map


def check_groups(fn: str, groups, n: int) -> torch.Tensor:
    """``groups`` as int64 ``(n,)`` if it is an integer tensor of one id per image, else a clear error."""
    if not isinstance(groups, torch.Tensor):
        raise TypeError(f"{fn}: expected groups to be a tensor of source ids (one integer per image), "
                        f"got {type(groups).__name__}")
    if groups.is_floating_point() or groups.is_complex() or groups.dtype == torch.bool:
        raise TypeError(f"{fn}: expected groups of an integer dtype (source ids), got {groups.dtype}")
    if groups.shape != (n,):
        raise ValueError(f"{fn}: expected groups of shape ({n},), one source id per image, "
                         f"got {tuple(groups.shape)}")
    return groups.to(torch.int64)


def strongest_per_group(values: torch.Tensor, groups: torch.Tensor, k: int) -> torch.Tensor:
    """Rows of the ``k`` strongest values per column, at most one row per group: per column ``c`` the best row
    of each group (its largest value; the first such row on a tie), then the ``k`` best groups, strongest first.

    Args:
        values: float ``(M, K)``, e.g. ``M`` images' strongest activation in each of ``K`` maps.
        groups: integer ``(M, K)`` (or ``(M, 1)``, the same for every column): the group of each entry.
        k: groups to keep per column.

    Returns:
        int64 ``(k', K)`` row indices into ``values``, ``k' = min(k, the fewest groups in any column)``.
    """
    if values.ndim != 2 or groups.ndim != 2 or groups.shape[0] != values.shape[0]:
        raise ValueError(f"strongest_per_group: expected values (M, K) and groups (M, K) or (M, 1), "
                         f"got {tuple(values.shape)} and {tuple(groups.shape)}")
    M, K = values.shape
    g = torch.unique(groups.expand(M, K), return_inverse=True)[1]  # (M, K) compact ids 0..G-1
    G = int(g.max()) + 1
    best = values.new_full((G, K), float("-inf")).scatter_reduce(0, g, values, "amax")  # (G, K) each group's max
    rows = torch.arange(M, device=values.device).view(M, 1).expand(M, K)
    at_best = torch.where(values == best.gather(0, g), rows, M)
    first = torch.full((G, K), M, device=values.device).scatter_reduce(0, g, at_best, "amin")  # (G, K)
    keep = rows == first.gather(0, g)  # (M, K): one row per group present in the column
    kk = min(k, int(keep.sum(0).min()))
    return values.masked_fill(~keep, float("-inf")).topk(kk, dim=0).indices  # (k', K)


@torch.no_grad()
def mine_topk(
    model: nn.Module,
    X: torch.Tensor,
    layers: list[str],
    k: int = 9,
    batch_size: int = 256,
    progress: bool = True,
    groups: torch.Tensor | None = None,
) -> dict[str, TopK]:
    """Scan ``X`` ``(N, C, H, W)`` once and keep, per layer and feature map, the top-``k`` activations.

    Each image counts once per map (its strongest position), so the ``k`` are ``k`` different images.
    With ``groups`` (integer ``(N,)``, the source photo of each image, e.g. crops of one photo share an id) each
    source counts once per map (its strongest image), so the ``k`` come from ``k`` different sources;
    ``k`` is then at most the number of distinct ids.
    The model runs on the device of its parameters, in whatever mode the caller left it (use eval mode).

    Returns:
        ``{layer: TopK}``.
    """
    layers = checks.layer_list("mine_topk", layers)
    checks.images("mine_topk", X)
    if groups is None:
        k = checks.positive_int("mine_topk", k, "k (images per map, at most the number of images)", 1, len(X))
    else:
        groups = check_groups("mine_topk", groups, len(X))
        k = checks.positive_int("mine_topk", k, "k (sources per map, at most the number of distinct groups)", 1,
                                int(groups.unique().numel()))
    batch_size = checks.positive_int("mine_topk", batch_size, "batch_size")
    dev = checks.model_device("mine_topk", model)
    checks.eval_mode("mine_topk", model)
    if groups is not None:
        groups = groups.to(dev)
    best: dict[str, list[torch.Tensor]] = {}
    shapes: dict[str, tuple] = {}
    with LayerOutputs(model, layers, fn="mine_topk", reduce=_strongest_per_map) as batch_out:
        for start in tqdm(range(0, len(X), batch_size), desc="mining top-k", leave=False, disable=hidden(progress)):
            batch_out.clear()
            with checks.model_input("mine_topk", X.shape, "X"):
                model(checks.to_model("mine_topk", model, X[start: start + batch_size]))
            for name in layers:
                vmax, arg, shape = batch_out[name]  # (B, K): each image's strongest unit per map
                if len(shape) != 4:
                    raise ValueError(f"mine_topk: layer {name!r} gives {tuple(shape)}, "
                                     "expected feature maps (N, K, h, w)")
                B, K, h, w = shapes[name] = shape
                img = torch.arange(start, start + B, device=dev).view(B, 1).expand(B, K)
                if name in best:
                    vmax, arg, img = (torch.cat([old, new]) for old, new in zip(best[name], (vmax, arg, img)))
                if groups is None:
                    rows = vmax.topk(min(k, len(vmax)), dim=0).indices  # (k, K)
                else:  # at most one image per source
                    rows = strongest_per_group(vmax, groups[img], k)  # (k', K)
                best[name] = [vmax.gather(0, rows), arg.gather(0, rows), img.gather(0, rows)]
    out = {}
    for name in layers:
        values, arg, img = (t.T.cpu() for t in best[name])  # (K, k)
        w = shapes[name][-1]
        out[name] = TopK(name, values, img, torch.stack([arg // w, arg % w], dim=-1))
    return out


def _strongest_per_map(a: torch.Tensor):
    """What mining keeps of a layer's output ``(B, K, h, w)``: each map's maximum and its flat position
    ``(B, K)`` each, and the shape (no copy of the maps)."""
    if a.ndim != 4:
        return None, None, tuple(a.shape)
    return (*a.flatten(2).max(2), tuple(a.shape))


def project_units(model: nn.Module, X: torch.Tensor, layer: str, channel: int, image_index: torch.Tensor,
                  position: torch.Tensor, ties: str = "first", inside: bool = False):
    """Deconvnet projections of units of feature map ``channel`` of ``layer`` — unit ``n`` at ``position[n]``
    ``(i, j)`` in image ``X[image_index[n]]`` — each cropped to its receptive field, with the image patch under it.

    Returns:
        ``(reconstructions, patches)``, each ``(k, C, R, R)`` on the CPU (``k = len(image_index)``).
    """
    X = checks.images("project_units", X)
    dev = checks.model_device("project_units", model)
    checks.tensor("project_units", image_index, "image_index")
    checks.tensor("project_units", position, "position")
    if image_index.ndim != 1 or len(image_index) == 0 or image_index.is_floating_point() \
            or position.shape != (len(image_index), 2) or position.is_floating_point():
        raise ValueError(f"project_units: expected integer image_index (k,) and position (k, 2) with k >= 1, got "
                         f"{image_index.dtype} {tuple(image_index.shape)} and {position.dtype} {tuple(position.shape)}")
    if int(image_index.min()) < 0 or int(image_index.max()) >= len(X):
        raise ValueError(f"project_units: image_index must lie in 0..{len(X) - 1}, got "
                         f"{int(image_index.min())}..{int(image_index.max())}")
    channel = checks.positive_int("project_units", channel, "channel", 0)
    images = checks.to_model("project_units", model, X[image_index.cpu()])  # (k, C, H, W)
    recon = project(model, images, layer, channel, position=position.to(dev), ties=ties).cpu()
    rf = receptive_field(model, layer)
    rows = [(crop(recon[n], rf, *map(int, p), inside), crop(images[n].cpu(), rf, *map(int, p), inside))
            for n, p in enumerate(position)]
    return torch.stack([r for r, _ in rows]), torch.stack([p for _, p in rows])


def top_projections(model: nn.Module, X: torch.Tensor, top: TopK, channel: int, ties: str = "first",
                    inside: bool = False):
    """Deconvnet projections and image patches of the top-``k`` units of feature map ``channel``
    (``ties``: as for :func:`cnnlib.deconvnet.project`; ``inside``: as for :func:`crop`).

    Returns:
        ``(reconstructions, patches)``, each ``(k, C, R, R)``: the projection of each unit cropped to its
        receptive field, and the image patch under it (Zeiler & Fergus's Fig. 2, one cell).
    """
    if not isinstance(top, TopK):
        raise TypeError(f"top_projections: expected top to be a TopK (from mine_topk), got {type(top).__name__}")
    channel = checks.positive_int("top_projections", channel, f"channel (layer {top.layer!r} has "
                                  f"{len(top.values)} feature maps)", 0, len(top.values) - 1)
    return project_units(model, X, top.layer, channel, top.image_index[channel], top.position[channel], ties, inside)


def figure2_rows(model: nn.Module, X: torch.Tensor, top: TopK, maps: int = 4, ties: str = "first",
                 inside: bool = False, rows_of: dict | None = None, patches_to_display=None) -> list:
    """Zeiler & Fergus's Fig. 2 for one layer, as rows for :func:`cnnlib.plotting.plot_top_projections`: the
    ``maps`` feature maps of ``top`` with the largest top-1 activation, strongest first, each
    ``(label, projections, patches)`` with ``(k, C, R, R)`` tensors from :func:`project_units`.

    ``rows_of``: ``{mined image index: row of X}`` when ``X`` holds only the images the rows need (a few crops
    rebuilt from a seed instead of thousands); ``patches_to_display``: maps the patches from the network's
    input space to what is drawn (e.g. ``lambda p: p * std + mean``). ``ties``, ``inside``: as for
    :func:`project_units`.
    """
    if not isinstance(top, TopK):
        raise TypeError(f"figure2_rows: expected top to be a TopK (from mine_topk), got {type(top).__name__}")
    maps = checks.positive_int("figure2_rows", maps, f"maps (layer {top.layer!r} has {len(top.values)})", 1,
                               len(top.values))
    rows = []
    for c in top.values[:, 0].topk(maps).indices.tolist():
        index = top.image_index[c]
        if rows_of is not None:
            missing = [int(i) for i in index if int(i) not in rows_of]
            if missing:
                raise ValueError(f"figure2_rows: rows_of lacks mined images {missing[:5]} of map {c}")
            index = torch.tensor([rows_of[int(i)] for i in index])
        recon, patches = project_units(model, X, top.layer, c, index, top.position[c], ties, inside)
        if patches_to_display is not None:
            patches = patches_to_display(patches)
        rows.append((f"map {c}\nmax {top.values[c, 0]:.1f}", recon, patches))
    return rows


# ---------------------------------------------------------------------------------------------------------------
# Mined top-k shipped with the course (mining over thousands of photos is too slow for a chapter)
# ---------------------------------------------------------------------------------------------------------------

TOPK_DIR = DATA_DIR / "topk"


def load_shipped_topk(name: str = "efficientnet-lite0-photos", directory: str | os.PathLike | None = None):
    """The top-k mined by a script (``scripts/mine_efficientnet_fig2.py``), checked against its sha256, and this
    machine's photo pool against the pool it was mined over (:func:`cnnlib.photos.check_pool`: a missing package
    raises ``FileNotFoundError`` naming it, other photos ``ValueError``), since the top-k are crop numbers of
    :func:`cnnlib.photos.seeded_crops` of :func:`cnnlib.photos.photo_pool`.

    Returns:
        ``({layer: TopK}, meta)`` with ``meta`` the mining settings (``done``: crops mined, ``seed``, ``size``).
    """
    folder = Path(directory or TOPK_DIR)
    remedy = "re-create it from this pool with 'make mine' (scripts/mine_efficientnet_fig2.py)"
    path = checked_file("load_shipped_topk", folder, f"{name}.pt", remedy)
    check_shipped("load_shipped_topk", folder, path.name, f"the shipped top-k {path}", remedy)
    state = torch.load(path, map_location="cpu", weights_only=True)
    tops = {layer: TopK(layer, t["values"], t["image_index"], t["position"]) for layer, t in state["best"].items()}
    return tops, {k: v for k, v in state.items() if k != "best"}
