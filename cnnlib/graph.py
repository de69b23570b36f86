"""A model's forward pass as a ``torch.fx`` graph, and where a layer's output is in it: the graph layer that the
deconvnet (:mod:`cnnlib.deconvnet`) and the occlusion engine (:mod:`cnnlib.incremental`) share.

``torch.fx`` runs ``forward`` once on proxies and records every operation as a node. Modules of ``torch.nn``
stay whole (one ``call_module`` node each), and so does a subclass of ``nn.Conv2d`` that keeps its ``forward``;
everything else is traced through. A forward with Python control flow on the data (``if x.mean() > 0``) or on a
shape cannot be traced: :func:`trace` raises what ``torch.fx`` raises.
"""

from __future__ import annotations

import weakref

import torch.fx as fx
import torch.nn as nn


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
