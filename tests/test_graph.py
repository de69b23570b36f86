"""The shared graph layer: one traced graph per model and structure, and the node of a layer's output."""

import pytest
import torch
import torch.fx as fx
import torch.nn as nn

from cnnlib import graph


class _Block(nn.Module):  # traced through: its output is the last node computed inside it
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        return torch.relu(self.conv(x)) + x


class _MyConv(nn.Conv2d):  # a convolution subclass that keeps nn.Conv2d's forward
    pass


def _model():
    return nn.Sequential(_MyConv(1, 2, 3, padding=1), _Block(), nn.Flatten(), nn.Linear(2 * 5 * 5, 3)).eval()


def test_layer_node_is_the_output_of_the_layer():
    model = _model()
    g = graph.trace(model)
    x = torch.randn(2, 1, 5, 5)
    env = fx.Interpreter(model, garbage_collect_values=False, graph=g)
    env.run(x)
    conv = graph.layer_node(g, {"0"})
    assert conv.op == "call_module" and conv.target == "0"  # the subclass stays one node
    block = graph.layer_node(g, {"1"})
    assert block.target is not None and torch.equal(env.env[block], model[1](model[0](x)))
    assert graph.layer_node(g, {"1.conv"}).target == "1.conv"
    assert graph.layer_node(g, {"nothing"}) is None
    assert graph.module_names(model, model[1].conv) == {"1.conv"}


def test_the_graph_is_kept_until_the_structure_changes():
    model = _model()
    first = graph.trace(model)
    assert graph.trace(model) is first
    assert graph.trace(model, fresh=True) is not first
    kept = graph.trace(model)
    model[2] = nn.Identity()  # another structure: traced again
    assert graph.trace(model) is not kept


def test_untraceable_forward_raises():
    class Branch(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(fx.proxy.TraceError):
        graph.trace(Branch())


def test_the_tracer_keeps_a_convolution_subclass_whole_and_ancestors_are_in_forward_order():
    model = _model()
    g = graph.Tracer().trace(model)
    assert [n.target for n in g.nodes if n.op == "call_module"][0] == "0"  # _MyConv: one node, not traced through
    tr = graph.Traced(model, graph.trace(model))
    block = graph.find_layer(tr, "1", "f")
    up = graph.ancestors(block)
    assert up[0].op == "placeholder" and up[-1] is block and [n.target for n in up if n.op == "call_module"] == [
        "0", "1.conv"]
    order = list(g.nodes)
    assert [order.index(n) for n in graph.ancestors(graph.layer_node(g, {"1"}))] == sorted(
        order.index(n) for n in graph.ancestors(graph.layer_node(g, {"1"})))
    with pytest.raises(ValueError, match="^f: unknown layer 'conv9'"):
        graph.find_layer(tr, "conv9", "f")
    with pytest.raises(TypeError, match="^f: expected layer to be a module name"):
        graph.find_layer(tr, 3, "f")
    class Unused(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.spare = nn.Conv2d(1, 1, 1), nn.Conv2d(1, 1, 1)

        def forward(self, x):
            return self.used(x)  # never calls self.spare

    unused = Unused()
    with pytest.raises(ValueError, match="^f: layer 'spare' is never reached"):
        graph.find_layer(graph.Traced(unused, graph.trace(unused)), "spare", "f")
