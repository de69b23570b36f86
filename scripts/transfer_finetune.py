"""Chapter 8's fine-tuned and from-scratch rows: EfficientNet-Lite0 trained on the splits of the chapter's
photo-classification table; writes data/transfer/finetune.json and its sha256 in data/transfer/MANIFEST.json.

    nice -n 10 python scripts/transfer_finetune.py      # what `make transfer` runs; resumable

The protocol is the chapter's (Zeiler & Fergus's Caltech protocol): the Tux Paint photos of the 9 classes with at
least 11 images, ``n`` training images per class (2, 5, 10), at most 20 test images per class, the 5 random splits
``cnnlib.data.split_per_class(y, n, seed=s, n_test=20)``, ``s = 0 … 4``, scored by the mean per-class accuracy.
Two rows, with one architecture, one training procedure (``cnnlib.transfer.fine_tune``: 20 epochs of SGD with
momentum, cosine decay, flips and shifts) and the same splits; the starting weights differ, and with them the
learning rate and what BatchNorm does:

* **fine-tuned**: EfficientNet-Lite0 with its ImageNet weights and a new 9-way last layer, every layer trained
  at learning rate 0.001, BatchNorm keeping ImageNet's statistics (``freeze_batchnorm``);
* **from scratch**: the same network with random weights (PyTorch's initialisation, seeded), trained alike at
  learning rate 0.01, BatchNorm learning its statistics (random weights have none worth keeping).

A third row, for comparison at the same image size: the pretrained network kept frozen, a softmax trained on its
features (the chapter's first row, computed at ``--size`` px instead of 224).

The two learning rates were fixed before any test image was scored, on training data: fine-tuning at 0.01 with
frozen statistics diverged (training accuracy at chance on the first split), and the tenfold smaller rate is the
usual one for fine-tuning.

The images are taken to ``--size`` pixels (128: four times fewer pixels than 224 keeps the 30 trainings within
about half an hour on 2 CPU cores). Nothing is chosen on test images: the recipe is fixed before the run.
Each finished training is saved to ``--work`` at once, so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import cnnlib
from cnnlib import data, photos, pretrained, transfer
from cnnlib.snapshots import DATA_DIR, record_in_manifest

#: The frozen-features row: the chapter's candidate layers, the softmax and its penalty chosen by cross-validation
#: on each split's training images (``transfer.selected_accuracy``), as in the chapter but at ``--size`` px.
FROZEN_LAYERS = ["_blocks.10", "_blocks.14", "_blocks.15"]
ROWS = {"fine-tuned": "EfficientNet-Lite0, ImageNet weights, every layer fine-tuned",
        "scratch": "EfficientNet-Lite0, random weights, trained from scratch"}


def stamp_photos(size: int):
    """The chapter's images (classes with at least 11 photos), at ``size`` px, scaled for EfficientNet-Lite0."""
    X, y, names = photos.load_stamps(size=224, min_per_class=11)
    X = F.interpolate(X, size=size, mode="bilinear", antialias=True, align_corners=False)
    mean = torch.tensor(pretrained.EFFICIENTNET_LITE_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(pretrained.EFFICIENTNET_LITE_STD).view(1, 3, 1, 1)
    return (X - mean) / std, y, names


def network(row: str, classes: int, seed: int) -> torch.nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    torch.manual_seed(seed)
    model = pretrained.efficientnet_lite0(device="cpu") if row == "fine-tuned" else \
        EfficientNet.from_name("efficientnet-lite0")
    model._fc = torch.nn.Linear(model._fc.in_features, classes)  # the new last layer, seeded
    return model


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--n-per-class", type=int, nargs="+", default=[2, 5, 10])
    p.add_argument("--splits", type=int, default=5)
    p.add_argument("--max-test", type=int, default=20)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=0.001, help="fine-tuned row")
    p.add_argument("--scratch-lr", type=float, default=0.01, help="from-scratch row")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--freeze-batchnorm", type=int, default=1, help="1: the fine-tuned row keeps ImageNet's "
                   "BatchNorm statistics (from scratch, they are learned)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--work", default="_build/transfer")
    p.add_argument("--out", default=str(DATA_DIR / "transfer"))
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = cnnlib.device()
    config = {k: v for k, v in vars(a).items() if k not in ("threads", "work", "out")}
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    partial = work / "runs.json"
    state = json.loads(partial.read_text()) if partial.exists() else {"config": config, "runs": {}}
    if state["config"] != config:
        raise SystemExit(f"{partial} was written with other settings ({state['config']}); delete it or use them")
    X, y, classes = stamp_photos(a.size)
    print(f"{len(X)} photos, {len(classes)} classes, {a.size} px, device {dev}, {torch.get_num_threads()} threads",
          flush=True)
    for n in a.n_per_class:
        for s in range(a.splits):
            train_idx, test_idx = data.split_per_class(y, n, seed=s, n_test=a.max_test)
            for row in ROWS:
                key = f"{row}/{n}/{s}"
                if key in state["runs"]:
                    continue
                t0 = time.perf_counter()
                model = network(row, len(classes), seed=s)
                lr = a.lr if row == "fine-tuned" else a.scratch_lr
                transfer.fine_tune(model, X[train_idx], y[train_idx], epochs=a.epochs, lr=lr,
                                   batch_size=a.batch_size, seed=s, device=dev,
                                   freeze_batchnorm=row == "fine-tuned" and a.freeze_batchnorm)
                with torch.no_grad():
                    pred = torch.cat([model(X[test_idx[i:i + 64]].to(dev)).argmax(1).cpu()
                                      for i in range(0, len(test_idx), 64)])
                acc = transfer.mean_class_accuracy(y[test_idx], pred)
                state["runs"][key] = {"accuracy": acc, "seconds": round(time.perf_counter() - t0, 1),
                                      "train": len(train_idx), "test": len(test_idx)}
                partial.write_text(json.dumps(state, indent=1) + "\n")
                print(f"{key}: mean per-class accuracy {100 * acc:.1f} % in {time.perf_counter() - t0:.0f} s",
                      flush=True)
    if "frozen" not in state:  # the chapter's pretrained-features row, at this size: the like-for-like control
        t0 = time.perf_counter()
        features = transfer.extract_features(pretrained.efficientnet_lite0(dev), X, FROZEN_LAYERS)
        frozen = transfer.selected_accuracy(features, y, a.n_per_class, (1e-2, 1e-1, 1.0), folds=3,
                                            splits=a.splits, max_test_per_class=a.max_test)
        state["frozen"] = {"table": {str(n): list(v) for n, v in frozen.table.items()},
                           "choices": {str(n): [list(c) for c in v] for n, v in frozen.choices.items()},
                           "layers": FROZEN_LAYERS, "seconds": round(time.perf_counter() - t0, 1)}
        partial.write_text(json.dumps(state, indent=1) + "\n")
        print(f"frozen features at {a.size} px: {frozen.table}", flush=True)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"rows": ROWS, "classes": classes, "config": config, "device": str(dev),
              "runs": state["runs"], "frozen": state["frozen"]}
    path = out / "finetune.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    # the stamps it was made from (shipped_finetune_table checks them)
    record_in_manifest(out, path.name, pool=photos.pool_fingerprint(("tuxpaint-stamps-default",)))
    print(f"wrote {path}", flush=True)


if __name__ == "__main__":
    main()
