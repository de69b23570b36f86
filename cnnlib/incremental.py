"""Incremental inference: run a batch of locally changed images through a network by recomputing, layer by
layer, only the part of each feature map the change can reach (Nakandala, Kumar & Papakonstantinou,
"Incremental and Approximate Inference for Faster Occlusion-based Deep CNN Explanations", SIGMOD 2019).

A square occluder changes a window of the input. Through a convolution or pooling with kernel ``k``, stride
``s``, padding ``p`` and dilation ``d``, input rows ``[a, a + h)`` reach exactly the output rows

    o ∈ [⌈(a + p − (k − 1)·d) / s⌉, ⌊(a + h − 1 + p) / s⌋]

(columns alike); a pointwise layer (eval-mode BatchNorm, a rectifier, local response normalization) keeps the
window; a residual addition takes the union of its two windows. Everywhere else a layer's output is the clean
image's, computed once. The windows of a batch share one size (the largest, shifted inside the map where the
border cuts it) and are stacked into one tensor ``(B, C, h, w)``; once they cover the map, the layer runs on the
batch. The result equals running each occluded image through the network, up to float round-off. A window grows
by ``k − 1`` at every layer, so in ZFNet-small at 28 px a 7-px square reaches the whole map from conv3 on
(``Engine.multiply_adds`` counts the work done and saved). The maps are kept channels-last (faster small
convolutions on the CPU), and a convolution, eval-mode BatchNorm and rectifier run as one convolution
(:mod:`cnnlib.fold`).

The engine is a ``torch.fx.Interpreter`` over the graph of :func:`cnnlib.graph.trace` whose ``call_module``,
``call_function`` and ``call_method`` pass windows on. A layer it cannot do on windows runs on whole maps (the
windows pasted into the clean maps) with a one-line :class:`IncrementalFallbackWarning`, and so do the layers
after it.
"""

from __future__ import annotations

import operator
import warnings
from dataclasses import dataclass

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from . import graph as graphs
from .fold import Chain, conv_params, fold_chains
from .layers import local_response_norm, pair, separable_max_pool2d

#: The cost model: a layer whose output windows would cover more than this share of its map runs on whole maps
#: (gathering the windows' inputs costs about as much as a pooling or a depthwise convolution saves) …
WHOLE_ABOVE = 0.5
#: … but a convolution with at least ``DENSE`` multiply-adds per output value (ZFNet-small's conv2: 800) saves
#: more than the gathering costs up to this share.
WHOLE_ABOVE_DENSE = 0.9
DENSE = 64


class IncrementalFallbackWarning(UserWarning):
    """A layer was computed on whole maps, not incrementally (exact, only slower)."""


# --- Values: a window per image, or whole tensors -----------------------------------------------------------

@dataclass
class Window:
    """A feature map that differs from the clean one only in one window per image: ``data`` ``(B, C, h, w)``
    holds rows ``r[b] … r[b] + h − 1`` and columns ``c[b] … c[b] + w − 1`` of image ``b``; ``clean``
    ``(1, C, H, W)`` holds everything else. ``r``, ``c``: ``(B,)`` int64 on the CPU."""

    data: torch.Tensor
    r: torch.Tensor
    c: torch.Tensor
    clean: torch.Tensor

    @property
    def whole(self) -> bool:
        return self.data.shape[-2:] == self.clean.shape[-2:]

    @property
    def shape(self) -> torch.Size:
        return torch.Size((self.data.shape[0], *self.clean.shape[1:]))


@dataclass
class Whole:
    """A tensor computed for the whole batch ``(B, ...)``."""

    data: torch.Tensor


def _is_var(v) -> bool:
    return isinstance(v, (Window, Whole))


def _full(data: torch.Tensor, clean: torch.Tensor) -> Window:
    """A window that covers the whole map."""
    zero = torch.zeros(data.shape[0], dtype=torch.long)
    return Window(data, zero, zero, clean)


def _indices(r0: torch.Tensor, c0: torch.Tensor, h: int, w: int, dev):
    """Index tensors ``(B, 1, 1)``, ``(B, h, 1)``, ``(B, 1, w)`` of rows ``r0[b] …`` and columns ``c0[b] …``."""
    rows, cols = (r0[:, None] + torch.arange(h)).to(dev), (c0[:, None] + torch.arange(w)).to(dev)
    return torch.arange(len(r0), device=dev)[:, None, None], rows[:, :, None], cols[:, None, :]


