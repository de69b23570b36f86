"""Measuring first-layer filters: what kind each is, dead filters, mid frequencies, and layer-2 grid artefacts.

Zeiler & Fergus (2014, Fig. 6) judged AlexNet's first layer by eye: "a mix of extremely high and low frequency
information, with little coverage of the mid frequencies", dead filters, and "aliasing artifacts caused by the
large stride 4" in layer 2. This module puts a number on each, and on the textbook claim that a network
trained on photos learns oriented edge detectors and colour blobs in layer 1.

**Kinds of filter** (:func:`filter_character`). Each filter is sorted into *oriented* (an edge, bar or grating:
it varies along one direction), *colour blob* (mostly one flat colour, or smooth structure without a direction)
or *unstructured* (what is left, white noise among it), from three numbers with known values for white noise:
the share of the energy in the flat colour, the orientation coherence of the structure tensor, and the share of
the spatial energy below one cycle per filter width. The thresholds were fixed on synthetic filters of known
kind (:func:`synthetic_filters`: Gabors at several angles, frequencies and phases, soft and sharp step edges,
flat colours, Gaussian blobs, white noise and sparse speckle), not on any network. :func:`gabor` draws the
Gabor function, a cosine grating under a Gaussian envelope:

    x' = (x − x₀) cos θ + (y − y₀) sin θ,   y' = −(x − x₀) sin θ + (y − y₀) cos θ,
    g(x, y) = exp(−x'² / (2σₓ²) − y'² / (2σ_y²)) · cos(2π f x' + φ).

**Fig. 6's measures** (:func:`dead_share`, :func:`mid_frequency_share`, :func:`grid_share`) are defined where
they are computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch

from . import checks
from .hooks import LayerOutputs
from .models import activations
from .plotting import mosaic


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


def _as_filters(fn: str, weights, ndim: int = 4) -> np.ndarray:
    """Conv weights ``(F, C, k, k)`` (tensor or array; a single ``(C, k, k)`` filter when ``ndim == 3``) as float64."""
    if isinstance(weights, np.ndarray):
        weights = torch.from_numpy(weights)
    w = checks.images(fn, weights, ndim=ndim, name="weights").detach().cpu().double().numpy()
    if w.shape[-1] != w.shape[-2]:
        raise ValueError(f"{fn}: expected square filters (…, k, k), got shape {tuple(w.shape)}")
    return w


# ----------------------------------------------------------------------------------------------------------
# What kind of filter: oriented, colour blob or unstructured
# ----------------------------------------------------------------------------------------------------------

KINDS = ("oriented", "blob", "unstructured")
FLAT_MIN = 0.5  # a filter with at least this share of its energy in one flat colour is a colour blob
COHERENCE_MIN = 0.7  # orientation coherence from which the spatial part counts as oriented
SMOOTH_MIN = 0.5  # share of the spatial energy below one cycle per filter width from which it counts as smooth


@dataclass(frozen=True)
class FilterCharacter:
    """The three measures of :func:`filter_character` for ``F`` filters, and the kind they give each filter.

    Attributes:
        flat: ``(F,)`` share of the filter's energy in its flat colour (the channel means), in [0, 1].
        coherence: ``(F,)`` orientation coherence of the spatial part, in [0, 1].
        orientation: ``(F,)`` direction of the dominant gradient in radians, in [0, π) (``x`` right, ``y``
            down: 0 for a vertical edge, whose gradient points along ``x``).
        smooth: ``(F,)`` share of the spatial part's energy below one cycle per filter width, in [0, 1].
        kind: ``(F,)`` strings from :data:`KINDS`.
    """

    flat: np.ndarray
    coherence: np.ndarray
    orientation: np.ndarray
    smooth: np.ndarray
    kind: np.ndarray

    def counts(self) -> dict[str, int]:
        """Number of filters of each kind, in the order of :data:`KINDS`."""
        return {k: int((self.kind == k).sum()) for k in KINDS}

    def shares(self) -> dict[str, float]:
        """Share of the filters of each kind (fractions summing to 1)."""
        return {k: n / len(self.kind) for k, n in self.counts().items()}


def filter_character(weights, flat_min: float = FLAT_MIN, coherence_min: float = COHERENCE_MIN,
                     smooth_min: float = SMOOTH_MIN) -> FilterCharacter:
    """Sort first-layer filters into **oriented** (edges, bars, gratings), **colour blobs** and **unstructured**.

    A filter ``W`` of shape ``(C, k, k)`` is split into its flat colour, the channel means ``m_c``, and its
    spatial part ``S_c = W_c − m_c``. Three numbers, each invariant to the filter's scale and sign:

    * **flat share** ``D = k² Σ_c m_c² / Σ W²``: how much of the energy is one colour over the whole filter.
      White noise has ``D ≈ 1/k²``.
    * **orientation coherence** of ``S``, from its structure tensor summed over the filter and the channels
      (Sobel derivatives, borders reflected, as ``skimage.feature.structure_tensor`` takes them; computed here
      for all filters at once with ``scipy.ndimage.correlate1d``),
      ``J = Σ_c Σ_xy ∇S_c ∇S_cᵀ`` with eigenvalues ``λ₁ ≥ λ₂``: ``κ = (λ₁ − λ₂) / (λ₁ + λ₂)``. A grating or an
      edge varies along one direction only (``κ → 1``); a round blob varies equally in all directions and
      white noise in random ones (``κ`` near 0: about 0.3 for 5×5 noise, 0.1 for 11×11).
    * **smooth share** of ``S``: the share of its energy in the orthonormal 2-D DCT-II coefficients ``(u, v)``
      with ``0 < u² + v² ≤ 4`` (``scipy.fft.dctn``), i.e. at most one cycle across the filter. White noise
      spreads its energy evenly over the ``k² − 1`` coefficients, so it puts ``5 / (k² − 1)`` there (21 % for
      5×5, 4 % for 11×11); a soft blob or ramp almost all of it.

    The rule, in this order: ``D ≥ flat_min`` → *blob* (a colour patch: most of the energy is one colour);
    else ``κ ≥ coherence_min`` → *oriented*; else smooth share ``≥ smooth_min`` → *blob* (smooth structure
    without one direction, e.g. a centre-surround spot); else *unstructured*. A filter of zeros is
    unstructured.

    Why these measures rather than the fit of one Gabor function: a Gabor with ``2C + 7`` parameters fits
    small random filters well by chance (on 5×5 filters one in five random ones reached ``R² ≥ 0.6``), and it
    ranks a flat colour patch, the commonest filter of a small photo network, as a poor fit, although the eye
    calls it a colour blob. The three measures here each have a known value for white noise.

    The thresholds were fixed once, on the synthetic filters of :func:`synthetic_filters` (5×5×1, 7×7×3 and
    11×11×3, 500 draws each) and are not tuned to any network: ``coherence_min = 0.7`` is about the 99th
    percentile of ``κ`` for 5×5 gray white noise (the smallest filters, the hardest case), while 95 % of the
    synthetic Gabors and edges have ``κ ≥ 0.9``; ``smooth_min = 0.5`` lies between 5×5 noise (95th percentile
    0.42) and Gaussian blobs (5th percentile 0.78); ``flat_min = 0.5`` means more than half of the energy.
    ``tests/test_filters.py`` checks that ≥ 90 % of each synthetic kind, and of random initialisations,
    get their kind.

    Args:
        weights: conv weights ``(F, C, k, k)`` with ``k ≥ 3``, tensor or array.
        flat_min, coherence_min, smooth_min: the thresholds, in [0, 1].

    Returns:
        :class:`FilterCharacter` with ``(F,)`` arrays.
    """
    from scipy import ndimage as ndi
    from scipy.fft import dctn

    fn = "filter_character"
    w = _as_filters(fn, weights)
    F, C, k, _ = w.shape
    if k < 3:
        raise ValueError(f"{fn}: expected filters of at least 3×3 pixels, got {k}×{k}")
    flat_min = checks.number(fn, flat_min, "flat_min", 0.0, 1.0)
    coherence_min = checks.number(fn, coherence_min, "coherence_min", 0.0, 1.0)
    smooth_min = checks.number(fn, smooth_min, "smooth_min", 0.0, 1.0)

    power = dctn(w, axes=(2, 3), norm="ortho") ** 2  # (F, C, k, k): orthonormal, so Σ power = Σ w²
    power = power.sum(1)  # (F, k, k)
    total = power.sum((1, 2))  # (F,)
    dc = power[:, 0, 0]  # k² Σ_c m_c²: the DC coefficient of each channel is k · m_c
    spatial = total - dc
    u = np.arange(k)
    low = (u[:, None] ** 2 + u[None, :] ** 2) <= 4
    low[0, 0] = False
    scale = np.maximum(total, 1e-300)
    has_energy = total > 1e-24 * max(1e-300, float(total.max()))
    has_structure = spatial > 1e-12 * scale
    flat = np.where(has_energy, dc / scale, 0.0)
    smooth = np.where(has_structure, power[:, low].sum(1) / np.maximum(spatial, 1e-300), 0.0)

    S = w - w.mean((2, 3), keepdims=True)  # (F, C, k, k)
    # Sobel derivatives with reflected borders, as skimage.feature.structure_tensor takes them (tests check that
    # the sums equal its tensor's), for all filters at once: a derivative along one axis, [1, 2, 1] along the other
    gy = ndi.correlate1d(ndi.correlate1d(S, [-1, 0, 1], axis=2, mode="reflect"), [1, 2, 1], axis=3, mode="reflect")
    gx = ndi.correlate1d(ndi.correlate1d(S, [-1, 0, 1], axis=3, mode="reflect"), [1, 2, 1], axis=2, mode="reflect")
    jyy, jxy, jxx = ((a * b).sum((1, 2, 3)) for a, b in ((gy, gy), (gy, gx), (gx, gx)))  # (F,) each
    trace = jxx + jyy
    diff = np.sqrt((jxx - jyy) ** 2 + 4 * jxy ** 2)  # λ₁ − λ₂
    ok = has_structure & (trace > 0)
    coherence = np.where(ok, diff / np.where(ok, trace, 1.0), 0.0)
    orientation = np.mod(0.5 * np.arctan2(2 * jxy, jxx - jyy), np.pi)

    kind = np.full(F, "unstructured", dtype=object)
    smooth_blob = has_structure & (coherence < coherence_min) & (smooth >= smooth_min)
    kind[smooth_blob] = "blob"
    kind[has_structure & (coherence >= coherence_min)] = "oriented"
    kind[has_energy & (flat >= flat_min)] = "blob"
    return FilterCharacter(flat, coherence, orientation, smooth, kind.astype(str))


def kind_shares(weights, **thresholds) -> dict[str, float]:
    """Share of the filters ``(F, C, k, k)`` of each kind (:func:`filter_character`), in the order of :data:`KINDS`."""
    return filter_character(weights, **thresholds).shares()


SYNTHETIC = ("gabor", "edge", "flat", "blob", "noise", "speckle")


def synthetic_filters(kind: str, n: int, size: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Random filters of one known kind, to validate :func:`filter_character` (each a random colour direction
    ``u ~ N(0, I_C)`` times a pattern, centres up to one pixel off the middle, orientations uniform):

    * ``"gabor"``: :func:`gabor` with frequency ``f ~ U[max(0.1, 1/k), 1/3]`` cycles/pixel (at least one cycle
      across the filter), width ``σₓ = c / f`` with ``c ~ U[0.4, 0.7]`` (about one to two bright bars), length
      ``σ_y = σₓ · U[1, 2]`` (both at most ``k/2``), any phase;
    * ``"edge"``: a step ``tanh(d / w)`` across a line (``d`` the signed distance, softness ``w ~ U[0.2, 1]``
      pixels), plus a flat colour of at most half the step's norm;
    * ``"flat"``: one colour plus 5 % noise; ``"blob"``: an isotropic Gaussian, ``σ ~ U[0.2, 0.5] · k``;
    * ``"noise"``: independent ``N(0, 1)`` weights; ``"speckle"``: the same, kept with probability 0.2.

    Returns:
        float64 ``(n, channels, size, size)``.
    """
    fn = "synthetic_filters"
    if kind not in SYNTHETIC:
        raise ValueError(f"{fn}: expected kind in {SYNTHETIC}, got {kind!r}")
    n = checks.positive_int(fn, n, "n")
    k = checks.positive_int(fn, size, "size", 3)
    C = checks.positive_int(fn, channels, "channels")
    rng = np.random.default_rng(checks.positive_int(fn, seed, "seed", 0))
    c = (k - 1) / 2
    out = np.empty((n, C, k, k))
    for i in range(n):
        u = rng.standard_normal(C)
        if kind == "gabor":
            f = rng.uniform(max(0.1, 1 / k), 1 / 3)
            sx = rng.uniform(0.4, 0.7) / f
            sy = sx * rng.uniform(1, 2)
            g = gabor(k, rng.uniform(0, math.pi), f, rng.uniform(0, 2 * math.pi), min(sx, k / 2), min(sy, k / 2),
                      c + rng.uniform(-1, 1), c + rng.uniform(-1, 1))
            out[i] = u[:, None, None] * g
        elif kind == "edge":
            th = rng.uniform(0, math.pi)
            y, x = np.mgrid[0:k, 0:k] - c
            d = (x - rng.uniform(-1, 1)) * math.cos(th) + (y - rng.uniform(-1, 1)) * math.sin(th)
            m = rng.standard_normal(C)
            m *= rng.uniform(0, 0.5) * np.linalg.norm(u) / max(1e-12, float(np.linalg.norm(m)))
            out[i] = u[:, None, None] * np.tanh(d / rng.uniform(0.2, 1.0)) + m[:, None, None]
        elif kind == "flat":
            out[i] = u[:, None, None] + 0.05 * np.linalg.norm(u) / math.sqrt(C) * rng.standard_normal((C, k, k))
        elif kind == "blob":
            s = rng.uniform(0.2, 0.5) * k
            out[i] = u[:, None, None] * gabor(k, 0.0, 0.0, 0.0, s, s, c + rng.uniform(-1, 1), c + rng.uniform(-1, 1))
        elif kind == "noise":
            out[i] = rng.standard_normal((C, k, k))
        else:
            out[i] = rng.standard_normal((C, k, k)) * (rng.random((C, k, k)) < 0.2)
    return out


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
