"""A model's forward pass as a ``torch.fx`` graph, where a layer's output is in it, and what each of its operations
does to a signal: the graph layer that the deconvnet (:mod:`cnnlib.deconvnet`), receptive fields
(:mod:`cnnlib.receptive`) and the occlusion engine (:mod:`cnnlib.incremental`) share.

``torch.fx`` runs ``forward`` once on proxies and records every operation as a node. Modules of ``torch.nn``
stay whole (one ``call_module`` node each), and so does a subclass of ``nn.Conv2d`` that keeps its ``forward``;
everything else is traced through. A forward with Python control flow on the data (``if x.mean() > 0``) or on a
shape cannot be traced: :func:`trace` raises what ``torch.fx`` raises.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import torch.fx as fx
import torch.nn as nn

from . import checks


class Tracer(fx.Tracer):
    """``torch.fx``'s tracer, with a convolution subclass that keeps ``nn.Conv2d.forward`` as a leaf."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, nn.Conv2d) and type(m).forward is nn.Conv2d.forward:
            return True
        return super().is_leaf_module(m, qualname)


_GRAPHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> (module structure, graph)


def trace(model: nn.Module, fresh: bool = False) -> fx.Graph:
    """The graph of ``model``'s forward, kept per model and module structure (the names and types of its
    submodules) so that a widget calling again does not trace again; ``fresh`` traces anew (a forward that
    reads a plain attribute may have changed). The graph reads the weights when it runs: new weights need no
    new trace."""
    key = tuple((n, type(m)) for n, m in model.named_modules())
    if fresh or _GRAPHS.get(model, (None,))[0] != key:
        _GRAPHS[model] = (key, Tracer().trace(model))
    return _GRAPHS[model][1]


def module_names(model: nn.Module, module: nn.Module) -> set[str]:
    """Every name under which ``module`` is a submodule of ``model`` (one module may be registered twice)."""
    return {n for n, m in model.named_modules(remove_duplicate=False) if m is module}


def layer_node(graph: fx.Graph, names: set[str]) -> fx.Node | None:
    """The node whose value is the output of the module called ``names`` (its aliases): the module's last
    call, or, for a module ``torch.fx`` traced through (a block), the last node computed inside it; ``None``
    if the forward never reaches it."""
    found = None
    for node in graph.nodes:
        if node.op == "call_module" and node.target in names:
            found = node
        elif node.op in ("call_function", "call_method", "call_module"):
            stack = node.meta.get("nn_module_stack") or {}
            if any(v[0] in names for v in stack.values()):
                found = node
    return found


# --- Reading a traced graph: a model (or its .features), a layer's node, and what each node does ----------------

@dataclass
class Traced:
    """A model's forward pass as a graph; ``prefix`` is prepended to module names when only a part of the model
    (its ``.features``) could be traced."""

    model: nn.Module  # the module that was traced (the model or its .features)
    graph: fx.Graph
    prefix: str = ""


