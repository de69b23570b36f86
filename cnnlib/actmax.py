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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from .models import activations, named_layer


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
    if sigma <= 0:
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
    (counted from 1). ``x``, ``grad``: ``(N, C, H, W)``."""
    if reg.decay:
        x = x * (1 - reg.decay)
    if reg.blur_every and reg.blur_width and step % reg.blur_every == 0:
        x = gaussian_blur(x, reg.blur_width)
    if reg.norm_pct:
        x = _zero_below_percentile(x, x.norm(dim=1), reg.norm_pct)
    if reg.contrib_pct:
        x = _zero_below_percentile(x, (x * grad).sum(1).abs(), reg.contrib_pct)
    return x


def _unit(output: torch.Tensor, channel: int, layer: str) -> torch.Tensor:
    """The activation (N,) of unit ``channel`` of a layer's output: the centre of a feature map, or a vector entry."""
    if output.ndim == 4:
        if not 0 <= channel < output.shape[1]:
            raise ValueError(f"actmax: layer {layer!r} has {output.shape[1]} feature maps, got channel={channel}")
        return output[:, channel, output.shape[2] // 2, output.shape[3] // 2]
    if output.ndim == 2:
        if not 0 <= channel < output.shape[1]:
            raise ValueError(f"actmax: layer {layer!r} has {output.shape[1]} units, got channel={channel}")
        return output[:, channel]
    raise ValueError(f"actmax: layer {layer!r} gives {tuple(output.shape)}, expected (N, K, h, w) or (N, K)")


@dataclass
class Result:
    """What :func:`maximize` returns."""

    image: torch.Tensor  # (C, H, W): the input found, in the model's input space (0 = the mean image)
    activations: list[float] = field(default_factory=list)  # the unit's activation before each step


def maximize(model: nn.Module, layer: str, channel: int, shape: tuple[int, int, int],
             reg: Regularizers = Regularizers(), steps: int = 200, lr: float = 1.0, seed: int = 0,
             init_std: float = 0.0, bounds: tuple[float, float] | None = None, progress: bool = False) -> Result:
    """Find an input that makes unit ``channel`` of ``layer`` fire, by regularized gradient ascent.

    Args:
        model: any network taking ``(1, *shape)`` (eval mode is the caller's business); it runs on the device of
            its parameters. Its weights are not changed.
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
    param = next(model.parameters())
    gen = torch.Generator().manual_seed(seed)
    x = (init_std * torch.randn(1, *shape, generator=gen)).to(param.device, param.dtype)
    seen: list[torch.Tensor] = []
    hook = named_layer(model, layer).register_forward_hook(lambda m, i, o: seen.append(o))
    history = []
    try:
        for step in tqdm(range(1, steps + 1), desc=f"{layer}[{channel}]", leave=False, disable=not progress):
            x = x.detach().requires_grad_(True)
            seen.clear()
            model(x)
            a = _unit(seen[-1], channel, layer)[0]
            (grad,) = torch.autograd.grad(a, x)
            history.append(float(a.detach()))
            with torch.no_grad():
                x = regularize(x + lr * grad, grad, step, reg)
                if bounds is not None:
                    x = x.clamp(*bounds)
    finally:
        hook.remove()
    return Result(x.detach()[0].cpu(), history)


def unit_activation(model: nn.Module, layer: str, channel: int, x: torch.Tensor) -> torch.Tensor:
    """The activation ``(N,)`` of the unit :func:`maximize` climbs, for inputs ``x`` ``(N, C, H, W)``."""
    output = activations(model, x.to(next(model.parameters()).device), [layer])[layer]
    return _unit(output, channel, layer)
