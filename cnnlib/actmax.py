"""Regularized activation maximization (Yosinski, Clune, Nguyen, Fuchs & Lipson, "Understanding Neural Networks
Through Deep Visualization", ICML Deep Learning Workshop 2015, Sec. 3).

What input makes a unit fire most? Start from the mean image (0 in the network's input space) and climb the
gradient of the unit's activation ``a(x)``, applying after every step a regularizing operator ``r_θ``:

    x ← r_θ(x + η · ∂a/∂x).

Without ``r_θ`` the climb finds high-frequency patterns that excite the unit but look like nothing. Yosinski et
al. use four regularizers, each switched on by its parameter:

* **L2 decay** ``x ← (1 − θ_decay) · x``: keeps a few extreme pixels from dominating;
* **Gaussian blur** of width ``θ_b_width`` every ``θ_b_every`` steps: removes high frequencies;
* **clipping pixels with small norm**: pixels whose norm over the colour channels is below the
  ``θ_n_pct`` percentile are set to 0 (the mean colour);
* **clipping pixels with small contribution**: pixels whose contribution ``|Σ_c x ∘ ∂a/∂x|`` is below the
  ``θ_c_pct`` percentile are set to 0.

The unit of a convolutional layer is the one at the centre of its feature map; the unit of a fully connected
layer (e.g. a class logit) is the output ``channel``.

:func:`visualize` adds the two ingredients of Olah, Mordvintsev & Schubert ("Feature Visualization", Distill
2017) that make the pictures readable on modern ImageNet networks, each switchable so that it can be ablated:

* **a parameterization** ``x = P(p)``: the climb moves parameters ``p`` and the image is computed from them.
  Pixels (``P`` = identity); **Fourier coefficients scaled by 1/frequency** (a step changes low frequencies
  as much as high ones, where plain pixels favour high frequencies); **decorrelated colour** (each pixel's
  colour is ``M z`` with ``M M^T`` the colour correlation of ImageNet photos, so steps move natural colours);
* **transformation robustness**: at every step the image is randomly shifted, scaled and rotated before the
  network sees it, so only patterns that survive small moves are rewarded;

and **objectives** (a unit, a channel's mean, a class logit before the softmax, a diversity term for a batch).
:func:`transformed_probability` and :func:`class_probability` ask the network that made a picture whether it
still sees the class when the picture is moved or rescaled; :func:`independent_probability` asks a network that
did *not* make it (e.g. :func:`cnnlib.pretrained.efficientnet_lite2` for pictures of EfficientNet-Lite0), the
only one of the three that a fooling image cannot be optimised against.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from . import checks
from .hooks import LayerOutputs
from .models import activations
from .progress import hidden
from .snapshots import DATA_DIR, check_made_from, checked_file, record_all
from .topk import TopK


@dataclass(frozen=True)
class Regularizers:
    """The parameters ``θ`` of Yosinski et al.'s four regularizers; 0 switches one off."""

    decay: float = 0.0  # θ_decay: x ← (1 − decay)·x after every step
    blur_every: int = 0  # θ_b_every: blur every this many steps (0: never)
    blur_width: float = 0.0  # θ_b_width: std of the Gaussian, in pixels
    norm_pct: float = 0.0  # θ_n_pct: zero the pixels whose norm is below this percentile (0..100)
    contrib_pct: float = 0.0  # θ_c_pct: zero the pixels whose contribution is below this percentile (0..100)

    def __post_init__(self):
        if not 0 <= self.decay < 1 or self.blur_every < 0 or self.blur_width < 0:
            raise ValueError(f"Regularizers: expected 0 <= decay < 1 and blur_every, blur_width >= 0, got {self}")
        if not 0 <= self.norm_pct <= 100 or not 0 <= self.contrib_pct <= 100:
            raise ValueError(f"Regularizers: percentiles must be in 0..100, got {self.norm_pct}, {self.contrib_pct}")


