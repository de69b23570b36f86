"""Training and evaluating a classifier with mini-batch stochastic gradient descent.

One step on a mini-batch ``B`` of examples with parameters ``θ``, learning rate ``η`` and momentum ``μ``:

    L(θ) = (1/|B|) Σ_{n∈B} −log softmax(f_θ(xₙ))_{yₙ},    v ← μ v + ∇L(θ),    θ ← θ − η v.

:func:`fit` runs whole epochs of such steps in a seeded order (the same numbers on every run on one machine)
and records the loss and accuracy of every epoch; :func:`evaluate` measures a model without changing it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm  # text bars on stderr: live in Jupyter, dropped from the rendered book

from .devices import device as default_device


@dataclass
class History:
    """Per-epoch loss and accuracy (accuracy as a fraction in [0, 1])."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)


def _check_data(X: torch.Tensor, y: torch.Tensor, name: str) -> None:
    if not isinstance(X, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"{name}: expected tensors X and y, got {type(X).__name__} and {type(y).__name__}")
    if y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise ValueError(
            f"{name}: expected X (N, ...) and y (N,) with the same N, got {tuple(X.shape)} and {tuple(y.shape)}")


@torch.no_grad()
def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 1000, device=None):
    """Mean cross-entropy and accuracy of ``model`` on ``(X, y)``, in eval mode, without gradients.

    Returns:
        ``(loss, accuracy)`` as Python floats.
    """
    _check_data(X, y, "evaluate")
    dev = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    for i in range(0, len(X), batch_size):
        xb, yb = X[i: i + batch_size].to(dev), y[i: i + batch_size].to(dev)
        logits = model(xb)
        total_loss += float(F.cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(1) == yb).sum())
    model.train(was_training)
    return total_loss / len(X), correct / len(X)


@torch.no_grad()
def predict(model: nn.Module, X: torch.Tensor, batch_size: int = 1000, device=None) -> torch.Tensor:
    """Class scores (logits) ``(N, K)`` of ``model`` for ``X``, on the CPU."""
    dev = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = torch.cat([model(X[i: i + batch_size].to(dev)).cpu() for i in range(0, len(X), batch_size)])
    model.train(was_training)
    return out


def _world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process: ``(0, 1)`` unless ``torch.distributed`` is initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def augment_params(batch_size: int, image_size: int, gen: torch.Generator, shift: int = 2):
    """Random horizontal flips and shifts of up to ``shift`` pixels for one (global) mini-batch."""
    flip = torch.rand(batch_size, generator=gen) < 0.5
    offsets = torch.randint(0, 2 * shift + 1, (2, batch_size), generator=gen)
    return flip, offsets


def apply_augment(x: torch.Tensor, flip: torch.Tensor, offsets: torch.Tensor, shift: int = 2) -> torch.Tensor:
    """Flip the images where ``flip`` is true, then shift them by ``offsets - shift`` pixels (zeros fill in).

    x: ``(B, C, H, W)``; flip: bool ``(B,)``; offsets: ``(2, B)`` in ``0..2·shift`` (rows, columns).
    """
    B, C, H, W = x.shape
    x = torch.where(flip.view(B, 1, 1, 1).to(x.device), x.flip(3), x)
    padded = F.pad(x, (shift, shift, shift, shift))  # (B, C, H + 2s, W + 2s)
    rows = (offsets[0].view(B, 1) + torch.arange(H)).to(x.device)  # (B, H)
    cols = (offsets[1].view(B, 1) + torch.arange(W)).to(x.device)  # (B, W)
    batch = torch.arange(B, device=x.device).view(B, 1, 1)
    return padded[batch, :, rows.view(B, H, 1), cols.view(B, 1, W)].permute(0, 3, 1, 2)  # (B, C, H, W)


