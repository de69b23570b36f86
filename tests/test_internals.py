"""The deconvnet's and the occlusion engine's building blocks, each against an independent reference."""

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from cnnlib import deconvnet, incremental, receptive
from cnnlib import graph as graphs
from cnnlib.models import ZFNetSmall


def test_conv_transpose_is_the_adjoint_of_the_convolution():
    """<conv(x), r> = <x, conv_transpose(r)> for every x and r: the transposed filters, with stride, padding,
    dilation and groups, are the adjoint of the convolution (bias dropped)."""
    torch.manual_seed(0)
    w = torch.randn(6, 2, 3, 3, dtype=torch.float64)
    x = torch.randn(2, 4, 11, 10, dtype=torch.float64)
    y = F.conv2d(x, w, stride=2, padding=1, dilation=2, groups=2)
    r = torch.randn_like(y)
    back = deconvnet.conv_transpose(r, w, (11, 10), stride=2, padding=1, dilation=2, groups=2)
    assert back.shape == x.shape
    assert torch.allclose((y * r).sum(), (x * back).sum())


def test_deconv_uses_the_modules_settings():
    conv = nn.Conv2d(3, 5, 5, stride=2, padding=2).double()
    r = torch.randn(1, 5, 4, 4, dtype=torch.float64)
    x = torch.zeros(1, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad((conv(x) * r).sum(), x)  # autograd's backward of the convolution
    assert torch.allclose(deconvnet.deconv(r, conv, (8, 8)), grad)


def test_trace_record_and_receptive_field_of_zfnet_small():
    model = ZFNetSmall().eval()
    tr = deconvnet.trace(model, "test")
    assert isinstance(tr, deconvnet.Traced) and tr.prefix == ""  # its input check is skipped while tracing
    convs = [n.target for n in tr.graph.nodes if n.op == "call_module" and n.target.endswith(("conv1", "conv5"))]
    assert convs == ["features.conv1", "features.conv5"]
    assert deconvnet.trace(model, "test").graph is tr.graph  # the graph is kept for the next call
    rec = deconvnet.record(model, torch.rand(2, 1, 28, 28), "relu3")
    assert isinstance(rec, deconvnet.Record)
    kinds = [op.kind for op in rec.ops.values() if isinstance(op, deconvnet.Op)]
    assert kinds.count("conv") == 3 and kinds.count("maxpool") == 2 and kinds.count("rect") == 3
    assert rec.activation.shape == (2, 96, 7, 7) and (rec.activation >= 0).all()
    rf = receptive.receptive_field(model, "relu2")
    assert rf == receptive.ReceptiveField((15, 15), (2, 2), (7, 7))  # 5 + 2·1 + 4·2 = 15: R += (k−1)J


def test_module_output_node_and_materialize():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Conv2d(2, 2, 3, padding=1))
    graph = fx.symbolic_trace(model).graph
    node = graphs.layer_node(graph, graphs.module_names(model, model[1]))  # how occlusion finds its layer
    assert node is not None and node.target == "1"
    assert graphs.layer_node(graph, graphs.module_names(model, nn.ReLU())) is None
    clean = torch.arange(2 * 5 * 5, dtype=torch.float32).reshape(1, 2, 5, 5)
    win = incremental.Window(data=-torch.ones(2, 2, 2, 3), r=torch.tensor([0, 3]), c=torch.tensor([1, 2]),
                             clean=clean)
    out = incremental.materialize(win)  # (2, 2, 5, 5): the clean map with each image's window pasted in
    expected = clean.repeat(2, 1, 1, 1)
    expected[0, :, 0:2, 1:4] = -1
    expected[1, :, 3:5, 2:5] = -1
    assert torch.equal(out, expected)
    whole = incremental.Whole(data=torch.ones(3, 2, 5, 5))
    assert incremental.materialize(whole) is whole.data
