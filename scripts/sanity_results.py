"""Put every map of the course to Adebayo et al.'s sanity checks on its three networks; write data/sanity/results.json.

    nice -n 10 python scripts/sanity_results.py                       # all three networks, resumable
    nice -n 10 python scripts/sanity_results.py --networks zfnet-small

For each network, 50 images, every method of ``cnnlib.sanity`` for the trained network's top class and for one unit
(the strongest activation of the deep map that is strongest on average over the images), then:

* cascading randomization, top layer down, and (ZFNet-small, photo network) independent randomization of each
  layer: mean ± std over the images of each measure between the trained map and the randomized one, and between
  the randomized map and the image's edges (Sobel);
* the floors: the measures between the maps of two different images (for a unit: the same unit, at the same
  position, in another image), and between the trained map and the image's edges;
* class sensitivity: the map of the top class against the map of another class (drawn at random, seeded);
* data randomization (ZFNet-small): the network trained on permuted labels against the same recipe on the true
  labels (``scripts/train_permuted.py``; run it first), for the true class;
* Chapter 9's images of each class (``actmax.maximize``, its four regularizers), climbed on the trained and on the
  fully randomized ZFNet-small: are they alike?

Each step is cached in ``--work`` (a rerun skips what is there). The chapter's figures keep, for the first
``--keep`` images, the absolute maps (``sanity.to_2d``) of every step, as 8-bit images, in ``data/sanity/maps.npz``.
Both files' sha256 go to ``data/sanity/MANIFEST.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from cnnlib import actmax, data, distill, photos, pretrained, sanity
from cnnlib.snapshots import DATA_DIR, available, made_from, record_in_manifest, save

ZF_LAYERS = ["fc8", "fc7", "fc6", "conv5", "conv4", "conv3", "conv2", "conv1"]
# EfficientNet-Lite0 top down in 4 steps (each step costs minutes on 2 cores): the classifier, the head, blocks
# 15 to 8 (its stages of 320, 192 and 112 channels), then blocks 7 to 0 and the stem.
EFFNET_GROUPS = [("_fc",), ("_conv_head", "_bn1"), tuple(f"_blocks.{i}" for i in range(15, 7, -1)),
                 (*(f"_blocks.{i}" for i in range(7, -1, -1)), "_conv_stem", "_bn0")]


def network(name: str, n: int):
    """(model, images (n, C, H, W) as the model takes them, settings) of one of the course's networks."""
    cpu = torch.device("cpu")
    if name == "zfnet-small":
        X, _ = data.load_fashion_mnist("test")
        gray = data.load_fashion_mnist("train")[0].mean().item()  # Chapter 6's occluder: the average pixel
        return pretrained.load("zfnet-small-fashion", device=cpu), X[:n], dict(
            layers=ZF_LAYERS, unit_layer="conv5", grad_cam_layer="relu5", ig_steps=32, occlusion=(8, 2, gray),
            independent=True, what=f"the first {n} Fashion-MNIST test images")
    if name == "photo":
        return distill.load("zf7s2", cpu), distill.normalize(distill.heldout_crops(n)), dict(
            layers=ZF_LAYERS, unit_layer="conv5", grad_cam_layer="relu5", ig_steps=32, occlusion=(16, 4),
            independent=True, what=f"{n} held-out photo crops (distill.heldout_crops), 64 × 64")
    if name == "efficientnet-lite0":
        model = pretrained.efficientnet_lite0(cpu)
        x = photos.random_crops(photos.load_pool(), n, 224, seed=2018)
        mean, std = (torch.tensor(v).view(3, 1, 1) for v in (model.input_mean, model.input_std))
        return model, (x - mean) / std, dict(
            layers=EFFNET_GROUPS, step_names=["fc", "head", "blocks 15–8", "blocks 7–0, stem"],
            unit_layer="_blocks.15", grad_cam_layer="_bn1", ig_steps=8, occlusion=(32, 32),
            independent=False, what=f"{n} random crops of the offline photo pool (seed 2018), 224 × 224")
    raise ValueError(f"unknown network {name!r}")


