"""Measuring first-layer filters: Gabor fits, dead filters, mid frequencies, and layer-2 grid artefacts.

Zeiler & Fergus (2014, Fig. 6) judged AlexNet's first layer by eye: "a mix of extremely high and low frequency
information, with little coverage of the mid frequencies", dead filters, and "aliasing artifacts caused by the
large stride 4" in layer 2. This module puts a number on each, and on the textbook claim that a network
trained on photos learns Gabor-like edge detectors and colour blobs in layer 1.

**Gabor fit.** A 2-D Gabor function is a cosine grating under a Gaussian envelope:

    x' = (x − x₀) cos θ + (y − y₀) sin θ,   y' = −(x − x₀) sin θ + (y − y₀) cos θ,
    g(x, y) = exp(−x'² / (2σₓ²) − y'² / (2σ_y²)) · cos(2π f x' + φ).

With ``f = 0`` it is an (elongated) Gaussian blob. A colour filter ``W`` of shape ``(C, k, k)`` is fitted as one
colour direction times one Gabor, plus a constant per channel: ``W[c] ≈ u_c · g(x, y) + b_c``; a luminance edge
has ``u`` with equal signs, a colour-opponent blob or edge has ``u`` with mixed signs. The fit minimises the
squared error over all ``C·k²`` weights (:func:`scipy.optimize.least_squares`, several starts) and reports the
share of the filter's *spatial* variance it explains (each channel centred on its own mean, so a filter of one
flat colour, which has no spatial structure, does not count as a blob):

    R² = 1 − Σ (W − Ŵ)² / Σ_c Σ_xy (W_c − mean W_c)².

The model has ``2C + 7`` parameters, so small filters are fitted well by chance: compare with a random
initialisation of the same shape (:func:`gabor_share` of untrained weights).

**Fig. 6's measures** (:func:`dead_share`, :func:`mid_frequency_share`, :func:`grid_share`) are defined where
they are computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from . import checks


def gabor(size: int, theta: float = 0.0, freq: float = 0.2, phase: float = 0.0, sigma_x: float = 1.5,
          sigma_y: float = 1.5, x0: float | None = None, y0: float | None = None) -> np.ndarray:
    """The Gabor function ``g`` above sampled on a ``size × size`` grid (pixel centres 0 … size−1; the centre
    ``(x₀, y₀)`` defaults to the middle). ``freq`` in cycles per pixel, ``theta`` and ``phase`` in radians.

    Returns:
        float64 ``(size, size)``, indexed ``[y, x]``.
    """
    size = checks.positive_int("gabor", size, "size")
    c = (size - 1) / 2
    x0 = c if x0 is None else x0
    y0 = c if y0 is None else y0
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    xr = (x - x0) * math.cos(theta) + (y - y0) * math.sin(theta)
    yr = -(x - x0) * math.sin(theta) + (y - y0) * math.cos(theta)
    envelope = np.exp(-xr ** 2 / (2 * sigma_x ** 2) - yr ** 2 / (2 * sigma_y ** 2))
    return envelope * np.cos(2 * math.pi * freq * xr + phase)


@dataclass
class GaborFit:
    """The best colour-times-Gabor fit of one filter: ``W[c] ≈ colour[c] · gabor(k, theta, freq, phase,
    sigma_x, sigma_y, x0, y0) + offset[c]``, and its coefficient of determination ``r2``."""

    r2: float
    colour: tuple[float, ...]
    theta: float
    freq: float
    phase: float
    sigma_x: float
    sigma_y: float
    x0: float
    y0: float
    offset: tuple[float, ...]

    def model(self, size: int) -> np.ndarray:
        """The fitted filter ``(C, size, size)``."""
        g = gabor(size, self.theta, self.freq, self.phase, self.sigma_x, self.sigma_y, self.x0, self.y0)
        return np.asarray(self.colour)[:, None, None] * g[None] + np.asarray(self.offset)[:, None, None]


def _as_filters(fn: str, weights, ndim: int = 4) -> np.ndarray:
    """Conv weights ``(F, C, k, k)`` (tensor or array; a single ``(C, k, k)`` filter when ``ndim == 3``) as float64."""
    if isinstance(weights, np.ndarray):
        weights = torch.from_numpy(weights)
    w = checks.images(fn, weights, ndim=ndim, name="weights").detach().cpu().double().numpy()
    if w.shape[-1] != w.shape[-2]:
        raise ValueError(f"{fn}: expected square filters (…, k, k), got shape {tuple(w.shape)}")
    return w


def fit_gabor(weight, starts: int = 1) -> GaborFit:
    """Fit one filter ``(C, k, k)`` with a colour direction times a 2-D Gabor plus a constant per channel (module
    docstring).

    Starts: the colour direction and spatial map of the filter's first singular pair (``(C, k²)`` matrix);
    orientation and frequency of the map's strongest Fourier component, and a blob (``f = 0``); ``starts``
    phases each. Bounds: ``0 ≤ f ≤ 0.5`` cycles/pixel, ``0.4 ≤ σ ≤ k``, centre within one pixel of the patch.

    Returns:
        :class:`GaborFit` with ``r2`` in (−∞, 1]; 1 for an exact Gabor, 0 for a filter the model cannot
        explain better than its channel means (a filter constant in each channel returns ``r2 = 0``).
    """
    from scipy.optimize import least_squares

    w = _as_filters("fit_gabor", weight, ndim=3)
    C, k, _ = w.shape
    starts = checks.positive_int("fit_gabor", starts, "starts")
    means = w.mean((1, 2))  # (C,)
    centred = w - means[:, None, None]
    ss_tot = float((centred ** 2).sum())
    if ss_tot <= 1e-24 * max(1e-30, float((w ** 2).sum())):
        return GaborFit(0.0, tuple([0.0] * C), 0.0, 0.0, 0.0, 1.0, 1.0, (k - 1) / 2, (k - 1) / 2,
                        tuple(float(m) for m in means))
    U, S, Vt = np.linalg.svd(centred.reshape(C, -1), full_matrices=False)
    u0, smap = U[:, 0], (S[0] * Vt[0]).reshape(k, k)
    scale = float(np.abs(smap).max())
    # strongest Fourier component of the spatial map (zero-padded)
    n = 32
    spec = np.abs(np.fft.fft2(smap, (n, n))) ** 2
    spec[0, 0] = 0
    iy, ix = np.unravel_index(int(spec.argmax()), spec.shape)
    fy, fx = np.fft.fftfreq(n)[iy], np.fft.fftfreq(n)[ix]
    f_peak, th_peak = float(math.hypot(fx, fy)), float(math.atan2(fy, fx))
    yy, xx = np.mgrid[0:k, 0:k]
    mass = np.abs(smap) / max(1e-30, float(np.abs(smap).sum()))
    cx, cy = float((mass * xx).sum()), float((mass * yy).sum())

    def parts(p):
        th, f, ph, sx, sy, x0, y0 = p[C:C + 7]
        xr = (xx - x0) * math.cos(th) + (yy - y0) * math.sin(th)
        yr = -(xx - x0) * math.sin(th) + (yy - y0) * math.cos(th)
        env = np.exp(-xr ** 2 / (2 * sx ** 2) - yr ** 2 / (2 * sy ** 2))
        psi = 2 * math.pi * f * xr + ph
        return th, f, sx, sy, xr, yr, env, env * np.cos(psi), env * np.sin(psi)

    def residual(p):
        g = parts(p)[7]
        return (p[:C, None, None] * g[None] + p[C + 7:, None, None] - w).reshape(-1)

    def jacobian(p):  # d residual / d parameters, (C·k², 2C + 7)
        th, f, sx, sy, xr, yr, env, g, es = parts(p)
        dg_dxr = -g * xr / sx ** 2 - es * 2 * math.pi * f
        dg_dyr = -g * yr / sy ** 2
        c, s_ = math.cos(th), math.sin(th)
        spatial = np.stack([dg_dxr * yr - dg_dyr * xr,  # theta
                            -es * 2 * math.pi * xr,  # freq
                            -es,  # phase
                            g * xr ** 2 / sx ** 3, g * yr ** 2 / sy ** 3,  # sigma_x, sigma_y
                            -dg_dxr * c + dg_dyr * s_, -dg_dxr * s_ - dg_dyr * c], -1)  # x0, y0: (k, k, 7)
        J = np.zeros((C, k, k, 2 * C + 7))
        for ch in range(C):
            J[ch, :, :, ch] = g
            J[ch, :, :, C:C + 7] = p[ch] * spatial
            J[ch, :, :, C + 7 + ch] = 1.0
        return J.reshape(C * k * k, 2 * C + 7)

    lo = [-np.inf] * C + [-np.inf, 0.0, -np.inf, 0.4, 0.4, -1.0, -1.0] + [-np.inf] * C
    hi = [np.inf] * C + [np.inf, 0.5, np.inf, float(k), float(k), float(k), float(k)] + [np.inf] * C
    best = None
    for f0, th0 in ((f_peak, th_peak), (0.0, 0.0)):
        for j in range(starts):
            phase = 2 * math.pi * j / starts
            sig = max(0.6, k / 4)
            p0 = np.r_[u0 * scale, th0, min(f0, 0.49), phase, sig, sig, cx, cy, means]
            p0 = np.clip(p0, np.array(lo) + 1e-9, np.array(hi) - 1e-9)
            try:
                res = least_squares(residual, p0, jac=jacobian, bounds=(lo, hi), max_nfev=200, x_scale="jac")
            except ValueError:
                continue
            if best is None or res.cost < best.cost:
                best = res
    p = best.x
    r2 = 1.0 - 2 * float(best.cost) / ss_tot
    return GaborFit(r2, tuple(float(v) for v in p[:C]), float(p[C]), float(p[C + 1]), float(p[C + 2]),
                    float(p[C + 3]), float(p[C + 4]), float(p[C + 5]), float(p[C + 6]),
                    tuple(float(v) for v in p[C + 7:]))


def gabor_r2(weights, starts: int = 1) -> np.ndarray:
    """R² of :func:`fit_gabor` for every filter of a conv layer's weights ``(F, C, k, k)``; returns ``(F,)``."""
    w = _as_filters("gabor_r2", weights)
    return np.array([fit_gabor(f, starts).r2 for f in w])


