"""The one forward hook of the library: copies, not references; every layer must run; hooks removed."""

import pytest
import torch
import torch.nn as nn

from cnnlib import models, topk, transfer
from cnnlib.hooks import LayerOutputs


def _net_with_inplace_relu() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(4, 2, 1))
    return net.eval()


def _no_hooks_left(net: nn.Module) -> bool:
    return all(not m._forward_hooks for m in net.modules())


def test_inplace_relu_does_not_overwrite_kept_output():
    net = _net_with_inplace_relu()
    x = torch.randn(2, 3, 8, 8)
    pre_relu = net[0](x)  # the conv's true output, computed independently
    assert pre_relu.min() < -0.5  # there are negative values for a ReLU to destroy
    kept = models.activations(net, x, ["0"])["0"]
    torch.testing.assert_close(kept, pre_relu)
    feats = transfer.extract_features(net, x, ["0"], progress=False)["0"]
    torch.testing.assert_close(feats, pre_relu.mean((2, 3)))
    top = topk.mine_topk(net, x, ["0"], k=2, progress=False)["0"]
    torch.testing.assert_close(top.values, pre_relu.flatten(2).amax(2).T.sort(1, descending=True).values)
    assert _no_hooks_left(net)


def test_layer_not_reached_is_a_clear_error():
    class Skips(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.unused = nn.Conv2d(1, 1, 1), nn.Conv2d(1, 1, 1)

        def forward(self, x):
            return self.used(x)

    net = Skips().eval()
    with pytest.raises(ValueError, match="activations: layer 'unused' was not reached"):
        models.activations(net, torch.zeros(1, 1, 4, 4), ["unused"])
    assert _no_hooks_left(net)


def test_hooks_removed_after_an_error_in_forward():
    net = _net_with_inplace_relu()
    with pytest.raises(RuntimeError), LayerOutputs(net, ["0", "2"]):
        net(torch.zeros(1, 5, 8, 8))  # wrong channel count: torch raises inside the block
    assert _no_hooks_left(net)


def test_detach_false_keeps_the_graph():
    net = _net_with_inplace_relu()
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    with LayerOutputs(net, ["0"], detach=False) as out:
        net(x)
        out["0"].sum().backward()
    torch.testing.assert_close(x.grad, torch.autograd.grad(net[0](x).sum(), x)[0])


def test_string_instead_of_list_is_refused():
    with pytest.raises(TypeError, match=r"activations: expected layers to be a list .*\(write \['conv1'\]\)"):
        models.activations(models.ZFNetSmall().eval(), torch.zeros(1, 1, 28, 28), "conv1")


def test_no_import_circle_in_cnnlib():
    """No module of cnnlib imports, directly or through others, a module that imports it back — counting the
    imports inside functions too (a deferred import is how a circle hides). hooks owns named_layer, so that
    models (activations) can import hooks without hooks importing models."""
    import ast
    from pathlib import Path

    import cnnlib

    graph = {}
    for f in Path(cnnlib.__file__).parent.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps.update([node.module.split(".")[0]] if node.module else [a.name for a in node.names])
        graph[f.stem] = deps - {f.stem}
    assert "models" in graph["occlusion"] or "hooks" in graph["occlusion"]  # the graph was read

    def reachable(start):
        seen, todo = set(), list(graph.get(start, ()))
        while todo:
            m = todo.pop()
            if m not in seen:
                seen.add(m)
                todo += graph.get(m, ())
        return seen

    circles = sorted(m for m in graph if m != "__init__" and m in reachable(m))
    assert circles == [], f"modules on an import circle: {circles}"
    assert "models" not in reachable("hooks")
    assert models.named_layer is __import__("cnnlib.hooks", fromlist=["named_layer"]).named_layer
