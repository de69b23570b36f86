"""Benchmark: mining the top-9 of ZFNet-small's five conv layers over the training set, against the fair floor:
one forward pass over the same images that stops at the deepest mined layer (conv5; the fully connected layers
are not needed for mining), as a ratio measured in this run (goal: <= 1.1).

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


def trunk_to(model, layer: str) -> torch.nn.Sequential:
    """ZFNet-small's feature stack from the input up to and including ``layer``."""
    names = list(dict(model.features.named_children()))
    return torch.nn.Sequential(*list(model.features.children())[: names.index(layer) + 1]).eval()


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
    measure(a.images, a.batch_size, a.repeats)


def measure(images: int = 60000, batch_size: int = 512, repeats: int = 2, log=print) -> dict:
    """Time mining and its floor (alternately, best of ``repeats``) and the projections; print and return."""
    a = argparse.Namespace(images=images, batch_size=batch_size, repeats=repeats)
    dev = cnnlib.device()
    model = pretrained.load("zfnet-small-fashion", device=dev)
    X, _ = data.load_fashion_mnist("train")
    X = X[: a.images]
    floor = trunk_to(model, LAYERS[-1])
    plain_forward(floor, X[:1024], a.batch_size, dev)  # warm-up
    t_fwd, t_mine = [], []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        plain_forward(floor, X, a.batch_size, dev)
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
    log(f"device {dev}, {torch.get_num_threads()} threads, {len(X)} images, batch {a.batch_size}")
    log(f"forward pass input -> conv5 (the floor): {fwd:6.2f} s")
    log(f"top-9 mining, 5 layers: {mine:6.2f} s   ratio {mine / fwd:.3f} (goal <= 1.1)")
    for ties, t in proj.items():
        log(f"one projection batch (9 images, conv5 -> pixels, ties={ties!r}): {t * 1000:.1f} ms")
    return dict(floor=fwd, mine=mine, images=len(X), projection=proj)


if __name__ == "__main__":
    main()
