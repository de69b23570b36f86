"""Occlusion sensitivity (Zeiler & Fergus, ECCV 2014, Sec. 4.2 and Fig. 7): is the network looking at the object?

A gray square of ``size × size`` pixels is slid over the image. For every position ``(i, j)`` of its centre
the occluded image ``x_ij`` (the square's pixels replaced by ``fill``) goes through the network once, and
three numbers are kept:

* the probability of the target class, ``p_t(x_ij) = softmax(f(x_ij))_t`` (Fig. 7d): if the network relies on
  the object, it drops where the square covers the object;
* the most probable class, ``argmax_c p_c(x_ij)`` (Fig. 7e): what the network sees instead;
* the total activation of one feature map ``k`` of a chosen layer, ``Σ_uv a_k(x_ij)[u, v]`` (Fig. 7b), by
  default the map with the strongest activation on the unoccluded image: which part of the image that map
  depends on.

The centres lie on a grid of step ``stride`` starting at ``stride // 2``, so the maps have
``⌈H / stride⌉ × ⌈W / stride⌉`` cells, each standing for the ``stride × stride`` block of pixels around its centre;
squares are cut off at the image border (``inside=True`` keeps only the squares wholly inside, as Captum does).
The occluded images are run in batches (with a progress bar).

By default the batches go through the network *incrementally* (:mod:`cnnlib.incremental`, after Nakandala et
al.'s Krypton, SIGMOD 2019): each layer recomputes only the window of its maps that the square can reach and
takes the rest from the clean image's activations, computed once. The maps are the same as pushing every
occluded image through the whole network (``method="plain"``), up to float round-off.

:func:`occlude` makes one occluded image; :func:`occlusion_maps` the three maps.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import checks, incremental
from . import graph as graphs
from .hooks import LayerOutputs
from .progress import hidden


def _fill_value(fn: str, fill, C: int, like: torch.Tensor) -> torch.Tensor:
    """``fill`` (a number or ``C`` numbers, one per channel) as a ``(C, 1, 1)`` tensor."""
    if isinstance(fill, torch.Tensor):
        value = fill.detach().to(like.device, like.dtype).flatten()
    else:
        values = list(fill) if isinstance(fill, Sequence) and not isinstance(fill, str) else [fill]
        value = torch.tensor([checks.number(fn, v, "fill") for v in values], dtype=like.dtype, device=like.device)
    if value.numel() not in (1, C):
        raise ValueError(f"{fn}: fill must be one number or {C} (one per channel), got {value.numel()}")
    checks.finite(fn, value, "fill")
    return value.expand(C).reshape(C, 1, 1)


def _extent(center, size: int, limit: int):
    """Rows (or columns) ``[start, stop)`` of the ``size``-pixel square centred at ``center`` — an ``int`` or a
    tensor of centres — cut at ``0`` and ``limit``: it begins ``size // 2`` before its centre."""
    start = center - size // 2
    if isinstance(start, torch.Tensor):
        return start.clamp(0, limit), (start + size).clamp(0, limit)
    return min(max(start, 0), limit), min(max(start + size, 0), limit)


def _square(center: int, size: int, limit: int) -> slice:
    return slice(*_extent(center, size, limit))


def changing_squares(x: torch.Tensor, grid: torch.Tensor, size: int, fill_value: torch.Tensor) -> torch.Tensor:
    """Which squares change the image at all: ``(n,)`` bool, for centres ``grid`` ``(n, 2)`` on image ``x``
    ``(C, H, W)``. A square that covers only pixels already equal to the fill (the black background of a
    Fashion-MNIST image under a black occluder) leaves the input, hence every output, as it was: its maps are
    the clean image's and need no pass through the network. Counted exactly with an integral image of the
    pixels that differ from the fill."""
    C, H, W = x.shape
    differs = (x != fill_value).any(0).to(torch.int64)  # (H, W)
    integral = F.pad(differs.cumsum(0).cumsum(1), (1, 0, 1, 0)).cpu()  # (H + 1, W + 1)
    top, bottom = _extent(grid[:, 0], size, H)
    left, right = _extent(grid[:, 1], size, W)
    count = integral[bottom, right] - integral[top, right] - integral[bottom, left] + integral[top, left]
    return count > 0