def gabor_share(weights, threshold: float = 0.6, starts: int = 1) -> float:
    """Share of the filters ``(F, C, k, k)`` whose Gabor fit reaches ``R² ≥ threshold`` (a fraction in [0, 1])."""
    threshold = checks.number("gabor_share", threshold, "threshold", high=1.0)
    return float((gabor_r2(weights, starts) >= threshold).mean())


# ----------------------------------------------------------------------------------------------------------
# Zeiler & Fergus Fig. 6
# ----------------------------------------------------------------------------------------------------------

def filter_norms(weights) -> np.ndarray:
    """Euclidean norm of each filter ``(F, C, k, k)`` → ``(F,)``."""
    w = _as_filters("filter_norms", weights)
    return np.sqrt((w.reshape(len(w), -1) ** 2).sum(1))


def dead_mask(weights, threshold: float = 0.2) -> np.ndarray:
    """Which filters are dead: norm below ``threshold`` times the median filter norm of the layer.

    A filter that no longer receives gradient is pulled to zero by weight decay; its norm falls far below the
    others'. Returns a boolean ``(F,)``.
    """
    threshold = checks.number("dead_mask", threshold, "threshold", low=0.0, high=1.0)
    norms = filter_norms(weights)
    return norms < threshold * float(np.median(norms))


