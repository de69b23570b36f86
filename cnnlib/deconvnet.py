"""The deconvnet of Zeiler & Fergus (ECCV 2014, Sec. 2.1, Fig. 1): one activation mapped back to pixel space.

The image goes forward once, recording at every max-pooling the *switches* (where each maximum came from).
Then every activation of the chosen layer but one is set to zero, and the signal goes back down through three
operations that undo the forward ones as far as they can be undone:

* **unpool** — each value goes back to its switch location, zeros elsewhere (overlapping windows add up);
* **rectify** — ``r ← max(r, 0)``, as the forward signal was rectified;
* **filter** — a convolution with ``w[o, c, u, v]`` becomes the transposed convolution with the same filters:
  ``r_in[c, s·i + u − p, s·j + v − p] += w[o, c, u, v] · r_out[o, i, j]``.

Nothing is learned and contrast normalization is passed through. The result, shaped like the image, is the
pattern in pixels that the unit responded to.

**A rule on autograd.** Unpooling at the switches is the gradient of max-pooling, the transposed convolution
the gradient of a convolution, and every other linear step's gradient is its transpose too. Only the rectifier
(``max(r, 0)``, where the gradient masks with the forward pattern ``[z > 0]``) and contrast normalization
(passed through) are not gradients. So :func:`project` runs the image along the model's ``torch.fx`` graph
(:mod:`cnnlib.graph`; the model is not changed) with each rectifier swapped for a function whose backward is
``max(r, 0)``, each ``LocalResponseNorm`` for one whose backward is the identity and, for ``ties="spread"``,
each max-pooling for one whose backward is :func:`unpool_spread`, and takes one ``torch.autograd.grad`` from
the unit. :func:`unpool`, :func:`unpool_spread` and :func:`conv_transpose` are the steps written out by hand
(Chapter 5 builds a projection from them and checks it against :func:`project`).

**Any CNN** that ``torch.fx`` can trace (else its ``.features``, as for ZFNet-small with its input check),
as long as every operation from the input to the layer is one of these:

==============================================  =====================================================
forward operation                               deconvnet step on the way down
==============================================  =====================================================
convolution (any stride, padding incl.          transposed convolution with the same filters,
``"same"``, dilation, ``groups``/depthwise)     groups, stride and dilation; the bias is dropped
BatchNorm in eval mode, ``γ(x − μ)/σ + β``      the per-channel scale ``r·γ/σ``; the shift is dropped
ReLU, ReLU6, ``F.relu`` (in place or not)       ``max(r, 0)``: the signal itself is rectified; the forward
                                                mask is ignored (this is *not* the gradient)
max-pooling, adaptive max-pooling               unpooling at the switches (``ties`` below)
average / adaptive average pooling, mean        the transposed linear map (each value spread evenly
                                                back over its window)
residual addition ``y = a + b``                 the signal goes down both branches; where they meet
                                                again their signals add up
concatenation along channels                    each input gets its own slice of the signal
flatten / view, fully connected ``W x + b``     reshape back; ``Wᵀ r`` (bias dropped)
zero padding, dropout (eval), identity, LRN     crop; pass through
==============================================  =====================================================

Anything else on the way (SiLU, sigmoid gates, a product of two signals) raises a ``TypeError`` naming the
module. A module called several times (ResNet's ReLUs) is handled call by call; a layer name means its *last*
call, as in :class:`cnnlib.hooks.LayerOutputs`. :func:`cnnlib.sanity.captum_projection` takes the same unit
back with Captum's ``Deconvolution``, ``GuidedBackprop`` or ``Saliency``, to compare the rules at the ReLUs.

**Ties.** A window whose values tie has no single switch. After a ReLU ties are common: a window where the
layer below is silent holds only zeros. PyTorch (like Caffe and Captum) records the *first* tied position,
the window's top-left corner; ``ties="first"`` (the default) keeps that convention. On a network silent over
most of the image (a VGG16 fine-tuned for edge detection is silent on 60-90 % of its pooling windows) those
corners form a lattice, and the projection becomes a fine grating that has nothing to do with the image.
``ties="spread"`` gives each of the ``t`` tied positions ``1/t`` of the value, the average of the unpoolings
over every choice of switch; where the maximum is unique it is the same as ``"first"``.
"""

from __future__ import annotations

import functools
import weakref
from dataclasses import dataclass, field
from types import SimpleNamespace

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from . import checks
from . import graph as graphs
from .layers import conv_padding, local_response_norm, pair, pool_windows

