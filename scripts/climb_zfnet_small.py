"""Climb chapter 9's activation maximizations on ZFNet-small once, and ship them to data/actmax/.

Chapter 9 shows, for each of the ten Fashion-MNIST classes, the input that maximizes the class score under
four settings of Yosinski et al.'s regularizers (40 climbs of 200 steps), and for the six ``conv5`` maps with
the strongest top-1 activation over the test set the input their centre unit wants (6 more climbs) beside the
test images that excite them most. On 2 CPU cores that is about 35 s of watching a loop, so this script runs
it once and writes ``data/actmax/zfnet-small-climbs.pt`` (about 150 kB): the settings, every image and its
activation at every step, and the ``conv5`` top-9 over the 10,000 test images. Its sha256, with the sha256 of
the ZFNet-small snapshot it climbed, goes into ``data/actmax/MANIFEST.json``;
``cnnlib.actmax.load_shipped_climbs`` refuses a file that does not match, or another snapshot. The chapter
re-runs two of the climbs and re-mines the six maps over a subset of the test set, and checks them against
this file.

    PYTHONPATH=. .venv/bin/python scripts/climb_zfnet_small.py
"""

from __future__ import annotations

import dataclasses
import time

import torch

from cnnlib import actmax, data, pretrained, snapshots, topk

#: The four settings of chapter 9, Section 2 (the chapter checks that its own cell matches these).
SETTINGS = {
    "no regularizer": actmax.Regularizers(),
    "decay": actmax.Regularizers(decay=0.02),
    "decay + blur": actmax.Regularizers(decay=0.02, blur_every=4, blur_width=0.5),
    "all four": actmax.Regularizers(decay=0.02, blur_every=4, blur_width=0.5, norm_pct=30, contrib_pct=30),
}
STEPS, LR, BOUNDS = 200, 0.05, (0.0, 1.0)
CONV5_MAPS = 6  # the maps with the strongest top-1 activation over the test set
OUT = actmax.RENDER_DIR / actmax.ZFNET_CLIMBS


def main() -> None:
    model = pretrained.load("zfnet-small-fashion", device=torch.device("cpu"))
    X_test, _ = data.load_fashion_mnist("test")  # (10000, 1, 28, 28)
    n_classes = len(data.FASHION_MNIST_CLASSES)
    start = time.perf_counter()
    images, curves = {}, {}
    for name, reg in SETTINGS.items():
        found = [actmax.maximize(model, "fc8", c, (1, 28, 28), reg, steps=STEPS, lr=LR, bounds=BOUNDS)
                 for c in range(n_classes)]
        images[name] = torch.stack([r.image for r in found])  # (10, 1, 28, 28)
        curves[name] = torch.tensor([r.activations for r in found])  # (10, STEPS)
        print(f"{name}: {time.perf_counter() - start:.1f} s", flush=True)
    tops = topk.mine_topk(model, X_test, ["conv5"], k=9, progress=False)["conv5"]
    maps = tops.values[:, 0].topk(CONV5_MAPS).indices.tolist()
    wanted = [actmax.maximize(model, "conv5", c, (1, 28, 28), SETTINGS["all four"], steps=STEPS, lr=LR,
                              bounds=BOUNDS) for c in maps]
    seconds = time.perf_counter() - start
    state = {
        "settings": {name: dataclasses.asdict(reg) for name, reg in SETTINGS.items()},
        "steps": STEPS, "lr": LR, "bounds": BOUNDS, "classes": list(data.FASHION_MNIST_CLASSES),
        "images": images, "activations": curves,
        "conv5": {"values": tops.values, "image_index": tops.image_index, "position": tops.position,
                  "maps": maps, "images": torch.stack([r.image for r in wanted]),
                  "activations": torch.tensor([r.activations for r in wanted]), "setting": "all four"},
        "seconds": round(seconds, 1), "torch": str(torch.__version__),
    }
    tmp = OUT.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(OUT)
    last = snapshots.available()["zfnet-small-fashion"][-1:]  # the snapshot pretrained.load gives by default
    manifest = snapshots.record_in_manifest(OUT.parent, OUT.name, seconds=state["seconds"],
                                            snapshots=snapshots.made_from("zfnet-small-fashion", last))
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e3:.0f} kB, {seconds:.1f} s of climbing and mining) and {manifest}")


if __name__ == "__main__":
    main()
