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
squares are cut off at the image border. The occluded images are run in batches (with a progress bar).

:func:`occlude` makes one occluded image; :func:`occlusion_maps` the three maps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from .models import named_layer


def _fill_value(fill, C: int, like: torch.Tensor) -> torch.Tensor:
    """``fill`` (a number or ``C`` numbers, one per channel) as a ``(C, 1, 1)`` tensor."""
    value = torch.as_tensor(fill, dtype=like.dtype, device=like.device).flatten()
    if value.numel() not in (1, C):
        raise ValueError(f"occlusion: fill must be one number or {C} (one per channel), got {value.numel()}")
    return value.expand(C).reshape(C, 1, 1)


def _square(center: int, size: int, limit: int) -> slice:
    start = center - size // 2
    return slice(max(start, 0), min(start + size, limit))


def occlude(x: torch.Tensor, center: tuple[int, int], size: int, fill=0.0) -> torch.Tensor:
    """A copy of image ``x`` ``(C, H, W)`` with the ``size × size`` square centred at ``center = (row, column)``
    set to ``fill`` (a number, or one per channel; the "gray" in the model's input space). Rows
    ``row − size // 2 … row − size // 2 + size − 1``, cut off at the border."""
    if x.ndim != 3:
        raise ValueError(f"occlude: expected one image (C, H, W), got {tuple(x.shape)}")
    C, H, W = x.shape
    out = x.clone()
    out[:, _square(center[0], size, H), _square(center[1], size, W)] = _fill_value(fill, C, x)
    return out


def centers(length: int, stride: int) -> torch.Tensor:
    """The occluder centres along one side: ``stride // 2, stride // 2 + stride, …`` below ``length``."""
    return torch.arange(stride // 2, length, stride)


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
    batch_size: int = 64,
    progress: bool = True,
) -> OcclusionMaps:
    """Slide a ``size × size`` square of value ``fill`` over image ``x`` and map the classifier's response.

    Args:
        model: a classifier returning logits ``(N, K)``; it runs on the device of its parameters, in the mode
            the caller left it (use eval mode).
        x: one image ``(C, H, W)`` or ``(1, C, H, W)``, as the model takes it (normalised if it expects that).
        target: the class whose probability is mapped, e.g. the true class (default: the most probable class
            of the unoccluded image); or several classes, whose probabilities are summed (e.g. ImageNet's five
            domestic cats, to ask "a cat?" rather than "which breed?").
        size, stride: side of the square and step between its centres, in pixels.
        fill: the occluder's value, a number or one per channel, in the model's input space (for inputs
            normalised to mean 0 the paper's gray is 0).
        layer, channel: also map the total activation of feature map ``channel`` of ``layer`` (a name for
            :func:`cnnlib.models.named_layer`, output ``(N, K, h, w)``); ``channel=None`` takes the map with the
            strongest single activation on the unoccluded image.
        batch_size: occluded images per forward pass.

    Returns:
        :class:`OcclusionMaps`, maps ``(⌈H / stride⌉, ⌈W / stride⌉)`` on the CPU.
    """
    if x.ndim == 4 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 3:
        raise ValueError(f"occlusion_maps: expected one image (C, H, W) or (1, C, H, W), got {tuple(x.shape)}")
    C, H, W = x.shape
    if not 1 <= size <= min(H, W) or not 1 <= stride <= min(H, W):
        raise ValueError(f"occlusion_maps: size and stride must be 1..{min(H, W)} pixels, got {size}, {stride}")
    dev = next(model.parameters()).device
    x = x.to(dev)
    fill_value = _fill_value(fill, C, x)
    seen: list[torch.Tensor] = []
    hook = named_layer(model, layer).register_forward_hook(lambda m, i, o: seen.append(o)) if layer else None
    try:
        logits = model(x[None])  # (1, K)
        if logits.ndim != 2:
            raise ValueError(f"occlusion_maps: the model must return logits (N, K), got {tuple(logits.shape)}")
        base = logits.softmax(1)[0]  # (K,)
        if target is None:
            target = int(base.argmax())
        classes = [int(t) for t in target] if isinstance(target, Sequence) else [int(target)]
        if not classes or any(not 0 <= t < base.numel() for t in classes) or len(set(classes)) != len(classes):
            raise ValueError(f"occlusion_maps: target must be a class 0..{base.numel() - 1} or distinct such "
                             f"classes, got {target}")
        target = tuple(classes) if isinstance(target, Sequence) else classes[0]
        if layer is not None:
            a = seen.pop()
            if a.ndim != 4:
                raise ValueError(f"occlusion_maps: layer {layer!r} gives {tuple(a.shape)}, expected (N, K, h, w)")
            channel = int(a[0].flatten(1).amax(1).argmax()) if channel is None else int(channel)
            if not 0 <= channel < a.shape[1]:
                raise ValueError(f"occlusion_maps: layer {layer!r} has {a.shape[1]} feature maps, got {channel}")
            base_feature = float(a[0, channel].sum())
        rows, cols = centers(H, stride), centers(W, stride)
        grid = [(int(r), int(c)) for r in rows for c in cols]
        probs, top_probs, top_classes, features = [], [], [], []
        for start in tqdm(range(0, len(grid), batch_size), desc="occluding", leave=False, disable=not progress):
            batch = x.expand(len(grid[start: start + batch_size]), C, H, W).clone()  # (B, C, H, W)
            for b, (r, c) in enumerate(grid[start: start + batch_size]):
                batch[b, :, _square(r, size, H), _square(c, size, W)] = fill_value
            p = model(batch).softmax(1)  # (B, K)
            probs.append(p[:, classes].sum(1))
            top = p.max(1)
            top_probs.append(top.values)
            top_classes.append(top.indices)
            if layer is not None:
                features.append(seen.pop()[:, channel].sum((1, 2)))
    finally:
        if hook is not None:
            hook.remove()
    shape = (len(rows), len(cols))
    return OcclusionMaps(
        prob=torch.cat(probs).view(shape).cpu(),
        top_class=torch.cat(top_classes).view(shape).cpu(),
        top_prob=torch.cat(top_probs).view(shape).cpu(),
        feature=torch.cat(features).view(shape).cpu() if layer is not None else None,
        rows=rows, cols=cols, target=target, base_prob=float(base[classes].sum()), base_class=int(base.argmax()),
        layer=layer, channel=channel if layer is not None else None,
        base_feature=base_feature if layer is not None else None, size=size, stride=stride,
    )