TIES = ("first", "spread")


# --- The three operations (and the tie rule), usable on their own --------------------------------------------

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


def unpool_spread(x: torch.Tensor, pool: nn.MaxPool2d, r: torch.Tensor) -> torch.Tensor:
    """Unpool ``r`` ``(N, C, h, w)`` onto the grid of ``pool``'s input ``x`` ``(N, C, H, W)``, giving each of the
    ``t`` positions that tie for a window's maximum ``r / t`` (overlapping windows add up, as in :func:`unpool`)."""
    N, C, H, W = x.shape
    h, w = r.shape[2:]
    windows = pool_windows(x, pool.kernel_size, pool.stride, pool.padding, pool.ceil_mode, fn="unpool_spread")
    windows = windows.flatten(2, 3).transpose(2, 3)  # (N, C, k·k, h·w)
    k, s = pair(pool.kernel_size), pair(pool.stride or pool.kernel_size)
    span = ((h - 1) * s[0] + k[0], (w - 1) * s[1] + k[1])  # rows and columns the windows cover
    tied = (windows == windows.amax(2, keepdim=True)).to(r.dtype)  # (N, C, k·k, h·w): the maxima of each window
    share = tied / tied.sum(2, keepdim=True) * r.reshape(N, C, 1, h * w)
    p = pair(pool.padding)
    out = F.fold(share.reshape(N, C * k[0] * k[1], h * w), span, k, stride=s)  # sums overlaps
    full = out.new_zeros(N, C, H, W)
    rows, cols = min(H, span[0] - p[0]), min(W, span[1] - p[1])  # from padded coordinates back to x's
    full[:, :, :rows, :cols] = out[:, :, p[0]: p[0] + rows, p[1]: p[1] + cols]
    return full


def conv_transpose(r: torch.Tensor, weight: torch.Tensor, size: tuple[int, int], stride=1, padding=0,
                   dilation=1, groups: int = 1) -> torch.Tensor:
    """The deconvnet's filtering step for a convolution with filters ``weight`` ``(O, C/groups, kH, kW)``:
    ``r`` ``(N, O, h, w)`` painted back with the same filters onto the convolution's input ``(N, C, *size)``.

    The signal is taken back onto the zero-padded input (transposed convolution with the same stride,
    dilation and groups; ``output_padding`` covers the rows a stride skipped at the end) and the padding is
    cut off again. ``padding``: an int, a pair, ``"same"`` or ``"valid"``."""
    s, d, k = pair(stride), pair(dilation), tuple(weight.shape[2:])
    top, bottom, left, right = conv_padding(padding, k, d)
    padded = (size[0] + top + bottom, size[1] + left + right)
    covered = [(r.shape[2 + i] - 1) * s[i] + d[i] * (k[i] - 1) + 1 for i in range(2)]
    out_pad = tuple(padded[i] - covered[i] for i in range(2))
    full = F.conv_transpose2d(r, weight, None, s, 0, out_pad, groups, d)  # (N, C, *padded)
    return full[:, :, top: top + size[0], left: left + size[1]]


def deconv(r: torch.Tensor, conv: nn.Conv2d, size: tuple[int, int]) -> torch.Tensor:
    """Filter ``r`` ``(N, O, h, w)`` with the transposed filters of ``conv``, back to its input size
    ``(N, C, *size)``."""
    return conv_transpose(r, conv.weight, size, conv.stride, conv.padding, conv.dilation, conv.groups)


# --- The deconvnet's rules as autograd functions: the swaps --------------------------------------------------

class _Rectify(torch.autograd.Function):
    """A rectifier ``clamp(x, 0, hi)`` (ReLU: ``hi=None``, ReLU6: 6) forward; back, the deconvnet's rule
    ``max(r, 0)`` whatever the forward input was (the gradient would be ``r·[0 < x < hi]``)."""

    @staticmethod
    def forward(ctx, x, hi):
        return x.clamp(0.0, hi)  # out of place, also for an in-place ReLU

    @staticmethod
    def backward(ctx, r):
        return r.clamp(min=0), None


class _PassDown(torch.autograd.Function):
    """``f(x)`` forward (contrast normalization); back, the signal unchanged."""

    @staticmethod
    def forward(ctx, x, f):
        return f(x)

    @staticmethod
    def backward(ctx, r):
        return r, None