def occlude(x: torch.Tensor, center: tuple[int, int], size: int, fill=0.0) -> torch.Tensor:
    """A copy of image ``x`` ``(C, H, W)`` with the ``size × size`` square centred at ``center = (row, column)``
    set to ``fill`` (a number, or one per channel; the "gray" in the model's input space). Rows
    ``row − size // 2 … row − size // 2 + size − 1``, cut off at the border; a square that misses the image
    entirely is an error."""
    x = checks.images("occlude", x, ndim=3)
    C, H, W = x.shape
    size = checks.positive_int("occlude", size, "size")
    if not isinstance(center, Sequence) or len(center) != 2:
        raise TypeError(f"occlude: expected center to be (row, column), got {center!r}")
    if any(isinstance(v, bool) or not isinstance(v, (int, torch.Tensor)) or int(v) != v for v in center):
        raise TypeError(f"occlude: expected center to be two integers (row, column), got {center!r}")
    row, col = (int(v) for v in center)
    rows, cols = _square(row, size, H), _square(col, size, W)
    if rows.start >= rows.stop or cols.start >= cols.stop:
        raise ValueError(f"occlude: the {size}×{size} square centred at {(row, col)} lies outside the "
                         f"{H}×{W} image")
    out = x.clone()
    out[:, rows, cols] = _fill_value("occlude", fill, C, x)
    return out


