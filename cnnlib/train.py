"""Training and evaluating a classifier with mini-batch stochastic gradient descent.

One step on a mini-batch ``B`` of examples with parameters ``θ``, learning rate ``η`` and momentum ``μ``:

    L(θ) = (1/|B|) Σ_{n∈B} −log softmax(f_θ(xₙ))_{yₙ},    v ← μ v + ∇L(θ),    θ ← θ − η v.

:func:`fit` runs whole epochs of such steps in a seeded order (the same numbers on every run on one machine)
and records the loss and accuracy of every epoch; :func:`evaluate` measures a model without changing it.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm  # text bars on stderr: live in Jupyter, dropped from the rendered book

from . import checks, snapshots
from .data import DATASETS, class_names, load_dataset
from .devices import device as default_device
from .models import Dropout, ZFNetSmall
from .progress import hidden


@dataclass
class History:
    """Per-epoch loss and accuracy (accuracy as a fraction in [0, 1])."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)


def _check_data(fn: str, X, y, name: str = "") -> None:
    """``X`` a finite float tensor ``(N, ...)`` with ``N >= 1``, ``y`` int64 labels ``(N,)`` that are >= 0."""
    what = f" ({name})" if name else ""
    if not isinstance(X, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"{fn}: expected tensors X and y{what}, got {type(X).__name__} and {type(y).__name__}")
    if X.ndim < 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise ValueError(f"{fn}: expected X (N, ...) and y (N,) with the same N{what}, got {tuple(X.shape)} and "
                         f"{tuple(y.shape)}")
    if len(y) == 0:
        raise ValueError(f"{fn}: expected at least one example{what}, got an empty batch {tuple(X.shape)}")
    checks.floating(fn, X, "X")
    checks.finite(fn, X, "X")
    if y.dtype != torch.int64:
        raise TypeError(f"{fn}: expected int64 class labels y{what}, got dtype {y.dtype} (convert with y.long())")
    if int(y.min()) < 0:
        raise ValueError(f"{fn}: expected class labels >= 0{what}, got {int(y.min())}")


def _check_logits(fn: str, logits: torch.Tensor, y: torch.Tensor) -> None:
    """The model's output is ``(B, K)`` logits and every label is below ``K``."""
    if logits.ndim != 2:
        raise ValueError(f"{fn}: expected the model to return logits (B, K), got {tuple(logits.shape)}")
    if int(y.max()) >= logits.shape[1]:
        raise ValueError(f"{fn}: the model has {logits.shape[1]} classes, got label {int(y.max())}")


def _model_device(fn: str, model: nn.Module, device) -> torch.device:
    """The device of ``model``; a ``device`` argument that names another one is an error (the model is not moved)."""
    dev = checks.model_device(fn, model)
    if device is not None and torch.device(device).type != dev.type:
        raise ValueError(f"{fn}: the model is on {dev}, device= asks for {torch.device(device)}; "
                         "move the model with model.to(device)")
    return dev


@torch.no_grad()
def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 1000, device=None):
    """Mean cross-entropy and accuracy of ``model`` on ``(X, y)``, in eval mode, without gradients.

    Args:
        model: a classifier ``(B, ...) → logits (B, K)``, evaluated on the device of its parameters (``X`` and
            ``y`` are moved there batch by batch); its training mode is restored afterwards.
        X, y: inputs ``(N, ...)`` (float, like the model) and int64 labels ``(N,)`` in ``0 .. K − 1``.

    Returns:
        ``(loss, accuracy)`` as Python floats.
    """
    _check_data("evaluate", X, y)
    batch_size = checks.positive_int("evaluate", batch_size, "batch_size")
    dev = _model_device("evaluate", model, device)
    was_training = model.training
    model.eval()
    try:
        total_loss, correct = 0.0, 0
        for i in range(0, len(X), batch_size):
            xb, yb = checks.to_model("evaluate", model, X[i: i + batch_size], "X"), y[i: i + batch_size].to(dev)
            logits = model(xb)
            _check_logits("evaluate", logits, yb)
            total_loss += float(F.cross_entropy(logits, yb, reduction="sum"))
            correct += int((logits.argmax(1) == yb).sum())
    finally:
        model.train(was_training)
    return total_loss / len(X), correct / len(X)


@torch.no_grad()
def predict_logits(model: nn.Module, X: torch.Tensor, batch_size: int = 1000, device=None) -> torch.Tensor:
    """Class scores (logits) ``(N, K)`` of ``model`` for ``X`` ``(N, ...)``, in eval mode, on the CPU.

    The predicted labels are ``predict_logits(model, X).argmax(1)``; the probabilities ``.softmax(1)``.
    """
    checks.tensor("predict_logits", X, "X")
    if X.ndim < 2 or len(X) == 0:
        raise ValueError(f"predict_logits: expected a non-empty batch X (N, ...), got {tuple(X.shape)}")
    checks.floating("predict_logits", X, "X")
    checks.finite("predict_logits", X, "X")
    batch_size = checks.positive_int("predict_logits", batch_size, "batch_size")
    _model_device("predict_logits", model, device)
    was_training = model.training
    model.eval()
    try:
        out = torch.cat([model(checks.to_model("predict_logits", model, X[i: i + batch_size], "X")).cpu()
                         for i in range(0, len(X), batch_size)])
    finally:
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