class _SpreadPool(torch.autograd.Function):
    """Max-pooling forward; back, :func:`unpool_spread` (tied maxima share a window's value equally)."""

    @staticmethod
    def forward(ctx, x, pool):
        ctx.save_for_backward(x)
        ctx.pool = pool
        return F.max_pool2d(x, pool.kernel_size, pool.stride, pool.padding, pool.dilation, pool.ceil_mode)

    @staticmethod
    def backward(ctx, r):
        return unpool_spread(ctx.saved_tensors[0], ctx.pool, r), None


# --- The forward pass to the layer with the swaps, and one autograd pass back down ---------------------------

Traced, Op, trace = graphs.Traced, graphs.Op, graphs.traced  # the traced model and what each node does
_PLANS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # traced module -> (graph, {layer: plan})
_CHANNELS_LAST = torch.channels_last  # the maps from the first pooling on: much faster max-pooling on the CPU


@dataclass
class Record:
    """The forward pass from ``input`` to the layer with the deconvnet's swaps: the path of graph nodes, the
    :class:`cnnlib.graph.Op` of each node that carries the signal, the layer's ``output`` (in autograd's graph
    when grad mode is on) and a copy of it (``activation``), and per max-pool its switches (``ties="first"``)
    or its input (``ties="spread"``), by node name."""

    traced: Traced
    target: fx.Node
    path: list  # [fx.Node] from the input to the target, forward order
    ops: dict  # {node: Op}
    input: torch.Tensor  # the images, the leaf autograd takes the signal back to
    output: torch.Tensor | None = None
    activation: torch.Tensor | None = None
    switches: dict = field(default_factory=dict)
    pool_inputs: dict = field(default_factory=dict)


def _plan(tr: Traced, layer: str, fn: str) -> tuple[fx.Node, list, dict]:
    """The layer's node, the path to it and each signal-carrying node's :class:`Op` (``None`` for one without
    a deconvnet step), kept per traced graph and layer: a widget projects again and again."""
    graph, plans = _PLANS.get(tr.model, (None, {}))
    if graph is not tr.graph:
        plans = {}
        _PLANS[tr.model] = (tr.graph, plans)
    if layer not in plans:
        target = graphs.find_layer(tr, layer, fn)
        path = graphs.ancestors(target)
        first = next(n for n in path if n.op == "placeholder")
        ops, dep = {}, {first}
        for node in path:
            if node.op in ("call_module", "call_function", "call_method") and any(
                    a in dep for a in node.all_input_nodes):
                mod = tr.model.get_submodule(node.target) if node.op == "call_module" else None
                if mod is not None:
                    node.meta["_type"] = type(mod).__name__
                ops[node] = graphs.classify(node, mod, dep, fn)
                dep.add(node)
        plans[layer] = (target, path, ops)
    return plans[layer]


