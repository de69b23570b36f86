"""Which pixels a unit can see: the receptive field of a layer's units, read from the model's traced graph.

Through a convolution or pooling with kernel ``k``, dilation ``d``, stride ``s`` and padding ``p`` (before the
first row), the field of the units grows as

    R ← R + d·(k − 1)·J,     P ← P + p·J,     J ← J·s       (starting from R = 1, P = 0, J = 1 at the input),

and the unit at ``(i, j)`` sees input rows ``i·J − P … i·J − P + R − 1`` (and the same for columns). A zero
padding adds to ``P``; pointwise layers (rectifiers, BatchNorm, LRN) change nothing; where branches meet
(residual addition, concatenation) the fields are united. After global pooling, flatten or a fully connected
layer a unit sees the whole image. Any model :func:`cnnlib.deconvnet.project` takes (:mod:`cnnlib.graph`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch.fx as fx
import torch.nn as nn

from . import checks
from . import graph as graphs
from .layers import conv_padding, pair


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of the units of one layer: size ``R``, jump ``J`` (stride in input pixels), padding ``P``;
    each a ``(rows, columns)`` pair."""

    size: tuple[int, int]
    jump: tuple[int, int]
    padding: tuple[int, int]

    def box(self, i: int, j: int, image_size: tuple[int, int] | None = None) -> tuple[int, int, int, int]:
        """``(top, bottom, left, right)`` (bottom/right exclusive) of the unit at ``(i, j)``, clipped to the image."""
        top, left = i * self.jump[0] - self.padding[0], j * self.jump[1] - self.padding[1]
        bottom, right = top + self.size[0], left + self.size[1]
        if image_size is not None:
            top, left = max(top, 0), max(left, 0)
            bottom, right = min(bottom, image_size[0]), min(right, image_size[1])
        return top, bottom, left, right


def receptive_field(model: nn.Module, layer: str) -> ReceptiveField:
    """The receptive field of ``layer``'s units (a module's full or unique short name; its last call), by the
    rule above along the traced graph. A unit after global pooling or a fully connected layer sees the whole
    image: ``ValueError``."""
    fn = "receptive_field"
    if not isinstance(layer, str):
        raise TypeError(f"{fn}: expected a layer name (a string), got {layer!r}")
    tr = graphs.traced(checks.module(fn, model), fn)
    target = graphs.find_layer(tr, layer, fn)
    path = graphs.ancestors(target)
    start = next(n for n in path if n.op == "placeholder")
    geo = {start: ((1, 1), (1, 1), (0, 0), False)}  # node -> (R, J, P, whole)
    for node in path:
        ins = [a for a in node.all_input_nodes if a in geo]
        if node is start or not ins:
            continue
        mod = tr.model.get_submodule(node.target) if node.op == "call_module" else None
        op = graphs.classify(node, mod, set(geo), fn)
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
                top, _, left, _ = conv_padding(p["padding"], k, d)
                pad = (top, left)
            else:
                k, pad, d = pair(p["kernel_size"]), pair(p["padding"]), pair(p.get("dilation", 1))
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
    if whole:
        raise ValueError(f"{fn}: the units of {layer!r} see the whole image (after global pooling, "
                         "flatten or a fully connected layer); there is no patch to crop")
    return ReceptiveField(R, J, P)