def traced(model: nn.Module, fn: str) -> Traced:
    """The graph of ``model`` (:func:`trace`) or, if its ``forward`` cannot be traced (e.g. it checks the
    input's shape), the graph of ``model.features``; else a ``TypeError`` naming ``fn``."""
    try:
        return Traced(model, trace(model))
    except Exception as e:  # torch.fx raises TraceError, TypeError, ... on untraceable Python
        try:
            return Traced(model.features, trace(model.features), "features.")
        except Exception:
            raise TypeError(f"{fn}: cannot trace {type(model).__name__}'s forward with torch.fx "
                            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None


def named_layer(model: nn.Module, name: str, fn: str = "named_layer", prefix: str = "") -> nn.Module:
    """The submodule of ``model`` called ``name``: a full dotted name (``"features.conv3"``) or, if unique, its
    last part (``"conv3"``); ``prefix`` is prepended to the names of ``model``'s submodules (when ``model`` is a
    part, e.g. ``.features``, of the model the name refers to). A ``ValueError`` naming ``fn`` lists the names
    there are. The one layer lookup of the library (hooks, the deconvnet, receptive fields, occlusion)."""
    checks.module(fn, model)
    if not isinstance(name, str):
        raise TypeError(f"{fn}: expected a layer name (a string), got {name!r} ({type(name).__name__})")
    modules = {prefix + n: m for n, m in model.named_modules() if n}
    if name in modules:
        return modules[name]
    short = [n for n in modules if n.split(".")[-1] == name]
    if len(short) != 1:
        full = list(modules)
        shown = full if len(full) <= 40 else full[:20] + ["..."] + full[-10:]
        raise ValueError(f"{fn}: {'ambiguous' if short else 'unknown'} layer {name!r}; expected one of {shown}")
    return modules[short[0]]


def find_layer(tr: Traced, layer: str, fn: str) -> fx.Node:
    """The node of ``layer``'s output (:func:`named_layer`, then :func:`layer_node`); a clear error naming
    ``fn`` if there is no such layer or the forward pass never reaches it."""
    if not isinstance(layer, str):
        raise TypeError(f"{fn}: expected layer to be a module name (str), got {type(layer).__name__}")
    node = layer_node(tr.graph, module_names(tr.model, named_layer(tr.model, layer, fn, tr.prefix)))
    if node is None:
        raise ValueError(f"{fn}: layer {layer!r} is never reached in the forward pass of {type(tr.model).__name__}")
    return node


def ancestors(node: fx.Node) -> list[fx.Node]:
    """``node`` and every node it depends on, in graph (forward) order."""
    seen, todo = {node}, [node]
    while todo:
        for a in todo.pop().all_input_nodes:
            if a not in seen:
                seen.add(a)
                todo.append(a)
    return [n for n in node.graph.nodes if n in seen]


def where(node: fx.Node, prefix: str = "") -> str:
    """A readable place of a node: its module, or its function and the module whose forward calls it."""
    if node.op == "call_module":
        return f"module {prefix + node.target!r} ({node.meta.get('_type', '')})".replace(" ()", "")
    stack = node.meta.get("nn_module_stack") or {}
    scope = next(reversed(stack.values()))[0] if stack else ""
    what = getattr(node.target, "__name__", str(node.target))
    return f"{what!r}" + (f" in module {prefix + scope!r}" if scope else " in the model's forward")


@dataclass
class Op:
    """What a node does to the signal it carries: its ``kind`` (``conv``, ``bn``, ``rect``, ``maxpool``,
    ``amaxpool``, ``lin`` (average pools, mean), ``fc``, ``add``, ``sub``, ``scale``, ``cat``, ``reshape``,
    ``pad``, ``pass``), the node that brings the signal in (``x``) and its parameters (``p``)."""

    kind: str
    x: object = None
    p: dict = field(default_factory=dict)


_PASS_MODULES = (nn.Identity, nn.LocalResponseNorm, nn.Dropout, nn.Dropout2d, nn.AlphaDropout)
_MODULES = [(nn.AdaptiveAvgPool2d, "lin"), (nn.Linear, "fc"), ((nn.Flatten, nn.Unflatten), "reshape"),
            ((nn.ZeroPad2d, nn.ConstantPad2d), "pad"), (_PASS_MODULES, "pass")]
_PLAIN = {"view": "reshape", "reshape": "reshape", "flatten": "reshape", "contiguous": "pass", "clone": "pass",
          "adaptive_avg_pool2d": "lin", "mean": "lin", "cat": "cat", "concat": "cat"}  # functions and methods
_ARITH = {"add": "add", "iadd": "add", "sub": "sub", "isub": "sub", "mul": "mul", "imul": "mul",
          "div": "div", "truediv": "div", "itruediv": "div"}
_SIGNATURES = {  # (name, default) of the arguments read, for functions
    "conv2d": [("input", None), ("weight", None), ("bias", None), ("stride", 1), ("padding", 0), ("dilation", 1),
               ("groups", 1)],
    "hardtanh": [("input", None), ("min_val", -1.0), ("max_val", 1.0)],
    "max_pool2d": [("input", None), ("kernel_size", None), ("stride", None), ("padding", 0), ("dilation", 1),
                   ("ceil_mode", False), ("return_indices", False)],
    "adaptive_max_pool2d": [("input", None), ("output_size", None), ("return_indices", False)],
    "avg_pool2d": [("input", None), ("kernel_size", None), ("stride", None), ("padding", 0)],
    "pad": [("input", None), ("pad", None), ("mode", "constant")],
    "dropout": [("input", None), ("p", 0.5), ("training", True)],
    "batch_norm": [("input", None), ("running_mean", None), ("running_var", None), ("weight", None),
                   ("bias", None), ("training", False)],
}


def classify(node: fx.Node, mod: nn.Module | None, dep: set, fn: str) -> Op | None:
    """The :class:`Op` of a node that carries the signal (``dep``: the nodes that do; ``mod``: the module of a
    ``call_module`` node), or ``None`` for an operation outside the list above (SiLU, a gate, ...)."""
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
        kind = next((k for t, k in _MODULES if isinstance(mod, t)), None)
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
    if name in ("relu", "relu6"):
        return Op("rect", x, dict(hi=6.0 if name == "relu6" else None))
    if name == "linear":
        w = args[1] if len(args) > 1 else kwargs.get("weight")
        return None if isinstance(w, fx.Node) and w in dep else Op("fc", x)
    if name not in _SIGNATURES:
        return None
    b = {n: d for n, d in _SIGNATURES[name]}
    b.update({n: a for (n, _), a in zip(_SIGNATURES[name], args)}, **kwargs)
    x = b.pop("input")
    if name == "conv2d":
        return None if isinstance(b["weight"], fx.Node) and b["weight"] in dep else Op("conv", x, b)
    if name == "hardtanh":
        return Op("rect", x, dict(hi=b["max_val"])) if b["min_val"] == 0 else None
    if name in ("max_pool2d", "adaptive_max_pool2d"):
        return None if b.pop("return_indices") else Op("amaxpool" if name[0] == "a" else "maxpool", x, b)
    if name == "avg_pool2d":
        return Op("lin", x, dict(kernel_size=b["kernel_size"], stride=b["stride"] or b["kernel_size"],
                                 padding=b["padding"]))
    if name == "pad":
        return Op("pad", x, dict(pad=list(b["pad"]))) if b["mode"] == "constant" else None
    if name == "dropout":
        return None if b["training"] else Op("pass", x)
    if b["training"] or b["running_var"] is None:  # batch_norm
        raise ValueError(f"{fn}: F.batch_norm at {where(node)} uses batch statistics (training=True); "
                         "its deconvnet step is not defined")
    return Op("bn", x)