class _Swapped(fx.Interpreter):
    """Runs the path to the layer as the model would, with the deconvnet's rules swapped in (see the table)."""

    def __init__(self, tr: Traced, layer: str, ties: str, fn: str):
        super().__init__(tr.model, graph=tr.graph, garbage_collect_values=False)
        self.tr, self.layer, self.ties, self.fn = tr, layer, ties, fn

    def record(self, x: torch.Tensor) -> Record:
        target, path, ops = _plan(self.tr, self.layer, self.fn)
        self.rec = Record(self.tr, target, path, {}, x.detach().requires_grad_(torch.is_grad_enabled()))
        self.first = next(n for n in path if n.op == "placeholder")
        self.args_iter = iter([self.rec.input])
        for node in path:
            self.env[node] = self.run_node(node) if node not in ops else self.step(node, ops[node])
        if target not in ops:
            raise ValueError(f"{self.fn}: layer {self.layer!r} does not depend on the input image")
        self.rec.output = self.env[target]
        self.rec.activation = self.rec.output.detach().clone()
        return self.rec

    def run_node(self, node: fx.Node):
        if node.op == "placeholder" and node is not self.first and not node.args:
            raise TypeError(f"{self.fn}: the model's forward takes more than one input ({node.name!r})")
        return super().run_node(node)

    def step(self, node: fx.Node, op: Op | None):
        """A node that carries the signal: as the model computes it, or with the deconvnet's rule."""
        where = functools.partial(graphs.where, node, self.tr.prefix)  # for the error messages
        if op is None:
            value = self.run_node(node)
            if isinstance(value, torch.Tensor):
                raise TypeError(f"{self.fn}: the deconvnet cannot take the signal back through {where()} on the way "
                                f"to layer {self.layer!r}; it knows convolutions, BatchNorm (eval), ReLU/ReLU6, "
                                "max/average pooling, additions, concatenations, flatten, linear layers, padding "
                                "and dropout")
            return value
        self.rec.ops[node] = op
        v, p = self.env.get(op.x) if isinstance(op.x, fx.Node) else None, op.p
        if op.kind == "conv":
            w = self.env[p["weight"]] if isinstance(p["weight"], fx.Node) else \
                self.submodules[node.target].weight if node.op == "call_module" else p["weight"]
            if v.ndim != 4 or v.shape[1] != w.shape[1] * p["groups"]:
                raise ValueError(f"{self.fn}: {where()} takes {w.shape[1] * p['groups']}-channel input"
                                 f"{' (the network' + chr(39) + 's input)' if op.x is self.first else ''}, "
                                 f"got shape {tuple(v.shape)}")
        elif op.kind == "rect":
            return _Rectify.apply(v, p["hi"])
        elif op.kind == "pass" and node.op == "call_module":
            m = self.submodules[node.target]
            lrn = isinstance(m, nn.LocalResponseNorm) and v.ndim == 4
            return _PassDown.apply(v, functools.partial(local_response_norm, size=m.size, alpha=m.alpha,
                                                        beta=m.beta, k=m.k) if lrn else m)
        elif op.kind in ("maxpool", "amaxpool") and self.ties == "spread":
            if op.kind == "amaxpool" or pair(p["dilation"]) != (1, 1):
                what = "is not available for adaptive max-pooling" if op.kind == "amaxpool" else \
                    "needs max-pooling without dilation"
                raise ValueError(f"{self.fn}: ties='spread' {what} ({where()})")
            self.rec.pool_inputs[node.name] = v.detach()
            return _SpreadPool.apply(v, SimpleNamespace(**p))
        elif op.kind in ("maxpool", "amaxpool"):
            pool = F.max_pool2d if op.kind == "maxpool" else F.adaptive_max_pool2d
            out, self.rec.switches[node.name] = pool(v.contiguous(memory_format=_CHANNELS_LAST), **p,
                                                     return_indices=True)
            return out
        elif op.kind == "reshape" and isinstance(v, torch.Tensor):  # a view needs the default layout
            self.env[op.x] = v.contiguous()
        return self.run_node(node)


def record(model: nn.Module, x: torch.Tensor, layer: str, ties: str = "first", fn: str = "project") -> Record:
    """Run ``x`` through ``model`` up to ``layer`` along the traced graph, checking that every operation on
    the way has a deconvnet step and swapping in the deconvnet's rules (see the module's docstring)."""
    checks.one_of(fn, ties, TIES, "ties")
    return _Swapped(trace(model, fn), layer, ties, fn).record(x)


def _prepare(fn: str, model: nn.Module, x) -> torch.Tensor:
    """The checks every public function of this module makes: a model with parameters in eval mode, and
    finite floating-point images ``(N, C, H, W)`` of the model's dtype (moved to its device)."""
    checks.module(fn, model)
    checks.model_device(fn, model)
    checks.eval_mode(fn, model)
    checks.images(fn, x)
    return checks.to_model(fn, model, x)


