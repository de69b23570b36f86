"""The deconvnet and occlusion rows of ``make bench``, side by side with an older commit's ``cnnlib`` in one run.

    .venv/bin/python bench/bench_vs_old.py [--rev 4e31e56] [--repeats 5] [--all]

The older ``cnnlib`` is taken from git (``git archive REV cnnlib``) into a temporary folder and imported as
``cnnlib_old``; the models and images come from this tree. Each time is the best of ``--repeats``, old and new
alternating; wall time (2 threads) and CPU time are both printed. Outputs are asserted equal first. ``--all``
adds EfficientNet-Lite0 at stride 8. Nothing asserts a time.
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[1]


def best(fns: dict, repeats: int) -> tuple[dict, dict]:
    wall, cpu = {k: [] for k in fns}, {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            f()
            wall[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    return {k: min(v) for k, v in wall.items()}, {k: min(v) for k, v in cpu.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rev", default="4e31e56")  # the code as issue 20 found it
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--all", action="store_true")
    a = p.parse_args()
    tmp = tempfile.mkdtemp()
    archive = subprocess.run(["git", "archive", a.rev, "cnnlib"], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
    os.rename(Path(tmp) / "cnnlib", Path(tmp) / "cnnlib_old")
    sys.path.insert(0, tmp)
    warnings.filterwarnings("ignore")
    import cnnlib_old.deconvnet as old_deconvnet
    import cnnlib_old.occlusion as old_occlusion
    from captum.attr import Deconvolution

    from cnnlib import data, deconvnet, occlusion, photos, pretrained

    print(f"old: {a.rev}; threads {torch.get_num_threads()}; load {os.getloadavg()}")
    zf = pretrained.load("zfnet-small-fashion").eval()
    X, _ = data.load_fashion_mnist("test")
    # the deconvnet row (bench_occlusion.deconvnet_case): 9 images, the strongest conv5 unit of map 0 in each
    layer, channel, X9 = "conv5", 0, X[:9]
    trunk = nn.Sequential(*list(zf.features.children())[: list(dict(zf.features.named_children())).index(layer) + 1])
    with torch.no_grad():
        act = trunk(X9)
    flat, (h, w) = act[:, channel].flatten(1).argmax(1), act.shape[-2:]
    position = torch.stack([flat // w, flat % w], 1)
    unit = nn.Sequential(trunk, nn.Flatten()).eval()
    fns = {"old": lambda: old_deconvnet.project(zf, X9, layer, channel, position=position),
           "new": lambda: deconvnet.project(zf, X9, layer, channel, position=position),
           "captum": lambda: Deconvolution(unit).attribute(X9.clone().requires_grad_(True),
                                                           target=(channel * h * w + flat).tolist())}
    assert torch.allclose(fns["old"](), fns["new"](), atol=1e-6, rtol=1e-4)
    wall, cpu = best(fns, 10 * a.repeats)
    for clock, t in (("wall", wall), ("cpu", cpu)):
        print(f"deconvnet, {clock}: old {t['old'] * 1e3:.2f} ms, new {t['new'] * 1e3:.2f} ms, Captum "
              f"{t['captum'] * 1e3:.2f} ms; Captum/old {t['captum'] / t['old']:.2f}x, Captum/new "
              f"{t['captum'] / t['new']:.2f}x, old/new {t['old'] / t['new']:.2f}x")

    def cases():  # as bench_occlusion.measure: ZFNet-small first, then EfficientNet-Lite0
        yield "ZFNet-small, 7 px, stride 1", zf, X[:1], 7, 1
        eff = pretrained.efficientnet_lite0()
        xe = pretrained.imagenet_preprocess(photos.load_photo("chelsea"), mean=pretrained.EFFICIENTNET_LITE_MEAN,
                                            std=pretrained.EFFICIENTNET_LITE_STD)
        xe = xe if xe.ndim == 4 else xe[None]
        yield "EfficientNet-Lite0, 16 px, stride 16", eff, xe, 16, 16
        if a.all:
            yield "EfficientNet-Lite0, 16 px, stride 8", eff, xe, 16, 8

    for name, model, x, size, stride in cases():
        with torch.no_grad():
            target = int(model(x).argmax())
        for inside in (False, True):
            kw = dict(target=target, size=size, stride=stride, progress=False, inside=inside)
            fns = {k: functools.partial(m.occlusion_maps, model, x, **kw)
                   for k, m in (("old", old_occlusion), ("new", occlusion))}
            assert torch.allclose(fns["old"]().prob, fns["new"]().prob, atol=1e-5)
            wall, cpu = best(fns, a.repeats)
            print(f"occlusion, {name}, {'Captum squares' if inside else 'own grid'}: wall old {wall['old']:.3f} s, "
                  f"new {wall['new']:.3f} s (new/old {wall['new'] / wall['old']:.2f}); cpu old {cpu['old']:.3f} s, "
                  f"new {cpu['new']:.3f} s (new/old {cpu['new'] / cpu['old']:.2f})")


if __name__ == "__main__":
    main()
