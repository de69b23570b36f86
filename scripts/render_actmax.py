"""Render the feature visualizations of chapter 9 on EfficientNet-Lite0 into data/actmax/ (resumable).

    nice -n 10 python scripts/render_actmax.py > render_actmax.log 2>&1 &

Every image is a PNG named ``<what>-<setting>-<target>.png``; an image already there is skipped, so an
interrupted run continues where it stopped. A second worker (``--reverse``) may run beside the first: each
claims the image it works on. After each image, ``results.json`` (the settings,
the recognisability of each image and the seconds it took) and ``MANIFEST.json`` (sha256 of every file) are
rewritten; ``cnnlib.actmax.load_render`` checks the sha256 on load.

Recognisability (see chapter 9): ``transformed`` = EfficientNet-Lite0's mean probability of the class over 32
random shifts (±16 px), zooms (0.9-1.1) and turns (±10°); ``second_view`` = its probability for the image
seen at another scale and crop (upsampled to 256 px, centre 224 px: the ImageNet evaluation transform).
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import functools
import json
import os
import time
from pathlib import Path

import torch
from PIL import Image

from cnnlib import actmax, pretrained

CLASSES = ("goldfinch", "king penguin", "zebra", "flamingo", "monarch", "daisy", "lemon", "strawberry",
           "jellyfish", "volcano")
#: The classes on which every ablation setting is rendered (all settings × 10 classes would not fit the
#: rendering budget of 2 shared CPU cores); "all on" and the baseline are rendered for all 10.
ABLATION_CLASSES = CLASSES[:3]
SIZE, STEPS, LR = 128, 128, 0.05
#: Yosinski et al.'s four regularizers at strengths mild enough for a 128-px image climbed with Adam.
YOSINSKI = actmax.Regularizers(decay=0.001, blur_every=8, blur_width=0.5, norm_pct=5, contrib_pct=5)
ALL_ON = dict(param=actmax.Parameterization(fourier=True, decorrelate=True), robustness=actmax.ROBUST,
              reg=YOSINSKI)
SETTINGS = {
    "all on": ALL_ON,
    "no Fourier": {**ALL_ON, "param": actmax.Parameterization(fourier=False, decorrelate=True)},
    "no decorrelation": {**ALL_ON, "param": actmax.Parameterization(fourier=True, decorrelate=False)},
    "no robustness": {**ALL_ON, "robustness": actmax.Robustness()},
    "no decay": {**ALL_ON, "reg": dataclasses.replace(YOSINSKI, decay=0.0)},
    "no blur": {**ALL_ON, "reg": dataclasses.replace(YOSINSKI, blur_every=0, blur_width=0.0)},
    "no norm clipping": {**ALL_ON, "reg": dataclasses.replace(YOSINSKI, norm_pct=0.0)},
    "no contribution clipping": {**ALL_ON, "reg": dataclasses.replace(YOSINSKI, contrib_pct=0.0)},
    "pixels + Yosinski's four": dict(param=actmax.Parameterization(fourier=False, decorrelate=False),
                                     robustness=actmax.Robustness(), reg=YOSINSKI),
}
#: Channel images (mean of one feature map) at four depths of EfficientNet-Lite0, all ingredients on.
CHANNELS = [("_blocks.2", 5), ("_blocks.5", 7), ("_blocks.10", 3), ("_blocks.15", 9)]


def slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text.lower()).strip("_")


def jobs():
    """(file name, description) of every image, in rendering order: the headline comparison first."""
    for setting in ("all on", "pixels + Yosinski's four"):
        for c in CLASSES:
            yield f"class-{slug(setting)}-{slug(c)}.png", dict(kind="class", setting=setting, target=c)
    for c in ABLATION_CLASSES:
        for setting in SETTINGS:
            if setting in ("all on", "pixels + Yosinski's four"):
                continue
            yield f"class-{slug(setting)}-{slug(c)}.png", dict(kind="class", setting=setting, target=c)
    for layer, ch in CHANNELS:
        yield f"channel-all_on-{slug(layer)}-{ch}.png", dict(kind="channel", setting="all on", layer=layer,
                                                             channel=ch)


def settings_json() -> dict:
    def describe(kw):
        return {k: dataclasses.asdict(v) for k, v in kw.items()}

    return {"size": SIZE, "steps": STEPS, "lr": LR, "classes": CLASSES, "ablation_classes": ABLATION_CLASSES,
            "settings": {name: describe(kw) for name, kw in SETTINGS.items()}}


def claim(path: Path) -> bool:
    """Claim an image for this process (a file holding its pid), unless a living process holds it already."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            os.kill(int(path.read_text() or 0), 0)  # the claimer still runs
            return False
        except (ProcessLookupError, ValueError):
            path.write_text(str(os.getpid()))  # left by a worker that was stopped: take it over
            return True
    with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=actmax.RENDER_DIR)
    ap.add_argument("--limit", type=int, default=None, help="stop after this many new images")
    ap.add_argument("--reverse", action="store_true",
                    help="take the jobs from the end (a second worker beside a first one; they claim images)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # 2 shared cores: one thread wastes less time waiting for the other
    model = pretrained.efficientnet_lite0()
    names = pretrained.imagenet_classes()
    second_view = functools.partial(pretrained.imagenet_preprocess, size=224, resize=256,
                                    mean=pretrained.EFFICIENTNET_LITE_MEAN, std=pretrained.EFFICIENTNET_LITE_STD)
    results_path = args.out / "results.json"
    done = 0
    todo = list(jobs())
    for file, job in reversed(todo) if args.reverse else todo:
        if (args.out / file).exists():
            continue
        if args.limit is not None and done >= args.limit:
            break
        if not claim(args.out / f".{file}.claim"):
            continue
        kw = SETTINGS[job["setting"]]
        start = time.perf_counter()
        if job["kind"] == "class":
            cls = names.index(job["target"])
            v = actmax.visualize(model, "_fc", cls, (3, SIZE, SIZE), steps=STEPS, lr=LR, seed=0, **kw)
        else:
            v = actmax.visualize(model, job["layer"], job["channel"], (3, SIZE, SIZE), kind="channel", steps=STEPS,
                                 lr=LR, seed=0, **kw)
        seconds = time.perf_counter() - start
        png = (v.images[0] * 255).round().to(torch.uint8)  # (3, H, W)
        entry = {**job, "seconds": round(seconds, 1), "objective_first": v.objective[0],
                 "objective_last": v.objective[-1]}
        if job["kind"] == "class":
            shipped = png.float()[None] / 255  # measured on the image as shipped (8-bit)
            entry["probability"] = float(actmax.class_probability(model, shipped, cls))
            entry["transformed"] = float(actmax.transformed_probability(model, shipped, cls))
            entry["second_view"] = float(actmax.class_probability(model, shipped, cls, preprocess=second_view))
        with open(args.out / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one worker at a time reads, extends and writes results.json
            results = json.loads(results_path.read_text()) if results_path.exists() else {}
            results["config"] = settings_json()
            results.setdefault("images", {})[file] = entry
            tmp = results_path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(results, indent=1) + "\n")
            tmp.replace(results_path)
            Image.fromarray(png.permute(1, 2, 0).numpy()).save(args.out / file)
            (args.out / f".{file}.claim").unlink()
            actmax.write_render_manifest(args.out)
        done += 1
        print(f"{file}: {seconds:.1f} s " + " ".join(f"{k}={entry[k]:.3f}" for k in
                                                      ("probability", "transformed", "second_view") if k in entry),
              flush=True)
    print(f"{done} new images in {args.out}", flush=True)


if __name__ == "__main__":
    main()
