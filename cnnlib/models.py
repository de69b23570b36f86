"""ZFNet-small: the course's own 8-layer network, shaped like Zeiler & Fergus's (5 conv + 3 fully connected).

Zeiler & Fergus (ECCV 2014, Fig. 3) take 224×224×3 images through

    conv1 96@7×7/2 → ReLU → max-pool 3×3/2 → contrast norm.
    conv2 256@5×5/2 → ReLU → max-pool 3×3/2 → contrast norm.
    conv3 384@3×3 → ReLU,  conv4 384@3×3 → ReLU,  conv5 256@3×3 → ReLU → max-pool 3×3/2
    fc6 4096 → ReLU → dropout,  fc7 4096 → ReLU → dropout,  fc8 1000 → softmax.

``ZFNetSmall`` keeps that sequence — two wide-filter layers each followed by overlapping 3×3/2 max-pooling and
local response (contrast) normalization, three 3×3 layers, a last pooling, three fully connected layers with
dropout — scaled so that a laptop CPU trains it on 28×28 images in minutes:

    ========  =====================  =============  ================================
    layer     ZF (224×224×3)         ZFNet-small    output for a 28×28×1 input
    ========  =====================  =============  ================================
    conv1     96 @ 7×7, stride 2     32 @ 5×5, s 1  32 × 28 × 28 (pad 2)
    pool1     3×3 / 2                3×3 / 2        32 × 14 × 14 (pad 1), then LRN
    conv2     256 @ 5×5, stride 2    64 @ 5×5, s 1  64 × 14 × 14 (pad 2)
    pool2     3×3 / 2                3×3 / 2        64 × 7 × 7 (pad 1), then LRN
    conv3     384 @ 3×3              96 @ 3×3       96 × 7 × 7
    conv4     384 @ 3×3              96 @ 3×3       96 × 7 × 7
    conv5     256 @ 3×3              64 @ 3×3       64 × 7 × 7
    pool5     3×3 / 2                3×3 / 2        64 × 4 × 4 (pad 1) = 1024
    fc6, fc7  4096, dropout 0.5      256, dropout   256
    fc8       1000                   10             10 (logits)
    ========  =====================  =============  ================================

Strides are 1 in the convolutions because a 28×28 image has no pixels to spare (ZF's stride 2 turns 224 into
110); all the subsampling is done by the three poolings, padded by 1 so that 28 → 14 → 7 → 4. 0.58 M parameters.
For 3-channel images (``in_channels=3``) and other sizes (``image_size``), the same layout applies; the size
of fc6's input follows from the three poolings.

Layers are named modules (``conv1`` … ``conv5``, ``relu1`` …, ``pool1``, ``norm1``, …, ``fc6`` … ``fc8``), so
the visualization chapters address a layer by name: ``dict(model.named_modules())["conv3"]``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.fx
import torch.nn as nn

from . import checks
from .hooks import LayerOutputs, named_layer  # noqa: F401 (named_layer: cnnlib.models.named_layer)
from .layers import output_size


class Dropout(nn.Dropout):
    """``nn.Dropout`` (Srivastava et al. 2014: each unit kept with probability ``1 − p``, kept ones scaled by
    ``1 / (1 − p)``) whose masks the trainer may draw itself.

    While :func:`cnnlib.train.train_epoch` runs, ``sampler(shape, p)`` gives the keep-mask of this process's
    share of the global mini-batch, drawn for the whole global batch: every example gets the same mask in one
    process as in ``K`` (DistributedDataParallel), and the processes never share masks. Otherwise (and always in
    eval mode) it is ``nn.Dropout``; in one process on the CPU both draw the very same masks.
    """

    def __init__(self, p: float = 0.5):
        super().__init__(p)
        self.sampler = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.sampler is None or self.p in (0, 1):
            return super().forward(x)
        keep = self.sampler(x.shape, self.p).to(device=x.device, dtype=x.dtype)  # 0/1, the shape of x
        return x * (keep / (1 - self.p))


def _pooled(size: int) -> int:
    return output_size(size, 3, 2, 1)


class ZFNetSmall(nn.Module):
    """ZFNet-shaped CNN: 5 conv layers, 3 fully connected layers, named layers.

    Args:
        in_channels: 1 (gray) or 3 (colour).
        num_classes: size of the output.
        image_size: side of the square input (28 for Fashion-MNIST).
        widths: output channels of conv1..conv5.
        fc_width: units of fc6 and fc7.
        dropout: dropout probability before fc7 and fc8, as ZF do after fc6 and fc7.
        lrn: local response normalization after pool1 and pool2 (ZF's contrast normalization).

    Shapes: ``(N, in_channels, image_size, image_size)`` → logits ``(N, num_classes)``.
    """

    CONV_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")
    FC_LAYERS = ("fc6", "fc7", "fc8")

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        image_size: int = 28,
        widths: tuple[int, int, int, int, int] = (32, 64, 96, 96, 64),
        fc_width: int = 256,
        dropout: float = 0.5,
        lrn: bool = True,
    ):
        super().__init__()
        in_channels = checks.positive_int("ZFNetSmall", in_channels, "in_channels")
        num_classes = checks.positive_int("ZFNetSmall", num_classes, "num_classes", 2)
        image_size = checks.positive_int("ZFNetSmall", image_size, "image_size (three 3×3/2 poolings)", 8)
        if isinstance(widths, str) or not hasattr(widths, "__len__") or len(widths) != 5:
            raise ValueError(f"ZFNetSmall: expected 5 widths (conv1..conv5), got {widths!r}")
        widths = tuple(checks.positive_int("ZFNetSmall", w, "widths") for w in widths)
        fc_width = checks.positive_int("ZFNetSmall", fc_width, "fc_width")
        dropout = checks.number("ZFNetSmall", dropout, "dropout", 0, 1)
        self.in_channels, self.image_size, self.num_classes = in_channels, image_size, num_classes
        c1, c2, c3, c4, c5 = widths
        norm = (lambda: nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)) if lrn else nn.Identity
        self.features = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(in_channels, c1, 5, padding=2)), ("relu1", nn.ReLU()),
            ("pool1", nn.MaxPool2d(3, 2, padding=1)), ("norm1", norm()),
            ("conv2", nn.Conv2d(c1, c2, 5, padding=2)), ("relu2", nn.ReLU()),
            ("pool2", nn.MaxPool2d(3, 2, padding=1)), ("norm2", norm()),
            ("conv3", nn.Conv2d(c2, c3, 3, padding=1)), ("relu3", nn.ReLU()),
            ("conv4", nn.Conv2d(c3, c4, 3, padding=1)), ("relu4", nn.ReLU()),
            ("conv5", nn.Conv2d(c4, c5, 3, padding=1)), ("relu5", nn.ReLU()),
            ("pool5", nn.MaxPool2d(3, 2, padding=1)),
        ]))
        side = _pooled(_pooled(_pooled(image_size)))
        self.classifier = nn.Sequential(OrderedDict([
            ("flatten", nn.Flatten()),
            ("fc6", nn.Linear(c5 * side * side, fc_width)), ("relu6", nn.ReLU()), ("drop6", Dropout(dropout)),
            ("fc7", nn.Linear(fc_width, fc_width)), ("relu7", nn.ReLU()), ("drop7", Dropout(dropout)),
            ("fc8", nn.Linear(fc_width, num_classes)),
        ]))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He initialisation (weights ~ N(0, 2 / fan_in), biases 0), so that the signal keeps its scale
        through the seven ReLU layers; fc8 starts small (std 0.01) so that the first predictions are uniform."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.classifier.fc8.weight, std=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.fx.Proxy):  # checked when called, not while torch.fx traces the graph
            expected = (self.in_channels, self.image_size, self.image_size)
            checks.tensor("ZFNetSmall", x)
            if x.ndim != 4 or tuple(x.shape[1:]) != expected:
                raise ValueError(f"ZFNetSmall: expected input (N, {', '.join(map(str, expected))}), "
                                 f"got {tuple(x.shape)}")
            checks.floating("ZFNetSmall", x)
        return self.classifier(self.features(x))

    def layer(self, name: str) -> nn.Module:
        """The module called ``name`` (e.g. ``"conv3"`` or ``"features.conv3"``); see :func:`named_layer`."""
        return named_layer(self, name)


def layer_shapes(model: nn.Module, input_shape: tuple[int, ...]) -> list[tuple[str, tuple[int, ...], int]]:
    """Run a zero batch ``(1, *input_shape)`` through ``model`` and list, for every leaf module,
    ``(name, output shape without the batch dimension, number of parameters)``.

    The hooks only read the shape of each output (nothing is kept), so no copy is needed."""
    device = checks.model_device("layer_shapes", model)
    if isinstance(input_shape, int) or not isinstance(input_shape, (tuple, list, torch.Size)) or not input_shape:
        raise TypeError(f"layer_shapes: expected input_shape as a tuple without the batch dimension, e.g. "
                        f"(1, 28, 28), got {input_shape!r}")
    input_shape = tuple(checks.positive_int("layer_shapes", s, "input_shape sizes") for s in input_shape)
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    rows, hooks = [], []
    for name, mod in model.named_modules():
        if len(list(mod.children())) == 0:
            hooks.append(mod.register_forward_hook(
                lambda m, i, o, name=name: rows.append(
                    (name.split(".")[-1], tuple(o.shape[1:]), sum(p.numel() for p in m.parameters())))
            ))
    was = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device, dtype=dtype))
    finally:
        model.train(was)
        for h in hooks:
            h.remove()
    return rows


def activations(model: nn.Module, x: torch.Tensor, layers: list[str]) -> dict[str, torch.Tensor]:
    """Outputs of the named ``layers`` of ``model`` for input ``x`` (one forward pass, no gradients).

    Args:
        model: any module, in eval mode if it has BatchNorm or dropout; layers: a list of names as accepted by
            :func:`named_layer`.
        x: input batch, e.g. ``(N, C, H, W)``, moved to the model's device.

    Returns:
        ``{name: output}``, copies on the CPU (a following in-place ReLU does not change them), e.g.
        ``(N, 32, 28, 28)`` for ZFNet-small's ``"conv1"``.
    """
    layers = checks.layer_list("activations", layers)
    x = checks.images("activations", x, ndim=(2, 4))
    x = checks.to_model("activations", model, x)
    checks.eval_mode("activations", model)
    with LayerOutputs(model, layers, fn="activations") as out, torch.no_grad(), \
            checks.model_input("activations", x.shape):
        model(x)
        return {name: out[name].cpu() for name in layers}


class ZFNetPhoto(ZFNetSmall):
    """ZFNet-shaped CNN for colour photos: ZF's strided first two layers, ZFNet-small's other layers.

    Zeiler & Fergus's conv1 is 7×7 with stride 2 (AlexNet's: 11×11, stride 4) and their conv2 has stride 2;
    this class keeps both, at widths a CPU trains in an hour (:mod:`cnnlib.distill`):

        conv1 c1@k×k/s (pad k//2) → ReLU → max-pool 3×3/2 → LRN → conv2 c2@5×5/2 → ReLU → max-pool 3×3/2 → LRN
        → conv3, conv4, conv5 @3×3 → ReLU → max-pool 3×3/2 → fc6 → fc7 → fc8.

    For a 64×64 input and ``conv1=(7, 2)``: 32×32 after conv1, 16 after pool1, 8 after conv2, 4 after pool2 and
    conv3–5, 2 after pool5; with ``conv1=(11, 4)``: 16, 8, 4, 2, 1.

    Args:
        num_classes: outputs (1000: the teacher's ImageNet classes).
        image_size: side of the square RGB input.
        conv1: ``(kernel, stride)`` of the first layer: ``(7, 2)`` as ZF, ``(11, 4)`` as AlexNet.
        widths, fc_width, dropout, lrn: as :class:`ZFNetSmall`.
        conv1_scale: conv1's He-initialised weights are multiplied by this. Small filters start smooth, and
            under weight decay much of a start stays in the trained filters: :mod:`cnnlib.distill`'s photo
            networks start at 0.01 (a standard deviation of about 10⁻³), which let conv1 learn edges and colour
            blobs.

    Layer names are ZFNet-small's (``conv1`` … ``fc8``). Shapes: ``(N, 3, image_size, image_size)`` →
    ``(N, num_classes)``.
    """

    def __init__(self, num_classes: int = 1000, image_size: int = 64, conv1: tuple[int, int] = (7, 2),
                 widths: tuple[int, int, int, int, int] = (32, 64, 96, 96, 64), fc_width: int = 256,
                 dropout: float = 0.25, lrn: bool = True, conv1_scale: float = 0.1):
        kernel, stride = (int(v) for v in conv1)
        if kernel < 1 or stride < 1:
            raise ValueError(f"ZFNetPhoto: expected conv1 = (kernel >= 1, stride >= 1), got {conv1}")
        super().__init__(3, num_classes, image_size, widths, fc_width, dropout, lrn)
        self.conv1_shape, self.conv1_scale = (kernel, stride), float(conv1_scale)
        c1, c2 = widths[0], widths[1]
        self.features.conv1 = nn.Conv2d(3, c1, kernel, stride=stride, padding=kernel // 2)
        self.features.conv2 = nn.Conv2d(c1, c2, 5, stride=2, padding=2)
        side = output_size(image_size, kernel, stride, kernel // 2)  # conv1
        side = _pooled(output_size(_pooled(side), 5, 2, 2))  # pool1, conv2, pool2
        side = _pooled(side)  # pool5 (padded layers: at least 1)
        self.classifier.fc6 = nn.Linear(widths[4] * side * side, fc_width)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """:meth:`ZFNetSmall.reset_parameters`, then conv1's weights times ``conv1_scale``."""
        super().reset_parameters()
        if hasattr(self, "conv1_scale"):
            with torch.no_grad():
                self.features.conv1.weight.mul_(self.conv1_scale)