def train_epoch(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    opt: torch.optim.Optimizer,
    gen: torch.Generator,
    *,
    batch_size: int,
    dev: torch.device,
    augment: bool = False,
    progress: bool = True,
    desc: str = "",
) -> tuple[float, float]:
    """One pass over ``(X, y)`` in an order drawn from ``gen``; returns the mean training loss and accuracy.

    Under ``torch.distributed`` (e.g. ``torchrun --nproc_per_node=2``) every process draws the same order and
    the same augmentation, takes every ``world``-th example of each global mini-batch, and scales its summed
    loss by ``world / B``: after DistributedDataParallel averages the gradients over the processes, each step
    is the gradient of the mean loss over the whole global batch ``B``, exactly as in one process.
    """
    rank, world = _world()
    model.train()
    order = torch.randperm(len(X), generator=gen)
    total_loss = torch.zeros((), device=dev)
    correct = torch.zeros((), device=dev, dtype=torch.long)
    seen = 0
    for i in tqdm(range(0, len(X), batch_size), desc=desc, leave=False, disable=not progress or rank != 0):
        idx = order[i: i + batch_size]
        if augment:
            flip, offsets = augment_params(len(idx), X.shape[-1], gen)
            flip, offsets = flip[rank::world], offsets[:, rank::world]
        B, idx = len(idx), idx[rank::world]
        xb, yb = X[idx].to(dev, non_blocking=True), y[idx].to(dev, non_blocking=True)
        if augment:
            xb = apply_augment(xb, flip, offsets)
        logits = model(xb)
        loss_sum = F.cross_entropy(logits, yb, reduction="sum")
        opt.zero_grad(set_to_none=True)
        (loss_sum * (world / B)).backward()
        opt.step()
        total_loss += loss_sum.detach()
        correct += (logits.argmax(1) == yb).sum()
        seen += len(idx)
    return float(total_loss) / seen, int(correct) / seen


def fit(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    num_epochs: int = 5,
    lr: float = 0.05,
    batch_size: int = 128,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    augment: bool = False,
    seed: int = 0,
    X_test: torch.Tensor | None = None,
    y_test: torch.Tensor | None = None,
    device=None,
    progress: bool = True,
) -> History:
    """Train ``model`` on ``(X, y)`` with mini-batch SGD and cross-entropy; returns the per-epoch :class:`History`.

    Args:
        model: a classifier mapping ``(B, ...)`` to logits ``(B, K)``; moved to ``device``.
        X, y: training inputs ``(N, ...)`` and int64 labels ``(N,)``.
        num_epochs, lr, batch_size, momentum, weight_decay: the optimisation (see the module docstring).
        augment: random flips and 2-pixel shifts of image batches ``(N, C, H, W)``.
        seed: seeds the order of the examples (and the augmentation) in every epoch.
        X_test, y_test: if given, evaluated after every epoch.
        device: default :func:`cnnlib.device`.
        progress: show a progress bar over the mini-batches of each epoch.
    """
    _check_data(X, y, "fit")
    if X_test is not None:
        _check_data(X_test, y_test, "fit (test set)")
    if num_epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(
            f"fit: expected num_epochs >= 1, batch_size >= 1, lr > 0; got {num_epochs}, {batch_size}, {lr}")
    if augment and X.ndim != 4:
        raise ValueError(f"fit: augment=True needs images (N, C, H, W), got {tuple(X.shape)}")
    dev = device or default_device()
    model.to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    history = History()
    for epoch in range(1, num_epochs + 1):
        loss, acc = train_epoch(model, X, y, opt, gen, batch_size=batch_size, dev=dev, augment=augment,
                                progress=progress, desc=f"epoch {epoch}/{num_epochs}")
        history.train_loss.append(loss)
        history.train_acc.append(acc)
        if X_test is not None:
            test_loss, test_acc = evaluate(model, X_test, y_test)
            history.test_loss.append(test_loss)
            history.test_acc.append(test_acc)
    model.eval()
    return history


