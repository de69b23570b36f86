"""The incremental engine: which kernels it uses, the folded chains, the counts (the maps: test_occlusion.py)."""

import warnings

import pytest
import torch

from cnnlib import incremental, occlusion


def test_the_module_kernels_are_used_only_where_they_match():
    lrn = torch.nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
    x = torch.randn(2, 7, 6, 6)
    assert torch.allclose(incremental._module_kernel(lrn)(x), lrn(x), rtol=1e-6, atol=0)
    pool = torch.nn.MaxPool2d(3, 2, 1)
    assert torch.equal(incremental._module_kernel(pool)(x), pool(x))
    for other in (torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True), torch.nn.MaxPool2d(3, 2, 1, dilation=2),
                  torch.nn.MaxPool2d(2, return_indices=True), torch.nn.ReLU()):
        assert incremental._module_kernel(other) is None


@pytest.mark.parametrize("layer", ["1", "2", "5", "9"])  # a convolution inside a chain keeps its own values
def test_a_kept_layer_inside_a_chain_keeps_its_own_values(layer, chained_model):
    model, x = chained_model, torch.randn(3, 12, 12)
    kw = dict(size=4, stride=3, fill=0.1, layer=layer, progress=False, batch_size=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", incremental.IncrementalFallbackWarning)
        fast = occlusion.occlusion_maps(model, x, **kw)
        plain = occlusion.occlusion_maps(model, x, method="plain", **kw)
    assert fast.method == "incremental"
    torch.testing.assert_close(fast.feature, plain.feature, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast.prob, plain.prob, rtol=0, atol=1e-6)


@pytest.mark.parametrize("channels_last", [False, True])
def test_both_memory_layouts_give_the_model_s_output(channels_last, chained_model):
    model = chained_model
    x = torch.randn(1, 3, 12, 12)
    engine = incremental.Engine(model, x, channels_last=channels_last)
    occluded = x.clone()
    occluded[0, :, 2:6, 7:11] = 0.0
    window = incremental.Window(occluded[:, :, 2:6, 7:11].clone(), torch.tensor([2]), torch.tensor([7]), x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", incremental.IncrementalFallbackWarning)
        out, _ = engine.run(window)
    assert torch.allclose(out, model(occluded), rtol=1e-5, atol=1e-6)


def test_multiply_adds_are_counted_on_the_windows():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.Flatten(),
                                torch.nn.Linear(200, 4)).eval()
    x = torch.randn(1, 1, 10, 10)
    engine = incremental.Engine(model, x)
    window = incremental.Window(torch.zeros(1, 1, 2, 2), torch.tensor([5]), torch.tensor([5]), x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", incremental.IncrementalFallbackWarning)  # Flatten runs whole
        engine.run(window)
    # input rows 5, 6 reach output rows 4..7 (a 3 × 3 kernel, padding 1): the conv recomputes 4 × 4 × 2
    # outputs, 9 multiply-adds each; the linear layer 4 outputs of 200; whole, the conv gives 10 × 10 × 2
    assert engine.multiply_adds == [4 * 4 * 2 * 9 + 4 * 200, 10 * 10 * 2 * 9 + 4 * 200]


def test_the_traced_graph_is_kept_per_model_and_traced_again_when_the_model_changes(chained_model):
    model = chained_model
    x = torch.randn(1, 3, 12, 12)
    first = incremental.Engine(model, x)
    assert incremental.Engine(model, torch.randn(1, 3, 12, 12)).graph is first.graph  # same shape: kept
    other = incremental.Engine(model, torch.randn(1, 3, 14, 14))  # the graph does not depend on the shape
    assert other.graph is first.graph and other.clean[other.graph.output_node()].shape == (1, 3)
    model[12] = torch.nn.Linear(4, 3)  # new weights, same structure: same graph, the new weights used
    again = incremental.Engine(model, x)
    assert again.graph is first.graph and torch.allclose(again.clean[again.graph.output_node()], model(x), atol=1e-6)
    model[3] = torch.nn.Tanh()  # another structure: traced again
    assert incremental.Engine(model, x).graph is not first.graph


def test_a_stale_cached_graph_is_traced_again():
    class Switch(torch.nn.Module):  # forward reads a plain attribute: same modules, another graph
        def __init__(self):
            super().__init__()
            self.conv, self.double = torch.nn.Conv2d(1, 2, 3), False

        def forward(self, x):
            y = self.conv(x)
            return (2 * y if self.double else y).flatten(1)

    model, x = Switch().eval(), torch.randn(1, 1, 6, 6)
    first = incremental.Engine(model, x)
    model.double = True
    again = incremental.Engine(model, x)
    assert again.graph is not first.graph and torch.allclose(again.clean[again.graph.output_node()], model(x))
