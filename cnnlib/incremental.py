"""Incremental inference: run a batch of locally changed images through a network by recomputing, layer by
layer, only the part of each feature map the change can reach (Nakandala, Kumar & Papakonstantinou,
"Incremental and Approximate Inference for Faster Occlusion-based Deep CNN Explanations", SIGMOD 2019).

A square occluder changes a window of the input. Through a convolution or pooling with kernel ``k``, stride
``s``, padding ``p`` and dilation ``d``, input rows ``[a, a + h)`` reach exactly the output rows

    o ∈ [⌈(a + p − (k − 1)·d) / s⌉, ⌊(a + h − 1 + p) / s⌋]

(columns alike); a pointwise layer (BatchNorm in eval mode, ReLU, ReLU6, local response normalization, which
mixes channels but not positions) keeps the window; a residual addition takes the union of its two windows.
Everywhere else a layer's output equals the clean image's, computed once and cached. So each layer computes
only a window per occluded image — the windows of a batch share one size (the largest; a window is shifted
inside the map where the border cuts it, recomputing a few clean values, which changes nothing) and are stacked
into one tensor ``(B, C, h, w)``. Once a window covers the whole map (deep layers), the layer simply runs on
the batch. The result equals running each occluded image through the network, up to float round-off.

How little can be recomputed is set by the network: a window grows by ``k − 1`` at every layer and by the
stride at every downsampling, so in a small network (ZFNet-small at 28 px) a 7-px square reaches the whole
map from conv3 on, and in EfficientNet-Lite0 at 224 px a 16-px square reaches the whole 14 × 14 maps, where
most of the multiply-adds are (the engine counts them: ``Engine.multiply_adds``). What is recomputed runs as
fast as the kernels allow: the maps are kept channels-last (PyTorch's CPU kernels run depthwise and 1 × 1
convolutions on small windows 1.5–3 × faster that way), and a convolution followed by an eval-mode BatchNorm and a
rectifier runs as one convolution with the BatchNorm folded into its weights (:class:`_Chain`).

The network's graph comes from ``torch.fx`` (:class:`_ConcreteTracer`); a layer this module cannot do
incrementally is run on whole maps (the windows are pasted into the clean maps first) with a one-line
:class:`IncrementalFallbackWarning`, and everything after it runs whole too.
"""

from __future__ import annotations

import operator
import warnings
import weakref
from dataclasses import dataclass

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

#: The cost model: a layer whose output windows would cover more than this share of its map runs on whole maps
#: (gathering the windows' inputs costs about as much as a pooling or a depthwise convolution saves) …
WHOLE_ABOVE = 0.5
#: … but a convolution with at least ``DENSE`` multiply-adds per output value (ZFNet-small's conv2: 800) saves
#: more than the gathering costs up to this share.
WHOLE_ABOVE_DENSE = 0.9
DENSE = 64


class IncrementalFallbackWarning(UserWarning):
    """A layer was computed on whole maps, not incrementally (exact, only slower)."""


# ---------------------------------------------------------------------------------------------------------
# The graph
# ---------------------------------------------------------------------------------------------------------

