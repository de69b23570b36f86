"""Mine the top-9 activations of VGG16 (HED weights) at its five side-output ReLUs over chapter 5b's photos.

Chapter 5b takes the strongest map of stages 3, 4 and 5 of ``pretrained.vgg16_hed_trunk()`` down to the pixels
with three conventions for tied switches. Finding those maps and their images means one pass of VGG16 over
the 318 images (the 313 Tux Paint stamps and five scikit-image photos at 112 × 112): about 15 s on 2 CPU cores,
with nothing to watch. This script mines once and writes, per layer and map, the 9 values, image numbers and
positions (in the format of ``scripts/mine_efficientnet_fig2.py``) to ``data/topk/vgg16-hed-photos.pt``, and its
sha256 to ``data/topk/MANIFEST.json`` with the fingerprint of the photos it was mined over
(``photos.pool_fingerprint`` of the Tux Paint stamps and scikit-image), which ``topk.load_shipped_topk``
checks. The chapter re-mines its three maps over a subset of the images and compares.

    PYTHONPATH=. .venv/bin/python scripts/mine_vgg_hed.py
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from cnnlib import photos, pretrained, snapshots, topk

SIZE = 112
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field")
SOURCES = ("tuxpaint-stamps-default", "scikit-image")
OUT = Path(__file__).resolve().parents[1] / "data" / "topk" / "vgg16-hed-photos.pt"


def images() -> torch.Tensor:
    """The chapter's 318 images in HED's input convention ``(318, 3, 112, 112)`` (as chapter 5b builds them)."""
    X_stamps, _, _ = photos.load_stamps(size=SIZE)  # (313, 3, 112, 112) RGB in [0, 1]
    X_skimage = torch.cat([
        pretrained.imagenet_preprocess(photos.load_photo(name), size=SIZE, resize=SIZE, mean=(0, 0, 0), std=(1, 1, 1))
        for name in SKIMAGE_PHOTOS])
    return pretrained.hed_preprocess(torch.cat([X_stamps, X_skimage]))


def main() -> None:
    vgg = pretrained.vgg16_hed_trunk(torch.device("cpu"))
    layers = [str(i) for i in pretrained.HED_SIDE_LAYERS]
    X = images()
    start = time.perf_counter()
    tops = topk.mine_topk(vgg, X, layers, k=9, batch_size=32, progress=False)
    seconds = time.perf_counter() - start
    state = {"best": {layer: {"values": t.values, "image_index": t.image_index, "position": t.position}
                      for layer, t in tops.items()},
             "layers": layers, "size": SIZE, "images": len(X), "skimage_photos": list(SKIMAGE_PHOTOS),
             "seconds": round(seconds, 1), "torch": str(torch.__version__)}
    tmp = OUT.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(OUT)
    manifest = snapshots.record_in_manifest(OUT.parent, OUT.name, images=len(X), pool=photos.pool_fingerprint(SOURCES))
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e3:.0f} kB; mined in {seconds:.1f} s) and {manifest}")


if __name__ == "__main__":
    main()
