"""The deconvnet of Zeiler & Fergus (ECCV 2014, Sec. 2.1, Fig. 1): one activation mapped back to pixel space.

To see what excites one unit of a convolutional layer, the image goes forward once, recording at every
max-pooling the *switches* (where each maximum came from). Then every activation of that layer is set to zero
but the chosen one, and the signal goes back down, layer by layer, through three operations that undo the
forward ones as far as they can be undone:

* **unpool** — max-pooling cannot be inverted; the deconvnet puts each value back at its switch location and
  zeros elsewhere (with overlapping windows, values landing on the same pixel add up);
* **rectify** — the reconstruction passes through a ReLU, ``r ← max(r, 0)``, as the forward signal did;
* **filter** — a convolution with ``w[o, c, u, v]`` becomes the transposed convolution with the same filters
  (each filter flipped vertically and horizontally, input and output channels swapped):
  ``r_in[c, s·i + u − p, s·j + v − p] += w[o, c, u, v] · r_out[o, i, j]``.

Nothing is learned and no contrast normalization is undone (the paper passes through it). The result has the
shape of the input image: the pattern, in pixels, that the unit responded to.

Supported networks: an ``nn.Sequential`` of ``Conv2d`` / ``ReLU`` / ``MaxPool2d`` (plus ``LocalResponseNorm``,
``Dropout`` and ``Identity``, passed through), or a model whose ``.features`` is one — ZFNet-small, torchvision's
AlexNet and VGG. Anything else in the path raises a ``TypeError`` that names the layer.

:func:`captum_projection` takes the same unit back with Captum's ``Deconvolution``, ``GuidedBackprop`` or
``Saliency`` (the plain gradient), to compare the rules at the ReLUs.

**Ties.** A switch is "where the maximum was", and a window whose values tie has no such place. After a ReLU
ties are common: a window where the layer below is silent holds nothing but zeros. PyTorch (like Caffe and
Captum, which uses PyTorch's max-pool backward) then records the *first* of the tied positions, the window's
top-left corner. ``ties="first"`` (the default) keeps that convention. On a network whose units are silent
over most of the image (a VGG16 fine-tuned for edge detection is silent on 60-90 % of its pooling windows)
those corners form a regular lattice, and the signal the deconvnet sends down lands on it: the projection
becomes a fine grating that has nothing to do with the image. ``ties="spread"`` gives each of the ``t`` tied
positions of a window ``1/t`` of the value, the average of the unpoolings over every choice of switch; it is
the same as ``"first"`` wherever the maximum is unique.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

_PASS_THROUGH = (nn.LocalResponseNorm, nn.Dropout, nn.Identity)
_SUPPORTED = (nn.Conv2d, nn.ReLU, nn.MaxPool2d) + _PASS_THROUGH


def feature_stack(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The convolutional stack of ``model`` as ``[(full name, module), ...]`` in forward order.

    ``model`` itself if it is an ``nn.Sequential``, else ``model.features`` (ZFNet-small, AlexNet, VGG).
    """
    if isinstance(model, nn.Sequential):
        return list(model.named_children())
    features = getattr(model, "features", None)
    if isinstance(features, nn.Sequential):
        return [(f"features.{n}", m) for n, m in features.named_children()]
    raise TypeError(
        f"deconvnet: expected an nn.Sequential of conv/ReLU/max-pool layers or a model with such a .features "
        f"(ZFNetSmall, torchvision AlexNet/VGG), got {type(model).__name__}"
    )


def path_to(model: nn.Module, layer: str) -> list[tuple[str, nn.Module]]:
    """The modules from the input up to and including ``layer`` (full or unique short name); checked."""
    stack = feature_stack(model)
    names = [n for n, _ in stack]
    hits = [k for k, n in enumerate(names) if n == layer or n.split(".")[-1] == layer]
    if len(hits) != 1:
        raise ValueError(f"deconvnet: unknown layer {layer!r} in the convolutional stack; expected one of {names}")
    path = stack[: hits[0] + 1]
    for name, m in path:
        if not isinstance(m, _SUPPORTED):
            raise TypeError(f"deconvnet: cannot invert layer {name!r} of type {type(m).__name__}; "
                            f"supported: Conv2d, ReLU, MaxPool2d (LocalResponseNorm, Dropout, Identity pass through)")
        if isinstance(m, nn.Conv2d) and (m.groups != 1 or m.dilation != (1, 1) or m.padding_mode != "zeros"):
            raise TypeError(f"deconvnet: layer {name!r}: only plain convolutions (groups=1, dilation=1, zero padding)")
        if isinstance(m, nn.MaxPool2d) and (m.dilation not in (1, (1, 1)) or m.return_indices):
            raise TypeError(f"deconvnet: layer {name!r}: only plain max-pooling (dilation=1)")
    return path


