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
        assert torch.allclose(c(t, c.padding), want, rtol=1e-5, atol=1e-5)
    assert chains[("0", "1", "2", "3")].padding == (1, 1) and (chains[("0", "1", "2", "3")].low,
                                                               chains[("0", "1", "2", "3")].high) == (0.0, 6.0)
    assert chains[("8", "9")].low is None and chains[("8", "9")].high is None
