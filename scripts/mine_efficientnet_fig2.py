"""Mine the top-9 activations of EfficientNet-Lite0 at five depths over random crops of the natural-photo pool.

Zeiler & Fergus's Fig. 2 needs, for every feature map, the 9 images of a large set that excite it most. Over
thousands of 224-pixel crops that is too slow for a chapter on a 2-core CPU, so this script does the mining
once and writes only what the chapter needs to redraw the figure — per layer and map the 9 values, crop
numbers and positions — to ``data/topk/efficientnet-lite0-photos.pt`` (about 100 kB) and its sha256 to
``data/topk/MANIFEST.json``, with the pool's fingerprint (``photos.pool_fingerprint``: the files of every
source, their sizes and sha256), which ``topk.load_shipped_topk`` checks. The crops themselves are not stored:
crop ``i`` is ``photos.seeded_crops(photos.photo_pool(), [i], SEED)`` (the pool of :func:`cnnlib.photos.load_pool` plus
scikit-image's text image), so the chapter regenerates exactly the crops it shows.

As in the paper, whose nine images per map are nine different photographs, a map keeps at most one crop per
source photo (``topk.mine_topk(..., groups=)`` with the photo of each crop, ``photos.source_ids`` of
``photos.seeded_sources``: scikit-image's ``cat`` and ``chelsea`` are one photo).

Resumable: the result is saved after every chunk of crops and a new run continues where the last stopped.

    PYTHONPATH=. .venv/bin/python scripts/mine_efficientnet_fig2.py --crops 4000
"""

from __future__ import annotations

import argparse
import time

import torch

from cnnlib import photos, pretrained, snapshots, topk
from cnnlib.topk import TopK

LAYERS = ["_bn0", "_blocks.2", "_blocks.4", "_blocks.9", "_blocks.15"]
SEED = 2014
OUT = topk.TOPK_DIR / "efficientnet-lite0-photos.pt"


def merge(best: dict | None, new: dict[str, TopK], offset: int, k: int, photo_of: torch.Tensor) -> dict:
    """The running top-``k`` per layer and map, at most one crop per photo, after adding ``new`` (mined on crops
    ``offset ...``); ``photo_of[i]``: the source photo of crop ``i``."""
    out = {}
    for layer, t in new.items():
        values, index, position = t.values, t.image_index + offset, t.position  # (K, k), (K, k), (K, k, 2)
        if best is not None:
            values = torch.cat([best[layer]["values"], values], 1)
            index = torch.cat([best[layer]["image_index"], index], 1)
            position = torch.cat([best[layer]["position"], position], 1)
        rows = topk.strongest_per_group(values.T, photo_of[index].T, k).T  # (K, k)
        out[layer] = {"values": values.gather(1, rows), "image_index": index.gather(1, rows),
                      "position": position.gather(1, rows[..., None].expand(-1, -1, 2))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, default=4000, help="number of 224-pixel crops to mine")
    parser.add_argument("--chunk", type=int, default=100, help="crops per saved step")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    state = torch.load(OUT, weights_only=True) if OUT.exists() else {"done": 0, "best": None}
    pool, pool_print = photos.photo_pool(), photos.pool_fingerprint()
    photo_of = photos.source_ids(pool)[photos.seeded_sources(len(pool), range(args.crops), SEED)]  # (crops,)
    if state["done"] and (state.get("seed") != SEED or state.get("layers") != LAYERS or state.get("pool") != len(pool)
                          or state.get("pool_fingerprint", pool_print) != pool_print
                          or state.get("one_per_photo") is not True):
        raise SystemExit(f"{OUT} was mined with other settings (or another photo pool); delete it to start again")
    device = torch.device("cpu")
    model = pretrained.efficientnet_lite0(device)
    mean = torch.tensor(pretrained.EFFICIENTNET_LITE_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(pretrained.EFFICIENTNET_LITE_STD).view(1, 3, 1, 1)
    start = time.perf_counter()
    while state["done"] < args.crops:
        n = min(args.chunk, args.crops - state["done"])
        X = photos.seeded_crops(pool, range(state["done"], state["done"] + n), SEED)  # (n, 3, 224, 224) in [0, 1]
        X = (X - mean) / std  # EfficientNet-Lite0's input scaling
        groups = photo_of[state["done"]: state["done"] + n]  # (n,) the photo of each crop
        tops = topk.mine_topk(model, X, LAYERS, k=min(9, len(groups.unique())), batch_size=50, progress=False,
                              groups=groups)
        state = {"done": state["done"] + n, "best": merge(state["best"], tops, state["done"], 9, photo_of),
                 "seed": SEED, "layers": LAYERS, "size": 224, "pool": len(pool), "torch": str(torch.__version__),
                 "pool_fingerprint": pool_print, "one_per_photo": True}
        OUT.parent.mkdir(parents=True, exist_ok=True)
        tmp = OUT.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(OUT)
        print(f"{state['done']} crops mined ({time.perf_counter() - start:.0f} s)", flush=True)
    manifest = snapshots.record_in_manifest(OUT.parent, OUT.name, crops=state["done"], one_per_photo=True,
                                            pool=pool_print)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e3:.0f} kB) and {manifest}")


if __name__ == "__main__":
    main()