def dead_share(weights, threshold: float = 0.2) -> float:
    """Share of dead filters (:func:`dead_mask`), a fraction in [0, 1]."""
    return float(dead_mask(weights, threshold).mean())


def radial_spectrum(weights, n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Power spectrum of each filter, zero-padded to ``n × n`` and summed over colour channels, with the radial
    frequency of every bin.

    Returns:
        ``(power (F, n, n), radius (n, n))``, radius ``√(f_x² + f_y²)`` in cycles per input pixel (Nyquist 0.5).
    """
    w = _as_filters("radial_spectrum", weights)
    n = checks.positive_int("radial_spectrum", n, "n", w.shape[-1])
    power = (np.abs(np.fft.fft2(w, (n, n))) ** 2).sum(1)
    f = np.fft.fftfreq(n)
    return power, np.sqrt(f[None, :] ** 2 + f[:, None] ** 2)


def band_shares(weights, edges: tuple[float, float] = (0.1, 0.3), n: int = 64) -> np.ndarray:
    """Share of each filter's spectral energy at low (``r < edges[0]``), mid (``edges[0] ≤ r < edges[1]``) and
    high (``r ≥ edges[1]``) radial frequency ``r`` (cycles/pixel, :func:`radial_spectrum`). Returns ``(F, 3)``,
    rows summing to 1 (a zero filter gives zeros)."""
    lo, hi = edges
    if not 0 < lo < hi:
        raise ValueError(f"band_shares: expected 0 < edges[0] < edges[1], got {edges}")
    power, r = radial_spectrum(weights, n)
    total = power.sum((1, 2))
    bands = np.stack([power[:, r < lo].sum(1), power[:, (r >= lo) & (r < hi)].sum(1), power[:, r >= hi].sum(1)], 1)
    return np.divide(bands, total[:, None], out=np.zeros_like(bands), where=total[:, None] > 0)


def mid_frequency_share(weights, edges: tuple[float, float] = (0.1, 0.3), dead_threshold: float = 0.2,
                        n: int = 64) -> float:
    """Mean share of spectral energy at mid frequencies (:func:`band_shares`) over the live filters
    (:func:`dead_mask` excluded): Zeiler & Fergus's "little coverage of the mid frequencies" as a number."""
    live = ~dead_mask(weights, dead_threshold)
    shares = band_shares(weights, edges, n)[:, 1]
    return float(shares[live].mean()) if live.any() else 0.0


def grid_share(maps, period: int) -> float:
    """Share of the (mean-removed) spectral energy of 2-D maps that lies on the grid frequencies of ``period``.

    A pattern repeating every ``period`` pixels has all its energy at the frequencies ``(m/period, n/period)``;
    the share of energy there, beyond the zero frequency, measures how much a map looks like a grid of that
    period. White noise puts ``(period² − 1) / (H·W − 1)`` of its energy there; a smooth map almost nothing.

    Args:
        maps: ``(N, H, W)`` or ``(N, C, H, W)`` (channels summed in power), ``H`` and ``W`` multiples of ``period``.
        period: the grid's period in pixels (conv1's stride for layer-2 projections).

    Returns:
        The energy-weighted share over all maps, in [0, 1].
    """
    if isinstance(maps, np.ndarray):
        maps = torch.from_numpy(maps)
    x = checks.images("grid_share", maps, ndim=(3, 4), name="maps").detach().cpu().double().numpy()
    if x.ndim == 3:
        x = x[:, None]
    period = checks.positive_int("grid_share", period, "period", 2)
    H, W = x.shape[-2:]
    if H % period or W % period:
        raise ValueError(f"grid_share: expected H and W multiples of period {period}, got {H}×{W}")
    x = x - x.mean((-2, -1), keepdims=True)
    power = (np.abs(np.fft.fft2(x)) ** 2).sum((0, 1))  # (H, W)
    on = np.zeros((H, W), dtype=bool)
    on[:: H // period, :: W // period] = True
    total = float(power.sum())
    return float(power[on].sum() / total) if total > 0 else 0.0


def layer2_projections(model: torch.nn.Module, x: torch.Tensor, layer: str = "conv2", units: int | None = None
                       ) -> torch.Tensor:
    """Pixel-space pictures of layer-2 units: the gradient of each channel's centre unit of ``layer`` with
    respect to the input, at each image of ``x`` (the linear map the unit applies to that image; its grid
    artefacts are conv1's stride showing through).

    Args:
        model: a ZF-shaped network (e.g. :class:`cnnlib.models.ZFNetPhoto`), in eval mode.
        x: input batch ``(N, C, H, W)`` as the model expects it.
        units: how many channels of ``layer`` (default all).

    Returns:
        ``(N · units, C, H, W)`` gradients, on the CPU.
    """
    from .hooks import LayerOutputs

    x = checks.images("layer2_projections", x, ndim=4)
    x = checks.to_model("layer2_projections", model, x)
    checks.eval_mode("layer2_projections", model)
    out = []
    x = x.detach().clone().requires_grad_(True)
    with LayerOutputs(model, [layer], fn="layer2_projections", detach=False) as acts:
        model(x)
        a = acts[layer]
        h, w = a.shape[-2] // 2, a.shape[-1] // 2
        n_units = a.shape[1] if units is None else min(units, a.shape[1])
        for c in range(n_units):
            (g,) = torch.autograd.grad(a[:, c, h, w].sum(), x, retain_graph=c < n_units - 1)
            out.append(g.detach().cpu())
    return torch.stack(out, 1).flatten(0, 1)


def strongest_projections(model: torch.nn.Module, x: torch.Tensor, layer: str = "conv2", per_unit: int = 1
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """For every channel of ``layer``: the :func:`layer2_projections` of its centre unit at the ``per_unit``
    images of ``x`` where that unit is strongest (one backward pass for all: the images of a batch do not
    interact in a network without batch statistics).

    Returns:
        ``(projections (units, per_unit, C, H, W), activations (units, per_unit))``, channel by channel.
    """
    from .hooks import LayerOutputs
    from .models import activations

    per_unit = checks.positive_int("strongest_projections", per_unit, "per_unit")
    a = activations(model, x, [layer])[layer]  # (N, units, h, w)
    h, w = a.shape[2] // 2, a.shape[3] // 2
    centre = a[:, :, h, w]  # (N, units)
    top = centre.topk(min(per_unit, len(x)), dim=0)  # (k, units)
    k, units = top.indices.shape
    idx = top.indices.T.reshape(-1)  # channel-major: (units · k,)
    chans = torch.arange(units).repeat_interleave(k)
    xs = checks.to_model("strongest_projections", model, x[idx]).detach().clone().requires_grad_(True)
    with LayerOutputs(model, [layer], fn="strongest_projections", detach=False) as acts:
        model(xs)
        (g,) = torch.autograd.grad(acts[layer][torch.arange(len(idx)), chans, h, w].sum(), xs)
    return g.detach().cpu().view(units, k, *x.shape[1:]), top.values.T.contiguous()


def filter_images(weights, px: int = 72) -> torch.Tensor:
    """Filters ``(F, C, k, k)`` as RGB pictures ``(F, 3, px', px')``: each scaled by its own largest magnitude
    to [0, 1] with 0 at mid-gray (Zeiler & Fergus's display), gray filters repeated in R, G, B, and enlarged by
    nearest-neighbour repetition to ``px' = k · ⌈px / k⌉`` pixels (each weight a square of equal pixels)."""
    w = torch.as_tensor(_as_filters("filter_images", weights)).float()
    if w.shape[1] == 1:
        w = w.expand(-1, 3, -1, -1)
    if w.shape[1] != 3:
        raise ValueError(f"filter_images: expected 1 or 3 channels, got {w.shape[1]}")
    scale = w.flatten(1).abs().amax(1).clamp_min(1e-12).view(-1, 1, 1, 1)
    img = (w / scale * 0.5 + 0.5).clamp(0, 1)
    rep = -(-px // w.shape[-1])
    return img.repeat_interleave(rep, 2).repeat_interleave(rep, 3)


def plot_filter_banks(banks: dict, ncols: int = 8, px: int = 72, side_by_side: bool = False, title: str = "",
                      dpi: int = 100):
    """Conv1 filter banks drawn large: each filter at least ``px`` pixels on the page (nearest-neighbour), one
    panel per bank (stacked, or ``side_by_side``), ``ncols`` filters per row.

    Args:
        banks: ``{panel title: weights (F, C, k, k)}``.

    Returns:
        The ``Figure`` (its size in inches is the mosaics' pixels / ``dpi``, so one mosaic pixel is one pixel).
    """
    import matplotlib.pyplot as plt

    from .plotting import mosaic

    if not banks:
        raise ValueError("plot_filter_banks: expected at least one bank of filters")
    mosaics = {name: mosaic(filter_images(w, px), ncols=ncols, pad=6, fill=1.0) for name, w in banks.items()}
    head, gap, top = 30, 24, (34 if title else 0)  # pixels: each panel's title, between panels, the figure's title
    hs = [m.shape[1] for m in mosaics.values()]
    ws = [m.shape[2] for m in mosaics.values()]
    if side_by_side:
        W, H = sum(ws) + gap * (len(ws) - 1) + 8, max(hs) + head + top + 4
        rects = [(4 + sum(ws[:i]) + gap * i, 4 + max(hs) - h, w, h) for i, (w, h) in enumerate(zip(ws, hs))]
    else:
        W, H = max(ws) + 8, sum(hs) + (head + gap) * len(hs) - gap + top + 4
        rects = [(4 + (max(ws) - w) // 2, 4 + sum(hs[i + 1:]) + (head + gap) * (len(hs) - 1 - i), w, h)
                 for i, (w, h) in enumerate(zip(ws, hs))]
    fig = plt.figure(figsize=(W / dpi, H / dpi), dpi=dpi)
    for (x0, y0, w, h), (name, m) in zip(rects, mosaics.items()):
        ax = fig.add_axes((x0 / W, y0 / H, w / W, h / H))  # one mosaic pixel = one figure pixel
        ax.imshow(m.permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=11, y=1 - 6 / H, va="top")
    return fig
