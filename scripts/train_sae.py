"""Pre-train the RBM stack of chapter 5c on Fashion-MNIST, unroll and fine-tune it; write data/sae/.

    nice -n 10 python scripts/train_sae.py            # resumable: a finished layer is kept in --work

Layer by layer (Hinton, Osindero & Teh 2006): each RBM is trained by CD-k (``cnnlib.rbm.fit_rbm``) on the hidden
probabilities of the one below and saved to ``--work``; a rerun skips the layers already there. Then the stack is
unrolled (``cnnlib.rbm.StackedAutoencoder``) and fine-tuned with Adam on the mean squared reconstruction error
(``cnnlib.autoencoder.fit_autoencoder``; Hinton & Salakhutdinov 2006 used conjugate gradients). The result,
float16 weights and the run's settings, errors and times, goes to ``data/sae/<name>.pt`` with its sha256 in
``data/sae/MANIFEST.json`` (``cnnlib.rbm.load_shipped`` checks it).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from cnnlib import data, rbm
from cnnlib.autoencoder import fit_autoencoder
from cnnlib.snapshots import DATA_DIR, record_in_manifest


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[784, 256, 64])
    p.add_argument("--num-train", type=int, default=20000, help="the first N training images")
    p.add_argument("--rbm-epochs", type=int, default=5)
    p.add_argument("--rbm-lr", type=float, default=0.05)
    p.add_argument("--k", type=int, default=1)
    p.add_argument("--finetune-epochs", type=int, default=10)
    p.add_argument("--finetune-lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work", default="_build/sae")
    p.add_argument("--out", default=str(DATA_DIR / "sae"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    name = "fashion-" + "-".join(map(str, args.sizes))
    work = Path(args.work) / name
    work.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in vars(args).items() if k not in ("work", "out", "threads")}

    X, _ = data.load_fashion_mnist("train")
    X = X[: args.num_train].flatten(1)  # (N, 784)
    X_test, _ = data.load_fashion_mnist("test")
    X_test = X_test[:1000].flatten(1)

    rbms, log, inputs = [], {"rbm_errors": [], "rbm_seconds": []}, X
    for i, (n_visible, n_hidden) in enumerate(zip(args.sizes[:-1], args.sizes[1:])):
        ckpt = work / f"layer-{i}.pt"
        if ckpt.exists() and torch.load(ckpt, weights_only=False)["settings"] == settings:
            saved = torch.load(ckpt, weights_only=False)
            layer = rbm.RBM(n_visible, n_hidden)
            layer.load_state_dict(saved["state"])
            errors, seconds = saved["errors"], saved["seconds"]
            print(f"layer {i}: {n_visible}-{n_hidden} loaded from {ckpt}", flush=True)
        else:
            layer = rbm.RBM(n_visible, n_hidden, seed=args.seed + i)
            start = time.perf_counter()
            errors = rbm.fit_rbm(layer, inputs, num_epochs=args.rbm_epochs, lr=args.rbm_lr, k=args.k,
                                 batch_size=args.batch_size, seed=args.seed + i, progress=False)
            seconds = time.perf_counter() - start
            torch.save({"state": layer.state_dict(), "errors": errors, "seconds": seconds, "settings": settings}, ckpt)
            print(f"layer {i}: {n_visible}-{n_hidden} trained in {seconds:.0f} s, errors {errors}", flush=True)
        log["rbm_errors"].append(errors)
        log["rbm_seconds"].append(seconds)
        with torch.no_grad():
            inputs = layer.hidden_probs(inputs)
        rbms.append(layer)

    sae = rbm.StackedAutoencoder(rbms)
    with torch.no_grad():
        log["test_mse_before"] = float(F.mse_loss(sae(X_test), X_test))
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    log["finetune_losses"] = fit_autoencoder(sae, X, num_epochs=args.finetune_epochs, lr=args.finetune_lr,
                                             batch_size=args.batch_size, seed=args.seed,
                                             device=torch.device("cpu"), progress=False)
    log["finetune_seconds"] = time.perf_counter() - start
    with torch.no_grad():
        log["test_mse_after"] = float(F.mse_loss(sae(X_test), X_test))
    print(f"fine-tuned in {log['finetune_seconds']:.0f} s: test MSE (1,000 images) {log['test_mse_before']:.4f} -> "
          f"{log['test_mse_after']:.4f}", flush=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.pt"
    rbm.save_stack(path, rbms, sae, info={"settings": settings, **log,
                                          "torch": str(torch.__version__), "threads": args.threads})
    manifest_path = record_in_manifest(out, path.name)
    print(f"wrote {path} ({path.stat().st_size} bytes) and {manifest_path}", flush=True)


if __name__ == "__main__":
    main()