def strongest_map(model, x, layer) -> int:
    """The feature map of ``layer`` whose largest activation is highest on average over the images."""
    from cnnlib.hooks import LayerOutputs

    with torch.no_grad(), LayerOutputs(model, [layer], fn="strongest_map") as out:
        model(x)
    return int(out[layer].flatten(2).amax(2).mean(0).argmax())


def all_maps(model, x, t, unit, cfg) -> dict[str, torch.Tensor]:
    kw = dict(grad_cam_layer=cfg["grad_cam_layer"], ig_steps=cfg["ig_steps"], occlusion=cfg["occlusion"])
    out = {f"class/{m}": sanity.attribute(model, x, m, target=t, **kw) for m in sanity.METHODS}
    out.update({f"unit/{m}": sanity.attribute(model, x, m, unit=unit, **kw) for m in sanity.UNIT_METHODS})
    return out


def summary(a, b) -> dict[str, list[float]]:
    return {k: [round(m, 4), round(s, 4)] for k, (m, s) in sanity.summarize(sanity.similarities(a, b)).items()}


def thumbs(maps: torch.Tensor, keep: int, side: int) -> np.ndarray:
    """The absolute maps of the first ``keep`` images, each scaled to [0, 255] by its maximum, at ``side`` px."""
    m = torch.from_numpy(sanity.to_2d(maps[:keep])).float()[:, None]
    if m.shape[-1] != side:
        m = torch.nn.functional.interpolate(m, size=(side, side), mode="area")
    top = m.flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1, 1)
    return (m / top * 255).round().byte()[:, 0].numpy()


def cached(path: Path, compute):
    if path.exists():
        return torch.load(path, weights_only=False)
    t0 = time.perf_counter()
    value = compute()
    save(value, path)
    print(f"  {path.name}: {time.perf_counter() - t0:.0f} s", flush=True)
    return value