def confusion_matrix(y_true: torch.Tensor, y_pred: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Count how often each true class is predicted as each class.

    ``C[i, j] = #{n : y_true[n] = i and y_pred[n] = j}``: row ``i`` holds the examples of class ``i``, the
    diagonal the correct predictions, so ``C.trace() / C.sum()`` is the accuracy and row ``i`` sums to the
    number of examples of class ``i``.

    Args:
        y_true, y_pred: int labels ``(N,)`` in ``0 .. num_classes - 1``.
        num_classes: ``K``.

    Returns:
        int64 ``(K, K)`` on the CPU.
    """
    y_true, y_pred = torch.as_tensor(y_true).cpu().long(), torch.as_tensor(y_pred).cpu().long()
    if y_true.ndim != 1 or y_true.shape != y_pred.shape:
        raise ValueError("confusion_matrix: expected y_true and y_pred of one shape (N,), "
                         f"got {tuple(y_true.shape)} and {tuple(y_pred.shape)}")
    for name, labels in (("y_true", y_true), ("y_pred", y_pred)):
        if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
            raise ValueError(f"confusion_matrix: {name} must lie in 0..{num_classes - 1}, got values in "
                             f"{int(labels.min())}..{int(labels.max())}")
    counts = torch.bincount(y_true * num_classes + y_pred, minlength=num_classes**2)  # (K·K,)
    return counts.reshape(num_classes, num_classes)


# ---------------------------------------------------------------------------------------------------------
# The shipped snapshot series: ZFNet-small trained on Fashion-MNIST, weights saved at chosen epochs.
# ---------------------------------------------------------------------------------------------------------

SEED_EPOCHS = (1, 2, 5, 10, 20, 30, 40, 64)  # Zeiler & Fergus, Fig. 4


@dataclass(frozen=True)
class SnapshotConfig:
    """Everything that defines a snapshot run; saved inside every snapshot so a run can be reproduced."""

    name: str = "zfnet-small-fashion"
    dataset: str = "fashion-mnist"
    num_epochs: int = 64
    batch_size: int = 128
    lr: float = 0.02  # cosine-annealed to 0 over num_epochs
    momentum: float = 0.9
    weight_decay: float = 5e-4
    dropout: float = 0.5
    augment: bool = True
    seed: int = 0
    snapshot_epochs: tuple[int, ...] = SEED_EPOCHS

    def __post_init__(self):
        bad = [e for e in self.snapshot_epochs if not 1 <= e <= self.num_epochs]
        if bad:
            raise ValueError(f"snapshot_epochs: expected epochs in 1..{self.num_epochs}, got {bad}")


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def snapshot_path(out_dir: str | os.PathLike, name: str, epoch: int) -> Path:
    """Where the snapshot of ``name`` at ``epoch`` lives: ``out_dir/name/epoch-064.pt``."""
    return Path(out_dir) / name / f"epoch-{epoch:03d}.pt"


def train_snapshots(
    cfg: SnapshotConfig,
    out_dir: str | os.PathLike = "data",
    work_dir: str | os.PathLike = "_build/train",
    device=None,
    progress: bool = True,
    stop_after: int | None = None,
) -> History:
    """Train ZFNet-small as ``cfg`` says, saving snapshots at ``cfg.snapshot_epochs``; resumable.

    After every epoch a checkpoint (model, optimiser, schedule, random states, history) is written to
    ``work_dir/<name>/checkpoint.pt``; a new call with the same ``cfg`` continues from it, and gives the same
    weights as an uninterrupted run. Snapshots (float16 weights + config + test accuracy) go to
    ``out_dir/<name>/epoch-NNN.pt``, the per-epoch history to ``out_dir/<name>/history.json``, and their
    sha256 sums to ``out_dir/MANIFEST.json`` (checked by :mod:`cnnlib.pretrained`).

    Runs under ``torchrun --nproc_per_node=K`` too (DistributedDataParallel, gloo on CPU, nccl on GPU):
    every process trains on 1/K of each global mini-batch; process 0 writes the files.

    Args:
        stop_after: stop after this many epochs in this call (to split a long run; resume later).
    """
    from torch.nn.parallel import DistributedDataParallel

    from . import pretrained
    from .data import class_names, load_dataset
    from .models import ZFNetSmall

    rank, world = _world()
    dev = device or (torch.device("cuda", rank % torch.cuda.device_count()) if torch.cuda.is_available() and world > 1
                     else default_device())
    X, y = load_dataset(cfg.dataset, "train")
    X_test, y_test = load_dataset(cfg.dataset, "test")
    torch.manual_seed(cfg.seed)
    model_kwargs = dict(in_channels=X.shape[1], image_size=X.shape[-1], num_classes=len(class_names(cfg.dataset)),
                        dropout=cfg.dropout)
    model = ZFNetSmall(**model_kwargs).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.num_epochs)
    gen = torch.Generator().manual_seed(cfg.seed)
    history, start = History(), 0

    ckpt_path = Path(work_dir) / cfg.name / "checkpoint.pt"
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if ckpt["config"] != asdict(cfg) or ckpt["world"] != world:
            raise ValueError(f"{ckpt_path} was written by another configuration; delete it to start afresh")
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["schedule"])
        gen.set_state(ckpt["generator"])
        torch.set_rng_state(ckpt["torch_rng"])
        history, start = History(**ckpt["history"]), ckpt["epoch"]
        if rank == 0:
            print(f"resuming {cfg.name} after epoch {start}")
    net = DistributedDataParallel(model) if world > 1 else model
    epochs_run = 0
    for epoch in range(start + 1, cfg.num_epochs + 1):
        if stop_after is not None and epochs_run >= stop_after:
            break
        t0 = time.perf_counter()
        loss, acc = train_epoch(net, X, y, opt, gen, batch_size=cfg.batch_size, dev=dev, augment=cfg.augment,
                                progress=progress, desc=f"{cfg.name} epoch {epoch}/{cfg.num_epochs}")
        sched.step()
        test_loss, test_acc = evaluate(model, X_test, y_test)
        for k, v in zip(("train_loss", "train_acc", "test_loss", "test_acc"), (loss, acc, test_loss, test_acc)):
            getattr(history, k).append(v)
        epochs_run += 1
        if rank == 0:
            print(f"epoch {epoch:3d}: train loss {loss:.4f} acc {acc:.4f} | test loss {test_loss:.4f} "
                  f"acc {test_acc:.4f} | {time.perf_counter() - t0:.1f} s", flush=True)
            if epoch in cfg.snapshot_epochs:
                path = snapshot_path(out_dir, cfg.name, epoch)
                path.parent.mkdir(parents=True, exist_ok=True)
                _atomic_save({
                    "name": cfg.name, "epoch": epoch, "config": asdict(cfg), "model": "ZFNetSmall",
                    "model_kwargs": model_kwargs, "test_acc": test_acc, "test_loss": test_loss,
                    "state_dict": {k: v.detach().cpu().half() for k, v in model.state_dict().items()},
                }, path)
                (path.parent / "history.json").write_text(json.dumps(asdict(history), indent=1))
                pretrained.write_manifest(out_dir)
            ckpt_path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_save({
                "config": asdict(cfg), "world": world, "epoch": epoch, "model": model.state_dict(),
                "optimizer": opt.state_dict(), "schedule": sched.state_dict(), "generator": gen.get_state(),
                "torch_rng": torch.get_rng_state(), "history": asdict(history),
            }, ckpt_path)
    model.eval()
    return history


def main(argv: list[str] | None = None) -> None:
    """``python -m cnnlib.train`` (or ``torchrun --nproc_per_node=2 -m cnnlib.train``): train a snapshot series."""
    import argparse

    d = SnapshotConfig()
    p = argparse.ArgumentParser(prog="python -m cnnlib.train", description=main.__doc__)
    p.add_argument("--name", default=d.name)
    p.add_argument("--dataset", default=d.dataset)
    p.add_argument("--epochs", type=int, default=d.num_epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--dropout", type=float, default=d.dropout)
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--snapshots", default=",".join(map(str, d.snapshot_epochs)), help="comma-separated epochs")
    p.add_argument("--out", default="data", help="where snapshots go (default: data)")
    p.add_argument("--work", default="_build/train", help="where the resumable checkpoint goes")
    p.add_argument("--stop-after", type=int, default=None, help="stop after this many epochs (resume later)")
    p.add_argument("--device", default=None, choices=("cuda", "mps", "cpu"))
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    cfg = SnapshotConfig(name=a.name, dataset=a.dataset, num_epochs=a.epochs, batch_size=a.batch_size, lr=a.lr,
                         weight_decay=a.weight_decay, dropout=a.dropout, augment=not a.no_augment, seed=a.seed,
                         snapshot_epochs=tuple(int(e) for e in a.snapshots.split(",") if e))
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        dev = torch.device(a.device) if a.device else None
        t0 = time.perf_counter()
        train_snapshots(cfg, a.out, a.work, device=dev, progress=not a.no_progress, stop_after=a.stop_after)
        if _world()[0] == 0:
            print(f"done in {time.perf_counter() - t0:.0f} s")
    finally:
        if distributed:
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
