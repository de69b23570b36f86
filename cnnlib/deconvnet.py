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

**A rule on autograd.** Unpooling at the switches is the gradient of max-pooling, the transposed convolution
is the gradient of a convolution with respect to its input, and every other linear operation's gradient is
its transpose too. Only two steps are not gradients: the rectifier (the deconvnet rectifies the signal
itself, ``max(r, 0)``, where the gradient would mask it with the forward pattern ``[z > 0]``) and contrast
normalization (passed through). So :func:`project` runs the image forward along the model's ``torch.fx``
graph (the model itself is not changed) with each rectifier swapped for a function whose backward is
``max(r, 0)``, each ``LocalResponseNorm`` for one whose backward is the identity, and, for ``ties="spread"``,
each max-pooling for one whose backward is :func:`unpool_spread`; then it takes one ``torch.autograd.grad``
from the chosen unit. :func:`unpool`, :func:`unpool_spread` and :func:`conv_transpose` are the steps written
out by hand (Chapter 5 builds a projection from them and checks it against :func:`project`).

**Any CNN.** Any model that ``torch.fx`` can trace (a model whose own ``forward`` cannot be traced, like
ZFNet-small's with its input check, is traced through its ``.features``), as long as every operation from the
input to the chosen layer is one of these (their deconvnet step on the way down, as autograd takes it):

==============================================  =====================================================
forward operation                               deconvnet step on the way down
==============================================  =====================================================
convolution (any stride, padding incl.          transposed convolution with the same filters,
``"same"``, dilation, ``groups``/depthwise)     groups, stride and dilation; the bias is dropped
BatchNorm in eval mode, ``γ(x − μ)/σ + β``      the transposed per-channel scale ``r·γ/σ``; the shift is
                                                dropped, as biases are
ReLU, ReLU6, ``F.relu`` (in place or not)       ``max(r, 0)``: the signal itself is rectified; the forward
                                                mask is ignored (this is *not* the gradient)
max-pooling, adaptive max-pooling               unpooling at the switches (``ties`` below)
average / adaptive average pooling, mean        the transposed linear map (each value spread evenly
                                                back over its window)
residual addition ``y = a + b``                 the same signal goes down both branches, and where two
                                                branches meet again their signals add up
concatenation along channels                    each input gets its own slice of the signal
flatten / view, fully connected ``W x + b``     reshape back; ``Wᵀ r`` (bias dropped)
zero padding, dropout (eval), identity, LRN     crop; pass through
==============================================  =====================================================

Anything else on the way down (SiLU, sigmoid gates, attention, a product of two signals) raises a
``TypeError`` that names the module. Modules called several times in one forward pass (ResNet's ReLUs) are
handled call by call; a layer name means the module's *last* call, as in :class:`cnnlib.hooks.LayerOutputs`.

:func:`captum_projection` takes the same unit back with Captum's ``Deconvolution``, ``GuidedBackprop`` or
``Saliency`` (the plain gradient), to compare the rules at the ReLUs (for ``nn.Sequential`` stacks).

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

import functools
import warnings
from dataclasses import dataclass, field
from types import SimpleNamespace

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from . import checks
from . import graph as graphs
from .layers import pair, pool_windows

TIES = ("first", "spread")


# ---------------------------------------------------------------------------------------------------------------
# The three operations (and the tie rule), usable on their own
# ---------------------------------------------------------------------------------------------------------------

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


def _conv_padding(padding, kernel: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int, int, int]:
    """A convolution's zero padding as ``(top, bottom, left, right)``; ``"same"`` pads ``d·(k − 1)`` in all,
    the smaller half before (as PyTorch does), ``"valid"`` nothing."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        tot = [dilation[d] * (kernel[d] - 1) for d in range(2)]
        return (tot[0] // 2, tot[0] - tot[0] // 2, tot[1] // 2, tot[1] - tot[1] // 2)
    p = pair(padding)
    return (p[0], p[0], p[1], p[1])


def conv_transpose(r: torch.Tensor, weight: torch.Tensor, size: tuple[int, int], stride=1, padding=0,
                   dilation=1, groups: int = 1) -> torch.Tensor:
    """The deconvnet's filtering step for a convolution with filters ``weight`` ``(O, C/groups, kH, kW)``:
    ``r`` ``(N, O, h, w)`` painted back with the same filters onto the convolution's input ``(N, C, *size)``.

    The signal is taken back onto the zero-padded input (transposed convolution with the same stride,
    dilation and groups; ``output_padding`` covers the rows a stride skipped at the end) and the padding is
    cut off again. ``padding``: an int, a pair, ``"same"`` or ``"valid"``."""
    s, d, k = pair(stride), pair(dilation), tuple(weight.shape[2:])
    top, bottom, left, right = _conv_padding(padding, k, d)
    padded = (size[0] + top + bottom, size[1] + left + right)
    covered = [(r.shape[2 + i] - 1) * s[i] + d[i] * (k[i] - 1) + 1 for i in range(2)]
    out_pad = tuple(padded[i] - covered[i] for i in range(2))
    full = F.conv_transpose2d(r, weight, None, s, 0, out_pad, groups, d)  # (N, C, *padded)
    return full[:, :, top: top + size[0], left: left + size[1]]


def deconv(r: torch.Tensor, conv: nn.Conv2d, size: tuple[int, int]) -> torch.Tensor:
    """Filter ``r`` ``(N, O, h, w)`` with the transposed filters of ``conv``, back to its input size
    ``(N, C, *size)``."""
    return conv_transpose(r, conv.weight, size, conv.stride, conv.padding, conv.dilation, conv.groups)


# ---------------------------------------------------------------------------------------------------------------
# The deconvnet's rules as autograd functions: the swaps
# ---------------------------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------------------------
# Tracing a model and recognising its operations
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class Traced:
    """A model's forward pass as a ``torch.fx`` graph; ``prefix`` is prepended to module names when only a
    part of the model (its ``.features``) could be traced."""

    model: nn.Module  # the module that was traced (the model or its .features)
    graph: fx.Graph
    prefix: str = ""


def trace(model: nn.Module, fn: str = "project") -> Traced:
    """The graph of ``model`` (:func:`cnnlib.graph.trace`: kept per model and module structure, a widget
    projects again and again); if its ``forward`` cannot be traced (e.g. it checks the input's shape), the graph
    of ``model.features``."""
    try:
        return Traced(model, graphs.trace(model))
    except Exception as e:  # torch.fx raises TraceError, TypeError, ... on untraceable Python
        try:
            return Traced(model.features, graphs.trace(model.features), "features.")
        except Exception:
            raise TypeError(f"{fn}: cannot trace {type(model).__name__}'s forward with torch.fx "
                            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None


@dataclass
class Op:
    """One forward operation the deconvnet can take the signal back through: its ``kind`` (``conv``, ``bn``,
    ``rect``, ``maxpool``, ``amaxpool``, ``lin`` (average pools, mean), ``fc``, ``add``, ``sub``, ``scale``,
    ``cat``, ``reshape``, ``pad``, ``pass``), the node that brings the signal in (``x``) and the parameters
    that the swaps, the checks and :func:`geometry` read (``p``)."""

    kind: str
    x: object = None
    p: dict = field(default_factory=dict)


_PASS_MODULES = (nn.Identity, nn.LocalResponseNorm, nn.Dropout, nn.Dropout2d, nn.AlphaDropout)
_PLAIN = {"view": "reshape", "reshape": "reshape", "flatten": "reshape", "contiguous": "pass", "clone": "pass",
          "adaptive_avg_pool2d": "lin", "mean": "lin", "cat": "cat", "concat": "cat"}  # functions and methods
_ARITH = {"add": "add", "iadd": "add", "sub": "sub", "isub": "sub", "mul": "mul", "imul": "mul",
          "div": "div", "truediv": "div", "itruediv": "div"}


def _bind(names: list[tuple[str, object]], args, kwargs) -> dict:
    """Positional and keyword arguments of a call, as a dict over ``names`` (``(name, default)`` pairs)."""
    out = {n: d for n, d in names}
    out.update({n: a for (n, _), a in zip(names, args)}, **kwargs)
    return out


def _where(node: fx.Node, prefix: str) -> str:
    """A readable place of a graph node: its module (from fx's module stack) or its own name."""
    if node.op == "call_module":
        return f"module {prefix + node.target!r} ({node.meta.get('_type', '')})".replace(" ()", "")
    stack = node.meta.get("nn_module_stack") or {}
    scope = next(reversed(stack.values()))[0] if stack else ""
    what = getattr(node.target, "__name__", str(node.target))
    return f"{what!r}" + (f" in module {prefix + scope!r}" if scope else " in the model's forward")


def _classify(node: fx.Node, mod: nn.Module | None, dep: set, fn: str) -> Op | None:
    """The :class:`Op` of a graph node that carries the signal (``dep``: the nodes that do), or ``None`` if the
    deconvnet has no step for it."""
    args, kwargs = node.args, node.kwargs
    x = args[0] if args else next(iter(kwargs.values()), None)
    if mod is not None:
        if isinstance(mod, nn.Conv2d) and mod.padding_mode == "zeros":
            return Op("conv", x, dict(weight=mod.weight, stride=mod.stride, padding=mod.padding,
                                      dilation=mod.dilation, groups=mod.groups))
        if isinstance(mod, nn.BatchNorm2d):
            if mod.running_var is None:
                raise ValueError(f"{fn}: BatchNorm {node.target!r} must use running statistics "
                                 "(track_running_stats=True): with batch statistics its deconvnet step is not defined")
            return Op("bn", x)
        if isinstance(mod, nn.ReLU) or (isinstance(mod, nn.Hardtanh) and mod.min_val == 0):  # ReLU6 is a Hardtanh
            return Op("rect", x, dict(hi=None if isinstance(mod, nn.ReLU) else float(mod.max_val)))
        if isinstance(mod, nn.MaxPool2d) and not mod.return_indices:
            return Op("maxpool", x, dict(kernel_size=mod.kernel_size, stride=mod.stride, padding=mod.padding,
                                         dilation=mod.dilation, ceil_mode=mod.ceil_mode))
        if isinstance(mod, nn.AdaptiveMaxPool2d) and not mod.return_indices:
            return Op("amaxpool", x, dict(output_size=mod.output_size))
        if isinstance(mod, nn.AvgPool2d):
            return Op("lin", x, dict(kernel_size=mod.kernel_size, stride=mod.stride or mod.kernel_size,
                                     padding=mod.padding))
        kinds = [(nn.AdaptiveAvgPool2d, "lin"), (nn.Linear, "fc"), ((nn.Flatten, nn.Unflatten), "reshape"),
                 ((nn.ZeroPad2d, nn.ConstantPad2d), "pad"), (_PASS_MODULES, "pass")]
        kind = next((k for t, k in kinds if isinstance(mod, t)), None)
        return Op(kind, x, dict(pad=list(mod.padding)) if kind == "pad" else {}) if kind else None
    name = (node.target if node.op == "call_method" else getattr(node.target, "__name__", "")).strip("_")
    if name in _PLAIN:
        return Op(_PLAIN[name], x)
    if name in _ARITH:  # a + b, a − b: the signal down both; a · c, a / c: c must be a constant
        kind, b = _ARITH[name], args[1] if len(args) > 1 else kwargs.get("other")
        sig = [isinstance(v, fx.Node) and v in dep for v in (x, b)]
        if kind in ("mul", "div") and (sig[1] if kind == "div" else all(sig)):
            return None  # a product of two signals (a gate, attention), or a division by one
        return Op("scale" if kind in ("mul", "div") else kind, x)
    if name in ("conv2d", "linear"):
        w = _bind([("input", None), ("weight", None), ("bias", None), ("stride", 1), ("padding", 0),
                   ("dilation", 1), ("groups", 1)], args, kwargs)
        if isinstance(w["weight"], fx.Node) and w["weight"] in dep:
            return None
        return Op("fc", x) if name == "linear" else Op("conv", w["input"], {
            k: w[k] for k in ("weight", "stride", "padding", "dilation", "groups")})
    if name in ("relu", "relu6", "hardtanh"):
        b = _bind([("input", None), ("min_val", -1.0), ("max_val", 1.0)], args, kwargs) if name == "hardtanh" \
            else dict(input=x, min_val=0, max_val=6.0 if name == "relu6" else None)
        return Op("rect", b["input"], dict(hi=b["max_val"])) if b["min_val"] == 0 else None
    if name == "max_pool2d":
        b = _bind([("input", None), ("kernel_size", None), ("stride", None), ("padding", 0), ("dilation", 1),
                   ("ceil_mode", False), ("return_indices", False)], args, kwargs)
        return None if b.pop("return_indices") else Op("maxpool", b.pop("input"), b)
    if name == "adaptive_max_pool2d":
        b = _bind([("input", None), ("output_size", None), ("return_indices", False)], args, kwargs)
        return None if b.pop("return_indices") else Op("amaxpool", b.pop("input"), b)
    if name == "avg_pool2d":
        b = _bind([("input", None), ("kernel_size", None), ("stride", None), ("padding", 0)], args, kwargs)
        return Op("lin", b["input"], dict(kernel_size=b["kernel_size"], stride=b["stride"] or b["kernel_size"],
                                          padding=b["padding"]))
    if name == "pad":
        b = _bind([("input", None), ("pad", None), ("mode", "constant")], args, kwargs)
        return Op("pad", b["input"], dict(pad=list(b["pad"]))) if b["mode"] == "constant" else None
    if name == "dropout":
        b = _bind([("input", None), ("p", 0.5), ("training", True)], args, kwargs)
        return None if b["training"] else Op("pass", b["input"])
    if name == "batch_norm":
        b = _bind([("input", None), ("running_mean", None), ("running_var", None), ("weight", None),
                   ("bias", None), ("training", False)], args, kwargs)
        if b["training"] or b["running_var"] is None:
            raise ValueError(f"{fn}: F.batch_norm at {_where(node, '')} uses batch statistics (training=True); "
                             "its deconvnet step is not defined")
        return Op("bn", b["input"])
    return None


# ---------------------------------------------------------------------------------------------------------------
# Finding a layer in the graph, the forward pass with the swaps, and one autograd pass back down
# ---------------------------------------------------------------------------------------------------------------

def _layer_node(tr: Traced, layer: str, fn: str) -> tuple[fx.Node, str]:
    """The graph node whose value is the output of ``layer`` (a module's full or unique short name): the
    module's last call, or, for a module fx traced through (a block), the last node computed inside it."""
    if not isinstance(layer, str):
        raise TypeError(f"{fn}: expected layer to be a module name (str), got {type(layer).__name__}")
    names = [n for n, _ in tr.model.named_modules() if n]
    full = [tr.prefix + n for n in names]
    if layer in full:
        name = names[full.index(layer)]
    else:
        short = [n for n, f in zip(names, full) if f.split(".")[-1] == layer]
        if len(short) != 1:
            what = "ambiguous" if short else "unknown"
            shown = full if len(full) <= 40 else full[:20] + ["..."] + full[-10:]
            raise ValueError(f"{fn}: {what} layer {layer!r}; expected one of {shown}")
        name = short[0]
    last = graphs.layer_node(tr.graph, {name})
    if last is None:
        raise ValueError(f"{fn}: layer {layer!r} is never reached in the forward pass of {type(tr.model).__name__}")
    return last, tr.prefix + name


def _ancestors(node: fx.Node) -> list[fx.Node]:
    """``node`` and every node it depends on, in graph (forward) order."""
    seen, todo = {node}, [node]
    while todo:
        for a in todo.pop().all_input_nodes:
            if a not in seen:
                seen.add(a)
                todo.append(a)
    return [n for n in node.graph.nodes if n in seen]


def _call(node: fx.Node, env: dict, model: nn.Module):
    """Run one graph node as the model would, on the values in ``env``."""
    args, kwargs = fx.node.map_arg((node.args, node.kwargs), lambda n: env[n])
    if node.op == "call_module":
        return model.get_submodule(node.target)(*args, **kwargs)
    if node.op == "call_function":
        return node.target(*args, **kwargs)
    return getattr(args[0], node.target)(*args[1:], **kwargs)


@dataclass
class Record:
    """The forward pass from ``input`` to the layer with the deconvnet's swaps: the path of graph nodes, the
    operation of each node that carries the signal, the layer's ``output`` (in autograd's graph when grad mode
    is on) and a copy of it (``activation``), and per max-pool its switches (``ties="first"``) or its input
    (``ties="spread"``), by node name."""

    traced: Traced
    target: fx.Node
    path: list  # [fx.Node] from the input to the target, forward order
    ops: dict  # {node: Op}
    input: torch.Tensor  # the images, the leaf autograd takes the signal back to
    output: torch.Tensor | None = None
    activation: torch.Tensor | None = None
    switches: dict = field(default_factory=dict)
    pool_inputs: dict = field(default_factory=dict)


def record(model: nn.Module, x: torch.Tensor, layer: str, ties: str = "first", fn: str = "project") -> Record:
    """Run ``x`` through ``model`` up to ``layer`` along the traced graph, checking that every operation on
    the way has a deconvnet step and swapping in the deconvnet's rules (see the module's docstring)."""
    checks.one_of(fn, ties, TIES, "ties")
    tr = trace(model, fn)
    target, _ = _layer_node(tr, layer, fn)
    path = _ancestors(target)
    first = next(n for n in path if n.op == "placeholder")
    rec = Record(tr, target, path, {}, x.detach().requires_grad_(torch.is_grad_enabled()))
    env, dep = {first: rec.input}, {first}
    for node in path:
        if node.op == "placeholder" and node is not first:
            if not node.args:
                raise TypeError(f"{fn}: the model's forward takes more than one input ({node.name!r})")
            env[node] = node.args[0]  # an argument with a default value
        elif node.op == "get_attr":
            env[node] = functools.reduce(getattr, node.target.split("."), tr.model)
        if node.op not in ("call_module", "call_function", "call_method"):
            continue
        carries = any(a in dep for a in node.all_input_nodes)
        mod = tr.model.get_submodule(node.target) if node.op == "call_module" else None
        if mod is not None:
            node.meta["_type"] = type(mod).__name__
        op = _classify(node, mod, dep, fn) if carries else None
        if op is None:
            env[node] = _call(node, env, tr.model)
            if carries and isinstance(env[node], torch.Tensor):
                raise TypeError(f"{fn}: the deconvnet cannot take the signal back through {_where(node, tr.prefix)} "
                                "on the way to layer " f"{layer!r}; it knows convolutions, BatchNorm (eval), "
                                "ReLU/ReLU6, max/average pooling, additions, concatenations, flatten, linear "
                                "layers, padding and dropout")
            continue
        v, p = env.get(op.x), op.p
        if op.kind == "conv":
            w = env[p["weight"]] if isinstance(p["weight"], fx.Node) else p["weight"]
            if v.ndim != 4 or v.shape[1] != w.shape[1] * p["groups"]:
                where = " (the network's input)" if op.x is first else ""
                raise ValueError(f"{fn}: {_where(node, tr.prefix)} takes {w.shape[1] * p['groups']}-channel "
                                 f"input{where}, got shape {tuple(v.shape)}")
        if op.kind == "rect":
            env[node] = _Rectify.apply(v, p["hi"])
        elif op.kind == "pass" and mod is not None:
            env[node] = _PassDown.apply(v, mod)
        elif op.kind in ("maxpool", "amaxpool") and ties == "spread":
            if op.kind == "amaxpool" or pair(p["dilation"]) != (1, 1):
                what = "is not available for adaptive max-pooling" if op.kind == "amaxpool" else \
                    "needs max-pooling without dilation"
                raise ValueError(f"{fn}: ties='spread' {what} ({_where(node, tr.prefix)})")
            rec.pool_inputs[node.name] = v.detach()
            env[node] = _SpreadPool.apply(v, SimpleNamespace(**p))
        elif op.kind in ("maxpool", "amaxpool"):
            pool = F.max_pool2d if op.kind == "maxpool" else F.adaptive_max_pool2d
            env[node], rec.switches[node.name] = pool(v, **p, return_indices=True)
        else:
            env[node] = _call(node, env, tr.model)
        rec.ops[node] = op
        dep.add(node)
    if target not in dep:
        raise ValueError(f"{fn}: layer {layer!r} does not depend on the input image")
    rec.output, rec.activation = env[target], env[target].detach().clone()
    return rec


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
    r = torch.zeros_like(a)
    rows = torch.arange(N, device=a.device)
    if start is not None:
        start = checks.number(fn, start, "start")
    # keep the one activation (or the start value), zero the rest
    r[:, channel].view(N, -1)[rows, flat] = fmap[rows, flat] if start is None else start
    return torch.autograd.grad(rec.output, rec.input, r)[0]  # (N, C, H, W)


@torch.no_grad()
def tied_windows(model: nn.Module, x: torch.Tensor, layer: str | None = None) -> dict[str, float]:
    """For each max-pooling on the way from the input to ``layer`` (default: every max-pooling of the model),
    the fraction of its windows, over the images ``x``, whose maximum is reached at two or more positions:
    the windows where the switch is a convention rather than a place (see ``ties`` in :func:`project`).

    Returns ``{pooling module's name (or the function's node name): fraction}`` in forward order."""
    fn = "tied_windows"
    x = _prepare(fn, model, x)
    if layer is None:
        tr = trace(model, fn)
        pools = [n for n in tr.graph.nodes if (n.op == "call_module" and isinstance(
            tr.model.get_submodule(n.target), nn.MaxPool2d)) or getattr(n.target, "__name__", "") in (
            "max_pool2d", "_max_pool2d", "max_pool2d_with_indices")]
        if not pools:
            return {}
        last = [n for n in tr.graph.nodes if n in set(pools)][-1]
        layer = tr.prefix + last.target if last.op == "call_module" else None
        if layer is None:
            raise ValueError(f"{fn}: give layer= for a model whose last max-pooling is functional")
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


@dataclass(frozen=True)
class Geometry:
    """Where the units of a layer look in the input: receptive field ``size``, ``jump`` (stride in input
    pixels) and ``padding`` (offset of unit 0's field), each ``(rows, columns)``; ``whole=True`` when a unit
    sees the whole image (after global pooling, flatten or a fully connected layer)."""

    size: tuple[int, int]
    jump: tuple[int, int]
    padding: tuple[int, int]
    whole: bool = False


def geometry(model: nn.Module, layer: str, fn: str = "receptive_field") -> Geometry:
    """The receptive field of ``layer``'s units from the traced graph: through a convolution or pooling with
    kernel ``k`` (dilation ``d``), stride ``s`` and padding ``p`` (before the first row),
    ``R ← R + d(k − 1)·J``, ``P ← P + p·J``, ``J ← J·s``; zero padding adds to ``P``; where branches meet
    (addition, concatenation) the fields are united; global pooling, flatten and linear layers see everything."""
    tr = trace(model, fn)
    target, _ = _layer_node(tr, layer, fn)
    path = _ancestors(target)
    start = next(n for n in path if n.op == "placeholder")
    geo = {start: ((1, 1), (1, 1), (0, 0), False)}
    for node in path:
        ins = [a for a in node.all_input_nodes if a in geo]
        if node is start or not ins:
            continue
        mod = tr.model.get_submodule(node.target) if node.op == "call_module" else None
        op = _classify(node, mod, set(geo), fn)
        if op is None:  # size(), getattr, ...: not on the signal's way; carry the field along
            geo[node] = geo[ins[0]]
            continue
        R, J, P = (list(v) for v in geo[ins[0]][:3])
        whole = any(geo[a][3] for a in ins)
        if len(ins) > 1:  # branches meet: the union of the fields (they share the jump)
            lo = [min(-geo[a][2][d] for a in ins) for d in range(2)]
            hi = [max(-geo[a][2][d] + geo[a][0][d] - 1 for a in ins) for d in range(2)]
            R, P = [hi[d] - lo[d] + 1 for d in range(2)], [-lo[d] for d in range(2)]
        kind, p = op.kind, op.p
        if kind == "conv" or kind == "maxpool" or (kind == "lin" and "kernel_size" in p):
            if kind == "conv":
                w = p["weight"]
                w = functools.reduce(getattr, w.target.split("."), tr.model) if isinstance(w, fx.Node) else w
                k, d = tuple(w.shape[2:]), pair(p["dilation"])
                top, _, left, _ = _conv_padding(p["padding"], k, d)
                pad = (top, left)
            else:
                k, pad = pair(p["kernel_size"]), pair(p["padding"])
                d = pair(p.get("dilation", 1))
            s = pair(p["stride"] or p["kernel_size"])
            for i in range(2):
                R[i] += d[i] * (k[i] - 1) * J[i]
                P[i] += pad[i] * J[i]
                J[i] *= s[i]
        elif kind == "pad":
            P = [P[0] + p["pad"][2] * J[0], P[1] + p["pad"][0] * J[1]]
        elif kind in ("lin", "amaxpool", "fc", "reshape"):
            whole = True
        geo[node] = (tuple(R), tuple(J), tuple(P), whole)
    R, J, P, whole = geo[target]
    return Geometry(R, J, P, whole)


# ---------------------------------------------------------------------------------------------------------------
# Captum's versions of the same unit (nn.Sequential stacks)
# ---------------------------------------------------------------------------------------------------------------

_SEQ_PASS = (nn.LocalResponseNorm, nn.Dropout, nn.Identity)
_SEQ_SUPPORTED = (nn.Conv2d, nn.ReLU, nn.MaxPool2d) + _SEQ_PASS


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
        if not isinstance(m, _SEQ_SUPPORTED):
            raise TypeError(f"deconvnet: cannot invert layer {name!r} of type {type(m).__name__}; "
                            f"supported: Conv2d, ReLU, MaxPool2d (LocalResponseNorm, Dropout, Identity pass through)")
        if isinstance(m, nn.Conv2d) and (m.groups != 1 or m.dilation != (1, 1) or m.padding_mode != "zeros"):
            raise TypeError(f"deconvnet: layer {name!r}: only plain convolutions (groups=1, dilation=1, zero padding)")
        if isinstance(m, nn.MaxPool2d) and (m.dilation not in (1, (1, 1)) or m.return_indices):
            raise TypeError(f"deconvnet: layer {name!r}: only plain max-pooling (dilation=1)")
    return path


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
    x = _prepare("captum_projection", model, x)
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