def run_network(name: str, args) -> dict:
    torch.set_num_threads(args.threads)
    model, x, cfg = network(name, args.n)
    work = Path(args.work) / name
    work.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        logits = model(x)
    t = logits.argmax(1)
    other = (t + 1 + torch.randint(logits.shape[1] - 1, t.shape, generator=torch.Generator().manual_seed(0))) \
        % logits.shape[1]  # another class than the top one, uniformly
    channel = strongest_map(model, x, cfg["unit_layer"])
    unit = (cfg["unit_layer"], channel, sanity.unit_at(model, x, cfg["unit_layer"], channel))
    edges = sanity.edge_maps(x)
    side = x.shape[-1] if x.shape[-1] <= 64 else 112
    print(f"{name}: {cfg['what']}; unit: map {channel} of {cfg['unit_layer']}", flush=True)

    kw = dict(grad_cam_layer=cfg["grad_cam_layer"], ig_steps=cfg["ig_steps"], occlusion=cfg["occlusion"])
    trained = cached(work / "trained.pt", lambda: all_maps(model, x, t, unit, cfg))
    res = {"what": cfg["what"], "n": args.n, "unit": [cfg["unit_layer"], channel], "ig_steps": cfg["ig_steps"],
           "occlusion": list(cfg["occlusion"]), "grad_cam_layer": cfg["grad_cam_layer"],
           "floor_unrelated": {k: summary(v, v.roll(1, 0)) for k, v in trained.items()},
           "edges_trained": {k: summary(v, edges) for k, v in trained.items()}, "cascade": [], "independent": []}
    # A unit's floor: the same unit (layer, channel, position) mapped in another image.
    moved = cached(work / "unit-other-image.pt", lambda: {
        m: sanity.attribute(model, x.roll(1, 0), m, unit=unit, **kw) for m in sanity.UNIT_METHODS})
    res["floor_unrelated"].update({f"unit/{m}": summary(trained[f"unit/{m}"], v) for m, v in moved.items()})
    figure = {k: [thumbs(v, args.keep, side)] for k, v in trained.items()}
    other_maps = cached(work / "other-class.pt",
                        lambda: {m: sanity.attribute(model, x, m, target=other, **kw) for m in sanity.METHODS})
    res["class_sensitivity"] = {m: summary(trained[f"class/{m}"], v) for m, v in other_maps.items()}

    random_net = None
    kinds = [("cascade", sanity.cascade)] + ([("independent", sanity.independent)] if cfg["independent"] else [])
    for kind, make in kinds:
        for k, (step, m) in enumerate(make(model, cfg["layers"], seed=0)):
            step = cfg["step_names"][k] if "step_names" in cfg else step
            maps = cached(work / f"{kind}-{k:02d}.pt", lambda m=m: all_maps(m, x, t, unit, cfg))
            res[kind].append({"step": step,
                              "vs_trained": {key: summary(trained[key], v) for key, v in maps.items()},
                              "vs_edges": {key: summary(v, edges) for key, v in maps.items()}})
            if kind == "cascade":
                random_net = m  # at the end: every layer re-initialised
                for key, v in maps.items():
                    figure[key].append(thumbs(v, args.keep, side))

    if name == "zfnet-small":  # Chapter 9's images of each class, climbed on the trained and the random network
        reg = actmax.Regularizers(decay=0.02, blur_every=4, blur_width=0.5, norm_pct=30, contrib_pct=30)
        found = cached(work / "actmax.pt", lambda: {k: torch.stack([
            actmax.maximize(net, "fc8", c, (1, 28, 28), reg, steps=200, lr=0.05, bounds=(0, 1)).image
            for c in range(10)]) for k, net in (("trained", model), ("random", random_net))})
        res["actmax"] = {"trained_vs_random": summary(found["trained"], found["random"]),
                         "trained_two_classes": summary(found["trained"], found["trained"].roll(1, 0)),
                         "random_two_classes": summary(found["random"], found["random"].roll(1, 0))}
        for k, v in found.items():
            figure[f"actmax/{k}"] = [thumbs(v, 10, side)]
        y = data.load_fashion_mnist("test")[1][: args.n]
        try:
            nets = {k: sanity.load_shipped(f"zfnet-small-{k}-2k", "cpu") for k in ("true", "permuted")}
        except FileNotFoundError as e:
            print(f"  data randomization skipped: {e}", flush=True)
            return res, {f"{name}|{k}": np.stack(v) for k, v in figure.items()}
        maps = cached(work / "data-randomization.pt", lambda: {
            k: {m: sanity.attribute(net, x, m, target=y, **kw) for m in sanity.METHODS} for k, net in nets.items()})
        res["data_randomization"] = {m: summary(maps["true"][m], maps["permuted"][m]) for m in sanity.METHODS}
        res["data_randomization_floor"] = {m: summary(maps["true"][m], maps["true"][m].roll(1, 0))
                                           for m in sanity.METHODS}
        res["data_randomization_edges"] = {k: {m: summary(v[m], edges) for m in sanity.METHODS}
                                           for k, v in maps.items()}
        for k in ("true", "permuted"):
            for m in sanity.METHODS:
                figure[f"{k}/{m}"] = [thumbs(maps[k][m], args.keep, side)]
    return res, {f"{name}|{k}": np.stack(v) for k, v in figure.items()}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--networks", nargs="+", default=["zfnet-small", "photo", "efficientnet-lite0"])
    p.add_argument("--n", type=int, default=50, help="images per network")
    p.add_argument("--keep", type=int, default=3, help="images whose maps the figures keep")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--work", default="_build/sanity/cache")
    p.add_argument("--out", default=str(DATA_DIR / "sanity"))
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path, maps_path = out / "results.json", out / "maps.npz"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    figures = dict(np.load(maps_path)) if maps_path.exists() else {}
    for name in args.networks:
        t0 = time.perf_counter()
        results[name], fig = run_network(name, args)
        figures = {k: v for k, v in figures.items() if not k.startswith(name + "|")} | fig
        results_path.write_text(json.dumps(results, indent=1) + "\n")
        np.savez_compressed(maps_path, **figures)
        pool = photos.pool_fingerprint()  # the photo networks' images are crops of the pool
        zf = made_from("zfnet-small-fashion", available()["zfnet-small-fashion"][-1:])  # ZFNet-small's snapshot
        record_in_manifest(out, "results.json", pool=pool, snapshots=zf)
        record_in_manifest(out, "maps.npz", pool=pool, snapshots=zf)
        print(f"{name}: done in {time.perf_counter() - t0:.0f} s (steps found in --work are not recomputed)",
              flush=True)


if __name__ == "__main__":
    main()
