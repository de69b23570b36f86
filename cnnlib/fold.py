"""A convolution, the eval-mode BatchNorm after it and a rectifier after that, as one convolution: three passes
over the maps become one. With ``s = γ/√(σ² + ε)`` per output channel,

    BN(conv(x)) = s·(W∗x + b − μ) + β = (s·W)∗x + (s·(b − μ) + β),

so ``W' = s·W`` and ``b' = s·(b − μ) + β`` (``torch.nn.utils.fusion.fuse_conv_bn_weights``), and a following
``clamp(·, low, high)`` (ReLU, ReLU6, Hardtanh) is applied to the result in place. A symmetric zero padding
just before the convolution becomes its own padding. The occlusion engine (:mod:`cnnlib.incremental`) finds
these chains in a model's ``torch.fx`` graph and runs each as one :class:`Chain`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_weights

from .layers import pair


@dataclass
class Chain:
    """One folded chain: the convolution ``(weight, bias, stride, padding, dilation, groups)`` with the
    BatchNorm's ``W'``, ``b'``, then ``clamp(·, low, high)`` unless both are ``None``. ``nodes``: the padding's
    node, the convolution's, the BatchNorm's, the rectifier's (those present), in forward order."""

    nodes: list
    weight: torch.Tensor
    bias: torch.Tensor
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    low: float | None = None
    high: float | None = None

    def __call__(self, t: torch.Tensor, padding=0) -> torch.Tensor:
        y = F.conv2d(t, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)
        return y if self.low is None and self.high is None else y.clamp_(self.low, self.high)


def conv_params(model: nn.Module, clean: dict, node: fx.Node):
    """``(weight, bias, stride, padding, dilation, groups)`` of a convolution node (an ``nn.Conv2d`` with zero
    padding, or ``F.conv2d``) whose weights are constants, or ``None``. ``clean``: the graph's values by node
    (the weights a ``get_attr`` node reads)."""
    if node.op == "call_module" and not node.kwargs:
        m = model.get_submodule(node.target)
        if isinstance(m, nn.Conv2d) and type(m).forward is nn.Conv2d.forward and m.padding_mode == "zeros" \
                and not isinstance(m.padding, str):
            return m.weight, m.bias, pair(m.stride), pair(m.padding), pair(m.dilation), m.groups
    if node.op == "call_function" and node.target is F.conv2d:
        p = dict(zip(("input", "weight", "bias", "stride", "padding", "dilation", "groups"), node.args),
                 **node.kwargs)
        consts = [p.get(k) for k in ("weight", "bias")]
        if any(isinstance(c, fx.Node) and c.op != "get_attr" for c in consts) or isinstance(p.get("padding"), str):
            return None
        w, b = (clean[c] if isinstance(c, fx.Node) else c for c in consts)
        if isinstance(w, torch.Tensor) and w.ndim == 4:
            return (w, b, pair(p.get("stride", 1)), pair(p.get("padding", 0)), pair(p.get("dilation", 1)),
                    int(p.get("groups", 1)))
    return None


def _only_user(node: fx.Node) -> fx.Node | None:
    return next(iter(node.users)) if len(node.users) == 1 else None


def fold_chains(model: nn.Module, graph: fx.Graph, clean: dict) -> dict:
    """Every zero padding → convolution → eval-mode BatchNorm → rectifier of the graph (padding and rectifier
    optional, each node the only reader of the one before) as a :class:`Chain`, keyed by the convolution."""
    chains = {}
    module = lambda n, kinds: (n is not None and n.op == "call_module" and len(n.args) == 1  # noqa: E731
                               and not n.kwargs and isinstance(model.get_submodule(n.target), kinds))
    for conv in graph.nodes:
        params, bn = conv_params(model, clean, conv), _only_user(conv)
        if params is None or not module(bn, nn.BatchNorm2d):
            continue
        m = model.get_submodule(bn.target)
        if m.training or m.running_mean is None:
            continue
        w, b, s, p, d, g = params
        weight, bias = fuse_conv_bn_weights(w, b, m.running_mean, m.running_var, m.eps, m.weight, m.bias)
        chain = Chain([conv, bn], weight.detach(), bias.detach(), s, p, d, g)
        pad = conv.args[0] if conv.args else None
        if isinstance(pad, fx.Node) and _only_user(pad) is conv and module(pad, (nn.ZeroPad2d, nn.ConstantPad2d)):
            left, right, top, bottom = model.get_submodule(pad.target).padding
            if left == right >= 0 and top == bottom >= 0 and getattr(model.get_submodule(pad.target), "value", 0) == 0:
                chain.padding = (p[0] + top, p[1] + left)
                chain.nodes.insert(0, pad)
        act = _only_user(bn)
        if act is not None and not act.kwargs and len(act.args) == 1:
            m = model.get_submodule(act.target) if act.op == "call_module" else None
            if type(m) is nn.ReLU or (act.op == "call_function" and act.target in (F.relu, torch.relu)):
                chain.low = 0.0
            elif type(m) in (nn.ReLU6, nn.Hardtanh):  # exactly these: a subclass may compute something else
                chain.low, chain.high = float(m.min_val), float(m.max_val)
        if chain.low is not None:
            chain.nodes.append(act)
        chains[conv] = chain
    return chains
