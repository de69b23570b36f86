"""Benchmark: mining the top-9 of ZFNet-small's five conv layers over the training set, against one plain
forward pass over the same images, as a ratio measured in this run (goal: <= 1.1).

    .venv/bin/python bench/bench_topk.py [--images 60000] [--batch-size 512]

Also prints the time of one deconvnet projection batch (9 images, one feature map of conv5), with
PyTorch's switches and with tied maxima spread (``ties``).
"""

from __future__ import annotations

import argparse
import time

import torch

import cnnlib
from cnnlib import data, deconvnet, pretrained, topk

LAYERS = ["conv1", "conv2", "conv3", "conv4", "conv5"]


@torch.no_grad()
def plain_forward(model, X, batch_size, dev):
    for i in range(0, len(X), batch_size):
        model(X[i: i + batch_size].to(dev))


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--images", type=int, default=60000)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--repeats", type=int, default=2)
    a = p.parse_args()
    dev = cnnlib.device()
    model = pretrained.load("zfnet-small-fashion", device=dev)
    X, _ = data.load_fashion_mnist("train")
    X = X[: a.images]
    plain_forward(model, X[:1024], a.batch_size, dev)  # warm-up
    t_fwd, t_mine = [], []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        plain_forward(model, X, a.batch_size, dev)
        t_fwd.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        tops = topk.mine_topk(model, X, LAYERS, k=9, batch_size=a.batch_size, progress=False)
        t_mine.append(time.perf_counter() - t0)
    fwd, mine = min(t_fwd), min(t_mine)
    top = tops["conv5"]
    imgs = X[top.image_index[0]].to(dev)
    proj = {}
    for ties in deconvnet.TIES:
        deconvnet.project(model, imgs, "conv5", 0, position=top.position[0].to(dev), ties=ties)
        t0 = time.perf_counter()
        for _ in range(5):
            deconvnet.project(model, imgs, "conv5", 0, position=top.position[0].to(dev), ties=ties)
        proj[ties] = (time.perf_counter() - t0) / 5
    print(f"device {dev}, {torch.get_num_threads()} threads, {len(X)} images, batch {a.batch_size}")
    print(f"plain forward pass : {fwd:6.2f} s")
    print(f"top-9 mining, 5 layers: {mine:6.2f} s   ratio {mine / fwd:.3f} (goal <= 1.1)")
    for ties, t in proj.items():
        print(f"one projection batch (9 images, conv5 -> pixels, ties={ties!r}): {t * 1000:.1f} ms")


if __name__ == "__main__":
    main()