def _block(src: torch.Tensor, r0: torch.Tensor, c0: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Rows ``r0[b] … r0[b] + h − 1``, columns ``c0[b] …`` of ``src[b]`` ``(B or 1, C, H, W)``: ``(B, C, h, w)``."""
    b, rows, cols = _indices(r0, c0, h, w, src.device)
    if src.shape[0] == 1:
        return src[0].permute(1, 2, 0)[rows, cols].permute(0, 3, 1, 2)
    return src[b, :, rows, cols].permute(0, 3, 1, 2)


def materialize(v) -> torch.Tensor:
    """The batch ``(B, C, H, W)`` of whole maps: the windows pasted into copies of the clean map."""
    if isinstance(v, Whole) or v.whole:
        return v.data
    B, (h, w) = v.data.shape[0], v.data.shape[-2:]
    out = v.clean.expand(B, *v.clean.shape[1:]).clone()  # (B, C, H, W)
    b, rows, cols = _indices(v.r, v.c, h, w, out.device)
    out[b, :, rows, cols] = v.data.permute(0, 2, 3, 1)  # (B, h, w, C)
    return out


# --- The engine ---------------------------------------------------------------------------------------------

class _Clean(fx.Interpreter):
    """Runs the graph on plain tensors and keeps every node's value (``env``); an operation that may write its
    input (``ReLU(inplace=True)``, ``+=``) works on a copy, so that the kept values stay."""

    def run_node(self, n: fx.Node):
        if not _may_write_input(self.module, n):
            return super().run_node(n)
        args, kwargs = fx.node.map_aggregate(self.fetch_args_kwargs_from_env(n), _copy)
        return getattr(self, n.op)(n.target, args, kwargs)


class Engine(fx.Interpreter):
    """The graph of ``model`` for inputs shaped like ``x`` ``(1, C, H, W)``, with every node's value on ``x``
    cached (``clean``), ready to run batches of windowed changes of ``x`` (:meth:`run`).

    ``channels_last``: keep the maps channels-last (faster convolutions; ``False`` keeps PyTorch's default
    layout, same numbers up to round-off). ``multiply_adds``: ``[done, whole]`` over all runs so far, the
    multiply-adds of convolutions and linear layers done, and those the same images would need through the
    whole network.

    Raises ``ValueError`` if ``torch.fx`` cannot trace the model, or if the traced graph does not reproduce
    the model's output on ``x``.
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, channels_last: bool = True,
                 output: torch.Tensor | None = None):
        with torch.no_grad():
            want = model(x) if output is None else output
        for fresh in (False, True):  # a kept graph first; traced again if it no longer fits the model
            try:
                graph = graphs.trace(model, fresh)
            except Exception as e:  # noqa: BLE001 — any tracing failure means: use the plain path
                raise ValueError(f"torch.fx cannot trace {type(model).__name__} ({type(e).__name__}: "
                                 f"{str(e).splitlines()[0] if str(e) else ''})") from e
            clean = _Clean(model, garbage_collect_values=False, graph=graph)
            with torch.no_grad():
                out = clean.run(x, enable_io_processing=False)
            if isinstance(out, torch.Tensor) and out.shape == want.shape and torch.allclose(out, want, 1e-5, 1e-6):
                break
        else:
            raise ValueError(f"the traced graph of {type(model).__name__} does not reproduce its output")
        super().__init__(model, graph=graph)
        self.model, self.clean, self.channels_last = model, clean.env, channels_last
        self.padded: dict = {}  # the clean maps padded for gathering, by (map, padding, fill)
        self.fallbacks: list[str] = []
        self.chains = fold_chains(model, graph, self.clean)
        self.per_output = {}  # multiply-adds per output value, by node: C_in / groups · k_h · k_w, in_features
        for node in graph.nodes:
            params = conv_params(model, self.clean, node)
            if params is not None:
                self.per_output[node] = params[0][0].numel()
            elif node.op == "call_module" and isinstance(model.get_submodule(node.target), nn.Linear):
                self.per_output[node] = model.get_submodule(node.target).in_features
        self.multiply_adds = [0, 0]  # done by :meth:`run`, and what whole images would have needed
        if channels_last:  # the maps channel-last: faster convolutions on small windows
            for node, v in self.clean.items():
                if node.op != "get_attr" and isinstance(v, torch.Tensor) and v.ndim == 4:
                    self.clean[node] = v.contiguous(memory_format=torch.channels_last)

    def node_name(self, node: fx.Node) -> str:
        if node.op == "call_module":
            return f"{node.target} ({type(self.model.get_submodule(node.target)).__name__})"
        return f"{node.name} ({getattr(node.target, '__name__', node.target)})"

    @torch.no_grad()
    def run(self, x_windows: Window, keep: fx.Node | None = None, keep_channel: int | None = None):
        """Run the batch whose input differs from the clean one in ``x_windows``; returns the output
        ``(B, ...)`` and, for ``keep``, the per-image total of channel ``keep_channel`` of that node ``(B,)``."""
        first = next(iter(self.graph.nodes))
        data = x_windows.data.contiguous(memory_format=torch.channels_last) if self.channels_last else x_windows.data
        self.keep, self.keep_channel, self.kept, self.batch = keep, keep_channel, None, data.shape[0]
        self.folded = {c: f for c, f in self.chains.items() if keep not in f.nodes[:-1]}  # keep's value: its own
        self.absorbed = {n for c, f in self.folded.items() for n in f.nodes if n is not c}
        out = super().run(Window(data, x_windows.r, x_windows.c, self.clean[first]), enable_io_processing=False)
        return (out.data if _is_var(out) else out), self.kept

    def run_node(self, n: fx.Node):
        if n in self.absorbed:  # computed with its convolution (a zero padding before it: by the convolution)
            value = self.env[n.args[0]]
        else:
            self.node = n
            # the folded chain, or by kind: placeholder, get_attr, call_module, call_function, ... (below)
            value = self._folded(self.folded[n], self.env[n.args[0]]) if n in self.folded else super().run_node(n)
        if n in self.per_output and _is_var(value):
            self.multiply_adds[0] += value.data.numel() * self.per_output[n]
            self.multiply_adds[1] += self.clean[n].numel() * self.batch * self.per_output[n]
        if n is self.keep:
            self.kept = self._channel_total(value, self.keep_channel)
        return value

    # -- each kind of node: a window in, a window out where the layer allows -----------------------------
    def _route(self, target, args, kwargs):
        """The current node's value where no window needs computing (it does not depend on the input, its
        inputs are whole, it reads a shape, its output is not a map), else ``None``."""
        n, flat = self.node, _flatten((args, kwargs))
        if not any(_is_var(a) for a in flat):
            return self.clean[n]  # does not depend on the input
        if not any(isinstance(a, Window) for a in flat):
            return Whole(self._plain(n, *_unwrap((args, kwargs))))
        v = args[0] if args else None
        if isinstance(v, Window):  # shapes and attributes of a windowed map
            if (n.op == "call_method" and target == "dim") or (target is getattr and args[1] == "ndim"):
                return 4
            if n.op == "call_method" and target == "size":
                dim = args[1] if len(args) > 1 else kwargs.get("dim")
                return v.shape if dim is None else v.shape[dim]
            if target is getattr and args[1] in ("shape", "dtype", "device"):
                return v.shape if args[1] == "shape" else getattr(v.data, args[1])
        out = self.clean[n]
        if not (isinstance(out, torch.Tensor) and out.ndim == 4):
            return self._whole(args, kwargs)
        self.single = sum(_is_var(a) for a in flat) == 1 and isinstance(v, Window)  # one windowed input, first
        return None

    def call_module(self, target, args, kwargs):
        value = self._route(target, args, kwargs)
        if value is not None:
            return value
        m, v, out = self.submodules[target], args[0], self.clean[self.node]
        kernel = _module_kernel(m) or m
        if kwargs or not self.single:
            pass
        elif isinstance(m, _POINTWISE_MODULES) and not m.training:
            return self._pointwise(v, kernel)
        elif v.whole:
            return _full(kernel(v.data), out)
        elif isinstance(m, nn.Conv2d) and conv_params(self.model, self.clean, self.node) is not None:
            return self._sliding(v, m.kernel_size, m.stride, m.padding, m.dilation, 0.0, lambda t: F.conv2d(
                t, m.weight, m.bias, m.stride, 0, m.dilation, m.groups), m, per_output=m.weight[0].numel())
        elif isinstance(m, nn.MaxPool2d) and not m.return_indices:
            k, s, p, d = pair(m.kernel_size), pair(m.stride or m.kernel_size), pair(m.padding), pair(m.dilation)
            fn = (lambda t: separable_max_pool2d(t, k, s)) if d == (1, 1) else (lambda t: F.max_pool2d(t, k, s, 0, d))
            return self._sliding(v, k, s, p, d, float("-inf"), fn, kernel)
        elif isinstance(m, nn.AvgPool2d) and m.divisor_override is None and (m.count_include_pad or m.padding == 0):
            k, s, p = pair(m.kernel_size), pair(m.stride or m.kernel_size), pair(m.padding)
            return self._sliding(v, k, s, p, 1, 0.0, lambda t: F.avg_pool2d(t, k, s, 0), m, can_overhang=False)
        elif isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            return self._adaptive(v, isinstance(m, nn.AdaptiveMaxPool2d))
        elif isinstance(m, (nn.ZeroPad2d, nn.ConstantPad2d)) and getattr(m, "value", 0) == 0:
            return self._shift(v, m.padding)
        return self._whole(args, kwargs)

    def call_function(self, f, args, kwargs):
        value = self._route(f, args, kwargs)
        if value is not None:
            return value
        v, out, rest = args[0], self.clean[self.node], _flatten((args[1:], kwargs))
        if f in _BINARY and len(args) == 2 and not kwargs:
            return self._binary(_BINARY[f], *args)
        if not self.single:
            return self._whole(args, kwargs)
        if f in _POINTWISE_FUNCTIONS and all(_constant_ok(c) for c in rest) and not (
                (f is F.dropout and kwargs.get("training", args[2] if len(args) > 2 else True))
                or (f is F.batch_norm and kwargs.get("training", args[5] if len(args) > 5 else False))):
            return self._pointwise(v, lambda t: f(t, *args[1:], **kwargs))
        if v.whole:
            return _full(f(v.data, *args[1:], **kwargs), out)
        if f is F.conv2d and (p := conv_params(self.model, self.clean, self.node)) is not None:
            w, b, s, pad, d, g = p
            return self._sliding(v, w.shape[-2:], s, pad, d, 0.0, lambda t: F.conv2d(t, w, b, s, 0, d, g),
                                 lambda t: F.conv2d(t, w, b, s, pad, d, g), per_output=w[0].numel())
        if f is F.pad:
            p = dict(zip(("pad", "mode", "value"), args[1:]), **kwargs)
            if p.get("mode", "constant") == "constant" and not p.get("value") and len(p["pad"]) == 4:
                return self._shift(v, p["pad"])
        if f in (F.adaptive_avg_pool2d, F.adaptive_max_pool2d):
            return self._adaptive(v, f is F.adaptive_max_pool2d)
        return self._whole(args, kwargs)

    def call_method(self, name, args, kwargs):
        value = self._route(name, args, kwargs)
        if value is not None:
            return value
        if name in _BINARY_METHODS and len(args) == 2 and not kwargs:
            return self._binary(_BINARY_METHODS[name], *args)
        if self.single and name in _POINTWISE_METHODS and all(_constant_ok(c) for c in _flatten((args[1:], kwargs))):
            return self._pointwise(args[0], lambda t: getattr(t, name.rstrip("_"))(*args[1:], **kwargs))
        return self._whole(args, kwargs)

    # -- the ways a node is computed ------------------------------------------------------------------------
    def _plain(self, n: fx.Node, args, kwargs):
        """``n`` on plain tensors, as the model computes it (on copies where it would write its input)."""
        if _may_write_input(self.model, n):
            args, kwargs = fx.node.map_aggregate((args, kwargs), _copy)
        return getattr(fx.Interpreter, n.op)(self, n.target, args, kwargs)

    def _whole(self, args, kwargs):
        """The current node on whole maps (the windows pasted into the clean maps first), with a note."""
        if any(isinstance(a, Window) and not a.whole for a in _flatten((args, kwargs))):
            msg = (f"incremental occlusion: {self.node_name(self.node)} is computed on whole maps, not "
                   "incrementally (exact, slower); the layers after it too")
            if msg not in self.fallbacks:
                self.fallbacks.append(msg)
                warnings.warn(msg, IncrementalFallbackWarning, stacklevel=7)  # at occlusion_maps
        a, kw = fx.node.map_aggregate((args, kwargs), lambda v: materialize(v) if _is_var(v) else v)
        return Whole(self._plain(self.node, a, kw))

    def _pointwise(self, v: Window, fn) -> Window:
        data = v.data.clone() if _may_write_input(self.model, self.node) else v.data
        return Window(fn(data), v.r, v.c, self.clean[self.node])

    def _folded(self, f: Chain, v):
        """A convolution with the BatchNorm (and rectifier) after it folded in: one pass instead of three."""
        if isinstance(v, Whole):
            return Whole(f(v.data, f.padding))
        out = self.clean[f.nodes[-1]]
        if v.whole:
            return _full(f(v.data, f.padding), out)
        return self._sliding(v, f.weight.shape[-2:], f.stride, f.padding, f.dilation, 0.0, f,
                             lambda t: f(t, f.padding), per_output=f.weight[0].numel(), out=out)

    def _adaptive(self, v: Window, is_max: bool):
        (H, W), (Ho, Wo) = v.clean.shape[-2:], self.clean[self.node].shape[-2:]
        if H % Ho or W % Wo:
            pool = F.adaptive_max_pool2d if is_max else F.adaptive_avg_pool2d
            return _full(pool(materialize(v), (Ho, Wo)), self.clean[self.node])
        k = (H // Ho, W // Wo)
        fn = (lambda t: F.max_pool2d(t, k, k)) if is_max else (lambda t: F.avg_pool2d(t, k, k))
        return self._sliding(v, k, k, 0, 1, 0.0, fn, fn)

    def _shift(self, v: Window, pad):
        """A zero padding ``(left, right, top, bottom)``: the window moves (or, covering the map, is padded)."""
        left, right, top, bottom = (int(p) for p in pad)
        if min(left, right, top, bottom) < 0:
            return self._whole((v,), {})
        out = self.clean[self.node]
        if v.whole:
            return _full(F.pad(v.data, (left, right, top, bottom)), out)
        return Window(v.data, v.r + top, v.c + left, out)

    def _channel_total(self, v, k: int) -> torch.Tensor:
        if isinstance(v, Window):
            return materialize(Window(v.data[:, k: k + 1], v.r, v.c, v.clean[:, k: k + 1])).sum((1, 2, 3))
        return v.data[:, k].sum((1, 2))

    # -- the geometry of windows ----------------------------------------------------------------------------
    def _gather(self, v: Window, r0: torch.Tensor, c0: torch.Tensor, h: int, w: int, pads=(0, 0, 0, 0),
                fill: float = 0.0) -> torch.Tensor:
        """Rows ``r0[b] … r0[b] + h − 1``, columns ``c0[b] …`` (coordinates in the map padded by
        ``pads = (top, bottom, left, right)`` with ``fill``) of each image's map: ``(B, C, h, w)``."""
        top, bottom, left, right = pads
        if v.whole:
            src = F.pad(v.data, (left, right, top, bottom), value=fill) if any(pads) else v.data
            return src if (h, w) == tuple(src.shape[-2:]) else _block(src, r0, c0, h, w)
        ph, pw = v.data.shape[-2:]
        if not any(pads) and (h, w) == (ph, pw) and torch.equal(r0, v.r) and torch.equal(c0, v.c):
            return v.data
        key = (id(v.clean), pads, fill)
        if key not in self.padded:
            self.padded[key] = F.pad(v.clean, (left, right, top, bottom), value=fill) if any(pads) else v.clean
        base = _block(self.padded[key], r0, c0, h, w)  # (B, C, h, w): the clean values around each window
        dr, dc = v.r + top - r0, v.c + left - c0  # (B,) where each window lies in its gathered block
        if bool(((dr >= 0) & (dr + ph <= h) & (dc >= 0) & (dc + pw <= w)).all()):  # every window inside: paste
            for a, b in torch.stack([dr, dc], 1).unique(dim=0).tolist():  # the distinct offsets, usually one
                idx = slice(None) if bool((dr == a).all() and (dc == b).all()) else \
                    ((dr == a) & (dc == b)).nonzero()[:, 0].to(base.device)
                base[idx, :, a: a + ph, b: b + pw] = v.data[idx]
            return base
        dev = base.device
        ri = r0[:, None] + torch.arange(h) - (v.r + top)[:, None]  # (B, h): row in the window
        ci = c0[:, None] + torch.arange(w) - (v.c + left)[:, None]
        inside = ((ri >= 0) & (ri < ph))[:, :, None] & ((ci >= 0) & (ci < pw))[:, None, :]  # (B, h, w)
        b = torch.arange(len(r0), device=dev)[:, None, None]
        vals = v.data[b, :, ri.clamp(0, ph - 1)[:, :, None].to(dev), ci.clamp(0, pw - 1)[:, None, :].to(dev)]
        return torch.where(inside[:, None].to(dev), vals.permute(0, 3, 1, 2), base)

    def _sliding(self, v: Window, k, s, p, d, fill, fn, fn_whole, can_overhang=True, per_output: int = 0,
                 out: torch.Tensor | None = None) -> Window:
        """A convolution-like layer (kernel ``k``, stride ``s``, padding ``p``, dilation ``d``) on the windows:
        ``fn(window)`` computes it without padding, ``fn_whole(maps)`` as the layer is. Runs on whole maps when
        the windows would cover more than ``WHOLE_ABOVE`` of the output (``WHOLE_ABOVE_DENSE`` for a layer of
        ``per_output ≥ DENSE`` multiply-adds per output value): gathering them would cost more than it saves."""
        out = self.clean[self.node] if out is None else out
        k, s, p, d = pair(k), pair(s), pair(p), pair(d)
        starts, sizes, pads = [], [], []
        for i, (origin, n, L, Lo) in enumerate(((v.r, v.data.shape[-2], v.clean.shape[-2], out.shape[-2]),
                                                (v.c, v.data.shape[-1], v.clean.shape[-1], out.shape[-1]))):
            ext = (k[i] - 1) * d[i] + 1
            lo = (-(-(origin + p[i] - ext + 1) // s[i])).clamp(min=0)  # the first output the window reaches
            hi = ((origin + n - 1 + p[i]) // s[i]).clamp(max=Lo - 1)  # the last
            size = int(min(Lo, max(1, int((hi - lo + 1).max()))))
            o = lo.clamp(max=Lo - size)
            starts.append((o, o * s[i]))
            sizes.append(size)
            after = max(0, (Lo - 1) * s[i] + ext - (L + p[i]))  # ceil_mode may read past the padding
            if not can_overhang and after > p[i]:
                return self._whole((v,), {})
            pads.append((p[i], after))
        limit = max(WHOLE_ABOVE, WHOLE_ABOVE_DENSE) if per_output >= DENSE else WHOLE_ABOVE
        if sizes[0] * sizes[1] > limit * out.shape[-2] * out.shape[-1]:  # cheaper on whole maps
            return _full(fn_whole(materialize(v)), out)
        (ro, ri), (co, ci) = starts
        hin, win = ((sizes[i] - 1) * s[i] + (k[i] - 1) * d[i] + 1 for i in (0, 1))
        x = self._gather(v, ri, ci, hin, win, (*pads[0], *pads[1]), fill)
        return Window(fn(x), ro, co, out)

    def _binary(self, op, a, b) -> Window | Whole:
        """An elementwise ``op(a, b)``: of two windowed maps of one shape on the union of their windows, of a
        windowed map and a constant without spatial extent on the window."""
        out = self.clean[self.node]
        if isinstance(a, Window) and isinstance(b, Window) and a.clean.shape == b.clean.shape:
            H, W = a.clean.shape[-2:]
            r_lo, r_hi = torch.minimum(a.r, b.r), torch.maximum(a.r + a.data.shape[-2], b.r + b.data.shape[-2])
            c_lo, c_hi = torch.minimum(a.c, b.c), torch.maximum(a.c + a.data.shape[-1], b.c + b.data.shape[-1])
            h, w = int(min(H, int((r_hi - r_lo).max()))), int(min(W, int((c_hi - c_lo).max())))
            r0, c0 = r_lo.clamp(max=H - h), c_lo.clamp(max=W - w)
            return Window(op(self._gather(a, r0, c0, h, w), self._gather(b, r0, c0, h, w)), r0, c0, out)
        if isinstance(a, Window) and not _is_var(b) and _constant_ok(b):
            return Window(op(a.data, b), a.r, a.c, out)
        if isinstance(b, Window) and not _is_var(a) and _constant_ok(a):
            return Window(op(a, b.data), b.r, b.c, out)
        return self._whole((a, b), {})


_POINTWISE_MODULES = (
    nn.modules.batchnorm._BatchNorm, nn.ReLU, nn.ReLU6, nn.Hardtanh, nn.LeakyReLU, nn.ELU, nn.SiLU, nn.Sigmoid,
    nn.Tanh, nn.GELU, nn.Hardswish, nn.Hardsigmoid, nn.Mish, nn.LocalResponseNorm, nn.Identity,
    nn.modules.dropout._DropoutNd, nn.Dropout,
)
_POINTWISE_FUNCTIONS = {
    torch.relu, F.relu, F.relu6, F.hardtanh, F.leaky_relu, F.elu, F.silu, F.gelu, F.hardswish, F.hardsigmoid,
    torch.sigmoid, F.sigmoid, torch.tanh, F.tanh, F.local_response_norm, F.dropout, F.batch_norm,
}
_POINTWISE_METHODS = {"relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "clamp", "clamp_", "contiguous",
                      "clamp_min", "clamp_min_", "clamp_max", "clamp_max_", "float"}
_BINARY = {f: op for op, fs in ((torch.add, (operator.add, operator.iadd)), (torch.sub, (operator.sub, operator.isub)),
                                (torch.mul, (operator.mul, operator.imul)),
                                (torch.div, (operator.truediv, operator.itruediv))) for f in (*fs, op)}
_BINARY_METHODS = {name + end: op for name, op in (("add", torch.add), ("sub", torch.sub), ("mul", torch.mul),
                                                   ("div", torch.div)) for end in ("", "_")}


def _may_write_input(model: nn.Module, node: fx.Node) -> bool:
    """Whether running ``node`` may overwrite its input tensor (``ReLU(inplace=True)``, ``+=``, ``x.add_``,
    ``F.relu(x, True)``)."""
    if node.op == "call_module":
        return bool(getattr(model.get_submodule(node.target), "inplace", False))
    if node.op == "call_method":
        return node.target.endswith("_")
    return node.op == "call_function" and (node.target in (operator.iadd, operator.isub, operator.imul,
                                                           operator.itruediv) or bool(node.kwargs.get("inplace"))
                                           or (node.target in _POINTWISE_FUNCTIONS and len(node.args) > 1))


def _constant_ok(c) -> bool:
    """A constant that an elementwise op with a window may use as it is: no spatial extent."""
    return not isinstance(c, torch.Tensor) or c.ndim < 2 or tuple(c.shape[-2:]) == (1, 1)


def _copy(v):
    return v.clone() if isinstance(v, torch.Tensor) else v


def _unwrap(a):
    return fx.node.map_aggregate(a, lambda v: v.data if _is_var(v) else v)


def _flatten(a) -> list:
    out = []
    fx.node.map_aggregate(a, out.append)
    return out


# --- The faster kernels of :mod:`cnnlib.layers` where they pay -------------------------------------------

def _module_kernel(m: nn.Module):
    """The faster kernel for module ``m`` (as a function of its input), or ``None`` to call ``m`` itself."""
    if isinstance(m, nn.LocalResponseNorm) and m.size >= 1:
        return lambda t: local_response_norm(t, m.size, m.alpha, m.beta, m.k)
    if isinstance(m, nn.MaxPool2d) and not m.return_indices and not m.ceil_mode and pair(m.dilation) == (1, 1):
        k, s, p = pair(m.kernel_size), pair(m.stride or m.kernel_size), pair(m.padding)
        return lambda t: separable_max_pool2d(t, k, s, p)
    return None
