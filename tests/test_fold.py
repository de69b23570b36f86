"""Conv → BatchNorm → rectifier chains folded into one convolution, against the layers run one after another."""

import torch

from cnnlib import fold, graph


def test_batchnorm_and_rectifier_fold_into_the_convolution_before_them(chained_model):
    model = chained_model
    chains = {tuple(n.target for n in c.nodes): c for c in fold.fold_chains(model, graph.trace(model), {}).values()}
    assert set(chains) == {("0", "1", "2", "3"), ("5", "6", "7"), ("8", "9")}
    # each chain, run as one convolution, equals its layers run one after another (an independent reference)
    for names, c in chains.items():
        first = model[int(names[0])]
        t = torch.randn(2, first.in_channels if isinstance(first, torch.nn.Conv2d) else 3 if names[0] == "0" else 5,
                        9, 9)
        want = torch.nn.Sequential(*(model[int(n)] for n in names))(t)
        assert isinstance(c, fold.Chain) and torch.allclose(c(t, c.padding), want, rtol=1e-5, atol=1e-5)
    assert chains[("0", "1", "2", "3")].padding == (1, 1) and (chains[("0", "1", "2", "3")].low,
                                                               chains[("0", "1", "2", "3")].high) == (0.0, 6.0)
    assert chains[("8", "9")].low is None and chains[("8", "9")].high is None


def test_conv_params_reads_module_and_functional_convolutions_with_constant_weights():
    conv = torch.nn.Conv2d(2, 4, 3, stride=2, padding=1, groups=2)
    model = torch.nn.Sequential(conv).eval()
    g = graph.trace(model)
    (node,) = [n for n in g.nodes if n.op == "call_module"]
    w, b, s, p, d, groups = fold.conv_params(model, {}, node)
    assert w is conv.weight and b is conv.bias and (s, p, d, groups) == ((2, 2), (1, 1), (1, 1), 2)

    class Functional(torch.nn.Module):
        def __init__(self, padding):
            super().__init__()
            self.w, self.padding = torch.nn.Parameter(torch.randn(3, 1, 2, 2)), padding

        def forward(self, x):
            return torch.nn.functional.conv2d(x, self.w, None, 1, self.padding, 2)

    f = Functional(1)
    g = graph.trace(f)
    (node,) = [n for n in g.nodes if n.op == "call_function"]
    clean = {n: f.w for n in g.nodes if n.op == "get_attr"}  # the value each get_attr node reads
    w, b, s, p, d, groups = fold.conv_params(f, clean, node)
    assert w is f.w and b is None and (s, p, d, groups) == ((1, 1), (1, 1), (2, 2), 1)
    same = Functional("same")
    g = graph.trace(same)
    (node,) = [n for n in g.nodes if n.op == "call_function"]
    assert fold.conv_params(same, {n: same.w for n in g.nodes if n.op == "get_attr"}, node) is None  # not a number
    assert fold.conv_params(model, {}, next(iter(g.nodes))) is None  # not a convolution