#: Regularizers that worked together for ZFNet-small on 28×28 images (chosen by eye, as the paper suggests
#: choosing by random search; see chapter 9).
SMALL_IMAGES = Regularizers(decay=0.01, blur_every=4, blur_width=0.5, norm_pct=20, contrib_pct=20)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur images ``(N, C, H, W)`` with a Gaussian of std ``sigma`` pixels (separable, reflect padding, so a
    constant image stays constant)."""
    checks.images("gaussian_blur", x)
    sigma = checks.number("gaussian_blur", sigma, "sigma", low=0)
    if sigma == 0:
        return x
    radius = max(1, math.ceil(3 * sigma))
    if radius >= min(x.shape[-2:]):
        raise ValueError(f"gaussian_blur: sigma={sigma} is too wide for a {tuple(x.shape[-2:])} image")
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()  # (2·radius + 1,)
    C = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(C, 1, 1, -1), groups=C)  # along rows
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(C, 1, -1, 1), groups=C)  # along columns


def _zero_below_percentile(x: torch.Tensor, score: torch.Tensor, pct: float) -> torch.Tensor:
    """Set the pixels of ``x`` ``(N, C, H, W)`` whose ``score`` ``(N, H, W)`` is below its ``pct`` percentile to 0."""
    threshold = torch.quantile(score.flatten(1), pct / 100, dim=1).view(-1, 1, 1)  # (N, 1, 1)
    return x * (score >= threshold).unsqueeze(1)


def regularize(x: torch.Tensor, grad: torch.Tensor, step: int, reg: Regularizers) -> torch.Tensor:
    """``r_θ``: the four regularizers of Yosinski et al. applied, in their order, after gradient step ``step``
    (counted from 1). ``x``, ``grad``: ``(N, C, H, W)``.

    The clippings act in turn on the same image: the pixels the norm clipping has set to 0 contribute 0, the
    least of all, so a contribution clipping at a percentile no higher than the norm clipping's removes
    nothing more; it acts only above it."""
    checks.images("regularize", x)
    checks.images("regularize", grad, name="grad")
    if grad.shape != x.shape:
        raise ValueError(f"regularize: expected grad of the shape of x {tuple(x.shape)}, got {tuple(grad.shape)}")
    checks.positive_int("regularize", step, "step")
    if not isinstance(reg, Regularizers):
        raise TypeError(f"regularize: expected reg to be actmax.Regularizers, got {type(reg).__name__}")
    if reg.decay:
        x = x * (1 - reg.decay)
    if reg.blur_every and reg.blur_width and step % reg.blur_every == 0:
        x = gaussian_blur(x, reg.blur_width)
    if reg.norm_pct:
        x = _zero_below_percentile(x, x.norm(dim=1), reg.norm_pct)
    if reg.contrib_pct:
        x = _zero_below_percentile(x, (x * grad).sum(1).abs(), reg.contrib_pct)
    return x


def _unit(output: torch.Tensor, channel: int, layer: str, fn: str = "actmax") -> torch.Tensor:
    """The activation (N,) of unit ``channel`` of a layer's output: the centre of a feature map, or a vector entry."""
    name = f"layer {layer!r}" if layer else "the layer"
    if output.ndim not in (2, 4):
        raise ValueError(f"{fn}: {name} gives {tuple(output.shape)}, expected (N, K, h, w) or (N, K)")
    if not 0 <= channel < output.shape[1]:
        what = "feature maps" if output.ndim == 4 else "units"
        raise ValueError(f"{fn}: {name} has {output.shape[1]} {what}, got channel={channel}")
    if output.ndim == 4:
        return output[:, channel, output.shape[2] // 2, output.shape[3] // 2]
    return output[:, channel]


def _check_model(fn: str, model) -> torch.device:
    checks.module(fn, model)
    checks.eval_mode(fn, model)
    return checks.model_device(fn, model)


def _check_shape(fn: str, shape) -> tuple[int, int, int]:
    if not isinstance(shape, (tuple, list)) or len(shape) != 3:
        raise ValueError(f"{fn}: expected shape (C, H, W), got {shape!r}")
    return tuple(checks.positive_int(fn, v, "shape") for v in shape)


@dataclass
class Result:
    """What :func:`maximize` returns."""

    image: torch.Tensor  # (C, H, W): the input found, in the model's input space (0 = the mean image)
    activations: list[float] = field(default_factory=list)  # the unit's activation before each step


def maximize(model: nn.Module, layer: str, channel: int, shape: tuple[int, int, int],
             reg: Regularizers = Regularizers(), steps: int = 200, lr: float = 1.0, seed: int = 0,
             init_std: float = 0.0, bounds: tuple[float, float] | None = None, progress: bool = False) -> Result:
    """Find an input that makes unit ``channel`` of ``layer`` fire, by regularized gradient ascent
    (Yosinski et al. 2015): ``x ← r_θ(x + η · ∂a/∂x)`` on raw pixels.

    Args:
        model: any network taking ``(1, *shape)``, in eval mode; it runs on the device of its parameters. Its
            weights are not changed.
        layer: a name for :func:`cnnlib.models.named_layer` (e.g. ``"conv5"``, ``"fc8"``); channel: the map
            (its centre unit) or the unit.
        shape: ``(C, H, W)`` of the input.
        reg: the regularizers; steps, lr: the climb (``lr`` is ``η``).
        seed, init_std: start from Gaussian noise of this std around 0 (0: exactly the mean image).
        bounds: if given, ``(low, high)``: after every step the pixels are clamped to the range a real image
            can take (e.g. ``(0, 1)`` for ZFNet-small's raw pixels), so the result is an image the network
            could be shown.

    Returns:
        :class:`Result`: the image ``(C, H, W)`` on the CPU and the activation at every step.
    """
    fn = "maximize"
    dev = _check_model(fn, model)
    shape = _check_shape(fn, shape)
    checks.positive_int(fn, channel, "channel", minimum=0)
    steps = checks.positive_int(fn, steps, "steps")
    lr = checks.number(fn, lr, "lr", low=0, low_open=True)
    init_std = checks.number(fn, init_std, "init_std", low=0)
    if not isinstance(reg, Regularizers):
        raise TypeError(f"{fn}: expected reg to be actmax.Regularizers, got {type(reg).__name__}")
    if bounds is not None:
        if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
            raise ValueError(f"{fn}: expected bounds (low, high), got {bounds!r}")
        if checks.number(fn, bounds[0], "bounds[0]") >= checks.number(fn, bounds[1], "bounds[1]"):
            raise ValueError(f"{fn}: expected bounds (low, high) with low < high, got {bounds!r}")
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    gen = torch.Generator().manual_seed(seed)
    x = (init_std * torch.randn(1, *shape, generator=gen)).to(dev, dtype)
    history = []
    with LayerOutputs(model, [layer], fn=fn, detach=False) as out:
        for step in tqdm(range(1, steps + 1), desc=f"{layer}[{channel}]", leave=False, disable=hidden(progress)):
            x = x.detach().requires_grad_(True)
            out.clear()
            with checks.model_input(fn, shape, "an input"):
                model(x)
            a = _unit(out[layer], channel, layer, fn)[0]
            (grad,) = torch.autograd.grad(a, x)
            history.append(float(a.detach()))
            with torch.no_grad():
                x = regularize(x + lr * grad, grad, step, reg)
                if bounds is not None:
                    x = x.clamp(*bounds)
    return Result(x.detach()[0].cpu(), history)


def unit_activation(model: nn.Module, layer: str, channel: int, x: torch.Tensor) -> torch.Tensor:
    """The activation ``(N,)`` of the unit :func:`maximize` climbs, for inputs ``x`` ``(N, C, H, W)``."""
    checks.images("unit_activation", x)
    output = activations(model, checks.to_model("unit_activation", model, x), [layer])[layer]
    return _unit(output, channel, layer, "unit_activation")


# ---------------------------------------------------------------------------------------------------------------
# Parameterizations (Olah et al. 2017, Sec. "Preconditioning and parameterization")


def fourier_scale(height: int, width: int) -> torch.Tensor:
    """The factor ``1 / max(f, 1/max(H, W))`` of each coefficient of a real 2-D Fourier transform ``(H, W//2+1)``,
    ``f = sqrt(f_y² + f_x²)`` in cycles per pixel. Multiplying white coefficients by it gives 1/f ("pink")
    noise, the spectrum of natural images; the floor keeps the constant term finite."""
    height = checks.positive_int("fourier_scale", height, "height")
    width = checks.positive_int("fourier_scale", width, "width")
    fy = torch.fft.fftfreq(height).view(-1, 1)  # (H, 1)
    fx = torch.fft.rfftfreq(width).view(1, -1)  # (1, W//2+1)
    f = (fy ** 2 + fx ** 2).sqrt()
    return 1 / f.clamp_min(1 / max(height, width))  # (H, W//2+1)


def fourier_to_image(coeffs: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Images ``(N, C, H, W)`` from scaled Fourier coefficients ``(N, C, H, W//2+1, 2)`` (real and imaginary
    parts): ``x = irfft2(c · fourier_scale)`` with the orthonormal transform."""
    fn = "fourier_to_image"
    checks.images(fn, coeffs, ndim=5)
    height, width = checks.positive_int(fn, height, "height"), checks.positive_int(fn, width, "width")
    want = (height, width // 2 + 1, 2)
    if tuple(coeffs.shape[-3:]) != want:
        raise ValueError(f"{fn}: expected coefficients (N, C, {height}, {width // 2 + 1}, 2) for a {height}×{width} "
                         f"image, got {tuple(coeffs.shape)}")
    scale = fourier_scale(height, width).to(coeffs.device, coeffs.dtype)
    spectrum = torch.view_as_complex(coeffs.contiguous()) * scale  # (N, C, H, W//2+1)
    return torch.fft.irfft2(spectrum, s=(height, width), norm="ortho")


def image_to_fourier(x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`fourier_to_image`: coefficients ``(N, C, H, W//2+1, 2)`` of images ``(N, C, H, W)``."""
    checks.images("image_to_fourier", x)
    scale = fourier_scale(*x.shape[-2:]).to(x.device, x.dtype)
    return torch.view_as_real(torch.fft.rfft2(x, norm="ortho") / scale)


#: Square root of the 3×3 correlation of the RGB values of ImageNet pixels (``U·sqrt(S)`` of its SVD, columns =
#: principal colour directions: grey, red–blue, green–magenta). The numbers are those the Lucid library uses
#: (``color_correlation_svd_sqrt`` in ``lucid/optvis/param/color.py``), which Olah et al. measured on ImageNet.
COLOR_CORRELATION_SQRT = torch.tensor([[0.26, 0.09, 0.02],
                                       [0.27, 0.00, -0.05],
                                       [0.27, -0.09, 0.03]])
#: The same, scaled so that its largest column has norm 1 (a unit step in ``z`` is at most a unit step in RGB).
COLOR_MATRIX = COLOR_CORRELATION_SQRT / COLOR_CORRELATION_SQRT.norm(dim=0).max()


def decorrelated_to_rgb(z: torch.Tensor) -> torch.Tensor:
    """Colours ``M z`` per pixel, ``z`` ``(N, 3, H, W)`` decorrelated (independent unit-variance channels) →
    RGB ``(N, 3, H, W)`` whose channels are correlated as in ImageNet photos (``M = COLOR_MATRIX``)."""
    checks.images("decorrelated_to_rgb", z, channels=3)
    return torch.einsum("ij,njhw->nihw", COLOR_MATRIX.to(z.device, z.dtype), z)


def rgb_to_decorrelated(x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`decorrelated_to_rgb`: ``M⁻¹ x`` per pixel, ``(N, 3, H, W)`` → ``(N, 3, H, W)``."""
    checks.images("rgb_to_decorrelated", x, channels=3)
    inverse = torch.linalg.inv(COLOR_MATRIX.double()).to(x.device, x.dtype)
    return torch.einsum("ij,njhw->nihw", inverse, x)


@dataclass(frozen=True)
class Parameterization:
    """How the climb's parameters ``p`` become an image ``x = P(p)`` (in the model's input space, 0 = the
    mean colour): optionally through 1/f-scaled Fourier coefficients, then optionally through decorrelated
    colour. Both maps are linear and invertible, so an image made by a regularizer maps back to ``p``."""

    fourier: bool = True
    decorrelate: bool = True

    def to_image(self, p: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """``x = P(p)``: ``(N, C, H, W)``."""
        x = fourier_to_image(p, height, width) if self.fourier else p
        return decorrelated_to_rgb(x) if self.decorrelate else x

    def from_image(self, x: torch.Tensor) -> torch.Tensor:
        """``p = P⁻¹(x)`` for images ``(N, C, H, W)``."""
        z = rgb_to_decorrelated(x) if self.decorrelate else x
        return image_to_fourier(z) if self.fourier else z

    def random(self, n: int, shape: tuple[int, int, int], std: float, generator: torch.Generator) -> torch.Tensor:
        """Random parameters (white noise of this std in ``p``) for ``n`` images of ``shape`` ``(C, H, W)``."""
        c, h, w = shape
        size = (n, c, h, w // 2 + 1, 2) if self.fourier else (n, c, h, w)
        return std * torch.randn(size, generator=generator)


# ---------------------------------------------------------------------------------------------------------------
# Transformation robustness (Olah et al. 2017; Mordvintsev et al. 2015)


def shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Images ``(N, C, H, W)`` moved down by ``dy`` and right by ``dx`` whole pixels; the border that comes in is
    the image mirrored (reflect padding), so no constant frame appears."""
    fn = "shift"
    checks.images(fn, x)
    for v, name in ((dy, "dy"), (dx, "dx")):
        checks.positive_int(fn, v, name, minimum=-(x.shape[-2 if name == "dy" else -1] - 1),
                            maximum=x.shape[-2 if name == "dy" else -1] - 1)
    h, w = x.shape[-2:]
    p = max(abs(dy), abs(dx))
    if p == 0:
        return x
    padded = F.pad(x, (p, p, p, p), mode="reflect")  # (N, C, H + 2p, W + 2p)
    return padded[..., p - dy:p - dy + h, p - dx:p - dx + w]


def _affine(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Resample ``x`` ``(N, C, H, W)`` at ``matrix`` ``(2, 2)`` × (output coordinates about the centre), bilinear,
    mirrored at the border."""
    theta = torch.cat([matrix, torch.zeros(2, 1, dtype=matrix.dtype)], 1).to(x.device, x.dtype)
    grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def rescale(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Images ``(N, C, H, W)`` zoomed by ``factor`` about their centre (``> 1``: larger), same size (bilinear)."""
    checks.images("rescale", x)
    factor = checks.number("rescale", factor, "factor", low=0, low_open=True)
    return _affine(x, torch.eye(2, dtype=torch.float64) / factor)


def rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """Images ``(N, C, H, W)`` turned by ``degrees`` about their centre, same size (bilinear, square pixels)."""
    checks.images("rotate", x)
    a = math.radians(checks.number("rotate", degrees, "degrees"))
    h, w = x.shape[-2:]
    # affine_grid works in coordinates normalised by width and height; the aspect ratio keeps the turn rigid.
    m = torch.tensor([[math.cos(a), -math.sin(a) * h / w], [math.sin(a) * w / h, math.cos(a)]], dtype=torch.float64)
    return _affine(x, m)


@dataclass(frozen=True)
class Robustness:
    """Random transformations applied before every forward pass; each is off at its neutral value."""

    jitter: int = 0  # shift by up to ±jitter pixels in each direction
    scale: tuple[float, float] = (1.0, 1.0)  # zoom factor drawn uniformly from this range
    rotate: float = 0.0  # turn by up to ±rotate degrees

    def __post_init__(self):
        lo, hi = self.scale
        if self.jitter < 0 or self.rotate < 0 or not 0 < lo <= hi:
            raise ValueError(f"Robustness: expected jitter, rotate >= 0 and 0 < scale[0] <= scale[1], got {self}")

    def sample(self, generator: torch.Generator) -> tuple[int, int, float, float]:
        """One draw ``(dy, dx, factor, degrees)``."""
        u = torch.rand(4, generator=generator, dtype=torch.float64).tolist()
        dy, dx = (int(math.floor(v * (2 * self.jitter + 1))) - self.jitter for v in u[:2])
        lo, hi = self.scale
        return dy, dx, lo + (hi - lo) * u[2], self.rotate * (2 * u[3] - 1)


def transform(x: torch.Tensor, dy: int, dx: int, factor: float, degrees: float) -> torch.Tensor:
    """``x`` ``(N, C, H, W)`` shifted by ``(dy, dx)``, then zoomed by ``factor``, then turned by ``degrees``
    (each skipped at its neutral value)."""
    if dy or dx:
        x = shift(x, dy, dx)
    if factor != 1:
        x = rescale(x, factor)
    if degrees:
        x = rotate(x, degrees)
    return x


#: Transformations of every step of :func:`visualize` (as Lucid's defaults: ±8 px, 0.9–1.1, ±10°).
ROBUST = Robustness(jitter=8, scale=(0.9, 1.1), rotate=10.0)
#: The transformations of the recognisability measure (stronger jitter than the climb's).
RECOGNISABILITY = Robustness(jitter=16, scale=(0.9, 1.1), rotate=10.0)


# ---------------------------------------------------------------------------------------------------------------
# Objectives


OBJECTIVES = ("unit", "channel")


def objective(output: torch.Tensor, channel: int, kind: str = "unit") -> torch.Tensor:
    """The value ``(N,)`` climbed for each image: ``"unit"`` = the centre unit of feature map ``channel``, or
    entry ``channel`` of a vector output (a class logit, before the softmax, when the layer is the classifier);
    ``"channel"`` = the mean of feature map ``channel`` over all positions."""
    return _objective(output, channel, kind, "objective")


def _objective(output: torch.Tensor, channel: int, kind: str, fn: str, layer: str = "") -> torch.Tensor:
    checks.tensor(fn, output, "output")
    checks.one_of(fn, kind, OBJECTIVES, "kind")
    checks.positive_int(fn, channel, "channel", minimum=0)
    if kind == "channel":
        if output.ndim != 4:
            raise ValueError(f"{fn}: kind 'channel' needs feature maps (N, K, h, w), got {tuple(output.shape)}")
        if channel >= output.shape[1]:
            raise ValueError(f"{fn}: the layer has {output.shape[1]} feature maps, got channel={channel}")
        return output[:, channel].mean((1, 2))
    return _unit(output, channel, layer, fn)


def diversity(features: torch.Tensor) -> torch.Tensor:
    """How alike the images of a batch look to a layer: the mean cosine similarity between the Gram matrices
    ``G_i = F_i F_iᵀ`` (``F_i``: the ``(K, h·w)`` feature maps of image ``i``) over all pairs ``i ≠ j``.
    Subtracting it from the objective pushes a batch towards different images (Olah et al. 2017, "Diversity").
    ``features``: ``(N, K, h, w)`` with ``N ≥ 2``; returns a scalar in [−1, 1]."""
    checks.tensor("diversity", features, "features")
    if features.ndim != 4 or features.shape[0] < 2:
        raise ValueError(f"diversity: expected features (N, K, h, w) of N >= 2 images, got {tuple(features.shape)}")
    flat = features.flatten(2)  # (N, K, h·w)
    gram = F.normalize((flat @ flat.transpose(1, 2)).flatten(1), dim=1)  # (N, K·K), unit norm
    sim = gram @ gram.T  # (N, N)
    n = sim.shape[0]
    return (sim.sum() - sim.diagonal().sum()) / (n * (n - 1))


# ---------------------------------------------------------------------------------------------------------------
# The climb with all ingredients


def _input_stats(model: nn.Module, mean, std, dev, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    mean = getattr(model, "input_mean", (0.0,)) if mean is None else mean
    std = getattr(model, "input_std", (1.0,)) if std is None else std
    return (torch.as_tensor(mean, dtype=dtype, device=dev).view(1, -1, 1, 1),
            torch.as_tensor(std, dtype=dtype, device=dev).view(1, -1, 1, 1))


@dataclass
class Visualization:
    """What :func:`visualize` returns."""

    images: torch.Tensor  # (N, C, H, W) in [0, 1] (pixels, before the model's normalisation), on the CPU
    objective: list[float] = field(default_factory=list)  # the batch's mean objective at every step


def visualize(model: nn.Module, layer: str, channel: int, shape: tuple[int, int, int] = (3, 128, 128),
              kind: str = "unit", param: Parameterization = Parameterization(), robustness: Robustness = ROBUST,
              reg: Regularizers = Regularizers(), steps: int = 256, lr: float = 0.05, batch: int = 1,
              diversity_weight: float = 0.0, init_std: float = 0.01, seed: int = 0, mean=None, std=None,
              progress: bool = False) -> Visualization:
    """Feature visualization: images that make ``channel`` of ``layer`` fire, with every ingredient switchable.

    Each step (Olah et al. 2017 for the parameterization and robustness; Yosinski et al. 2015 for ``reg``)::

        z = P(p)                         # the image in the model's input space (0 = mean colour)
        a = objective(model(T(z)))       # T: a random shift, zoom and turn (``robustness``)
        p ← Adam step on p up the gradient of  Σ a − diversity_weight · diversity
        p ← P⁻¹(clamp(r_θ(P(p))))         # Yosinski's regularizers and the range of real pixels, on the image

    Args:
        model: a network in eval mode taking ``(N, *shape)`` normalised as ``(x − mean) / std``; ``mean``/
            ``std`` default to ``model.input_mean``/``model.input_std`` (set by
            :func:`cnnlib.pretrained.efficientnet_lite0`) else 0 and 1.
        layer, channel, kind: what to climb (see :func:`objective`); a class logit is ``kind="unit"`` on the
            classifier layer (``"_fc"`` for EfficientNet).
        shape: ``(C, H, W)``; param: :class:`Parameterization`; robustness: :class:`Robustness`;
        reg: :class:`Regularizers` (applied to the image after each step; blur and clipping in pixels).
        steps, lr: Adam steps and step size; batch: images climbed together; diversity_weight: ``λ`` of the
            diversity term (needs ``batch >= 2``); init_std: std of the random start in ``p``; seed: makes the
            start and the transformations repeatable on any device.

    Returns:
        :class:`Visualization` with images ``(batch, C, H, W)`` in [0, 1] on the CPU.
    """
    fn = "visualize"
    dev = _check_model(fn, model)
    c, h, w = _check_shape(fn, shape)
    checks.positive_int(fn, channel, "channel", minimum=0)
    checks.one_of(fn, kind, OBJECTIVES, "kind")
    steps = checks.positive_int(fn, steps, "steps")
    batch = checks.positive_int(fn, batch, "batch")
    lr = checks.number(fn, lr, "lr", low=0, low_open=True)
    diversity_weight = checks.number(fn, diversity_weight, "diversity_weight", low=0)
    init_std = checks.number(fn, init_std, "init_std", low=0)
    for value, cls, name in ((param, Parameterization, "param"), (robustness, Robustness, "robustness"),
                             (reg, Regularizers, "reg")):
        if not isinstance(value, cls):
            raise TypeError(f"{fn}: expected {name} to be actmax.{cls.__name__}, got {type(value).__name__}")
    if param.decorrelate and c != 3:
        raise ValueError(f"{fn}: decorrelated colour needs 3 channels, got shape {(c, h, w)}")
    if diversity_weight and batch < 2:
        raise ValueError(f"{fn}: the diversity term compares images: expected batch >= 2, got {batch}")
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    mean, std = _input_stats(model, mean, std, dev, dtype)
    low, high = (0 - mean) / std, (1 - mean) / std  # (1, C, 1, 1): the range of real pixels
    gen = torch.Generator().manual_seed(seed)
    p = param.random(batch, (c, h, w), init_std, gen).to(dev, dtype).requires_grad_(True)
    opt = torch.optim.Adam([p], lr=lr)
    history = []
    with LayerOutputs(model, [layer], fn=fn, detach=False) as out:
        for step in tqdm(range(1, steps + 1), desc=f"{layer}[{channel}]", leave=False, disable=hidden(progress)):
            z = param.to_image(p, h, w)  # (N, C, H, W)
            out.clear()
            with checks.model_input(fn, (batch, c, h, w), "images"):
                model(transform(z, *robustness.sample(gen)))
            feats = out[layer]
            a = _objective(feats, channel, kind, fn, layer)  # (N,)
            total = a.sum()
            if diversity_weight:
                total = total - diversity_weight * diversity(feats)
            p.grad, grad_z = torch.autograd.grad(-total, [p, z])  # the weights' .grad stay untouched
            opt.step()
            history.append(float(a.detach().mean()))
            with torch.no_grad():
                x = regularize(param.to_image(p, h, w), grad_z, step, reg)
                x = torch.maximum(torch.minimum(x, high), low)
                p.copy_(param.from_image(x))
    with torch.no_grad():
        images = (param.to_image(p, h, w) * std + mean).clamp(0, 1)
    return Visualization(images.detach().cpu(), history)


# ---------------------------------------------------------------------------------------------------------------
# Is it recognisable? (a visualization keeps its class when moved; a fooling image loses it)


def _check_classes(fn: str, images: torch.Tensor, classes) -> torch.Tensor:
    classes = torch.as_tensor(classes)
    if classes.ndim == 0:
        classes = classes.expand(images.shape[0])
    if classes.dtype in (torch.bool,) or classes.is_floating_point() or classes.shape != (images.shape[0],):
        raise ValueError(f"{fn}: expected one integer class per image ({images.shape[0]}), got {classes.tolist()}")
    return classes


def _check_logits(fn: str, logits: torch.Tensor, classes: torch.Tensor) -> None:
    if logits.ndim != 2:
        raise ValueError(f"{fn}: expected the model to return logits (N, K), got {tuple(logits.shape)}")
    if len(classes) and (classes.min() < 0 or classes.max() >= logits.shape[1]):
        raise ValueError(f"{fn}: expected classes in 0..{logits.shape[1] - 1}, got {classes.tolist()}")


@torch.no_grad()
def class_probability(model: nn.Module, images: torch.Tensor, classes, preprocess=None, batch_size: int = 64,
                      ) -> torch.Tensor:
    """``p(class_i | image_i)`` ``(N,)``: the softmax of the model's logits, for images ``(N, C, H, W)`` in [0, 1].

    Args:
        model: a classifier in eval mode returning ``(N, K)`` logits.
        classes: one class index per image (or one for all).
        preprocess: a function from [0, 1] images to the model's input (e.g. a resize, crop and normalisation:
            a second view of the image); default: normalise with ``model.input_mean``/``input_std`` if present.
    """
    fn = "class_probability"
    dev = _check_model(fn, model)
    checks.images(fn, images)
    classes = _check_classes(fn, images, classes)
    checks.positive_int(fn, batch_size, "batch_size")
    if preprocess is None:
        mean, std = _input_stats(model, None, None, dev, images.dtype)
        preprocess = lambda x: (x - mean) / std  # noqa: E731
    out = []
    for i in range(0, len(images), batch_size):
        logits = model(preprocess(images[i:i + batch_size].to(dev)))
        _check_logits(fn, logits, classes)
        out.append(logits.softmax(1).gather(1, classes[i:i + batch_size].view(-1, 1).to(dev))[:, 0].cpu())
    return torch.cat(out)


@torch.no_grad()
def transformed_probability(model: nn.Module, images: torch.Tensor, classes, n: int = 32,
                            robustness: Robustness = RECOGNISABILITY, seed: int = 0, preprocess=None) -> torch.Tensor:
    """Recognisability: the mean of ``p(class_i | T(image_i))`` over ``n`` random transformations ``T`` (by
    default shifts up to ±16 px, zooms 0.9–1.1, turns up to ±10°), ``(N,)``. A picture of the class keeps its
    probability when moved a little; a fooling image, tuned to one exact pixel grid, loses it.

    Args: as :func:`class_probability`; the same ``n`` transformations (drawn from ``seed``) for every image.
    """
    fn = "transformed_probability"
    checks.images(fn, images)
    n = checks.positive_int(fn, n, "n")
    if not isinstance(robustness, Robustness):
        raise TypeError(f"{fn}: expected robustness to be actmax.Robustness, got {type(robustness).__name__}")
    classes = _check_classes(fn, images, classes)
    gen = torch.Generator().manual_seed(seed)
    total = torch.zeros(images.shape[0])
    for _ in range(n):
        moved = transform(images, *robustness.sample(gen))
        total += class_probability(model, moved, classes, preprocess)
    return total / n


@dataclass(frozen=True)
class Judgement:
    """What :func:`independent_probability` returns; every field is ``(N,)``, on the CPU."""

    probability: torch.Tensor  # float: the judge's p(intended class | image)
    rank: torch.Tensor  # int64: 1 + the number of classes the judge finds more probable (1 = its top-1)
    top1: torch.Tensor  # int64: the judge's most probable class
    top1_probability: torch.Tensor  # float: its probability


@torch.no_grad()
def independent_probability(images: torch.Tensor, classes, judge: nn.Module, batch_size: int = 32) -> Judgement:
    """Recognisability by a network that did not make the pictures: the judge's probability of each image's
    intended class, its rank among the judge's classes, and the judge's own top-1.

    A picture climbed on one network is certain for *that* network by construction, and stays so under the moves
    the climb trained it for (:func:`transformed_probability`), fooling image or not. A second network trained on
    its own has never been climbed against; for it, ``p(c | x)`` is high only if ``x`` carries what the class looks
    like to it — which it does for photos of the class, and need not for a fooling image.

    Each image is resized (antialiased bilinear) so that its shorter side is the judge's own input size
    ``judge.input_size`` (if it has one; e.g. 260 for EfficientNet-Lite2), cut to its central square, and
    scaled with the judge's own ``judge.input_mean``/``input_std`` (default 0 and 1), then ``p = softmax(judge(x))``:

        probability_i = p_{c_i}(x_i),   rank_i = 1 + #{k : p_k(x_i) > p_{c_i}(x_i)}.

    Args:
        images: ``(N, C, H, W)`` float in [0, 1] (the judge's channels), any size.
        classes: one class index per image (or one for all), in ``0..K-1`` for the judge's ``K`` classes.
        judge: a classifier in eval mode returning ``(N, K)`` logits, not the network that made the images.

    Returns:
        a :class:`Judgement`.
    """
    fn = "independent_probability"
    dev = _check_model(fn, judge)
    checks.images(fn, images, name="images")
    if images.min() < 0 or images.max() > 1:
        raise ValueError(f"{fn}: expected images with values in [0, 1], got the range "
                         f"[{images.min().item():.3g}, {images.max().item():.3g}]")
    classes = _check_classes(fn, images, classes)
    batch_size = checks.positive_int(fn, batch_size, "batch_size")
    size = getattr(judge, "input_size", None)
    if size is not None:
        size = checks.positive_int(fn, size, "judge.input_size")
    mean, std = _input_stats(judge, None, None, dev, images.dtype)
    if mean.shape[1] not in (1, images.shape[1]) or std.shape[1] not in (1, images.shape[1]):
        raise ValueError(f"{fn}: the judge's input_mean/input_std have {mean.shape[1]}/{std.shape[1]} channels, "
                         f"the images {images.shape[1]}")
    probs = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size].to(dev)  # (n, C, H, W)
        if size is not None and x.shape[-2:] != (size, size):  # shorter side to `size`, then the central square
            h, w = x.shape[-2:]
            new = (max(size, round(h * size / min(h, w))), max(size, round(w * size / min(h, w))))
            x = F.interpolate(x, size=new, mode="bilinear", antialias=True, align_corners=False)
            top, left = (new[0] - size) // 2, (new[1] - size) // 2
            x = x[..., top:top + size, left:left + size]  # (n, C, size, size)
        logits = judge((x - mean) / std)  # (n, K)
        _check_logits(fn, logits, classes)
        probs.append(logits.softmax(1).cpu())
    p = torch.cat(probs)  # (N, K)
    p_class = p.gather(1, classes.view(-1, 1).long())[:, 0]  # (N,)
    top_p, top = p.max(1)
    rank = 1 + (p > p_class[:, None]).sum(1)
    return Judgement(p_class, rank, top, top_p)


# ---------------------------------------------------------------------------------------------------------------
# Shipped renders (made by scripts/render_actmax.py, checked against their own manifest)

#: Where ``scripts/render_actmax.py`` writes its images, ``MANIFEST.json`` (sha256 of every file) and
#: ``results.json`` (settings, recognisability, seconds per image).
RENDER_DIR = DATA_DIR / "actmax"


def write_render_manifest(render_dir: str | os.PathLike = RENDER_DIR) -> Path:
    """Record every ``*.png`` and ``results.json`` of ``render_dir`` in its ``MANIFEST.json``
    (:func:`cnnlib.snapshots.record_all`: sha256 and size); the entries of other files still there (e.g.
    :data:`ZFNET_CLIMBS`, written by its own script with the snapshot it was made on) stay."""
    return record_all(render_dir, "*.png", "results.json", keep_others=True)


def _checked(fn: str, name: str, render_dir: Path) -> Path:
    return checked_file(fn, render_dir, name, "re-create it with: python scripts/render_actmax.py")


def load_render(name: str, render_dir: str | os.PathLike | None = None) -> torch.Tensor:
    """A shipped image ``(3, H, W)`` in [0, 1], e.g. ``"class-full-goldfinch.png"``, after checking its sha256."""
    path = _checked("load_render", name, Path(render_dir or RENDER_DIR))
    with Image.open(path) as img:
        rgb = np.asarray(img.convert("RGB"))  # (H, W, 3) uint8
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1).float() / 255


def render_results(render_dir: str | os.PathLike | None = None) -> dict:
    """The shipped ``results.json`` (checked): ``{"settings": ..., "images": {name: {...}}}``."""
    return json.loads(_checked("render_results", "results.json", Path(render_dir or RENDER_DIR)).read_text())


# ---------------------------------------------------------------------------------------------------------------
# Shipped climbs on ZFNet-small (made by scripts/climb_zfnet_small.py)

#: Chapter 9's 40 class climbs and 6 ``conv5`` climbs on ZFNet-small, with the ``conv5`` top-9 over the test set.
ZFNET_CLIMBS = "zfnet-small-climbs.pt"
_CLIMBS_REMEDY = "re-create it with: python scripts/climb_zfnet_small.py"


def load_shipped_climbs(render_dir: str | os.PathLike | None = None,
                        data_dir: str | os.PathLike | None = None) -> dict:
    """Chapter 9's climbs on ZFNet-small, computed once by ``scripts/climb_zfnet_small.py``.

    The file is checked against its sha256 in ``render_dir/MANIFEST.json``, and the ZFNet-small snapshot at hand
    (in ``data_dir``) against the one the climbs were made on (the manifest's ``"snapshots"``,
    :func:`cnnlib.snapshots.check_made_from`); either mismatch raises ``ValueError`` saying how to re-create it.

    Returns:
        ``{"settings": {name: Regularizers}, "steps", "lr", "bounds", "classes",
        "found": {name: [Result] * 10}`` (the class climbs as :func:`maximize` returns them: image ``(1, 28, 28)``,
        activation at every step), ``"conv5": {"top": TopK`` (over the 10,000 test images), ``"maps": [6 ints],
        "wanted": [Result] * 6}``, ``"seconds"`` (the script's time)``}``.
    """
    fn = "load_shipped_climbs"
    folder = Path(render_dir or RENDER_DIR)
    path = checked_file(fn, folder, ZFNET_CLIMBS, _CLIMBS_REMEDY)
    check_made_from(fn, folder, ZFNET_CLIMBS, _CLIMBS_REMEDY, data_dir)
    state = torch.load(path, map_location="cpu", weights_only=True)

    def results(images: torch.Tensor, curves: torch.Tensor) -> list[Result]:
        return [Result(img.clone(), curve.tolist()) for img, curve in zip(images, curves)]

    c5 = state["conv5"]
    return {
        "settings": {name: Regularizers(**kw) for name, kw in state["settings"].items()},
        "steps": state["steps"], "lr": state["lr"], "bounds": tuple(state["bounds"]), "classes": state["classes"],
        "found": {name: results(state["images"][name], state["activations"][name]) for name in state["settings"]},
        "conv5": {"top": TopK("conv5", c5["values"], c5["image_index"], c5["position"]), "maps": list(c5["maps"]),
                  "wanted": results(c5["images"], c5["activations"]), "setting": c5["setting"]},
        "seconds": state["seconds"],
    }
