"""Train ZFNet-small on Fashion-MNIST with permuted labels (and, as the control, the true ones); write data/sanity/.

    nice -n 10 python scripts/train_permuted.py --labels permuted   # resumable: a checkpoint after every epoch
    nice -n 10 python scripts/train_permuted.py --labels true

The data-randomization test of Adebayo et al. (2018): a network that has memorised labels permuted at random
has learnt nothing about the classes; a map that looks the same for it as for a network trained on the true labels
does not show what the network learnt. Both networks see the same first ``--num-train`` training images in the
same order, with the same recipe (Adam, no augmentation, no dropout, no weight decay: a network
fits random labels fastest without them, Zhang et al. 2017), until they fit their training set
(``--fit`` training accuracy, measured in eval mode) or ``--max-epochs``. The permutation keeps each class's
number of images. The result, float16 weights and the run's settings, history and time, goes to
``data/sanity/zfnet-small-<labels>-<N>.pt`` with its sha256 in ``data/sanity/MANIFEST.json``
(``cnnlib.sanity.load_shipped`` checks it). Picks a GPU when there is one (``cnnlib.device``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from cnnlib import data, device
from cnnlib.models import ZFNetSmall
from cnnlib.snapshots import DATA_DIR, record_in_manifest, save
from cnnlib.train import evaluate, train_epoch


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--labels", choices=["permuted", "true"], required=True)
    p.add_argument("--num-train", type=int, default=2000, help="the first N training images")
    p.add_argument("--max-epochs", type=int, default=300)
    p.add_argument("--fit", type=float, default=0.99, help="stop at this training accuracy (eval mode)")
    p.add_argument("--lr", type=float, default=3e-4, help="Adam's step size")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", default="_build/sanity")
    p.add_argument("--out", default=str(DATA_DIR / "sanity"))
    args = p.parse_args(argv)

    dev = device()
    X, y = data.load_fashion_mnist("train")
    X, y = X[: args.num_train], y[: args.num_train]
    if args.labels == "permuted":
        y = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(args.seed + 1))]
    name = f"zfnet-small-{args.labels}-{args.num_train // 1000}k"
    kwargs = dict(in_channels=1, num_classes=10, image_size=28, dropout=0.0)
    torch.manual_seed(args.seed)
    model = ZFNetSmall(**kwargs).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    work = Path(args.work) / f"{name}.pt"
    work.parent.mkdir(parents=True, exist_ok=True)
    state = {"epoch": 0, "history": [], "seconds": 0.0}
    if work.exists():  # resume
        ck = torch.load(work, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        gen.set_state(ck["gen"])
        state = ck["state"]
        print(f"resumed {name} after epoch {state['epoch']}", flush=True)
    while state["epoch"] < args.max_epochs and (not state["history"] or state["history"][-1]["fit"] < args.fit):
        t0 = time.perf_counter()
        loss, acc = train_epoch(model, X, y, opt, gen, batch_size=args.batch_size, dev=dev, progress=False)
        model.eval()
        _, fit = evaluate(model, X, y, device=dev)
        state["seconds"] += time.perf_counter() - t0
        state["epoch"] += 1
        state["history"].append({"epoch": state["epoch"], "loss": loss, "train_acc": acc, "fit": fit})
        save({"model": model.state_dict(), "opt": opt.state_dict(), "gen": gen.get_state(), "state": state}, work)
        print(f"{name} epoch {state['epoch']}: loss {loss:.4f}, accuracy during the epoch {acc:.4f}, "
              f"fit (eval mode) {fit:.4f}, {state['seconds']:.0f} s", flush=True)

    X_test, y_test = data.load_fashion_mnist("test")
    model.eval()
    _, test_acc = evaluate(model, X_test, y_test, device=dev)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save({
        "model": "ZFNetSmall", "model_kwargs": kwargs,
        "state_dict": {k: v.detach().half().cpu() for k, v in model.state_dict().items()},
        "settings": vars(args), "history": state["history"], "seconds": state["seconds"],
        "device": str(dev), "test_accuracy": test_acc,
    }, out / f"{name}.pt")
    record_in_manifest(out, f"{name}.pt", fit=state["history"][-1]["fit"], test_accuracy=test_acc,
                       epochs=state["epoch"])
    print(f"wrote {out / (name + '.pt')}: fits {state['history'][-1]['fit']:.4f} of its training labels after "
          f"{state['epoch']} epochs ({state['seconds']:.0f} s on {dev}); test accuracy {test_acc:.4f}", flush=True)


if __name__ == "__main__":
    main()
