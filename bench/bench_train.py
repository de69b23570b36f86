"""Benchmark: the course trainer against a bare PyTorch loop, and training GFLOP/s against the machine's sgemm.

    .venv/bin/python bench/bench_train.py [--steps 100] [--repeats 3]

Both loops train ZFNet-small (fresh, same seed) on the same Fashion-MNIST images at batch 128 with SGD; they
alternate, and the best time of each is compared as a ratio measured in this one run (goal: trainer / bare
≤ 1.05). The FLOPs of one training step are counted with ``torch.utils.flop_counter``; the machine's reference
is a 2048³ float32 matrix multiply timed in the same run. Nothing here is a test: it prints, it does not assert.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import cnnlib
from cnnlib import data, train
from cnnlib.models import ZFNetSmall


def bare_loop(model, opt, X, y, batch_size, gen, dev):
    order = torch.randperm(len(X), generator=gen)
    for i in range(0, len(X), batch_size):
        idx = order[i: i + batch_size]
        xb, yb = X[idx].to(dev), y[idx].to(dev)
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=128)
    a = p.parse_args()
    measure(a.steps, a.repeats, a.batch_size)


def measure(steps: int = 100, repeats: int = 3, batch_size: int = 128, log=print) -> dict:
    """Time both loops and the matrix multiply; print and return the figures."""
    a = argparse.Namespace(steps=steps, repeats=repeats, batch_size=batch_size)
    dev = cnnlib.device()
    X, y = data.load_fashion_mnist("train")
    n = a.steps * a.batch_size
    X, y = X[:n], y[:n]

    def fresh():
        torch.manual_seed(0)
        m = ZFNetSmall().to(dev)
        return m, torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)

    # FLOPs of one training step (forward + backward), counted once
    m, _ = fresh()
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(m(X[: a.batch_size].to(dev)), y[: a.batch_size].to(dev)).backward()
    step_flops = counter.get_total_flops()

    times = {"bare": [], "trainer": []}
    for _ in range(a.repeats):
        for kind in ("bare", "trainer"):
            m, opt = fresh()
            gen = torch.Generator().manual_seed(0)
            sync(dev)
            t0 = time.perf_counter()
            if kind == "bare":
                bare_loop(m, opt, X, y, a.batch_size, gen, dev)
            else:
                train.train_epoch(m, X, y, opt, gen, batch_size=a.batch_size, dev=dev, progress=False)
            sync(dev)
            times[kind].append(time.perf_counter() - t0)

    A = torch.randn(2048, 2048, device=dev)
    B = torch.randn(2048, 2048, device=dev)
    A @ B
    sync(dev)
    t0 = time.perf_counter()
    for _ in range(5):
        A @ B
    sync(dev)
    gemm = 5 * 2 * 2048**3 / (time.perf_counter() - t0) / 1e9

    bare, trainer = min(times["bare"]), min(times["trainer"])
    print = log  # noqa: A001 — the report collects the lines
    print(f"device {dev}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{a.steps} steps of batch {a.batch_size}")
    print(f"bare loop : {bare:7.2f} s  {n / bare:8.0f} img/s  {a.steps * step_flops / bare / 1e9:6.1f} GFLOP/s")
    gflops = a.steps * step_flops / trainer / 1e9
    print(f"trainer   : {trainer:7.2f} s  {n / trainer:8.0f} img/s  {gflops:6.1f} GFLOP/s")
    print(f"trainer / bare time ratio: {trainer / bare:.3f}  (goal <= 1.05)")
    print(f"one step: {step_flops / 1e9:.2f} GFLOP; sgemm 2048^3: {gemm:.0f} GFLOP/s; "
          f"trainer reaches {a.steps * step_flops / trainer / 1e9 / gemm:.0%} of it")
    return dict(bare=bare, trainer=trainer, gflops=gflops, gemm=gemm, step_gflop=step_flops / 1e9,
                steps=a.steps, batch_size=a.batch_size, device=str(dev))


if __name__ == "__main__":
    main()