def centers(length: int, stride: int, inside: int | None = None) -> torch.Tensor:
    """The occluder centres along one side: ``stride // 2, stride // 2 + stride, …`` below ``length``; or, for
    ``inside = size``, the centres of the squares that lie wholly inside (Captum's windows: first rows
    ``0, stride, … ≤ length − size``, centres ``size // 2`` further)."""
    length = checks.positive_int("centers", length, "length")
    stride = checks.positive_int("centers", stride, "stride")
    if inside is None:
        return torch.arange(stride // 2, length, stride)
    size = checks.positive_int("centers", inside, "inside", maximum=length)
    return torch.arange(0, length - size + 1, stride) + size // 2


@dataclass
class OcclusionMaps:
    """What :func:`occlusion_maps` returns; each map is ``(h, w)`` with one cell per occluder position."""

    prob: torch.Tensor  # (h, w): probability of `target`
    top_class: torch.Tensor  # (h, w) int64: the most probable class
    top_prob: torch.Tensor  # (h, w): its probability
    feature: torch.Tensor | None  # (h, w): total activation of map `channel` of `layer` (None without a layer)
    rows: torch.Tensor  # (h,): the centre row of each cell's occluder
    cols: torch.Tensor  # (w,): the centre column
    target: int | tuple[int, ...]  # a class, or classes whose probabilities are summed
    base_prob: float  # probability of `target` on the unoccluded image
    base_class: int  # the most probable class on the unoccluded image
    layer: str | None
    channel: int | None
    base_feature: float | None  # total activation of the map on the unoccluded image
    size: int
    stride: int
    method: str = "plain"  # "incremental" or "plain": how the maps were computed
    batch_size: int = 0  # occluded images per pass (the last one chosen, if chosen automatically)
    computed: int = -1  # squares passed through the network (the others change no pixel: clean values)
    # incremental only: multiply-adds of the convolutions and linear layers done, as a share of pushing the
    # computed squares through the whole network (the part of the work incremental inference leaves)
    work: float | None = None


METHODS = ("incremental", "plain")


class _BatchSizer:
    """Batch sizes: the given one, or — for ``None`` — doubling from ``start`` while the time per occluded
    image stays within 10 % of the best so far (a short probe on the first batches, which count as work, not
    waste), then the best size measured. The 10 % keeps one slow moment of a busy machine from ending the
    probe too early."""

    def __init__(self, fixed: int | None, start: int, cap: int, sync):
        self.fixed, self.size, self.cap, self.sync = fixed, fixed or min(start, cap), cap, sync
        self.best: float | None = None
        self.best_size = self.size
        self.settled = fixed is not None
        self.t0 = 0.0

    def next(self) -> int:
        self.sync()
        self.t0 = time.perf_counter()
        return self.size

    def done(self, n: int) -> None:
        if self.settled or n < self.size:
            return
        self.sync()
        per = (time.perf_counter() - self.t0) / n
        if self.best is None or per < self.best:
            self.best, self.best_size = per, self.size
        if per <= 1.1 * self.best and self.size * 2 <= self.cap:
            self.size *= 2
        else:
            self.size, self.settled = self.best_size, True


def _start_batch(engine) -> int:
    """Where the probe starts: as many images as fit 4 MiB of the network's largest feature map (a batch that
    stays in the caches of a CPU core), a power of two in 16 … 64 (the engine's windows are smaller than the
    maps, so even a network with large maps takes 16)."""
    largest = max((v.numel() * v.element_size() for v in engine.clean.values()
                   if isinstance(v, torch.Tensor) and v.ndim == 4), default=1)
    n = 16
    while n < 64 and 2 * n * largest <= 4 * 2 ** 20:
        n *= 2
    return n


def _sync(dev: torch.device):
    return (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)


@torch.no_grad()
def occlusion_maps(
    model: nn.Module,
    x: torch.Tensor,
    target: int | Sequence[int] | None = None,
    size: int = 8,
    stride: int = 2,
    fill=0.0,
    layer: str | None = None,
    channel: int | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    method: str = "incremental",
    inside: bool = False,
) -> OcclusionMaps:
    """Slide a ``size × size`` square of value ``fill`` over image ``x`` and map the classifier's response.

    Args:
        model: a classifier returning logits ``(N, K)``, in eval mode; it runs on the device of its parameters.
        x: one image ``(C, H, W)`` or ``(1, C, H, W)``, float, as the model takes it (normalised if it expects
            that); moved to the model's device.
        target: the class whose probability is mapped, e.g. the true class (default: the most probable class
            of the unoccluded image); or several classes, whose probabilities are summed (e.g. ImageNet's five
            domestic cats, to ask "a cat?" rather than "which breed?").
        size, stride: side of the square and step between its centres, in pixels.
        fill: the occluder's value, a number or one per channel, in the model's input space (for inputs
            normalised to mean 0, 0 is the mean colour; the paper does not say which gray it used).
        layer, channel: also map the total activation of feature map ``channel`` of ``layer`` (a name for
            :func:`cnnlib.graph.named_layer`, output ``(N, K, h, w)``); ``channel=None`` takes the map with the
            strongest single activation on the unoccluded image.
        batch_size: occluded images per pass; ``None`` chooses it on the machine by a short probe (doubling
            from 16 to 64 — incremental, by the size of the largest feature map — or from 1 — plain — while the
            time per image does not rise by more than 10 %; then the fastest size measured).
        inside: only the squares that lie wholly inside the image, as Captum's ``Occlusion`` slides them
            (maps ``((H − size) // stride + 1, (W − size) // stride + 1)``); by default the centres cover the
            whole image and the squares are cut at the border.
        method: ``"incremental"`` (recompute only what the square can change, :mod:`cnnlib.incremental`; a
            model ``torch.fx`` cannot trace falls back to ``"plain"`` with a warning) or ``"plain"`` (every
            occluded image through the whole network).

    A square that changes no pixel (it covers only pixels equal to ``fill``) keeps the clean image's values
    without a pass through the network (:func:`changing_squares`); ``computed`` says how many went through,
    and ``work`` (incremental) what share of the whole network's multiply-adds they needed.

    Returns:
        :class:`OcclusionMaps`, maps ``(⌈H / stride⌉, ⌈W / stride⌉)`` on the CPU.
    """
    fn = "occlusion_maps"
    checks.module(fn, model)
    x = checks.images(fn, x, ndim=(3, 4))
    if x.ndim == 4:
        if x.shape[0] != 1:
            raise ValueError(f"{fn}: expected one image (C, H, W) or (1, C, H, W), got {tuple(x.shape)}")
        x = x[0]
    C, H, W = x.shape
    size = checks.positive_int(fn, size, "size", maximum=min(H, W))
    stride = checks.positive_int(fn, stride, "stride", maximum=min(H, W))
    if batch_size is not None:
        batch_size = checks.positive_int(fn, batch_size, "batch_size")
    checks.one_of(fn, method, METHODS, "method")
    if not isinstance(inside, bool):
        raise TypeError(f"{fn}: expected inside to be True or False, got {inside!r}")
    checks.eval_mode(fn, model)
    x = checks.to_model(fn, model, x)
    dev = x.device
    fill_value = _fill_value(fn, fill, C, x)
    module = None
    if layer is not None:  # found once (cnnlib.graph): the module, its output kept by a hook or a graph node
        if not isinstance(layer, str):
            raise TypeError(f"{fn}: expected layer to be a layer name (str), got {layer!r}")
        module = graphs.named_layer(model, layer, fn)
    if channel is not None:
        channel = checks.positive_int(fn, channel, "channel", minimum=0)

    with LayerOutputs(model, [layer] if layer else [], fn=fn) if layer else _nothing() as kept:
        with checks.model_input(fn, x.shape):
            logits = model(x[None])  # (1, K)
        if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
            raise ValueError(f"{fn}: the model must return logits (N, K), got "
                             f"{tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__}")
        clean_feature = kept[layer] if layer else None
    checks.finite(fn, logits, "the model's output on x")
    base = logits.softmax(1)[0]  # (K,)
    classes = [int(base.argmax())] if target is None else _targets(fn, target, base.numel())
    if target is None:
        target = classes[0]
    target = tuple(classes) if isinstance(target, Sequence) else classes[0]
    base_feature = None
    if layer is not None:
        a = clean_feature
        if a.ndim != 4:
            raise ValueError(f"{fn}: layer {layer!r} gives {tuple(a.shape)}, expected (N, K, h, w)")
        channel = int(a[0].flatten(1).amax(1).argmax()) if channel is None else channel
        if not 0 <= channel < a.shape[1]:
            raise ValueError(f"{fn}: layer {layer!r} has {a.shape[1]} feature maps, got {channel}")
        base_feature = float(a[0, channel].sum())

    rows, cols = centers(H, stride, size if inside else None), centers(W, stride, size if inside else None)
    grid = torch.cartesian_prod(rows, cols)  # (n, 2): centre row, column
    active = changing_squares(x, grid, size, fill_value)  # (n,): the others keep the clean image's values
    todo = grid[active]

    engine, keep = None, None
    if method == "incremental":
        try:
            engine = incremental.Engine(model, x[None], output=logits)
            if layer is not None:
                keep = graphs.layer_node(engine.graph, graphs.module_names(model, module))
                if keep is None or not torch.allclose(engine.clean[keep], clean_feature, rtol=1e-5, atol=1e-6):
                    raise ValueError(f"layer {layer!r} is not a node of the traced graph")
        except ValueError as e:
            warnings.warn(f"{fn}: plain path, not incremental: {e}", incremental.IncrementalFallbackWarning,
                          stacklevel=2)
            engine = None
    sizer = _BatchSizer(batch_size, start=_start_batch(engine) if engine is not None else 1, cap=256,
                        sync=_sync(dev))
    probs, top_probs, top_classes, features = [], [], [], []
    bar = tqdm(total=len(todo), desc="occluding", leave=False, disable=hidden(progress))
    start = 0
    while start < len(todo):
        n = sizer.next()
        chunk = todo[start: start + n]
        if engine is not None:
            logits, feat = engine.run(_input_windows(x, chunk, size, fill_value), keep, channel)
        else:
            logits, feat = _plain_batch(model, x, chunk, size, fill_value, layer, channel)
        p = logits.softmax(1)  # (B, K)
        probs.append(p[:, classes].sum(1))
        top = p.max(1)
        top_probs.append(top.values)
        top_classes.append(top.indices)
        if layer is not None:
            features.append(feat)
        sizer.done(len(chunk))
        start += len(chunk)
        bar.update(len(chunk))
    bar.close()
    shape = (len(rows), len(cols))

    def full(parts, clean_value, dtype):  # the computed squares' values, the clean value elsewhere
        out = torch.full((len(grid),), clean_value, dtype=dtype)
        if parts:
            out[active] = torch.cat(parts).to("cpu", dtype)
        return out.view(shape)

    top0 = base.max(0)
    return OcclusionMaps(
        prob=full(probs, float(base[classes].sum()), base.dtype),
        top_class=full(top_classes, int(top0.indices), torch.int64),
        top_prob=full(top_probs, float(top0.values), base.dtype),
        feature=full(features, base_feature, base.dtype) if layer is not None else None,
        rows=rows, cols=cols, target=target, base_prob=float(base[classes].sum()), base_class=int(base.argmax()),
        layer=layer, channel=channel if layer is not None else None,
        base_feature=base_feature, size=size, stride=stride,
        method="incremental" if engine is not None else "plain", batch_size=sizer.size,
        computed=int(active.sum()),
        work=engine.multiply_adds[0] / engine.multiply_adds[1] if engine is not None and engine.multiply_adds[1]
        else None,
    )


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return None


def _targets(fn: str, target, K: int) -> list[int]:
    items = list(target) if isinstance(target, Sequence) and not isinstance(target, str) else [target]
    if isinstance(target, torch.Tensor):
        items = target.flatten().tolist()
    ok = items and all(not isinstance(t, bool) and isinstance(t, (int, torch.Tensor)) and int(t) == t
                       for t in items)
    classes = [int(t) for t in items] if ok else []
    if not ok or any(not 0 <= t < K for t in classes) or len(set(classes)) != len(classes):
        raise ValueError(f"{fn}: target must be a class 0..{K - 1} or distinct such classes, got {target!r}")
    return classes


def _input_windows(x: torch.Tensor, chunk: torch.Tensor, size: int, fill_value: torch.Tensor):
    """The occluded part of each image of the batch: windows ``(B, C, s, s)`` (``s = size``, shifted inside
    the image where the border cuts the square) for :meth:`cnnlib.incremental.Engine.run`."""
    C, H, W = x.shape
    h, w = min(size, H), min(size, W)
    (top, bottom), (left, right) = _extent(chunk[:, 0], size, H), _extent(chunk[:, 1], size, W)  # (B,) each
    r0, c0 = top.clamp(max=H - h), left.clamp(max=W - w)  # the window: the square, shifted inside the image
    rows = r0[:, None] + torch.arange(h)  # (B, h)
    cols = c0[:, None] + torch.arange(w)
    in_r = (rows >= top[:, None]) & (rows < bottom[:, None])
    in_c = (cols >= left[:, None]) & (cols < right[:, None])
    dev = x.device
    data = x[:, rows[:, :, None].to(dev), cols[:, None, :].to(dev)].permute(1, 0, 2, 3)  # (B, C, h, w)
    square = (in_r[:, :, None] & in_c[:, None, :])[:, None].to(dev)  # (B, 1, h, w)
    data = torch.where(square, fill_value[None], data)
    return incremental.Window(data, r0, c0, x[None])


def _plain_batch(model, x, chunk, size, fill_value, layer, channel):
    C, H, W = x.shape
    batch = x.expand(len(chunk), C, H, W).clone()  # (B, C, H, W)
    for b, (r, c) in enumerate(chunk.tolist()):
        batch[b, :, _square(r, size, H), _square(c, size, W)] = fill_value
    if layer is None:
        return model(batch), None
    with LayerOutputs(model, [layer], fn="occlusion_maps") as kept:
        logits = model(batch)
        return logits, kept[layer][:, channel].sum((1, 2))
