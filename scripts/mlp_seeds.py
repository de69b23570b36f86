"""Chapter 2's two MLP runs, repeated with ten seeds; writes data/mlp-seeds/results.json.

    nice -n 10 python scripts/mlp_seeds.py            # 24 short runs; results.json records how long it took

Chapter 2 trains a 784-256-10 MLP once on 4,000 MNIST digits (10 epochs) and once on Fashion-MNIST (5 epochs),
and checks each result against a band. A band is only honest if it holds for other seeds and other machines,
so this script trains the same two recipes with seeds 0-9 (each seed draws other initial weights and another
order of the examples) and, as the faults the bands must catch, with steps ten times too small (seed 0) and with
steps so small (1e-9) that it does not learn. For every run it records the per-epoch training and test accuracy;
for the Fashion-MNIST runs also the weakest class and the three most frequent mistakes. Chapter 2 loads the file
(checked against data/mlp-seeds/MANIFEST.json) and prints the ranges its text quotes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import cnnlib
from cnnlib import data, mlp, train
from cnnlib.snapshots import DATA_DIR, record_in_manifest

RECIPES = {  # the chapter's two runs: dataset, epochs (lr 0.05, batches of 128, momentum: train.fit's defaults)
    "mnist": dict(epochs=10),
    "fashion-mnist": dict(epochs=5),
}


def run(name: str, seed: int, lr: float) -> dict:
    X_train, y_train = data.load_dataset(name, "train")
    X_test, y_test = data.load_dataset(name, "test")
    cnnlib.seed_everything(seed)
    model = mlp.make_mlp([784, 256, 10], activation="relu")
    hist = train.fit(model, X_train, y_train, num_epochs=RECIPES[name]["epochs"], lr=lr, batch_size=128,
                     X_test=X_test, y_test=y_test, device="cpu", seed=seed)
    out = {"seed": seed, "lr": lr, "train_acc": hist.train_acc, "test_acc": hist.test_acc}
    if name == "fashion-mnist":
        classes = data.class_names(name)
        C = train.confusion_matrix(y_test, train.predict_logits(model, X_test).argmax(1), num_classes=10)
        off = C - torch.diag(torch.diag(C))
        out["weakest"] = classes[int(C.diag().argmin())]
        out["top3"] = [[classes[i // 10], classes[i % 10]] for i in off.flatten().topk(3).indices.tolist()]
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--out", default=str(DATA_DIR / "mlp-seeds"))
    args = p.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    start = time.perf_counter()
    results = {}
    for name in RECIPES:
        runs = [run(name, s, 0.05) for s in range(args.seeds)]
        faults = {"lr/10": run(name, 0, 0.005), "lr 1e-9": run(name, 0, 1e-9)}
        results[name] = {"seeds": runs, "faults": faults}
        print(f"{name}: final test accuracy {min(r['test_acc'][-1] for r in runs):.4f}"
              f"-{max(r['test_acc'][-1] for r in runs):.4f}; lr/10 {faults['lr/10']['test_acc'][-1]:.4f}, "
              f"lr 1e-9 {faults['lr 1e-9']['test_acc'][-1]:.4f}", flush=True)
    results["torch"] = torch.__version__
    results["seconds"] = round(time.perf_counter() - start, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    record_in_manifest(out, "results.json")
    print(f"wrote {out / 'results.json'} in {results['seconds']} s")


if __name__ == "__main__":
    main()
