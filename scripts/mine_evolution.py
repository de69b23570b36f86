"""Chapter 7's mining of the snapshots, done once: writes data/evolution/mined.pt and its sha256 in
data/evolution/MANIFEST.json.

    nice -n 10 python scripts/mine_evolution.py      # about half a minute on 2 quiet CPU cores

For each of the 8 shipped snapshots of ZFNet-small (``data/zfnet-small-fashion``) and each feature map of conv1 to
conv5, the strongest activation over the first 5,000 Fashion-MNIST training images, its image and its position
(``cnnlib.evolution.strongest_projections``'s mining: ``cnnlib.topk.mine_topk`` with ``k=1``), with the sha256 of
the snapshots and of the images; and the deconvnet projections (``evolution.follow``) of the four maps per layer
that the chapter shows (the strongest of the final network), with their image patches. Chapter 7 loads it
(``evolution.shipped_mining``) and checks it live: epoch 64 mined again over all the images and its projections
computed again, epoch 1 mined again over a part.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from cnnlib import data, evolution, pretrained, snapshots
from cnnlib.snapshots import DATA_DIR, record_in_manifest

NAME, IMAGES, LAYERS, SHOWN = "zfnet-small-fashion", 5000, ["conv1", "conv2", "conv3", "conv4", "conv5"], 4


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(DATA_DIR / "evolution"))
    a = p.parse_args(argv)
    epochs = pretrained.available()[NAME]
    models = {e: pretrained.load(NAME, epoch=e) for e in epochs}
    X = data.load_fashion_mnist("train")[0][:IMAGES]  # (5000, 1, 28, 28)
    t0 = time.perf_counter()
    mined = evolution.strongest_projections(models, X, {layer: [0] for layer in LAYERS})
    # the maps the chapter shows: per layer the SHOWN strongest of the final network, in the order of their numbers
    channels = {layer: sorted(mined[layer].top_value[-1].topk(SHOWN).indices.tolist()) for layer in LAYERS}
    mined = {layer: evolution.follow(models, X, mined[layer], channels[layer]) for layer in LAYERS}
    seconds = time.perf_counter() - t0
    record = {
        "layers": LAYERS, "epochs": epochs,
        "top_value": {layer: mined[layer].top_value for layer in LAYERS},
        "top_image": {layer: mined[layer].top_image for layer in LAYERS},
        "top_position": {layer: mined[layer].top_position for layer in LAYERS},
        "channels": channels,
        "projections": {layer: mined[layer].projections for layer in LAYERS},
        "patches": {layer: mined[layer].patches for layer in LAYERS},
        "images": {"what": f"the first {IMAGES} Fashion-MNIST training images", "count": IMAGES,
                   "sha256": evolution.images_digest(X)},
        "snapshots": snapshots.made_from(NAME),
        "seconds": round(seconds, 1), "torch": str(torch.__version__)}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "mined.pt"
    tmp = path.with_suffix(".tmp")
    torch.save(record, tmp)
    tmp.replace(path)
    record_in_manifest(out, path.name, images=record["images"]["what"], snapshots=record["snapshots"])
    print(f"mined {len(epochs)} snapshots × {IMAGES} images in {seconds:.1f} s; wrote {path}", flush=True)


if __name__ == "__main__":
    main()