def project(
    model: nn.Module,
    x: torch.Tensor,
    layer: str,
    channel: int,
    position: tuple[int, int] | torch.Tensor | None = None,
    ties: str = "first",
    start: float | None = None,
) -> torch.Tensor:
    """Project one activation of feature map ``channel`` of ``layer`` back to input space (Zeiler & Fergus 2014).

    Args:
        model: any CNN ``torch.fx`` can trace, in eval mode (see the module's table of operations):
            ZFNet-small, torchvision's AlexNet, VGG, ResNet, MobileNetV2, EfficientNet-Lite0, an ``nn.Sequential``.
        x: images ``(N, C, H, W)``, float of the model's dtype (moved to the model's device).
        layer: a module name, full or (if unique) its last part, e.g. ``"conv3"``, ``"layer2.1"``,
            ``"_blocks.5"``. The activation is that module's output (its last call).
        channel: which feature map (or, for a fully connected layer's output ``(N, K)``, which unit).
        position: ``(i, j)`` for every image, an int tensor ``(N, 2)`` (one position per image), or ``None``
            for the strongest activation of that map in each image (must be ``None`` for ``(N, K)`` outputs).
        ties: where unpooling puts a value whose window had tied maxima: ``"first"`` (PyTorch's switch, the
            first tied position) or ``"spread"`` (shared equally among them); see the module's docstring.
        start: the value the projection starts from at the unit: ``None`` for its activation (ZF's choice),
            e.g. ``1.0`` to start every image from the same value, as Captum's ``Deconvolution`` does (the
            rectifications make the result depend on that value's sign, not only its size).

    Returns:
        The reconstruction ``(N, C, H, W)``: zero everywhere the chosen unit cannot see.
    """
    fn = "project"
    x = _prepare(fn, model, x)
    checks.positive_int(fn, channel, "channel", 0)
    with torch.enable_grad(), checks.model_input(fn, x.shape):
        rec = record(model, x, layer, ties, fn)
    a = rec.activation
    if a.ndim not in (2, 4):
        raise ValueError(f"{fn}: layer {layer!r} gives {tuple(a.shape)}, expected feature maps (N, K, h, w) "
                         "or units (N, K)")
    N, K = a.shape[:2]
    if not 0 <= channel < K:
        raise ValueError(f"{fn}: layer {layer!r} has {K} feature maps, got channel={channel}")
    h, w = a.shape[2:] if a.ndim == 4 else (1, 1)
    fmap = a[:, channel].reshape(N, -1)  # (N, h·w)
    if position is None:
        flat = fmap.argmax(1)
    else:
        if a.ndim == 2:
            raise ValueError(f"{fn}: layer {layer!r} gives units (N, K) without positions; use position=None")
        pos = torch.as_tensor(position, device=a.device)
        if pos.is_floating_point() or pos.numel() not in (2, 2 * N):
            raise ValueError(f"{fn}: expected position (i, j) or an int tensor ({N}, 2), got {position!r}")
        pos = pos.long().reshape(-1, 2).expand(N, 2)
        if ((pos[:, 0] < 0) | (pos[:, 0] >= h) | (pos[:, 1] < 0) | (pos[:, 1] >= w)).any():
            raise ValueError(f"{fn}: position must lie in the {h}×{w} map of {layer!r}, got {position}")
        flat = pos[:, 0] * w + pos[:, 1]
    rows, r = torch.arange(N, device=a.device), torch.zeros_like(a)  # the one activation (or start), zeros
    r[:, channel].view(N, -1)[rows, flat] = fmap[rows, flat] if start is None else checks.number(fn, start, "start")
    return torch.autograd.grad(rec.output, rec.input, r)[0].contiguous()  # (N, C, H, W)


@torch.no_grad()
def tied_windows(model: nn.Module, x: torch.Tensor, layer: str | None = None) -> dict[str, float]:
    """For each max-pooling on the way from the input to ``layer`` (default: every max-pooling of the model),
    the fraction of its windows, over the images ``x``, whose maximum is reached at two or more positions:
    the windows where the switch is a convention rather than a place (see ``ties`` in :func:`project`).

    Returns ``{pooling module's name (or the function's node name): fraction}`` in forward order."""
    fn = "tied_windows"
    x = _prepare(fn, model, x)
    if layer is None:  # the model's last max-pooling
        tr = trace(model, fn)
        pools = [n for n in tr.graph.nodes if (n.op == "call_module" and isinstance(
            tr.model.get_submodule(n.target), nn.MaxPool2d)) or getattr(n.target, "__name__", "") in (
            "max_pool2d", "_max_pool2d", "max_pool2d_with_indices")]
        if not pools:
            return {}
        if pools[-1].op != "call_module":
            raise ValueError(f"{fn}: give layer= for a model whose last max-pooling is functional")
        layer = tr.prefix + pools[-1].target
    with checks.model_input(fn, x.shape):
        rec = record(model, x, layer, "spread", fn)
    out = {}
    for node in rec.path:
        if node.name in rec.pool_inputs:
            p = rec.ops[node].p
            windows = pool_windows(rec.pool_inputs[node.name], p["kernel_size"], p["stride"], p["padding"],
                                   p["ceil_mode"], fn=fn)  # (N, C, h, w, k·k)
            name = rec.traced.prefix + node.target if node.op == "call_module" else node.name
            out[name] = float(((windows == windows.amax(-1, keepdim=True)).sum(-1) > 1).float().mean())
    return out
