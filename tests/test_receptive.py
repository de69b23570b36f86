"""Receptive fields from the traced graph, against the support of the gradient of a network whose weights are
all 1 (no rectifier): a unit depends on exactly the pixels of its field, no more, no fewer."""

import pytest
import torch
import torch.nn as nn

from cnnlib import receptive


class _Branches(nn.Module):
    """Dilation with "same" padding, a zero padding, a strided convolution, a residual addition of a 1×1 and a
    5×5 branch (the fields are united) and average pooling; every weight 1, no bias, no rectifier."""

    def __init__(self):
        super().__init__()
        self.dil = nn.Conv2d(1, 2, 3, padding="same", dilation=2, bias=False)
        self.pad = nn.ZeroPad2d(1)
        self.down = nn.Conv2d(2, 2, 3, stride=2, bias=False)
        self.one = nn.Conv2d(2, 2, 1, bias=False)
        self.five = nn.Conv2d(2, 2, 5, padding=2, bias=False)
        self.pool = nn.AvgPool2d(2)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.ones_(m.weight)

    def forward(self, x):
        h = self.down(self.pad(self.dil(x)))
        return self.pool(self.one(h) + self.five(h))


@pytest.mark.parametrize("layer", ["dil", "pad", "down", "one", "five", "pool"])
def test_receptive_field_is_the_gradient_support(layer):
    model = _Branches().double()
    rf = receptive.receptive_field(model, layer)
    x = torch.ones(1, 1, 23, 23, dtype=torch.float64, requires_grad=True)
    kept = {}
    hook = getattr(model, layer).register_forward_hook(lambda m, i, o: kept.__setitem__("out", o))
    try:
        model(x)
    finally:
        hook.remove()
    out = kept["out"]
    H, W = out.shape[-2:]
    # units whose field's edges are pixels they read (a dilated unit skips every other one; a unit of the zero
    # padding reads none)
    units = [(0, 0), (2, 2), (H // 2, W // 2)] if layer == "dil" else [(1, 1), (H // 2, W - 2), (H - 2, W // 2)]
    for i, j in units:
        (grad,) = torch.autograd.grad(out[0, 0, i, j], x, retain_graph=True)
        rows = torch.nonzero(grad[0, 0].abs().sum(1)).flatten()
        cols = torch.nonzero(grad[0, 0].abs().sum(0)).flatten()
        box = (int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1)
        assert box == rf.box(i, j, (23, 23)), (layer, i, j)


def test_a_unit_after_flatten_sees_the_whole_image():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 6 * 6, 3))
    assert receptive.receptive_field(model, "0").size == (3, 3)
    with pytest.raises(ValueError, match="receptive_field: the units of '2' see the whole image"):
        receptive.receptive_field(model, "2")