def _global_masks(B: int, rank: int, world: int):
    """A mask sampler for :class:`cnnlib.models.Dropout`: the keep-mask of the whole global mini-batch of ``B``
    examples, drawn from the global CPU generator (seeded alike in every process, so every process draws the same
    one), of which this process takes its rows ``rank::world``. In one process this is exactly the mask
    ``F.dropout`` draws on the CPU; in ``world`` processes each example gets the mask it would get in one, and no
    two processes share masks."""

    def sample(shape: torch.Size, p: float) -> torch.Tensor:
        keep = torch.empty((B, *shape[1:])).bernoulli_(1 - p)[rank::world]  # (B / world, ...)
        if keep.shape != shape:
            raise RuntimeError(f"train_epoch: dropout input {tuple(shape)} is not this process's share of the "
                               f"global batch of {B}")
        return keep

    return sample


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

    Under ``torch.distributed`` (e.g. ``torchrun --nproc_per_node=2``) every process draws the same order, the
    same augmentation and the same dropout masks for the whole global mini-batch (see
    :class:`cnnlib.models.Dropout`), takes every ``world``-th example of each global mini-batch with its mask, and
    scales its summed loss by ``world / B``: after DistributedDataParallel averages the gradients over the
    processes, each step is the gradient of the mean loss over the whole global batch ``B``, exactly as in one
    process. A plain ``nn.Dropout`` would draw the same masks in every process; it is refused there.
    """
    rank, world = _world()
    plain = [n for n, m in model.named_modules() if isinstance(m, nn.modules.dropout._DropoutNd)
             and not isinstance(m, Dropout) and m.p > 0]
    if world > 1 and plain:
        raise ValueError(f"train_epoch: {plain[0]!r} is a torch dropout layer, which draws the same masks in every "
                         "process; use cnnlib.models.Dropout")
    drops = [m for m in model.modules() if isinstance(m, Dropout)]
    model.train()
    order = torch.randperm(len(X), generator=gen)
    total_loss = torch.zeros((), device=dev)
    correct = torch.zeros((), device=dev, dtype=torch.long)
    seen = 0
    try:
        for i in tqdm(range(0, len(X), batch_size), desc=desc, leave=False, disable=hidden(progress) or rank != 0):
            idx = order[i: i + batch_size]
            if augment:
                flip, offsets = augment_params(len(idx), X.shape[-1], gen)
                flip, offsets = flip[rank::world], offsets[:, rank::world]
            B, idx = len(idx), idx[rank::world]
            for m in drops:
                m.sampler = _global_masks(B, rank, world)
            xb, yb = X[idx].to(dev, non_blocking=True), y[idx].to(dev, non_blocking=True)
            if augment:
                xb = apply_augment(xb, flip, offsets)
            logits = model(xb)
            if i == 0:
                _check_logits("train_epoch", logits, y)
            loss_sum = F.cross_entropy(logits, yb, reduction="sum")
            opt.zero_grad(set_to_none=True)
            (loss_sum * (world / B)).backward()
            opt.step()
            total_loss += loss_sum.detach()
            correct += (logits.argmax(1) == yb).sum()
            seen += len(idx)
    finally:
        for m in drops:
            m.sampler = None
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
    _check_data("fit", X, y)
    if (X_test is None) != (y_test is None):
        raise ValueError("fit: expected both X_test and y_test, or neither")
    if X_test is not None:
        _check_data("fit", X_test, y_test, "test set")
    num_epochs = checks.positive_int("fit", num_epochs, "num_epochs")
    batch_size = checks.positive_int("fit", batch_size, "batch_size")
    lr = checks.number("fit", lr, "lr", 0, low_open=True)
    momentum = checks.number("fit", momentum, "momentum", 0, 1)
    weight_decay = checks.number("fit", weight_decay, "weight_decay", 0)
    seed = checks.positive_int("fit", seed, "seed", 0)
    if augment and X.ndim != 4:
        raise ValueError(f"fit: augment=True needs images (N, C, H, W), got {tuple(X.shape)}")
    checks.model_device("fit", model)
    dev = torch.device(device) if device is not None else default_device()
    model.to(dev)
    was = model.training
    model.eval()
    try:  # one example through the model: the dtype of its parameters, its number of classes
        with torch.no_grad():
            logits = model(checks.to_model("fit", model, X[:1], "X"))
        for labels in (y, y_test) if y_test is not None else (y,):
            _check_logits("fit", logits, labels)
    finally:
        model.train(was)
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
    num_classes = checks.positive_int("confusion_matrix", num_classes, "num_classes")
    for name, labels in (("y_true", y_true), ("y_pred", y_pred)):
        checks.tensor("confusion_matrix", labels, name)
        if labels.is_floating_point() or labels.dtype == torch.bool:
            raise TypeError(f"confusion_matrix: expected integer labels {name}, got dtype {labels.dtype} "
                            "(predicted labels are logits.argmax(1))")
    y_true, y_pred = y_true.detach().cpu().long(), y_pred.detach().cpu().long()
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
        checks.one_of("SnapshotConfig", self.dataset, DATASETS, "dataset")
        checks.positive_int("SnapshotConfig", self.num_epochs, "num_epochs")
        checks.positive_int("SnapshotConfig", self.batch_size, "batch_size")
        checks.positive_int("SnapshotConfig", self.seed, "seed", 0)
        checks.number("SnapshotConfig", self.lr, "lr", 0, low_open=True)
        checks.number("SnapshotConfig", self.momentum, "momentum", 0, 1)
        checks.number("SnapshotConfig", self.weight_decay, "weight_decay", 0)
        checks.number("SnapshotConfig", self.dropout, "dropout", 0, 1)
        if not isinstance(self.name, str) or not self.name or "/" in self.name:
            raise ValueError(f"SnapshotConfig: expected name to be a folder name, got {self.name!r}")
        bad = [e for e in self.snapshot_epochs if not 1 <= e <= self.num_epochs]
        if bad:
            raise ValueError(f"SnapshotConfig: expected snapshot_epochs in 1..{self.num_epochs}, got {bad}")


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
    sha256 sums to ``out_dir/MANIFEST.json`` (checked by :mod:`cnnlib.snapshots`).

    Runs under ``torchrun --nproc_per_node=K`` too (DistributedDataParallel, gloo on CPU, nccl on GPU):
    every process trains on 1/K of each global mini-batch, on the GPU ``LOCAL_RANK`` names, with the dropout
    masks its examples would get in one process (:class:`cnnlib.models.Dropout`); process 0 writes the files.
    The checkpoint keeps the CPU and (where there is one) CUDA random states; the dropout masks and the data
    order come from the CPU ones, so a resumed run repeats the uninterrupted one.

    Args:
        stop_after: stop after this many epochs in this call (to split a long run; resume later).
    """
    if not isinstance(cfg, SnapshotConfig):
        raise TypeError(f"train_snapshots: expected cfg to be a SnapshotConfig, got {type(cfg).__name__}")
    if stop_after is not None:
        stop_after = checks.positive_int("train_snapshots", stop_after, "stop_after")

    rank, world = _world()
    dev = torch.device(device) if device is not None else default_device()
    if dev.type == "cuda" and dev.index is None and world > 1:  # one GPU per process: the one torchrun assigns it
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank % torch.cuda.device_count())))
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
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
        try:
            ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        except Exception as e:  # an interrupted copy, another file under that name
            raise ValueError(f"train_snapshots: {ckpt_path} is corrupted ({str(e)[:200]}); delete it to start "
                             "afresh") from None
        if not isinstance(ckpt, dict) or ckpt.get("config") != asdict(cfg) or ckpt.get("world") != world:
            raise ValueError(f"train_snapshots: {ckpt_path} was written by another configuration; delete it to "
                             "start afresh")
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["schedule"])
        gen.set_state(ckpt["generator"])
        torch.set_rng_state(ckpt["torch_rng"])
        if ckpt.get("cuda_rng") is not None and torch.cuda.is_available() \
                and len(ckpt["cuda_rng"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
        history, start = History(**ckpt["history"]), ckpt["epoch"]
        if rank == 0:
            print(f"resuming {cfg.name} after epoch {start}")
    if world > 1:
        net = DistributedDataParallel(model, device_ids=[dev] if dev.type == "cuda" else None)
    else:
        net = model
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
                path = snapshots.snapshot_path(out_dir, cfg.name, epoch)
                path.parent.mkdir(parents=True, exist_ok=True)
                snapshots.save({
                    "name": cfg.name, "epoch": epoch, "config": asdict(cfg), "model": "ZFNetSmall",
                    "model_kwargs": model_kwargs, "test_acc": test_acc, "test_loss": test_loss,
                    "state_dict": {k: v.detach().cpu().half() for k, v in model.state_dict().items()},
                }, path)
                (path.parent / "history.json").write_text(json.dumps(asdict(history), indent=1))
                snapshots.write_manifest(out_dir)
            ckpt_path.parent.mkdir(parents=True, exist_ok=True)
            snapshots.save({
                "config": asdict(cfg), "world": world, "epoch": epoch, "model": model.state_dict(),
                "optimizer": opt.state_dict(), "schedule": sched.state_dict(), "generator": gen.get_state(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "history": asdict(history),
            }, ckpt_path)
    model.eval()
    return history


def _main(argv: list[str] | None = None) -> None:
    """``python -m cnnlib.train`` (or ``torchrun --nproc_per_node=2 -m cnnlib.train``): train a snapshot series."""
    d = SnapshotConfig()
    p = argparse.ArgumentParser(prog="python -m cnnlib.train", description=_main.__doc__)
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
        gpu = torch.cuda.is_available() and a.device in (None, "cuda")
        if gpu:  # before the process group, so that NCCL binds this process to its own GPU
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if gpu else "gloo")
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
    _main()
