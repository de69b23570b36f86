"""Benchmark: occlusion maps (cnnlib, default settings) against Captum's ``Occlusion`` at its best
``perturbations_per_eval``, and the deconvnet projection against Captum's ``Deconvolution``.

    .venv/bin/python bench/bench_occlusion.py [--repeats 2] [--quick]

Cases (issue 12): ZFNet-small (the shipped Fashion-MNIST snapshot) on a 28-px test image with a 7-px square at
stride 1; EfficientNet-Lite0 (ImageNet weights) on a 224-px photo with 16-px squares at strides 16 and 8.
Captum's windows start at the corner and stay inside the image, ours are centred on a grid and cut at the
border, so cnnlib is timed twice with its default settings: on its own grid (as many squares or more) and on
Captum's squares (``inside=True``, the same map). Captum is timed at several ``perturbations_per_eval``, with
the model as loaded and converted to channels-last (the layout cnnlib's engine uses), and its best time is
the bar. Each timing is the best of ``--repeats`` runs, measured alternately in this one run. Nothing asserts
a time.
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings

import torch
import torch.nn as nn

import cnnlib
from cnnlib import data, deconvnet, occlusion, photos, pretrained


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def captum_occlusion(model, x, target, size, stride, ppe):
    from captum.attr import Occlusion

    probs = _Softmax(model)
    C = x.shape[1]
    return Occlusion(probs).attribute(x, sliding_window_shapes=(C, size, size), strides=(C, stride, stride),
                                      baselines=0.0, target=target, perturbations_per_eval=ppe)


class _Softmax(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x).softmax(1)


LAYOUTS = ("as loaded", "channels-last")


def occlusion_case(name, model, x, size, stride, repeats, ppes, log=print, ppes_channels_last=None):
    """Time cnnlib's occlusion_maps with its default settings (on its own grid, and on Captum's squares with
    ``inside=True``) and Captum at each ``perturbations_per_eval``, with the model as loaded and (for
    ``ppes_channels_last``) converted to channels-last; a result row."""
    C, H, W = x.shape[1:]
    with torch.no_grad():
        target = int(model(x).argmax())
    model_cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    captum_runs = [(lay, p) for lay, ps in zip(LAYOUTS, (ppes, ppes_channels_last or [])) for p in ps]

    def ours(inside):
        return occlusion.occlusion_maps(model, x, target=target, size=size, stride=stride, progress=False,
                                        inside=inside)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours(False), ours(True)  # warm
    times = {k: [] for k in ("grid", "inside", *captum_runs)}
    maps = {}
    for _ in range(repeats):  # alternate, so that a busy moment hits both
        for key in ("grid", "inside"):
            t0 = time.perf_counter()
            maps[key] = ours(key == "inside")
            times[key].append(time.perf_counter() - t0)
        for lay, p in captum_runs:
            m, xx = (model, x) if lay == LAYOUTS[0] else (model_cl, x_cl)
            t0 = time.perf_counter()
            captum_occlusion(m, xx, target, size, stride, p)
            times[(lay, p)].append(time.perf_counter() - t0)
    best_t = {k: min(v) for k, v in times.items()}
    cap = {k: best_t[k] for k in captum_runs}
    best = min(cap, key=cap.get)
    n_captum = ((H - size) // stride + 1) * ((W - size) // stride + 1)
    grid_maps, inside_maps = maps["grid"], maps["inside"]
    assert inside_maps.prob.numel() == n_captum  # the same squares as Captum's
    row = dict(case=name, ours=best_t["grid"], ours_inside=best_t["inside"], squares_ours=grid_maps.prob.numel(),
               computed=grid_maps.computed, computed_inside=inside_maps.computed, method=grid_maps.method,
               batch=grid_maps.batch_size, work_inside=inside_maps.work,
               captum_default=cap.get((LAYOUTS[0], 1)), captum_best=cap[best], best_ppe=best[1],
               best_layout=best[0], squares_captum=n_captum,
               captum_all={f"{lay}, {p}": t for (lay, p), t in cap.items()},
               captum_by_layout={lay: min((t, p) for (la, p), t in cap.items() if la == lay)
                                 for lay in LAYOUTS if any(la == lay for la, _ in cap)})
    # Captum's multiply-adds over cnnlib's, for the same squares: what exact incremental maps can gain at most
    # with kernels no faster than Captum's
    row["work_ratio"] = n_captum / (inside_maps.computed * inside_maps.work) if inside_maps.work else None
    log(f"{name}: cnnlib {row['ours']:.3f} s on its grid ({row['squares_ours']} squares, {row['computed']} "
        f"through the network, {row['method']}, batch {row['batch']}), {row['ours_inside']:.3f} s on Captum's "
        f"{n_captum} squares ({row['computed_inside']} through, {inside_maps.work:.0%} of the multiply-adds); "
        f"Captum best {cap[best]:.3f} s ({best[1]} per pass, model {best[0]}); all: "
        f"{', '.join(f'{k}: {t:.3f} s' for k, t in row['captum_all'].items())}; "
        f"ratio {cap[best] / row['ours_inside']:.2f}x (same squares), {cap[best] / row['ours']:.2f}x (own grid)")
    return row


def deconvnet_case(model, X, repeats, log=print):
    """One deconvnet projection batch (9 images, one conv5 unit each) against Captum's Deconvolution of the
    same units."""
    from captum.attr import Deconvolution

    layer, channel = "conv5", 0
    trunk = nn.Sequential(*list(model.features.children())[: list(dict(model.features.named_children())).index(
        layer) + 1]).eval()  # input -> conv5
    with torch.no_grad():
        a = trunk(X)  # (9, K, h, w)
    flat = a[:, channel].flatten(1).argmax(1)  # strongest position per image
    h, w = a.shape[-2:]
    position = torch.stack([flat // w, flat % w], 1)

    class Unit(nn.Module):
        def __init__(self):
            super().__init__()
            self.trunk = trunk

        def forward(self, x):
            return self.trunk(x).flatten(1)  # (N, K·h·w)

    unit, target = Unit().eval(), (channel * h * w + flat).tolist()
    deconv = Deconvolution(unit)
    ours = best_time(lambda: deconvnet.project(model, X, layer, channel, position=position), repeats)
    theirs = best_time(lambda: deconv.attribute(X.clone().requires_grad_(True), target=target), repeats)
    log(f"deconvnet projection, 9 images, conv5 unit: cnnlib {ours * 1000:.1f} ms, Captum Deconvolution "
        f"{theirs * 1000:.1f} ms, ratio {theirs / ours:.2f}x")
    return dict(ours=ours, captum=theirs)


def measure(repeats: int = 2, quick: bool = False, log=print):
    torch.manual_seed(0)
    dev = cnnlib.device()
    zf = pretrained.load("zfnet-small-fashion", device=dev).eval()
    X, _ = data.load_fashion_mnist("test")
    x = X[:1].to(dev)  # (1, 1, 28, 28)
    rows = [occlusion_case("ZFNet-small, 28 px, 7-px square, stride 1", zf, x, 7, 1, repeats,
                           [1, 16, 64, 256], log, ppes_channels_last=[64])]
    eff = pretrained.efficientnet_lite0(device=dev)
    photo = photos.load_photo("chelsea")
    xe = pretrained.imagenet_preprocess(photo, mean=pretrained.EFFICIENTNET_LITE_MEAN,
                                        std=pretrained.EFFICIENTNET_LITE_STD)
    xe = xe if xe.ndim == 4 else xe[None]
    rows.append(occlusion_case("EfficientNet-Lite0, 224 px, 16-px square, stride 16", eff, xe, 16, 16, repeats,
                               [1, 4, 16], log, ppes_channels_last=[4, 16]))
    if not quick:
        best = rows[-1]["best_ppe"]
        rows.append(occlusion_case("EfficientNet-Lite0, 224 px, 16-px square, stride 8", eff, xe, 16, 8,
                                   repeats, sorted({1, best}), log, ppes_channels_last=[best]))
    deconv = deconvnet_case(zf, X[:9].to(dev), max(repeats, 3), log)
    return dict(occlusion=rows, deconvnet=deconv)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="skip EfficientNet at stride 8")
    a = p.parse_args()
    measure(a.repeats, a.quick)


if __name__ == "__main__":
    main()
