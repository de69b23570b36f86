"""Sanity checks for saliency maps (Adebayo et al., NeurIPS 2018): does a picture show the network, or the image?

A map that explains a network must change when the network changes. Three tests ask it:

* **cascading randomization** — re-initialise the weights layer by layer from the top (fc8, then fc7, …, conv1),
  map the same images with the same target after each step and compare with the trained network's map;
* **independent randomization** — re-initialise one layer at a time, the others trained;
* **data randomization** — compare with a network of the same shape trained on labels permuted at random
  (``scripts/train_permuted.py``), which has learnt nothing about the classes.

A method whose maps stay alike (similarity near that of a map with itself) fails: its picture comes from the image
(edges, by Nie, Zhang & Patel, ICML 2018: "partial image recovery"), not from what the network learnt.

Maps (:func:`attribute`, ``(N, C, H, W)``): the course's deconvnet (:func:`cnnlib.deconvnet.project`, with
switches, started from 1 at the target as Captum's ``Deconvolution`` is: a randomized network's negative output
would otherwise be rectified to a blank map), occlusion (:func:`cnnlib.occlusion.occlusion_maps`), and Captum's
gradient (Simonyan et al. 2014), gradient × input, integrated gradients (Sundararajan et al. 2017), guided
backprop (Springenberg et al. 2015), Grad-CAM and guided Grad-CAM (Selvaraju et al. 2017). The target is a class's
logit, or one unit of a layer's feature maps (ZF's use: the strongest activation of one map), fixed on the trained
network and kept for every randomized one. :func:`captum_projection` takes the unit ``project`` picks back with
Captum's ``Deconvolution``, ``GuidedBackprop`` or ``Saliency``, to compare the rules at the ReLUs (Chapter 5).

Similarity of two maps (:func:`similarities`, each ``(N,)``, one value per image) after Adebayo et al.:
Spearman rank correlation of the absolute maps (``|m|`` summed over colour channels) and of the signed maps
(``m`` summed), SSIM (``skimage.metrics.structural_similarity``) and the Pearson correlation of HOG features
(``skimage.feature.hog``) of the absolute maps scaled to [0, 1]. The floors: the same measures between the maps of
two different images (:func:`unrelated`), and between a map and the image's own edges (:func:`edge_maps`, Sobel).
:func:`verdict` says whether a map passes the cascade.
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from skimage.feature import hog
from skimage.filters import sobel
from skimage.metrics import structural_similarity

from . import checks
from .deconvnet import project
from .devices import device as default_device
from .hooks import LayerOutputs, named_layer
from .models import ZFNetSmall
from .occlusion import occlusion_maps
from .photos import check_shipped
from .snapshots import DATA_DIR, check_made_from, checked_file, manifest_entries

__all__ = ["METHODS", "UNIT_METHODS", "CAPTUM_METHODS", "MEASURES", "randomized", "cascade", "independent", "label",
           "unit_at", "captum_projection", "attribute", "to_2d", "similarities", "summarize", "unrelated", "edge_maps",
           "verdict", "load_shipped", "shipped_runs", "load_results"]

METHODS = ("deconvnet", "guided_backprop", "gradient", "gradient_x_input", "integrated_gradients",
           "grad_cam", "guided_grad_cam", "occlusion")
# Grad-CAM weighs the maps of the last convolutional layer by the class's gradient: it has no meaning for a unit.
UNIT_METHODS = ("deconvnet", "guided_backprop", "gradient", "gradient_x_input", "integrated_gradients", "occlusion")
MEASURES = ("spearman_abs", "spearman", "ssim", "hog")


# --- randomization -------------------------------------------------------------------------------------------

def _reinit(fn: str, model: nn.Module, name: str, seed: int) -> None:
    """Re-initialise, in place, every sub-module of layer ``name`` that has parameters, with the module's own
    ``reset_parameters`` (PyTorch's default initialisation; BatchNorm also forgets its running statistics),
    drawn from ``seed``."""
    layer = named_layer(model, name, fn)
    mods = [m for m in layer.modules() if hasattr(m, "reset_parameters")]
    if not mods:
        raise ValueError(f"{fn}: layer {name!r} ({type(layer).__name__}) has no parameters to re-initialise")
    dev = next(layer.parameters()).device
    layer.cpu()  # drawn by the CPU's generator: the same random weights on a GPU
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in mods:
            m.reset_parameters()
    layer.to(dev)


def _reinit_group(fn: str, model: nn.Module, group: tuple[str, ...], seed: int) -> None:
    """Re-initialise the layers of one group: the first from ``seed``, the j-th from ``seed + 7919 j`` (two
    blocks of the same shape in one group must not get the same random weights)."""
    for j, name in enumerate(group):
        _reinit(fn, model, name, seed + 7919 * j)


def _check_layers(fn: str, model, layers) -> list[tuple[str, ...]]:
    """``layers`` as groups of names: each item a layer name, or a tuple of names re-initialised together."""
    checks.module(fn, model)
    checks.eval_mode(fn, model)
    if isinstance(layers, str) or not isinstance(layers, Sequence) or not layers:
        raise TypeError(f"{fn}: expected layers to be a non-empty list of layer names (or tuples of names), "
                        f"got {layers!r}")
    groups = [(item,) if isinstance(item, str) else tuple(checks.layer_list(fn, item)) for item in layers]
    for group in groups:
        for name in group:
            named_layer(model, name, fn)
    return groups


def label(group) -> str:
    """A cascade step's name: the layer, or ``"first…last"`` for a group of layers."""
    group = (group,) if isinstance(group, str) else tuple(group)
    return group[0] if len(group) == 1 else f"{group[0]}…{group[-1]}"


def randomized(model: nn.Module, layers: Sequence[str], seed: int = 0) -> nn.Module:
    """A copy of ``model`` (in eval mode) whose ``layers`` are re-initialised; the i-th (a name, or a tuple of
    names re-initialised together) from seed ``seed + i`` (see :func:`_reinit_group`). ``model`` is not changed."""
    groups = _check_layers("randomized", model, layers)
    out = copy.deepcopy(model).eval()
    for i, group in enumerate(groups):
        _reinit_group("randomized", out, group, seed + i)
    return out


def cascade(model: nn.Module, layers: Sequence[str], seed: int = 0) -> list[tuple[str, nn.Module]]:
    """Cascading randomization: ``[(layers[0], m_0), (layers[1], m_1), …]`` where ``m_k`` has ``layers[0..k]``
    re-initialised. Give ``layers`` from the top down (``["fc8", "fc7", …, "conv1"]``). Layer ``layers[i]`` gets
    the same random weights in every step and in :func:`independent` (seed ``seed + i``)."""
    groups = _check_layers("cascade", model, layers)
    steps, current = [], copy.deepcopy(model).eval()
    for i, group in enumerate(groups):
        current = copy.deepcopy(current)
        _reinit_group("cascade", current, group, seed + i)
        steps.append((label(group), current))
    return steps


def independent(model: nn.Module, layers: Sequence[str], seed: int = 0) -> list[tuple[str, nn.Module]]:
    """Independent randomization: ``[(layers[i], m_i)]`` where ``m_i`` has only ``layers[i]`` re-initialised
    (seed ``seed + i``, the weights :func:`cascade` gives it)."""
    groups = _check_layers("independent", model, layers)
    steps = []
    for i, group in enumerate(groups):
        m = copy.deepcopy(model).eval()
        _reinit_group("independent", m, group, seed + i)
        steps.append((label(group), m))
    return steps


# --- maps ----------------------------------------------------------------------------------------------------

class _Units(nn.Module):
    """A model's output replaced by one layer's feature maps, flattened ``(N, K·h·w)``: a unit is a target
    Captum can pick. The copy of the maps stays in the autograd graph (:class:`cnnlib.hooks.LayerOutputs`)."""

    def __init__(self, model: nn.Module, layer: str, fn: str = "attribute"):
        super().__init__()
        self.model, self.layer, self.fn = model, layer, fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with LayerOutputs(self.model, [self.layer], fn=self.fn, detach=False) as out:
            self.model(x)
            return out[self.layer].flatten(1)


class _ReLU6(nn.ReLU):
    """ReLU6 dressed as an ``nn.ReLU``, so that Captum's guided backprop, which hooks ``nn.ReLU`` modules only,
    sees the ReLU6s of EfficientNet-Lite0 (otherwise it silently returns the plain gradient)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.hardtanh(x, 0.0, 6.0)


def _guided_copy(model: nn.Module) -> nn.Module:
    out = copy.deepcopy(model)
    for m in list(out.modules()):
        for child_name, child in list(m.named_children()):
            if isinstance(child, nn.ReLU6):
                setattr(m, child_name, _ReLU6())
            elif isinstance(child, nn.ReLU) and child.inplace:  # Captum's hooks cannot follow an in-place ReLU
                setattr(m, child_name, nn.ReLU())
    return out


@torch.no_grad()
def _strongest(fn: str, model: nn.Module, x: torch.Tensor, layer: str, channel: int):
    """The strongest unit of map ``channel`` of ``layer`` in each image ``x`` ``(N, C, H, W)`` (already checked
    and on the model's device): positions ``(N, 2)`` int64, activations ``(N,)`` and the map size ``(h, w)``."""
    with LayerOutputs(model, [layer], fn=fn) as out, checks.model_input(fn, x.shape):
        model(x)
        a = out[layer]
    if a.ndim != 4 or not 0 <= channel < a.shape[1]:
        raise ValueError(f"{fn}: layer {layer!r} gives {tuple(a.shape)}; channel={channel} is not a map of it")
    fmap = a[:, channel].flatten(1)  # (N, h·w)
    flat = fmap.argmax(1)
    return torch.stack([flat // a.shape[3], flat % a.shape[3]], 1), fmap.gather(1, flat[:, None])[:, 0], a.shape[2:]


def unit_at(model: nn.Module, x: torch.Tensor, layer: str, channel: int) -> torch.Tensor:
    """Where map ``channel`` of ``layer`` is strongest in each image: ``(N, 2)`` int64 positions ``(i, j)``, to
    fix a unit on the trained network and ask every randomized one about the same unit."""
    fn = "unit_at"
    checks.module(fn, model)
    checks.eval_mode(fn, model)
    return _strongest(fn, model, checks.to_model(fn, model, checks.images(fn, x)), layer, channel)[0].cpu()


CAPTUM_METHODS = ("deconvolution", "guided_backprop", "gradient")


def captum_projection(
    model: nn.Module, x: torch.Tensor, layer: str, channel: int, method: str = "deconvolution"
) -> torch.Tensor:
    """The unit :func:`cnnlib.deconvnet.project` picks (the strongest of map ``channel`` of ``layer``, per image),
    taken back to the input by Captum (Kokhlikyan et al. 2020, arXiv 2009.07896) instead of by the course's
    deconvnet. ``method`` chooses what happens at each ReLU on the way down (``g`` the signal arriving from
    above, ``z`` the ReLU's forward input):

    * ``"deconvolution"`` — ``captum.attr.Deconvolution``, Zeiler & Fergus's rule ``max(g, 0)``;
    * ``"guided_backprop"`` — ``captum.attr.GuidedBackprop`` (Springenberg et al. 2015), ``max(g, 0)·[z > 0]``;
    * ``"gradient"`` — ``captum.attr.Saliency(abs=False)`` (Simonyan et al. 2014), the plain gradient ``g·[z > 0]``.

    Captum back-propagates through every other module, LRN included, where the deconvnet passes through it;
    where only convolutions, ``nn.ReLU``/``nn.ReLU6`` modules and max-pooling lie on the way, ``"deconvolution"``
    equals ``project`` where the unit fired (Captum does not see a functional ``F.relu``). Captum starts from 1
    at the unit, so the result is multiplied by the unit's activation (as rectification is not linear, a
    negative start would not give the negative of starting from 1).

    Args:
        model, x, layer, channel: as for ``project`` (``x`` ``(N, C, H, W)``), but ``layer`` must give feature
            maps ``(N, K, h, w)``. Captum hooks ``nn.ReLU`` modules: the call works on a copy of the model
            whose in-place ReLUs are out of place and whose ReLU6s are seen as ReLUs (:func:`_guided_copy`).
        method: one of ``CAPTUM_METHODS``.

    Returns:
        ``(N, C, H, W)``, detached, on the model's device.
    """
    from captum.attr import Deconvolution, GuidedBackprop, Saliency

    fn = "captum_projection"
    checks.one_of(fn, method, CAPTUM_METHODS, "method")
    checks.module(fn, model)
    checks.model_device(fn, model)
    checks.eval_mode(fn, model)
    x = checks.to_model(fn, model, checks.images(fn, x))
    pos, value, (h, w) = _strongest(fn, model, x, layer, channel)
    targets = (channel * h * w + pos[:, 0] * w + pos[:, 1]).tolist()  # the units, in the flattened maps
    algorithm = {"deconvolution": Deconvolution, "guided_backprop": GuidedBackprop, "gradient": Saliency}[method]
    kwargs = {"abs": False} if method == "gradient" else {}
    with warnings.catch_warnings(), checks.model_input(fn, x.shape):  # Captum announces its ReLU hooks on every call
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
        attr = algorithm(_Units(_guided_copy(model), layer, fn)).attribute(
            x.detach().clone().requires_grad_(True), target=targets, **kwargs)  # (N, C, H, W)
    return (attr * value.view(-1, 1, 1, 1)).detach()


def _occlusion(model, x, target, unit, size, stride, fill) -> torch.Tensor:
    N, C, H, W = x.shape
    out = torch.empty(N, 1, H, W)
    for n in range(N):
        if unit is None:
            m = occlusion_maps(model, x[n], int(target[n]), size=size, stride=stride, fill=fill, progress=False)
            drop = m.base_prob - m.prob  # (h, w): how much covering the square lowers the class's probability
        else:
            m = occlusion_maps(model, x[n], None, size=size, stride=stride, fill=fill, layer=unit[0],
                               channel=unit[1], progress=False)
            drop = m.base_feature - m.feature  # the map's total activation lost
        up = drop.repeat_interleave(stride, 0).repeat_interleave(stride, 1)  # each cell its stride × stride block
        out[n, 0] = up[:H, :W]
    return out


def attribute(
    model: nn.Module,
    x: torch.Tensor,
    method: str,
    target: int | Sequence[int] | torch.Tensor | None = None,
    unit: tuple[str, int, torch.Tensor] | None = None,
    grad_cam_layer: str | None = None,
    ig_steps: int = 32,
    occlusion: tuple = (7, 2),
) -> torch.Tensor:
    """The map of ``method`` for images ``x`` ``(N, C, H, W)``: ``(N, C, H, W)`` (Grad-CAM and occlusion
    ``(N, 1, H, W)``) on the CPU, detached.

    Args:
        model: a classifier in eval mode; ``x`` is moved to its device.
        method: one of :data:`METHODS` (for a unit, of :data:`UNIT_METHODS`).
        target: the class of each image (an int for all, or ``N`` ints); the map explains its logit
            (occlusion: its probability). Give ``target`` or ``unit``.
        unit: ``(layer, channel, positions)``, positions ``(N, 2)`` from :func:`unit_at`: the map explains the
            activation of that unit (occlusion: the total activation of the map ``channel``). Take a layer
            before its ReLU (``"conv5"``): after one, a randomized network's unit is often 0 and every map blank.
        grad_cam_layer: the convolutional layer Grad-CAM weighs (default ``"relu5"`` for ZFNet-small); its maps
            are upsampled bilinearly (Grad-CAM) or by nearest neighbour (guided Grad-CAM, Captum's choice).
        ig_steps: the Riemann steps of integrated gradients (baseline: the zero image, the data's mean gray for
            inputs normalised to mean 0).
        occlusion: ``(size, stride)`` or ``(size, stride, fill)`` of the occluding square (``fill`` default 0, in
            the model's input space); the map is the drop it causes.
    """
    from captum.attr import (
        GuidedBackprop,
        GuidedGradCam,
        InputXGradient,
        IntegratedGradients,
        LayerAttribution,
        LayerGradCam,
        Saliency,
    )

    fn = "attribute"
    checks.one_of(fn, method, METHODS, "method")
    checks.module(fn, model)
    checks.model_device(fn, model)
    checks.eval_mode(fn, model)
    x = checks.to_model(fn, model, checks.images(fn, x))
    N = len(x)
    if (target is None) == (unit is None):
        raise ValueError(f"{fn}: give either target (a class) or unit (layer, channel, positions), got "
                         f"target={target!r}, unit={unit!r}")
    if unit is not None:
        if method not in UNIT_METHODS:
            raise ValueError(f"{fn}: method {method!r} explains a class; for a unit use one of {UNIT_METHODS}")
        if not (isinstance(unit, tuple) and len(unit) == 3):
            raise ValueError(f"{fn}: expected unit = (layer, channel, positions (N, 2)), got {unit!r}")
        layer, channel, pos = unit
        pos = torch.as_tensor(pos).long()
        if pos.shape != (N, 2):
            raise ValueError(f"{fn}: expected unit positions ({N}, 2), one per image, got {tuple(pos.shape)}")
        named_layer(model, layer, fn)
    else:
        t = torch.as_tensor(target).long().flatten()
        if t.numel() == 1:
            t = t.expand(N)
        if t.shape != (N,):
            raise ValueError(f"{fn}: expected target to be one class or {N} classes, got {tuple(t.shape)}")
    if method == "occlusion":
        if not isinstance(occlusion, (tuple, list)) or len(occlusion) not in (2, 3):
            raise ValueError(f"{fn}: expected occlusion = (size, stride) or (size, stride, fill), got {occlusion!r}")
        size, stride = (checks.positive_int(fn, v, "occlusion") for v in occlusion[:2])
        fill = checks.number(fn, occlusion[2], "occlusion fill") if len(occlusion) == 3 else 0.0
        return _occlusion(model, x, None if unit else t, (layer, channel) if unit else None, size, stride, fill)
    if method == "deconvnet":
        if unit is not None:
            return project(model, x, layer, channel, position=pos.to(x.device), start=1.0).cpu()
        out = torch.empty_like(x)
        for c in t.unique().tolist():  # project takes one channel (here: class) for all its images
            idx = (t == c).nonzero().flatten().to(x.device)
            out[idx] = project(model, x[idx], "fc8" if hasattr(model, "FC_LAYERS") else _last_linear(model), c,
                               start=1.0)
        return out.cpu()

    guided = method in ("guided_backprop", "guided_grad_cam")
    net = _guided_copy(model) if guided or any(getattr(m, "inplace", False) for m in model.modules()) else model
    if unit is not None:
        forward = _Units(net, layer)
        h, w = _strongest(fn, net, x, layer, channel)[2]  # the size of the layer's maps
        targets = (channel * h * w + pos[:, 0] * w + pos[:, 1]).tolist()
    else:
        forward, targets = net, t.tolist()
    xg = x.detach().clone().requires_grad_(True)
    cam_layer = None
    if method in ("grad_cam", "guided_grad_cam"):
        if grad_cam_layer is None and not hasattr(model, "CONV_LAYERS"):
            raise ValueError(f"{fn}: method {method!r} needs grad_cam_layer, the last convolutional layer's name")
        cam_layer = named_layer(net, grad_cam_layer or "relu5", fn)
    with warnings.catch_warnings(), checks.model_input(fn, x.shape):  # Captum announces its ReLU hooks on every call
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
        if method == "gradient":
            a = Saliency(forward).attribute(xg, target=targets, abs=False)
        elif method == "gradient_x_input":
            a = InputXGradient(forward).attribute(xg, target=targets)
        elif method == "integrated_gradients":
            a = IntegratedGradients(forward).attribute(xg, target=targets, n_steps=checks.positive_int(
                fn, ig_steps, "ig_steps"), internal_batch_size=max(1, 256 // N) * N)
        elif method == "guided_backprop":
            a = GuidedBackprop(forward).attribute(xg, target=targets)
        elif method == "grad_cam":
            a = LayerGradCam(forward, cam_layer).attribute(xg, target=targets, relu_attributions=True)
            a = LayerAttribution.interpolate(a, tuple(x.shape[2:]), interpolate_mode="bilinear")
        else:
            a = GuidedGradCam(forward, cam_layer).attribute(xg, target=targets)
    return a.detach().cpu()


def _last_linear(model: nn.Module) -> str:
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise ValueError("attribute: the deconvnet of a class needs the model's last nn.Linear (its logits)")
    return names[-1]


# --- similarity ----------------------------------------------------------------------------------------------

def _pair(fn: str, a, b) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = checks.images(fn, a, name="a"), checks.images(fn, b, name="b")
    if a.shape[0] != b.shape[0] or a.shape[2:] != b.shape[2:]:
        raise ValueError(f"{fn}: expected two stacks of maps of the same images (N, ·, H, W), got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    return checks.finite(fn, a.detach().cpu().double(), "a"), checks.finite(fn, b.detach().cpu().double(), "b")


def to_2d(maps: torch.Tensor, absolute: bool = True) -> np.ndarray:
    """Maps ``(N, C, H, W)`` → ``(N, H, W)``: ``Σ_c |m_c|`` (``absolute``) or ``Σ_c m_c``, as Adebayo et al."""
    maps = checks.images("to_2d", maps, name="maps").detach().cpu().double()
    return (maps.abs() if absolute else maps).sum(1).numpy()


def _spearman(u: np.ndarray, v: np.ndarray) -> float:
    """Spearman's rank correlation of two maps; 0 when either is constant (it has no ranking to share)."""
    from scipy.stats import spearmanr

    if np.ptp(u) == 0 or np.ptp(v) == 0:
        return 0.0
    return float(spearmanr(u.ravel(), v.ravel()).statistic)


def _unit_scale(u: np.ndarray) -> np.ndarray:
    top = u.max()
    return u / top if top > 0 else u


def _hog_similarity(u: np.ndarray, v: np.ndarray) -> float:
    cell = max(2, u.shape[0] // 7)
    fu, fv = (hog(m, orientations=9, pixels_per_cell=(cell, cell), cells_per_block=(2, 2)) for m in (u, v))
    if np.ptp(fu) == 0 or np.ptp(fv) == 0:
        return 0.0
    return float(np.corrcoef(fu, fv)[0, 1])


def similarities(a: torch.Tensor, b: torch.Tensor) -> dict[str, np.ndarray]:
    """How alike two stacks of maps of the same images are: ``{measure: (N,) values}`` for :data:`MEASURES`.

    ``spearman_abs`` / ``spearman``: Spearman's rank correlation of :func:`to_2d` maps, absolute / signed (1: the
    same ranking of pixels; about 0: unrelated; a constant map counts 0). ``ssim``: structural similarity of the
    absolute maps scaled to [0, 1] by their maximum (``data_range=1``). ``hog``: Pearson correlation of the HOG
    features (9 orientations, cells of ``H // 7`` pixels, 2 × 2 blocks) of those scaled maps.

    Args:
        a, b: ``(N, C, H, W)`` and ``(N, C', H, W)``, finite (colour channels may differ: maps are summed over them).
    """
    a, b = _pair("similarities", a, b)
    A, B = to_2d(a), to_2d(b)
    As, Bs = to_2d(a, absolute=False), to_2d(b, absolute=False)
    out = {name: np.empty(len(A)) for name in MEASURES}
    for n in range(len(A)):
        ua, ub = _unit_scale(A[n]), _unit_scale(B[n])
        out["spearman_abs"][n] = _spearman(A[n], B[n])
        out["spearman"][n] = _spearman(As[n], Bs[n])
        out["ssim"][n] = structural_similarity(ua, ub, data_range=1.0)
        out["hog"][n] = _hog_similarity(ua, ub)
    return out


def summarize(sims: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    """``{measure: (mean, std)}`` over the images of :func:`similarities`' result."""
    if not isinstance(sims, dict) or not sims:
        raise ValueError(f"summarize: expected the dict similarities() returns, got {type(sims).__name__}")
    return {k: (float(np.mean(v)), float(np.std(v))) for k, v in sims.items()}


def unrelated(maps: torch.Tensor) -> dict[str, np.ndarray]:
    """The floor: :func:`similarities` between the map of image ``n`` and that of image ``n − 1`` (two different
    images, the same method and network). A map that changed as much as this kept nothing of the first."""
    maps = checks.images("unrelated", maps, name="maps")
    if len(maps) < 2:
        raise ValueError(f"unrelated: expected the maps of at least 2 images, got {len(maps)}")
    return similarities(maps, maps.roll(1, 0))


def edge_maps(x: torch.Tensor) -> torch.Tensor:
    """The image's own edges: the Sobel gradient magnitude (``skimage.filters.sobel``) of each colour channel,
    summed: ``(N, C, H, W)`` → ``(N, 1, H, W)``. A map like this recovers the image, whatever the network."""
    x = checks.finite("edge_maps", checks.images("edge_maps", x).detach().cpu().double())
    e = np.stack([sum(sobel(img[c]) for c in range(img.shape[0])) for img in x.numpy()])
    return torch.from_numpy(e).float()[:, None]


def verdict(result: dict, key: str, measure: str = "spearman_abs", margin: float = 0.05) -> str:
    """``"passes"`` or ``"fails"`` the cascading-randomization test, for one map of one network's results
    (``data/sanity/results.json``; ``key`` e.g. ``"class/gradient"``).

    With every layer re-initialised the network has nothing left of its training. A map that is then still more
    alike the trained one (mean ``measure``) than the maps of two different images are, by more than ``margin``,
    kept something that does not come from the weights: it fails. A map whose floor is above 0.9 fails too: two
    different images get the same map, so it shows neither image (EfficientNet-Lite0's deconvnet, without switches).
    Otherwise it passes.
    """
    checks.one_of("verdict", measure, MEASURES, "measure")
    if not isinstance(result, dict) or key not in result.get("floor_unrelated", {}):
        raise ValueError(f"verdict: expected one network's results holding {key!r}")
    last = result["cascade"][-1]["vs_trained"][key][measure][0]
    floor = result["floor_unrelated"][key][measure][0]
    return "fails" if last > floor + margin or floor > 0.9 else "passes"


# --- the shipped networks of the data-randomization test -----------------------------------------------------

def load_shipped(name: str = "zfnet-small-permuted-2k", device=None) -> nn.Module:
    """A network of ``data/sanity/`` (``"zfnet-small-permuted-2k"``: trained on permuted labels;
    ``"zfnet-small-true-2k"``: the same recipe, true labels), checked against ``data/sanity/MANIFEST.json``,
    float32, in eval mode on ``device`` (default :func:`cnnlib.device`)."""
    fn = "load_shipped"
    labels = "permuted" if "permuted" in str(name) else "true"
    path = checked_file(fn, DATA_DIR / "sanity", f"{name}.pt", f"python scripts/train_permuted.py --labels {labels}")
    snap = torch.load(path, map_location="cpu", weights_only=True)
    model = ZFNetSmall(**snap["model_kwargs"])
    model.load_state_dict({k: v.float() for k, v in snap["state_dict"].items()})
    return model.to(device or default_device()).eval()


def shipped_runs() -> dict[str, dict]:
    """What ``data/sanity/MANIFEST.json`` records of the networks :func:`load_shipped` loads:
    ``{name: {"fit": training accuracy reached, "epochs": ..., "test_accuracy": ..., "sha256": ..., ...}}``."""
    entries = manifest_entries("shipped_runs", DATA_DIR / "sanity", "python scripts/train_permuted.py")
    return {k[:-3]: v for k, v in entries.items() if k.endswith(".pt")}


def load_results() -> tuple[dict, dict[str, np.ndarray]]:
    """The shipped results of ``scripts/sanity_results.py``, checked against ``data/sanity/MANIFEST.json``:
    ``(results, maps)``; ``results[network]`` holds the similarity summaries (``{measure: [mean, std]}``) of
    every step, floor and test, ``maps["<network>|<target>/<method>"]`` the 8-bit absolute maps ``(1 + S, k, H, W)``
    of the first ``k`` images, trained then after each cascade step (data randomization: ``"true/…"``,
    ``"permuted/…"``, ``(1, k, H, W)``). Both record the photo pool's fingerprint (:mod:`cnnlib.photos`): on
    another pool the photo networks' results would be about other crops, and they are refused with a clear error;
    and the ZFNet-small snapshot they were computed from (:func:`cnnlib.snapshots.check_made_from`)."""
    fn, remedy = "load_results", "python scripts/sanity_results.py"
    results = json.loads(checked_file(fn, DATA_DIR / "sanity", "results.json", remedy).read_text())
    # The photo network's and EfficientNet's images are crops of the photo pool: refuse another pool.
    check_shipped(fn, DATA_DIR / "sanity", "results.json", "the shipped sanity-check results", remedy)
    for rel in ("results.json", "maps.npz"):  # and ZFNet-small's results were computed from its last snapshot
        check_made_from(fn, DATA_DIR / "sanity", rel, remedy, DATA_DIR)
    with np.load(checked_file(fn, DATA_DIR / "sanity", "maps.npz", remedy)) as f:
        maps = {k: f[k] for k in f.files}
    return results, maps