class _ConcreteTracer(fx.Tracer):
    """``torch.fx`` tracer that also runs every traced operation on a real example input, so that Python
    control flow on values (e.g. a shape check at the top of ``forward``) takes the branch the example takes
    instead of failing. The batch size stays symbolic where ``forward`` reads it (``x.size(0)``)."""

    def __init__(self, example: torch.Tensor):
        super().__init__()
        self.example = example
        self.values: dict[fx.Node, object] = {}
        self.placeholders = 0
        self.concrete = False
        self.static: dict[fx.Node, bool] = {}

    def _concrete_values(self, a):
        return fx.node.map_aggregate(a, lambda v: self.values[v.node] if isinstance(v, fx.Proxy) else v)

    def create_proxy(self, kind, target, args, kwargs, name=None, type_expr=None, proxy_factory_fn=None):
        proxy = super().create_proxy(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
        self.concrete, was = True, self.concrete  # module attributes and calls are real while we compute
        try:
            self.values[proxy.node] = self._compute(kind, target, args, kwargs)
        finally:
            self.concrete = was
        return proxy

    def _compute(self, kind, target, args, kwargs):
        if kind == "placeholder":
            self.placeholders += 1
            return self.example if self.placeholders == 1 else None
        if kind == "get_attr":
            return _fetch(self.root, target)
        a, kw = self._concrete_values(args), self._concrete_values(kwargs)
        a = fx.node.map_aggregate(a, lambda v: v.clone() if isinstance(v, torch.Tensor) else v)  # in-place ops
        if kind == "call_module":
            return self.root.get_submodule(target)(*a, **kw)
        if kind == "call_function":
            return target(*a, **kw)
        if kind == "call_method":
            return getattr(a[0], target)(*a[1:], **kw)
        return None

    def getattr(self, attr, attr_val, parameter_proxy_cache):
        return attr_val if self.concrete else super().getattr(attr, attr_val, parameter_proxy_cache)

    def call_module(self, m, forward, args, kwargs):
        return forward(*args, **kwargs) if self.concrete else super().call_module(m, forward, args, kwargs)

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return _ConcreteProxy(node, self)

    def _static(self, node: fx.Node):
        """The example's value of ``node`` if it follows from shapes alone (``x.ndim != 4``), else a
        ``TraceError``: a branch on the data (``if x.mean() > 0``) may go the other way for an occluded image."""
        if node not in self.static:
            value = self.values[node]
            shape_read = (node.op == "call_method" and node.target in ("size", "dim")) or (
                node.op == "call_function" and node.target is getattr and node.args[1] in _SHAPE_ATTRS)
            self.static[node] = not isinstance(value, torch.Tensor) and (
                shape_read or (node.op != "placeholder" and node.target not in ("item", "tolist")
                               and all(self._static_ok(a) for a in node.all_input_nodes)))
        if not self.static[node]:
            raise fx.proxy.TraceError(f"control flow on the data ({node.name})")
        return self.values[node]

    def _static_ok(self, node: fx.Node) -> bool:
        try:
            self._static(node)
            return True
        except fx.proxy.TraceError:
            return False

    def to_bool(self, obj) -> bool:
        return bool(self._static(obj.node))

    def iter(self, obj):
        return iter(self._static(obj.node))

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        # a convolution subclass that keeps nn.Conv2d's forward is a convolution
        if isinstance(m, nn.Conv2d) and type(m).forward is nn.Conv2d.forward:
            return True
        return super().is_leaf_module(m, qualname)


_SHAPE_ATTRS = ("shape", "ndim", "dtype", "device")


class _ConcreteProxy(fx.Proxy):
    """A proxy whose ``len()`` is the example's (``tuple(x.shape[1:])`` in a shape check)."""

    def __len__(self) -> int:
        return len(self.tracer._static(self.node))


def _fetch(root: nn.Module, target: str):
    obj = root
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def trace(model: nn.Module, x: torch.Tensor) -> fx.Graph:
    """The graph of ``model``'s forward for inputs shaped like ``x`` ``(1, C, H, W)``, traced on a batch of two
    copies of ``x`` (so that a batch size written into the graph shows up when it is checked on one image).
    Raises whatever ``torch.fx`` raises for a forward it cannot trace."""
    tracer = _ConcreteTracer(x.expand(2, *x.shape[1:]).clone())
    with torch.no_grad():
        graph = tracer.trace(model)
    if sum(n.op == "placeholder" for n in graph.nodes) != 1:
        raise ValueError("forward takes more than one input")
    for node in reversed(list(graph.nodes)):  # what the shape checks left behind
        if node.op not in ("placeholder", "output") and not node.users:
            graph.erase_node(node)
    return graph


_GRAPHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {key: graph}


def _cached_trace(model: nn.Module, x: torch.Tensor, fresh: bool = False) -> fx.Graph:
    """:func:`trace`, kept per model, input shape, dtype, device and module structure (the names and types of
    its submodules), so that calling occlusion again on the same model (a widget's slider) does not trace it
    again. The graph reads the parameters when it runs, so new weights need no new trace."""
    key = (tuple(x.shape), x.dtype, x.device, tuple((n, type(m)) for n, m in model.named_modules()))
    graphs = _GRAPHS.setdefault(model, {})
    if fresh or key not in graphs:
        if len(graphs) >= 4:
            graphs.clear()
        graphs[key] = trace(model, x)
    return graphs[key]


def module_output_node(graph: fx.Graph, model: nn.Module, module: nn.Module) -> fx.Node | None:
    """The node of ``graph`` that is the output of ``module`` (its last call), or ``None``."""
    names = {n for n, m in model.named_modules(remove_duplicate=False) if m is module}
    found = None
    for node in graph.nodes:
        stack = node.meta.get("nn_module_stack", {})
        if any(v[0] in names for v in stack.values()):
            found = node
    return found


# ---------------------------------------------------------------------------------------------------------
# Values: a window per image, or whole tensors
# ---------------------------------------------------------------------------------------------------------

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


def materialize(v) -> torch.Tensor:
    """The batch ``(B, C, H, W)`` of whole maps: the windows pasted into copies of the clean map."""
    if isinstance(v, Whole):
        return v.data
    if v.whole:
        return v.data
    B, (h, w) = v.data.shape[0], v.data.shape[-2:]
    out = v.clean.expand(B, *v.clean.shape[1:]).clone()  # (B, C, H, W)
    dev = out.device
    rows = (v.r[:, None] + torch.arange(h)).to(dev)  # (B, h)
    cols = (v.c[:, None] + torch.arange(w)).to(dev)  # (B, w)
    b = torch.arange(B, device=dev)[:, None, None]
    out[b, :, rows[:, :, None], cols[:, None, :]] = v.data.permute(0, 2, 3, 1)  # (B, h, w, C)
    return out


class _Run:
    """One pass of a batch of windows through the graph (the clean values and padded clean maps cached)."""

    def __init__(self, engine: Engine):
        self.e = engine

    # -- the gather that every windowed layer uses --------------------------------------------------------
    def gather(self, v: Window, r0: torch.Tensor, c0: torch.Tensor, h: int, w: int, pads=(0, 0, 0, 0),
               fill: float = 0.0) -> torch.Tensor:
        """Rows ``r0[b] … r0[b] + h − 1``, columns ``c0[b] …`` (coordinates in the map padded by
        ``pads = (top, bottom, left, right)`` with ``fill``) of each image's map: ``(B, C, h, w)``."""
        top, bottom, left, right = pads
        B = v.data.shape[0]
        dev = v.data.device
        if v.whole:
            src = F.pad(v.data, (left, right, top, bottom), value=fill) if any(pads) else v.data
            if (h, w) == tuple(src.shape[-2:]):
                return src
            rows = (r0[:, None] + torch.arange(h)).to(dev)
            cols = (c0[:, None] + torch.arange(w)).to(dev)
            b = torch.arange(B, device=dev)[:, None, None]
            return src[b, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)  # (B, C, h, w)
        if not any(pads) and (h, w) == tuple(v.data.shape[-2:]) and torch.equal(r0, v.r) and torch.equal(c0, v.c):
            return v.data
        key = (id(v.clean), pads, fill)
        cp = self.e.padded.get(key)
        if cp is None:
            cp = F.pad(v.clean, (left, right, top, bottom), value=fill) if any(pads) else v.clean
            self.e.padded[key] = cp
        rows = r0[:, None] + torch.arange(h)  # (B, h), padded coordinates
        cols = c0[:, None] + torch.arange(w)
        base = cp[0].permute(1, 2, 0)[rows[:, :, None].to(dev), cols[:, None, :].to(dev)].permute(0, 3, 1, 2)
        ph, pw = v.data.shape[-2:]
        dr, dc = v.r + top - r0, v.c + left - c0  # (B,) where each window lies in its gathered block
        if bool(((dr >= 0) & (dr + ph <= h) & (dc >= 0) & (dc + pw <= w)).all()):  # every window inside: paste
            groups = torch.stack([dr, dc], 1).unique(dim=0).tolist()  # the distinct offsets, usually one
            if len(groups) == 1:
                (a, b), = groups
                base[:, :, a: a + ph, b: b + pw] = v.data
            else:
                for a, b in groups:
                    idx = ((dr == a) & (dc == b)).nonzero()[:, 0].to(dev)
                    base[idx, :, a: a + ph, b: b + pw] = v.data[idx]
            return base
        ri, ci = rows - (v.r + top)[:, None], cols - (v.c + left)[:, None]  # row/column in the window
        inside = ((ri >= 0) & (ri < ph))[:, :, None] & ((ci >= 0) & (ci < pw))[:, None, :]  # (B, h, w)
        b = torch.arange(B, device=dev)[:, None, None]
        vals = v.data[b, :, ri.clamp(0, ph - 1)[:, :, None].to(dev), ci.clamp(0, pw - 1)[:, None, :].to(dev)]
        return torch.where(inside[:, None].to(dev), vals.permute(0, 3, 1, 2), base)

    # -- layers --------------------------------------------------------------------------------------------
    def sliding(self, v: Window, out_clean: torch.Tensor, k, s, p, d, fill, fn, fn_whole, can_overhang=True,
                per_output: int = 0):
        """A convolution-like layer (kernel ``k``, stride ``s``, padding ``p``, dilation ``d``, pairs) on the
        windows: ``fn(window)`` computes it without padding, ``fn_whole(maps)`` as the layer is. Returns the
        output :class:`Window`; a whole one when the windows would cover more than ``WHOLE_ABOVE`` of the map,
        or ``WHOLE_ABOVE_DENSE`` for a layer of ``per_output ≥ DENSE`` multiply-adds per output value (beyond
        that, gathering the windows would cost more than it saves)."""
        H, W = v.clean.shape[-2:]
        Ho, Wo = out_clean.shape[-2:]
        starts, sizes, pads = [], [], []
        for dim, (origin, n, L, Lo) in enumerate(((v.r, v.data.shape[-2], H, Ho), (v.c, v.data.shape[-1], W, Wo))):
            ext = (k[dim] - 1) * d[dim] + 1
            lo = (-(-(origin + p[dim] - ext + 1) // s[dim])).clamp(min=0)
            hi = ((origin + n - 1 + p[dim]) // s[dim]).clamp(max=Lo - 1)
            size = int(min(Lo, max(1, int((hi - lo + 1).max()))))
            o = lo.clamp(max=Lo - size)
            starts.append((o, o * s[dim]))
            sizes.append(size)
            after = max(0, (Lo - 1) * s[dim] + ext - (L + p[dim]))  # ceil_mode may read past the padding
            if not can_overhang and after > p[dim]:
                return None
            pads.append((p[dim], after))
        limit = max(WHOLE_ABOVE, WHOLE_ABOVE_DENSE) if per_output >= DENSE else WHOLE_ABOVE
        if sizes[0] * sizes[1] > limit * Ho * Wo:  # cheaper to run the layer on whole maps
            return Window(fn_whole(materialize(v)), torch.zeros_like(v.r), torch.zeros_like(v.c), out_clean)
        (ro, ri), (co, ci) = starts
        hin = (sizes[0] - 1) * s[0] + (k[0] - 1) * d[0] + 1
        win = (sizes[1] - 1) * s[1] + (k[1] - 1) * d[1] + 1
        x = self.gather(v, ri, ci, hin, win, (pads[0][0], pads[0][1], pads[1][0], pads[1][1]), fill)
        return Window(fn(x), ro, co, out_clean)

    def binary(self, op, a, b, out_clean):
        """An elementwise ``op(a, b)`` of two windowed maps of one shape: on the union of their windows."""
        H, W = a.clean.shape[-2:]
        r_lo, r_hi = torch.minimum(a.r, b.r), torch.maximum(a.r + a.data.shape[-2], b.r + b.data.shape[-2])
        c_lo, c_hi = torch.minimum(a.c, b.c), torch.maximum(a.c + a.data.shape[-1], b.c + b.data.shape[-1])
        h, w = int(min(H, int((r_hi - r_lo).max()))), int(min(W, int((c_hi - c_lo).max())))
        r0, c0 = r_lo.clamp(max=H - h), c_lo.clamp(max=W - w)
        return Window(op(self.gather(a, r0, c0, h, w), self.gather(b, r0, c0, h, w)), r0, c0, out_clean)


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
_BINARY = {operator.add: torch.add, operator.iadd: torch.add, torch.add: torch.add,
           operator.sub: torch.sub, operator.isub: torch.sub, torch.sub: torch.sub,
           operator.mul: torch.mul, operator.imul: torch.mul, torch.mul: torch.mul,
           operator.truediv: torch.div, operator.itruediv: torch.div, torch.div: torch.div}
_BINARY_METHODS = {"add": torch.add, "add_": torch.add, "sub": torch.sub, "sub_": torch.sub,
                   "mul": torch.mul, "mul_": torch.mul, "div": torch.div, "div_": torch.div}


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


# ---------------------------------------------------------------------------------------------------------
# Two kernels for small maps: the same maths as PyTorch's, in fewer passes over memory
# ---------------------------------------------------------------------------------------------------------

def max_pool2d(x: torch.Tensor, k: tuple[int, int], s: tuple[int, int], p: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """``F.max_pool2d(x, k, s, p)`` (dilation 1, ``ceil_mode=False``) as a separable maximum of strided views.

    ``out[i, j] = max_{a < k₀, b < k₁} x_pad[s₀·i + a, s₁·j + b]`` with ``x_pad`` padded by ``p`` with −∞: the
    maximum over rows first (``k₀`` views), then over columns (``k₁`` views), each an elementwise ``maximum``.
    On the small maps of an occlusion batch this is several times faster than PyTorch's CPU kernel and gives
    the same numbers (a maximum does not round). ``x``: ``(N, C, H, W)`` → ``(N, C, Ho, Wo)``.
    """
    if any(p):
        x = F.pad(x, (p[1], p[1], p[0], p[0]), value=float("-inf"))
    H, W = x.shape[-2:]
    Ho, Wo = (H - k[0]) // s[0] + 1, (W - k[1]) // s[1] + 1
    rows = x[..., 0: s[0] * (Ho - 1) + 1: s[0], :]
    for a in range(1, k[0]):
        rows = torch.maximum(rows, x[..., a: a + s[0] * (Ho - 1) + 1: s[0], :])
    out = rows[..., 0: s[1] * (Wo - 1) + 1: s[1]]
    for b in range(1, k[1]):
        out = torch.maximum(out, rows[..., b: b + s[1] * (Wo - 1) + 1: s[1]])
    return out


def local_response_norm(x: torch.Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> torch.Tensor:
    """``F.local_response_norm`` (Krizhevsky et al. 2012) over channels, as a sum of shifted views:

        out_c = x_c · (k + α/n · Σ_{c' = c − ⌊n/2⌋}^{c + ⌈n/2⌉ − 1} x_{c'}²)^(−β),   n = ``size``,

    channels outside ``0 … C − 1`` counting as 0 (PyTorch's padding). ``x``: ``(N, C, H, W)``, same shape out.
    """
    sq = F.pad(x * x, (0, 0, 0, 0, size // 2, (size - 1) // 2))  # (N, C + n − 1, H, W)
    C = x.shape[1]
    total = sq[:, 0:C]
    for j in range(1, size):
        total = total + sq[:, j: j + C]
    return x * (total * (alpha / size) + k).pow(-beta)


def _module_kernel(m: nn.Module):
    """The faster kernel for module ``m`` (as a function of its input), or ``None`` to call ``m`` itself."""
    if isinstance(m, nn.LocalResponseNorm) and m.size >= 1:
        return lambda t: local_response_norm(t, m.size, m.alpha, m.beta, m.k)
    if isinstance(m, nn.MaxPool2d) and not m.return_indices and not m.ceil_mode and _pair(m.dilation) == (1, 1):
        k, s, p = _pair(m.kernel_size), _pair(m.stride or m.kernel_size), _pair(m.padding)
        return lambda t: max_pool2d(t, k, s, p)
    return None


def _no_inplace(fn):
    """``fn`` with ``inplace=False`` where it takes that keyword."""
    return lambda *a, **kw: fn(*a, **{**kw, "inplace": False}) if "inplace" in kw else fn(*a, **kw)


class Engine:
    """The graph of ``model`` for inputs shaped like ``x`` ``(1, C, H, W)``, with every node's value on ``x``
    cached, ready to run batches of windowed changes of ``x`` (:meth:`run`).

    ``channels_last``: keep the maps channels-last (faster convolutions; ``False`` keeps PyTorch's default
    layout, same numbers up to round-off). ``multiply_adds``: ``[done, whole]`` over all runs so far, the
    multiply-adds of convolutions and linear layers done, and those the same images would need through the
    whole network.

    Raises ``ValueError`` if ``torch.fx`` cannot trace the model, or if the traced graph does not reproduce
    the model's output on ``x``.
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, channels_last: bool = True,
                 output: torch.Tensor | None = None):
        self.model = model
        self.channels_last = channels_last
        with torch.no_grad():
            want = model(x) if output is None else output
        for fresh in (False, True):  # a cached graph first; traced again if it no longer fits the model
            try:
                self.graph = _cached_trace(model, x, fresh)
            except Exception as e:  # noqa: BLE001 — any tracing failure means: use the plain path
                raise ValueError(f"torch.fx cannot trace {type(model).__name__} ({type(e).__name__}: "
                                 f"{str(e).splitlines()[0] if str(e) else ''})") from e
            self.clean: dict[fx.Node, object] = {}
            with torch.no_grad():
                for node in self.graph.nodes:
                    self.clean[node] = self._eval_clean(node, x)
            out = self.clean[self.output]
            if (isinstance(out, torch.Tensor) and out.shape == want.shape
                    and torch.allclose(out, want, rtol=1e-5, atol=1e-6)):
                break
        else:
            raise ValueError(f"the traced graph of {type(model).__name__} does not reproduce its output")
        self.padded: dict = {}
        self.fallbacks: list[str] = []
        self.chains = _fold_chains(self)
        self.per_output = _multiply_adds_per_output(self)
        self.multiply_adds = [0, 0]  # done by :meth:`run`, and what whole images would have needed
        if channels_last:  # the maps channel-last: faster convolutions on small windows
            for node, v in self.clean.items():
                if node.op != "get_attr" and isinstance(v, torch.Tensor) and v.ndim == 4:
                    self.clean[node] = v.contiguous(memory_format=torch.channels_last)

    @property
    def output(self) -> fx.Node:
        return next(n for n in self.graph.nodes if n.op == "output")

    def _eval_clean(self, node: fx.Node, x):
        args = fx.node.map_arg(node.args, lambda n: self.clean[n])
        kwargs = fx.node.map_arg(node.kwargs, lambda n: self.clean[n])
        return self._call(node, x, args, kwargs)

    def _call(self, node, x, args, kwargs):
        """Run ``node`` on plain values; in-place operations work on copies (the cached values stay)."""
        if node.op == "placeholder":
            return x
        if node.op == "get_attr":
            return _fetch(self.model, node.target)
        if node.op == "output":
            return args[0]
        if _may_write_input(self.model, node, kwargs):
            args = fx.node.map_aggregate(args, lambda v: v.clone() if isinstance(v, torch.Tensor) else v)
        if node.op == "call_module":
            return self.model.get_submodule(node.target)(*args, **kwargs)
        if node.op == "call_function":
            return node.target(*args, **kwargs)
        return getattr(args[0], node.target)(*args[1:], **kwargs)

    def node_name(self, node: fx.Node) -> str:
        if node.op == "call_module":
            return f"{node.target} ({type(self.model.get_submodule(node.target)).__name__})"
        return f"{node.name} ({getattr(node.target, '__name__', node.target)})"

    # -- one batch -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def run(self, x_windows: Window, keep: fx.Node | None = None, keep_channel: int | None = None):
        """Run the batch whose input differs from the clean one in ``x_windows``; returns the output
        ``(B, ...)`` and, for ``keep``, the per-image total of channel ``keep_channel`` of that node ``(B,)``."""
        run = _Run(self)
        if self.channels_last:
            x_windows = Window(x_windows.data.contiguous(memory_format=torch.channels_last), x_windows.r,
                               x_windows.c, self.clean[next(iter(self.graph.nodes))])
        env: dict[fx.Node, object] = {}
        kept = None
        folded = {c: f for c, f in self.chains.items() if keep not in f.nodes[:-1]}  # keep's value stays its own
        absorbed = {n for c, f in folded.items() for n in f.nodes if n is not c}
        for node in self.graph.nodes:
            if node.op == "placeholder":
                value = x_windows
            elif node in absorbed:  # computed with its convolution (a zero padding before it: by the convolution)
                value = env[node.args[0]]
            elif node in folded:
                value = self._folded(run, folded[node], env[node.args[0]])
            else:
                args = fx.node.map_arg(node.args, lambda n: env[n])
                kwargs = fx.node.map_arg(node.kwargs, lambda n: env[n])
                value = self._step(run, node, args, kwargs)
            env[node] = value
            if node in self.per_output and _is_var(value):
                self.multiply_adds[0] += value.data.numel() * self.per_output[node]
                self.multiply_adds[1] += self.clean[node].numel() * x_windows.data.shape[0] * self.per_output[node]
            if node is keep:
                kept = self._channel_total(value, keep_channel)
            # free what no later node reads
            for a in node.all_input_nodes:
                if a is not keep and all(u in env for u in a.users):
                    env[a] = None
        out = env[self.output]
        return (out.data if _is_var(out) else out), kept

    def _folded(self, run: _Run, f: _Chain, v):
        """A convolution with the BatchNorm (and rectifier) after it folded in: one pass instead of three."""
        out_clean = self.clean[f.nodes[-1]]

        def conv(t, padding=0):
            y = F.conv2d(t, f.weight, f.bias, f.stride, padding, f.dilation, f.groups)
            return y.clamp_(f.low, f.high) if f.low is not None or f.high is not None else y

        if isinstance(v, Whole):
            return Whole(conv(v.data, f.padding))
        zero = torch.zeros_like(v.r)
        if v.whole:
            return Window(conv(v.data, f.padding), zero, zero, out_clean)
        return run.sliding(v, out_clean, f.kernel, f.stride, f.padding, f.dilation, 0.0, conv,
                           lambda t: conv(t, f.padding), per_output=f.weight[0].numel())

    def _channel_total(self, v, k: int) -> torch.Tensor:
        if isinstance(v, Window):
            part = Window(v.data[:, k: k + 1], v.r, v.c, v.clean[:, k: k + 1])
            return materialize(part).sum((1, 2, 3))
        return v.data[:, k].sum((1, 2))

    def _whole(self, node, args, kwargs, note: bool = True):
        """Run ``node`` on whole maps (windows pasted into the clean maps)."""
        partial = [a for a in _flatten((args, kwargs)) if isinstance(a, Window) and not a.whole]
        if partial and note:
            msg = (f"incremental occlusion: {self.node_name(node)} is computed on whole maps, not incrementally "
                   "(exact, slower); the layers after it too")
            if msg not in self.fallbacks:
                self.fallbacks.append(msg)
                warnings.warn(msg, IncrementalFallbackWarning, stacklevel=4)
        a = fx.node.map_aggregate(args, lambda v: materialize(v) if _is_var(v) else v)
        kw = fx.node.map_aggregate(kwargs, lambda v: materialize(v) if _is_var(v) else v)
        return Whole(self._call(node, None, a, kw))

    def _step(self, run: _Run, node: fx.Node, args, kwargs):
        flat = _flatten((args, kwargs))
        if not any(_is_var(a) for a in flat):
            return self._call(node, None, args, kwargs)  # does not depend on the input
        if node.op == "output":
            return args[0]
        out_clean = self.clean[node]
        windows = [a for a in flat if isinstance(a, Window)]
        if not windows:  # only whole tensors: run as it is
            a = fx.node.map_aggregate(args, lambda v: v.data if _is_var(v) else v)
            kw = fx.node.map_aggregate(kwargs, lambda v: v.data if _is_var(v) else v)
            return Whole(self._call(node, None, a, kw))
        v = args[0] if args else None
        single = len([a for a in flat if _is_var(a)]) == 1 and isinstance(v, Window)
        # shapes and attributes of a windowed map
        if node.op == "call_method" and node.target == "dim" and isinstance(v, Window):
            return 4
        if node.op == "call_method" and node.target == "size" and isinstance(v, Window):
            dim = args[1] if len(args) > 1 else kwargs.get("dim")
            return v.shape if dim is None else v.shape[dim]
        if node.op == "call_function" and node.target is getattr and isinstance(v, Window):
            if args[1] == "shape":
                return v.shape
            if args[1] == "ndim":
                return 4
            if args[1] in ("dtype", "device"):
                return getattr(v.data, args[1])
        if not (isinstance(out_clean, torch.Tensor) and out_clean.ndim == 4):
            return self._whole(node, args, kwargs)
        result = None
        if node.op == "call_module":
            result = self._module(run, node, self.model.get_submodule(node.target), args, kwargs, out_clean, single)
        elif node.op == "call_function":
            result = self._function(run, node, args, kwargs, out_clean, single)
        elif node.op == "call_method":
            result = self._method(run, node, args, kwargs, out_clean, single)
        return result if result is not None else self._whole(node, args, kwargs)

    def _pointwise(self, v: Window, fn, out_clean):
        return Window(fn(v.data), v.r, v.c, out_clean)

    def _module(self, run, node, m, args, kwargs, out_clean, single):
        v = args[0]
        if not single or kwargs:
            return None
        kernel = _module_kernel(m)
        if isinstance(m, _POINTWISE_MODULES) and not m.training:
            return self._pointwise(v, kernel or (lambda t: m(t.clone() if getattr(m, "inplace", False) else t)),
                                   out_clean)
        if v.whole:
            return Window((kernel or m)(v.data), torch.zeros_like(v.r), torch.zeros_like(v.c), out_clean)
        if isinstance(m, nn.Conv2d) and type(m).forward is nn.Conv2d.forward and m.padding_mode == "zeros" \
                and not isinstance(m.padding, str):
            return run.sliding(v, out_clean, m.kernel_size, m.stride, m.padding, m.dilation, 0.0,
                               lambda t: F.conv2d(t, m.weight, m.bias, m.stride, 0, m.dilation, m.groups), m,
                               per_output=m.weight[0].numel())
        if isinstance(m, nn.MaxPool2d) and not m.return_indices:
            k, s, p, d = _pair(m.kernel_size), _pair(m.stride or m.kernel_size), _pair(m.padding), _pair(m.dilation)
            fast = d == (1, 1)
            return run.sliding(v, out_clean, k, s, p, d, float("-inf"),
                               (lambda t: max_pool2d(t, k, s)) if fast else (lambda t: F.max_pool2d(t, k, s, 0, d)),
                               kernel or m)
        if isinstance(m, nn.AvgPool2d) and m.divisor_override is None and (m.count_include_pad or m.padding == 0):
            k, s, p = _pair(m.kernel_size), _pair(m.stride or m.kernel_size), _pair(m.padding)
            return run.sliding(v, out_clean, k, s, p, (1, 1), 0.0, lambda t: F.avg_pool2d(t, k, s, 0), m,
                               can_overhang=False)
        if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            return self._adaptive(run, v, out_clean, isinstance(m, nn.AdaptiveMaxPool2d))
        if isinstance(m, (nn.ZeroPad2d, nn.ConstantPad2d)):
            left, right, top, bottom = _pair4(m.padding)
            return self._shift(v, top, left, out_clean)
        return None

    def _adaptive(self, run, v, out_clean, is_max):
        (H, W), (Ho, Wo) = v.clean.shape[-2:], out_clean.shape[-2:]
        if H % Ho or W % Wo:
            return self._whole_window(v, out_clean, lambda t: (F.adaptive_max_pool2d if is_max else
                                                               F.adaptive_avg_pool2d)(t, (Ho, Wo)))
        k = (H // Ho, W // Wo)
        fn = (lambda t: F.max_pool2d(t, k, k)) if is_max else (lambda t: F.avg_pool2d(t, k, k))
        return run.sliding(v, out_clean, k, k, (0, 0), (1, 1), 0.0, fn, fn)

    def _whole_window(self, v, out_clean, fn):
        B = v.data.shape[0]
        zero = torch.zeros(B, dtype=torch.long)
        return Window(fn(materialize(v)), zero, zero, out_clean)

    def _shift(self, v, top, left, out_clean):
        if min(top, left) < 0:
            return None
        return Window(v.data, v.r + top, v.c + left, out_clean) if not v.whole else \
            Window(F.pad(v.data, (left, out_clean.shape[-1] - v.clean.shape[-1] - left,
                                  top, out_clean.shape[-2] - v.clean.shape[-2] - top)),
                   torch.zeros_like(v.r), torch.zeros_like(v.c), out_clean)

    def _binary(self, run, op, args, out_clean):
        a, b = args
        if isinstance(a, Window) and isinstance(b, Window) and a.clean.shape == b.clean.shape:
            return run.binary(op, a, b, out_clean)
        if isinstance(a, Window) and not _is_var(b) and self._constant_ok(b):
            return self._pointwise(a, lambda t: op(t, b), out_clean)
        if isinstance(b, Window) and not _is_var(a) and self._constant_ok(a):
            return self._pointwise(b, lambda t: op(a, t), out_clean)
        return None

    def _constant_ok(self, c) -> bool:
        """A constant that ``op(window, c)`` may use as it is: no spatial extent."""
        return not isinstance(c, torch.Tensor) or c.ndim < 2 or tuple(c.shape[-2:]) == (1, 1)

    def _function(self, run, node, args, kwargs, out_clean, single):
        f = node.target
        v = args[0] if args else None
        if f in _BINARY and len(args) == 2 and not kwargs:
            return self._binary(run, _BINARY[f], args, out_clean)
        if not single:
            return None
        rest = _flatten((args[1:], kwargs))
        if f in _POINTWISE_FUNCTIONS and all(self._constant_ok(c) for c in rest):
            if f is F.dropout and (kwargs.get("training", args[2] if len(args) > 2 else True)):
                return None
            if f is F.batch_norm and (kwargs.get("training", args[5] if len(args) > 5 else False)):
                return None
            fn = _no_inplace(f)
            return self._pointwise(v, lambda t: fn(t.clone() if len(args) > 1 else t, *args[1:], **kwargs),
                                   out_clean)
        if v.whole:
            return Window(f(v.data, *args[1:], **kwargs), torch.zeros_like(v.r), torch.zeros_like(v.c), out_clean)
        if f is F.conv2d:
            p = dict(zip(("weight", "bias", "stride", "padding", "dilation", "groups"), args[1:]), **kwargs)
            if isinstance(p.get("padding", 0), str):
                return None
            s, pad, d = _pair(p.get("stride", 1)), _pair(p.get("padding", 0)), _pair(p.get("dilation", 1))
            k = tuple(p["weight"].shape[-2:])
            return run.sliding(v, out_clean, k, s, pad, d, 0.0, lambda t: F.conv2d(
                t, p["weight"], p.get("bias"), s, 0, d, p.get("groups", 1)), lambda t: f(t, *args[1:], **kwargs),
                per_output=p["weight"][0].numel())
        if f is F.pad:
            p = dict(zip(("pad", "mode", "value"), args[1:]), **kwargs)
            if p.get("mode", "constant") != "constant" or (p.get("value") or 0) != 0 or len(p["pad"]) != 4:
                return None
            left, right, top, bottom = p["pad"]
            return self._shift(v, top, left, out_clean)
        if f in (F.adaptive_avg_pool2d, F.adaptive_max_pool2d):
            return self._adaptive(run, v, out_clean, f is F.adaptive_max_pool2d)
        return None

    def _method(self, run, node, args, kwargs, out_clean, single):
        name = node.target
        if name in _BINARY_METHODS and len(args) == 2 and not kwargs:
            return self._binary(run, _BINARY_METHODS[name], args, out_clean)
        if single and name in _POINTWISE_METHODS and all(self._constant_ok(c) for c in _flatten((args[1:], kwargs))):
            method = name.rstrip("_")
            return self._pointwise(args[0], lambda t: getattr(t, method)(*args[1:], **kwargs), out_clean)
        return None


@dataclass
class _Chain:
    """A convolution followed by an eval-mode BatchNorm (and perhaps a rectifier), as one convolution:
    ``BN(conv(x)) = γ (W∗x + b − μ)/√(σ² + ε) + β = W'∗x + b'`` with ``W' = W·γ/√(σ² + ε)`` (per output
    channel) and ``b' = (b − μ)·γ/√(σ² + ε) + β``; the rectifier ``clamp(·, low, high)`` is applied in place.
    A symmetric zero padding just before the convolution becomes the convolution's own padding.
    ``nodes``: the padding's node, the convolution's, the BatchNorm's, the rectifier's (those present)."""

    nodes: list
    weight: torch.Tensor
    bias: torch.Tensor
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    low: float | None = None
    high: float | None = None


def _conv_params(engine: Engine, node: fx.Node):
    """``(weight, bias, stride, padding, dilation, groups)`` of a convolution node with constant weights,
    or ``None``."""
    if node.op == "call_module":
        m = engine.model.get_submodule(node.target)
        if (isinstance(m, nn.Conv2d) and type(m).forward is nn.Conv2d.forward and m.padding_mode == "zeros"
                and not isinstance(m.padding, str) and not node.kwargs):
            return m.weight, m.bias, _pair(m.stride), _pair(m.padding), _pair(m.dilation), m.groups
        return None
    if node.op == "call_function" and node.target is F.conv2d:
        p = dict(zip(("input", "weight", "bias", "stride", "padding", "dilation", "groups"), node.args),
                 **node.kwargs)
        consts = [p.get(k) for k in ("weight", "bias")]
        if any(isinstance(c, fx.Node) and c.op != "get_attr" for c in consts) or isinstance(p.get("padding"), str):
            return None
        w, b = (engine.clean[c] if isinstance(c, fx.Node) else c for c in consts)
        if not isinstance(w, torch.Tensor) or w.ndim != 4:
            return None
        return (w, b, _pair(p.get("stride", 1)), _pair(p.get("padding", 0)), _pair(p.get("dilation", 1)),
                int(p.get("groups", 1)))
    return None


def _rectifier(engine: Engine, node: fx.Node) -> tuple[float | None, float | None] | None:
    """``(low, high)`` if ``node`` is ``clamp(x, low, high)`` of its one input: ReLU, ReLU6, Hardtanh."""
    if node.op == "call_module" and not node.kwargs and len(node.args) == 1:
        m = engine.model.get_submodule(node.target)
        if type(m) is nn.ReLU:
            return 0.0, None
        if type(m) in (nn.ReLU6, nn.Hardtanh):
            return float(m.min_val), float(m.max_val)
    if node.op == "call_function" and node.target in (F.relu, torch.relu) and len(node.args) == 1 and not node.kwargs:
        return 0.0, None
    return None


def _multiply_adds_per_output(engine: Engine) -> dict:
    """Multiply-adds per output value of every convolution (``C_in / groups · k_h · k_w``) and linear layer
    (``in_features``) of the graph, by node."""
    out = {}
    for node in engine.graph.nodes:
        params = _conv_params(engine, node)
        if params is not None:
            w = params[0]  # (C_out, C_in / groups, k_h, k_w)
            out[node] = w.shape[1] * w.shape[2] * w.shape[3]
        elif node.op == "call_module" and isinstance(engine.model.get_submodule(node.target), nn.Linear):
            out[node] = engine.model.get_submodule(node.target).in_features
    return out


def _symmetric_zero_pad(engine: Engine, node: fx.Node) -> tuple[int, int] | None:
    """``(rows, columns)`` if ``node`` pads its one input with zeros by as much on each side, read by one node."""
    if len(node.users) != 1 or node.kwargs:
        return None
    pad = None
    if node.op == "call_module" and len(node.args) == 1:
        m = engine.model.get_submodule(node.target)
        if isinstance(m, (nn.ZeroPad2d, nn.ConstantPad2d)) and getattr(m, "value", 0) == 0:
            pad = _pair4(m.padding)
    elif node.op == "call_function" and node.target is F.pad and len(node.args) == 2:
        pad = tuple(node.args[1]) if len(node.args[1]) == 4 else None
    if pad is None or pad[0] != pad[1] or pad[2] != pad[3] or min(pad) < 0:
        return None
    return int(pad[2]), int(pad[0])


def _fold_chains(engine: Engine) -> dict:
    """Every convolution → eval-mode BatchNorm (→ rectifier) of the graph, each node the only reader of the
    one before, as a :class:`_Chain` keyed by the convolution's node."""
    chains = {}
    for bn in engine.graph.nodes:
        if bn.op != "call_module" or bn.kwargs or len(bn.args) != 1 or not isinstance(bn.args[0], fx.Node):
            continue
        m = engine.model.get_submodule(bn.target)
        if not (isinstance(m, nn.BatchNorm2d) and not m.training and m.running_mean is not None):
            continue
        conv = bn.args[0]
        params = _conv_params(engine, conv)
        if params is None or len(conv.users) != 1:
            continue
        w, b, s, p, d, g = params
        nodes = [conv, bn]
        pad = _symmetric_zero_pad(engine, conv.args[0]) if conv.args and isinstance(conv.args[0], fx.Node) else None
        if pad is not None:
            p = (p[0] + pad[0], p[1] + pad[1])
            nodes.insert(0, conv.args[0])
        with torch.no_grad():
            f64 = lambda t: t.detach().cpu().double()  # noqa: E731 — folded in float64 on the CPU (MPS has none)
            scale = (f64(m.weight) if m.weight is not None else 1.0) / (f64(m.running_var) + m.eps).sqrt()
            shift = f64(m.bias) if m.bias is not None else 0.0
            b0 = f64(b) if b is not None else torch.zeros_like(scale)
            weight = (f64(w) * scale[:, None, None, None]).to(w.device, w.dtype)
            bias = ((b0 - f64(m.running_mean)) * scale + shift).to(w.device, w.dtype)
        low, high = None, None
        if len(bn.users) == 1:
            act = next(iter(bn.users))
            bounds = _rectifier(engine, act)
            if bounds is not None:
                nodes.append(act)
                low, high = bounds
        chains[conv] = _Chain(nodes, weight, bias, tuple(w.shape[-2:]), s, p, d, g, low, high)
    return chains


_INPLACE_FUNCTIONS = {operator.iadd, operator.isub, operator.imul, operator.itruediv}


def _may_write_input(model: nn.Module, node: fx.Node, kwargs) -> bool:
    """Whether running ``node`` may overwrite its input tensor (``ReLU(inplace=True)``, ``+=``, ``x.add_``)."""
    if node.op == "call_module":
        return bool(getattr(model.get_submodule(node.target), "inplace", False))
    if node.op == "call_method":
        return node.target.endswith("_")
    return node.target in _INPLACE_FUNCTIONS or bool(kwargs.get("inplace")) or (
        node.target in _POINTWISE_FUNCTIONS and len(node.args) > 1)


def _pair4(p) -> tuple[int, int, int, int]:
    return (p,) * 4 if isinstance(p, int) else tuple(int(v) for v in p)


def _flatten(a) -> list:
    out = []
    fx.node.map_aggregate(a, lambda v: out.append(v))
    return out
