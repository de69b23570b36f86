"""Benchmark: occlusion maps (cnnlib, default settings) against Captum's ``Occlusion`` at its best
``perturbations_per_eval``, and the deconvnet projection against Captum's ``Deconvolution``.

    .venv/bin/python bench/bench_occlusion.py [--repeats 2] [--quick]

Cases (issue 12): ZFNet-small (the shipped Fashion-MNIST snapshot) on a 28-px test image with a 7-px square at
stride 1; EfficientNet-Lite0 (ImageNet weights) on a 224-px photo with 16-px squares at strides 16 and 8.
Captum's windows start at the corner and stay inside the image, ours are centred on a grid and cut at the
border, so ours compute as many or more squares (the counts are printed); the time ratio compares whole
calls. Each timing is the best of ``--repeats`` runs, measured alternately in this one run. Nothing asserts.
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
import torch.nn as nn

import cnnlib
from cnnlib import data, deconvnet, occlusion, pretrained


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


def occlusion_case(name, model, x, size, stride, repeats, ppes, log=print):
    """Time cnnlib's default occlusion_maps and Captum at each ``perturbations_per_eval``; a result row."""
    C, H, W = x.shape[1:]
    with torch.no_grad():
        target = int(model(x).argmax())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        maps = occlusion.occlusion_maps(model, x, target=target, size=size, stride=stride, progress=False)  # warm
    ours, captum = [], {p: [] for p in ppes}
    for _ in range(repeats):  # alternate, so that a busy moment hits both
        t0 = time.perf_counter()
        maps = occlusion.occlusion_maps(model, x, target=target, size=size, stride=stride, progress=False)
        ours.append(time.perf_counter() - t0)
        for p in ppes:
            t0 = time.perf_counter()
            captum_occlusion(model, x, target, size, stride, p)
            captum[p].append(time.perf_counter() - t0)
    cap = {p: min(t) for p, t in captum.items()}
    best = min(cap, key=cap.get)
    n_ours = maps.prob.numel()
    n_captum = ((H - size) // stride + 1) * ((W - size) // stride + 1)
    row = dict(case=name, ours=min(ours), squares_ours=n_ours, computed=maps.computed, method=maps.method,
               batch=maps.batch_size,
               captum_default=cap.get(1), captum_best=cap[best], best_ppe=best, squares_captum=n_captum,
               captum_all=cap)
    log(f"{name}: cnnlib {row['ours']:.3f} s ({n_ours} squares, {maps.computed} through the network, "
        f"{maps.method}, batch {maps.batch_size}); "
        f"Captum best {cap[best]:.3f} s at perturbations_per_eval={best} ({n_captum} squares); "
        f"all: {', '.join(f'{p}: {t:.3f} s' for p, t in cap.items())}; ratio {cap[best] / row['ours']:.2f}x")
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
                           [1, 16, 64, 256], log)]
    eff = pretrained.efficientnet_lite0(device=dev)
    photo = data.load_photo("chelsea")
    xe = pretrained.imagenet_preprocess(photo, mean=pretrained.EFFICIENTNET_LITE_MEAN,
                                        std=pretrained.EFFICIENTNET_LITE_STD)
    xe = xe if xe.ndim == 4 else xe[None]
    rows.append(occlusion_case("EfficientNet-Lite0, 224 px, 16-px square, stride 16", eff, xe, 16, 16, repeats,
                               [1, 4, 16], log))
    if not quick:
        best = rows[-1]["best_ppe"]
        ppes = sorted({1, best})
        rows.append(occlusion_case("EfficientNet-Lite0, 224 px, 16-px square, stride 8", eff, xe, 16, 8,
                                   repeats, ppes, log))
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
