"""Chapter 8's features and cross-validated tables, computed once: writes data/transfer/features.pt and
data/transfer/selected.json, with their sha256 and the Tux Paint stamps' fingerprint in data/transfer/MANIFEST.json.

    nice -n 10 python scripts/transfer_features.py      # about 1.5 min on 2 CPU cores

What it computes is what Chapter 8 showed being computed before it shipped these files, with the chapter's
settings (the constants below; the chapter refuses a record made with others):

* **features.pt**: the photos of ``cnnlib.photos.load_stamps(size=224, min_per_class=11)`` (244 photos of 9 classes),
  normalised for EfficientNet-Lite0, and ``cnnlib.transfer.extract_features`` of them, float32 ``(N, K)`` per layer:
  EfficientNet-Lite0 with its ImageNet weights at the 8 layers of ``DEPTHS``, and the same architecture with random
  weights (``torch.manual_seed(0)`` then ``EfficientNet.from_name``) at ``_blocks.15``; with the labels ``y``.
* **selected.json**: ``cnnlib.transfer.selected_accuracy`` (the layer and λ chosen by 3-fold cross-validation on each
  split's training images, 5 splits, 2, 5 and 10 training images per class, at most 20 test images per class) for
  three rows: the pretrained features at ``CANDIDATES``, the untrained ones, and ZFNet-small's (Fashion-MNIST)
  ``pool5``/``fc7`` features of the photos in gray at 28 × 28 px; per row the table, the choices and every split's
  score.

The chapter loads both (``transfer.shipped_features``, ``transfer.shipped_selected``) and checks them live on a part
it can afford: the features of 8 photos recomputed, and split 0 of each row refitted.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import cnnlib
from cnnlib import photos, pretrained, transfer
from cnnlib.photos import pool_fingerprint
from cnnlib.snapshots import DATA_DIR, available, made_from, record_in_manifest

SIZE, MIN_PER_CLASS = 224, 11
DEPTHS = ["_blocks.0", "_blocks.2", "_blocks.4", "_blocks.7", "_blocks.10", "_blocks.14", "_blocks.15",
          "_avg_pooling"]
CANDIDATES = ["_blocks.10", "_blocks.14", "_blocks.15"]
UNTRAINED_LAYERS, UNTRAINED_SEED = ["_blocks.15"], 0
FASHION_LAYERS = ["pool5", "fc7"]
N_PER_CLASS, WEIGHT_DECAYS, FOLDS, SPLITS, MAX_TEST = [2, 5, 10], [1e-2, 1e-1, 1.0], 3, 5, 20


def untrained_efficientnet(device) -> torch.nn.Module:
    """EfficientNet-Lite0 with PyTorch's random initialisation, seeded as in the chapter, in eval mode."""
    from efficientnet_lite_pytorch import EfficientNet

    torch.manual_seed(UNTRAINED_SEED)
    return EfficientNet.from_name("efficientnet-lite0").to(device).eval()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(DATA_DIR / "transfer"))
    a = p.parse_args(argv)
    cnnlib.seed_everything(0)
    dev = cnnlib.device()
    X, y, classes = photos.load_stamps(size=SIZE, min_per_class=MIN_PER_CLASS)
    mean = torch.tensor(pretrained.EFFICIENTNET_LITE_MEAN, device=dev).view(1, 3, 1, 1)
    std = torch.tensor(pretrained.EFFICIENTNET_LITE_STD, device=dev).view(1, 3, 1, 1)
    t0 = time.perf_counter()
    features = {
        "pretrained": transfer.extract_features(pretrained.efficientnet_lite0(dev), X, DEPTHS,
                                                transform=lambda x: (x - mean) / std),
        "untrained": transfer.extract_features(untrained_efficientnet(dev), X, UNTRAINED_LAYERS,
                                               transform=lambda x: (x - mean) / std)}
    X_gray = F.interpolate(X, size=28, mode="bilinear", antialias=True).mean(1, keepdim=True)  # (N, 1, 28, 28)
    fashion = transfer.extract_features(pretrained.load("zfnet-small-fashion"), X_gray, FASHION_LAYERS)
    seconds_features = time.perf_counter() - t0
    print(f"features of {len(X)} photos in {seconds_features:.1f} s", flush=True)
    config = {"size": SIZE, "min_per_class": MIN_PER_CLASS, "depths": DEPTHS, "candidates": CANDIDATES,
              "untrained_layers": UNTRAINED_LAYERS, "untrained_seed": UNTRAINED_SEED,
              "fashion_layers": FASHION_LAYERS, "n_per_class": N_PER_CLASS, "weight_decays": WEIGHT_DECAYS,
              "folds": FOLDS, "splits": SPLITS, "max_test": MAX_TEST}
    rows, seconds = {}, {}
    for row, f in (("pretrained", {k: features["pretrained"][k] for k in CANDIDATES}),
                   ("untrained", features["untrained"]), ("fashion", fashion)):
        t = time.perf_counter()
        s = transfer.selected_accuracy(f, y, N_PER_CLASS, WEIGHT_DECAYS, folds=FOLDS, splits=SPLITS,
                                       max_test_per_class=MAX_TEST)
        seconds[row] = round(time.perf_counter() - t, 1)
        rows[row] = {"table": {str(n): list(v) for n, v in s.table.items()},
                     "choices": {str(n): [list(c) for c in v] for n, v in s.choices.items()},
                     "accuracies": {str(n): v for n, v in s.accuracies.items()}}
        print(f"{row}: {s.table} in {seconds[row]} s", flush=True)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stamps = pool_fingerprint(("tuxpaint-stamps-default",))  # the photos both files were computed from
    about = {"device": str(dev), "torch": str(torch.__version__)}
    path = out / "features.pt"
    tmp = path.with_suffix(".tmp")
    torch.save({"features": features, "y": y, "classes": classes, "config": config,
                "seconds": round(seconds_features, 1), **about}, tmp)
    tmp.replace(path)
    record_in_manifest(out, path.name, pool=stamps)
    path = out / "selected.json"
    path.write_text(json.dumps({"rows": rows, "classes": classes, "config": config, "seconds": seconds, **about},
                               indent=1) + "\n")
    last = available()["zfnet-small-fashion"][-1:]  # the "fashion" row: the snapshot pretrained.load gives
    record_in_manifest(out, path.name, pool=stamps, snapshots=made_from("zfnet-small-fashion", last))
    print(f"wrote {out / 'features.pt'} and {path}", flush=True)


if __name__ == "__main__":
    main()