def pool_with_switches(x: torch.Tensor, pool: nn.MaxPool2d):
    """Max-pool ``x`` ``(N, C, H, W)`` as ``pool`` does, also returning the switches (flat argmax positions)."""
    return F.max_pool2d(x, pool.kernel_size, pool.stride, pool.padding, pool.dilation, pool.ceil_mode,
                        return_indices=True)


def unpool(r: torch.Tensor, switches: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Put each value of ``r`` ``(N, C, h, w)`` at its switch location in a zero map ``(N, C, *size)``;
    values whose switches coincide (overlapping windows) are added."""
    if r.shape != switches.shape:
        raise ValueError(f"unpool: values {tuple(r.shape)} and switches {tuple(switches.shape)} must have one shape")
    N, C = r.shape[:2]
    out = r.new_zeros(N, C, size[0] * size[1])
    out.scatter_add_(2, switches.flatten(2), r.flatten(2))
    return out.view(N, C, *size)


TIES = ("first", "spread")


def _windows(x: torch.Tensor, pool: nn.MaxPool2d, out_size: tuple[int, int]):
    """The pooling windows of ``x`` ``(N, C, H, W)`` exactly as ``pool`` takes them (kernel, stride, padding,
    ``ceil_mode``), for an output of ``out_size``: ``x`` is padded with ``−∞`` to the ``(h − 1)·s + k`` rows and
    columns the windows cover (or cut to them) and unfolded. Returns ``(windows (N, C, k·k, h·w), span)``."""
    k, s, p = _pair(pool.kernel_size), _pair(pool.stride or pool.kernel_size), _pair(pool.padding)
    N, C, H, W = x.shape
    span = tuple((out_size[d] - 1) * s[d] + k[d] for d in range(2))
    xp = F.pad(x, (p[1], span[1] - W - p[1], p[0], span[0] - H - p[0]), value=float("-inf"))
    return F.unfold(xp, k, stride=s).view(N, C, k[0] * k[1], out_size[0] * out_size[1]), span


def unpool_spread(x: torch.Tensor, pool: nn.MaxPool2d, r: torch.Tensor) -> torch.Tensor:
    """Unpool ``r`` ``(N, C, h, w)`` onto the grid of ``pool``'s input ``x`` ``(N, C, H, W)``, giving each of the
    ``t`` positions that tie for a window's maximum ``r / t`` (overlapping windows add up, as in :func:`unpool`)."""
    N, C, H, W = x.shape
    h, w = r.shape[2:]
    windows, span = _windows(x, pool, (h, w))
    tied = (windows == windows.amax(2, keepdim=True)).to(r.dtype)  # (N, C, k·k, h·w): the maxima of each window
    share = tied / tied.sum(2, keepdim=True) * r.reshape(N, C, 1, h * w)
    k, p = _pair(pool.kernel_size), _pair(pool.padding)
    out = F.fold(share.view(N, C * k[0] * k[1], h * w), span, k, stride=_pair(pool.stride or k))  # sums overlaps
    full = out.new_zeros(N, C, H, W)
    rows, cols = min(H, span[0] - p[0]), min(W, span[1] - p[1])  # from padded coordinates back to x's
    full[:, :, :rows, :cols] = out[:, :, p[0]: p[0] + rows, p[1]: p[1] + cols]
    return full


@torch.no_grad()
def tied_windows(model: nn.Module, x: torch.Tensor, layer: str | None = None) -> dict[str, float]:
    """For each max-pooling on the way from the input to ``layer`` (default: the whole stack), the fraction of
    its windows, over the images ``x``, whose maximum is reached at two or more positions: the windows where
    the switch is a convention rather than a place (see ``ties`` in :func:`project`)."""
    _check_input(model, x)
    path = path_to(model, layer) if layer is not None else path_to(model, feature_stack(model)[-1][0])
    out = {}
    for name, m in path:
        if isinstance(m, nn.MaxPool2d):
            y = m(x)
            windows, _ = _windows(x, m, tuple(y.shape[2:]))
            out[name] = float(((windows == windows.amax(2, keepdim=True)).sum(2) > 1).float().mean())
            x = y
        else:
            x = m(x)
    return out


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def deconv(r: torch.Tensor, conv: nn.Conv2d, size: tuple[int, int]) -> torch.Tensor:
    """Filter ``r`` ``(N, O, h, w)`` with the transposed filters of ``conv``, back to its input size
    ``(N, C, *size)``."""
    s, p, k = conv.stride, conv.padding, conv.kernel_size
    out_pad = tuple(size[d] - ((r.shape[2 + d] - 1) * s[d] - 2 * p[d] + k[d]) for d in range(2))
    return F.conv_transpose2d(r, conv.weight, None, s, p, out_pad)


@dataclass
class ForwardRecord:
    """What the forward pass leaves for the way down: the activation and, per module, switches and sizes."""

    activation: torch.Tensor  # (N, C, h, w): the output of the chosen layer
    switches: dict[int, torch.Tensor]  # ties="first": the switches of each max-pool, by position in the path
    sizes: list[tuple[int, int]]  # spatial size of each module's input
    pool_inputs: dict[int, torch.Tensor] = field(default_factory=dict)  # ties="spread": each max-pool's input


def forward_record(path: list[tuple[str, nn.Module]], x: torch.Tensor, ties: str = "first") -> ForwardRecord:
    """Run ``x`` through ``path`` (from :func:`path_to`), recording input sizes and, per max-pool, its switches
    (``ties="first"``) or its input (``ties="spread"``, for :func:`unpool_spread`)."""
    if ties not in TIES:
        raise ValueError(f"deconvnet: ties must be one of {TIES}, got {ties!r}")
    switches, sizes, inputs = {}, [], {}
    for k, (_, m) in enumerate(path):
        sizes.append(tuple(x.shape[2:]))
        if isinstance(m, nn.MaxPool2d) and ties == "spread":
            inputs[k], x = x, m(x)
        elif isinstance(m, nn.MaxPool2d):
            x, switches[k] = pool_with_switches(x, m)
        else:
            x = m(x)
    return ForwardRecord(x, switches, sizes, inputs)


def backward_project(path: list[tuple[str, nn.Module]], rec: ForwardRecord, r: torch.Tensor) -> torch.Tensor:
    """Take ``r`` (same shape as ``rec.activation``) down through ``path`` in reverse: unpool, rectify, filter."""
    for k in range(len(path) - 1, -1, -1):
        m = path[k][1]
        if isinstance(m, nn.Conv2d):
            r = deconv(r, m, rec.sizes[k])
        elif isinstance(m, nn.ReLU):
            r = F.relu(r)
        elif isinstance(m, nn.MaxPool2d) and k in rec.pool_inputs:
            r = unpool_spread(rec.pool_inputs[k], m, r)
        elif isinstance(m, nn.MaxPool2d):
            r = unpool(r, rec.switches[k], rec.sizes[k])
        # LocalResponseNorm, Dropout, Identity: passed through, as in the paper
    return r


def _check_input(model: nn.Module, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"deconvnet: expected images (N, C, H, W), got {got}")
    first = next((m for _, m in feature_stack(model) if isinstance(m, nn.Conv2d)), None)
    if first is not None and x.shape[1] != first.in_channels:
        raise ValueError(f"deconvnet: the network takes {first.in_channels}-channel images, got {x.shape[1]} channels")


@torch.no_grad()
def project(
    model: nn.Module,
    x: torch.Tensor,
    layer: str,
    channel: int,
    position: tuple[int, int] | torch.Tensor | None = None,
    ties: str = "first",
) -> torch.Tensor:
    """Project one activation of feature map ``channel`` of ``layer`` back to input space (Zeiler & Fergus 2014).

    Args:
        model: ZFNet-small, an AlexNet/VGG-style model with ``.features``, or an ``nn.Sequential`` (eval mode is
            the caller's business; dropout and LRN are passed through on the way down).
        x: images ``(N, C, H, W)`` on the model's device.
        layer: a module of the convolutional stack, e.g. ``"conv3"``, ``"relu3"``, ``"features.10"``.
            The activation is that module's output.
        channel: which feature map.
        position: ``(i, j)`` for every image, an int tensor ``(N, 2)`` (one position per image), or ``None``
            for the strongest activation of that map in each image.
        ties: where unpooling puts a value whose window had tied maxima: ``"first"`` (PyTorch's switch, the
            first tied position) or ``"spread"`` (shared equally among them); see the module's docstring.

    Returns:
        The reconstruction ``(N, C, H, W)``: zero everywhere the chosen unit cannot see.
    """
    _check_input(model, x)
    path = path_to(model, layer)
    rec = forward_record(path, x, ties)
    a = rec.activation  # (N, K, h, w)
    if a.ndim != 4:
        raise ValueError(f"deconvnet: layer {layer!r} gives {tuple(a.shape)}, expected feature maps (N, K, h, w)")
    N, K, h, w = a.shape
    if not 0 <= channel < K:
        raise ValueError(f"deconvnet: layer {layer!r} has {K} feature maps, got channel={channel}")
    fmap = a[:, channel].flatten(1)  # (N, h·w)
    if position is None:
        flat = fmap.argmax(1)
    else:
        pos = torch.as_tensor(position, device=a.device).long().reshape(-1, 2).expand(N, 2)
        if ((pos[:, 0] < 0) | (pos[:, 0] >= h) | (pos[:, 1] < 0) | (pos[:, 1] >= w)).any():
            raise ValueError(f"deconvnet: position must lie in the {h}×{w} map of {layer!r}, got {position}")
        flat = pos[:, 0] * w + pos[:, 1]
    r = torch.zeros_like(a)
    rows = torch.arange(N, device=a.device)
    r[:, channel].view(N, -1)[rows, flat] = fmap[rows, flat]  # keep the one activation, zero the rest
    return backward_project(path, rec, r)


class _UnitOutput(nn.Module):
    """The feature maps of one layer, flattened ``(N, K·h·w)``: a model output Captum can pick a target from."""

    def __init__(self, stack: nn.Module):
        super().__init__()
        self.stack = stack

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stack(x).flatten(1)


CAPTUM_METHODS = ("deconvolution", "guided_backprop", "gradient")


def captum_projection(
    model: nn.Module, x: torch.Tensor, layer: str, channel: int, method: str = "deconvolution"
) -> torch.Tensor:
    """The unit :func:`project` picks (the strongest of map ``channel`` of ``layer``, per image), taken back to
    the input by Captum (Kokhlikyan et al. 2020, arXiv 2009.07896) instead of by our own deconvnet.

    ``method`` chooses what happens at each ReLU on the way down (``g`` the signal arriving from above, ``z``
    the ReLU's forward input):

    * ``"deconvolution"`` — ``captum.attr.Deconvolution``, Zeiler & Fergus's rule ``max(g, 0)``;
    * ``"guided_backprop"`` — ``captum.attr.GuidedBackprop`` (Springenberg et al. 2015), ``max(g, 0)·[z > 0]``;
    * ``"gradient"`` — ``captum.attr.Saliency(abs=False)`` (Simonyan et al. 2014), the plain gradient ``g·[z > 0]``.

    Captum back-propagates through every other module, contrast normalization (LRN) included, where the
    deconvnet passes straight through it; on a conv/ReLU/max-pool stack ``"deconvolution"`` equals
    :func:`project`. Captum starts from 1 at the unit; the result is multiplied by the unit's activation so
    that it is on the scale of :func:`project`'s. That makes the two equal only where the activation is
    positive: the deconvnet's rectification is not linear, so starting it from a negative value (a unit of a
    ``Conv2d`` output that did not fire) is not the negative of starting it from 1.

    Args:
        model, x, layer, channel: as for :func:`project` (``x`` ``(N, C, H, W)``). The ReLUs of the path must
            be ``nn.ReLU`` modules (Captum hooks them); in-place ones (torchvision's VGG, AlexNet) are switched
            to out-of-place for the call and switched back afterwards.
        method: one of ``CAPTUM_METHODS``.

    Returns:
        ``(N, C, H, W)``, detached.
    """
    from captum.attr import Deconvolution, GuidedBackprop, Saliency

    if method not in CAPTUM_METHODS:
        raise ValueError(f"captum_projection: method must be one of {CAPTUM_METHODS}, got {method!r}")
    _check_input(model, x)
    path = path_to(model, layer)
    stack = nn.Sequential(*[m for _, m in path])
    inplace = [m for _, m in path if getattr(m, "inplace", False)]
    try:
        for m in inplace:  # Captum's hooks cannot follow a ReLU that overwrites its input
            m.inplace = False
        with torch.no_grad():
            a = stack(x)  # (N, K, h, w)
        if a.ndim != 4 or not 0 <= channel < a.shape[1]:
            raise ValueError(f"captum_projection: layer {layer!r} gives {tuple(a.shape)}; "
                             f"channel={channel} is not a map of it")
        N, K, h, w = a.shape
        flat = a[:, channel].flatten(1).argmax(1)  # (N,): the strongest unit of the map in each image
        target = (channel * h * w + flat).tolist()
        algorithm = {"deconvolution": Deconvolution, "guided_backprop": GuidedBackprop, "gradient": Saliency}[method]
        kwargs = {"abs": False} if method == "gradient" else {}
        x = x.detach().clone().requires_grad_(True)  # Captum warns when it has to switch gradients on itself
        with warnings.catch_warnings():  # Captum announces its (temporary) ReLU hooks on every call
            warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
            attr = algorithm(_UnitOutput(stack)).attribute(x, target=target, **kwargs)  # (N, C, H, W)
    finally:
        for m in inplace:
            m.inplace = True
    value = a[:, channel].flatten(1).gather(1, flat[:, None]).view(N, 1, 1, 1)
    return (attr * value).detach()
