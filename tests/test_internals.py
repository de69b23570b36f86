"""The deconvnet's and the occlusion engine's building blocks, each against an independent reference."""

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from cnnlib import deconvnet, incremental
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


def test_feature_stack_trace_and_record_of_zfnet_small():
    model = ZFNetSmall().eval()
    names = [n for n, _ in deconvnet.feature_stack(model)]
    assert names[:4] == ["features.conv1", "features.relu1", "features.pool1", "features.norm1"]
    assert names[-1] == "features.pool5"
    tr = deconvnet.trace(model)
    assert isinstance(tr, deconvnet.Traced) and tr.prefix == ""  # its input check is skipped while tracing
    convs = [n.target for n in tr.graph.nodes if n.op == "call_module" and n.target.endswith(("conv1", "conv5"))]
    assert convs == ["features.conv1", "features.conv5"]
    assert deconvnet.trace(model).graph is tr.graph  # the graph is kept for the next call
    rec = deconvnet.record(model, torch.rand(2, 1, 28, 28), "relu3")
    assert isinstance(rec, deconvnet.Record)
    kinds = [op.kind for op in rec.ops.values() if isinstance(op, deconvnet.Op)]
    assert kinds.count("conv") == 3 and kinds.count("maxpool") == 2 and kinds.count("rect") == 3
    assert rec.activation.shape == (2, 96, 7, 7) and (rec.activation >= 0).all()
    g = deconvnet.geometry(model, "relu2")
    assert g == deconvnet.Geometry((15, 15), (2, 2), (7, 7))  # 5 + 2·1 + 4·2 = 15, as the rule R += (k−1)J gives


def test_module_output_node_and_materialize():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Conv2d(2, 2, 3, padding=1))
    graph = fx.symbolic_trace(model).graph
    node = incremental.module_output_node(graph, model, model[1])
    assert node is not None and node.target == "1"
    assert incremental.module_output_node(graph, model, nn.ReLU()) is None
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
