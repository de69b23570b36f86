"""``make bench``: run the benchmarks, print the report and write it to ``_build/bench.md`` and
``bench/REPORT.md`` (the copy the book's appendix includes).

    .venv/bin/python bench/report.py [--repeats 2] [--quick] [--no-book | --book-only] [--images 60000]

Every figure is a ratio of two times measured side by side in this one run (each the best of its repeats), on
the machine named at the top. It then executes and builds the whole book from a cold cache, in a fresh copy of
the tracked files (several minutes), and writes each chapter's execution time to ``bench/BOOK.md`` (also in the
appendix). Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import bench_live  # noqa: E402
import bench_occlusion  # noqa: E402
import bench_topk  # noqa: E402
import bench_train  # noqa: E402


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (f"{cpu}, {os.cpu_count()} cores{gpu}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
            f"Python {platform.python_version()}")


def load() -> str:
    try:
        return " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def time_book(log=print) -> dict:
    """Execute and build the whole book from a cold cache, in a fresh copy of the tracked files.

    Returns the wall time of ``jupyter-book build`` (execution and HTML) and each chapter's execution time as
    jupyter-cache recorded it (myst-nb stores ``execution_seconds`` for every notebook it executes).
    """
    from jupyter_cache import get_cache

    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:
            dst = Path(tmp) / f
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dst)
        # The live page's weights, as `make book` exports them first (`make live`, a few seconds).
        subprocess.run([sys.executable, "scripts/export_live.py"], cwd=tmp, check=True, stdout=subprocess.DEVNULL,
                       env={**os.environ, "PYTHONPATH": tmp})
        jb = Path(sys.executable).parent / "jupyter-book"
        env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONPATH": tmp}
        info = dict(machine=machine(), load_before=load(),
                    date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
        t0 = time.perf_counter()
        subprocess.run([str(jb), "build", "--all", tmp, "-W", "-n", "--keep-going"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        info["seconds"] = time.perf_counter() - t0
        info["load_after"] = load()
        records = get_cache(Path(tmp) / "_build" / ".jupyter_cache").list_cache_records()
        info["chapters"] = sorted((Path(r.uri).stem, r.data["execution_seconds"]) for r in records)
    log(f"whole book, cold cache: {info['seconds']:.0f} s")
    return info


CHAPTER_GOAL_S = 120  # issue 18: a chapter is one class, at most 2 minutes to execute on 2 quiet cores
BOOK_GOAL_S = 300  # the whole book, executed and built from a cold cache, in at most 5 minutes


def render_book(book: dict) -> str:
    """The chapter-times table (``bench/BOOK.md``, included in the book's appendix)."""
    total = sum(s for _, s in book["chapters"])
    md = [f"Measured {book['date']} on **{book['machine']}**; load average (1/5/15 min) before: "
          f"{book['load_before']}, after: {book['load_after']}. Written by `make bench` "
          "(`bench/report.py --book-only` measures this table alone).", "",
          f"| chapter | execution, cold (goal ≤ {CHAPTER_GOAL_S} s) |", "|---|---|"]
    for name, s in book["chapters"]:
        flag = "" if s <= CHAPTER_GOAL_S else " (over the goal)"
        md.append(f"| {name} | {s:.0f} s{flag} |")
    md += [f"| **all chapters** | **{total:.0f} s** |", "",
           f"Executing and building the whole book from a cold cache (`jupyter-book build --all` in a fresh copy of "
           f"the repository): **{book['seconds']:.0f} s** (goal ≤ {BOOK_GOAL_S} s"
           + ("" if book["seconds"] <= BOOK_GOAL_S else ", missed") + ")."]
    return "\n".join(md)


def render(info: dict) -> str:
    occ, dec, topk, train = info["occlusion"], info["deconvnet"], info["topk"], info["train"]
    md = [
        f"**Benchmark report**, measured {info['date']} on: **{info['machine']}**. Device: `{info['device']}`.",
        f"Load average (1/5/15 min) before: {info['load_before']}, after: {info['load_after']}.",
        f"Each time is the best of {info['repeats']} runs, the two sides alternating in one run; ratios above "
        "1 mean cnnlib is faster. Written by `make bench` (`bench/report.py`).",
        "",
        "## Occlusion maps: cnnlib's defaults against Captum at its best",
        "",
        "Times (each the best of the runs):",
        "",
        "| case | cnnlib, its grid | cnnlib, Captum's squares | Captum's default (1 per pass) "
        "| Captum's best, model as loaded | Captum's best, model channels-last |",
        "|---|---|---|---|---|---|",
    ]
    for r in occ:
        lay = r["captum_by_layout"]
        cell = {k: f"{lay[k][0]:.3f} s ({lay[k][1]} per pass)" if k in lay else "—"
                for k in ("as loaded", "channels-last")}
        default = f"{r['captum_default']:.3f} s" if r["captum_default"] is not None else "—"
        md.append(f"| {r['case']} | {r['ours']:.3f} s ({r['squares_ours']} squares) | {r['ours_inside']:.3f} s "
                  f"({r['squares_captum']} squares) | {default} | {cell['as loaded']} | {cell['channels-last']} |")
    md += [
        "",
        "Speed-ups on the same squares (Captum's time / cnnlib's on Captum's squares):",
        "",
        "| case | vs Captum's default | vs its best, model as loaded | **vs its best of all** "
        "| multiply-adds, Captum / cnnlib |",
        "|---|---|---|---|---|",
    ]
    for r in occ:
        lay = r["captum_by_layout"]
        vs_default = f"{r['captum_default'] / r['ours_inside']:.2f}×" if r["captum_default"] is not None else "—"
        vs_loaded = f"{lay['as loaded'][0] / r['ours_inside']:.2f}×" if "as loaded" in lay else "—"
        work = f"{r['work_ratio']:.2f}" if r.get("work_ratio") else "—"
        md.append(f"| {r['case']} | {vs_default} | {vs_loaded} | **{r['captum_best'] / r['ours_inside']:.2f}×** "
                  f"| {work} |")
    md += ["", "Squares and settings of each case:", ""]
    for r in occ:
        md.append(f"- {r['case']}: on its own grid cnnlib maps {r['squares_ours']} squares, {r['computed']} of "
                  f"them through the network ({r['method']}, batch {r['batch']}); on Captum's "
                  f"{r['squares_captum']} squares, {r['computed_inside']} through the network. Captum's best: "
                  f"{r['best_ppe']} per pass, model {r['best_layout']}.")
    md += [
        "",
        "cnnlib centres its squares on a grid and cuts them at the border; Captum slides them inside the image. "
        "`occlusion_maps(..., inside=True)` maps Captum's squares, so the speed-ups compare the same map. A square "
        "that changes no pixel (black background under a black occluder) keeps the clean image's values without a "
        "pass through the network. Captum is timed with the model as loaded and converted to channels-last (the "
        "layout cnnlib's engine keeps its maps in), and the best of all its settings is the bar. "
        "The last column is the work left by exact incremental inference: the multiply-adds of Captum's passes "
        "over those of cnnlib's engine, as the engine counts them (`OcclusionMaps.work`). It bounds what exact "
        "maps can gain with kernels no faster than Captum's: in ZFNet-small at 28 px a 7-px square reaches the "
        "whole 7 × 7 maps from conv3 on, and in EfficientNet-Lite0 at 224 px a 16-px square reaches the whole "
        "14 × 14 and 7 × 7 maps, where most of the multiply-adds are. Beyond that bound the speed comes from the "
        "engine's kernels: channels-last maps, BatchNorm folded into the convolution before it, max-pooling and "
        "local-response-normalization kernels of its own (same numbers as PyTorch's, fewer passes over memory). "
        "Each side is timed after one untimed call: cnnlib keeps the traced graph of a model (a widget calls it "
        "again and again), so the timed calls do not trace it; tracing adds about 0.1 s to a first call.",
        "",
        "## Deconvnet projection against Captum's `Deconvolution`",
        "",
        "| case | cnnlib `deconvnet.project` | Captum `Deconvolution` | ratio |",
        "|---|---|---|---|",
        f"| ZFNet-small, 9 images, one conv5 unit each | {dec['ours'] * 1000:.1f} ms | {dec['captum'] * 1000:.1f} ms "
        f"| {dec['captum'] / dec['ours']:.2f}× |",
        "",
        "## Top-k mining against the fair floor",
        "",
        "| case | mining (top-9, conv1–conv5) | forward pass input → conv5 | mining / floor (goal ≤ 1.1) |",
        "|---|---|---|---|",
        f"| ZFNet-small, {topk['images']} Fashion-MNIST images | {topk['mine']:.2f} s | {topk['floor']:.2f} s "
        f"| {topk['mine'] / topk['floor']:.3f} |",
        "",
        "## The trainer against a bare PyTorch loop",
        "",
        "| case | trainer | bare loop | trainer / bare (goal ≤ 1.05) | trainer GFLOP/s | sgemm 2048³ GFLOP/s "
        "| share |",
        "|---|---|---|---|---|---|---|",
        f"| ZFNet-small, {train['steps']} steps of batch {train['batch_size']} | {train['trainer']:.2f} s "
        f"| {train['bare']:.2f} s | {train['trainer'] / train['bare']:.3f} | {train['gflops']:.1f} "
        f"| {train['gemm']:.0f} | {train['gflops'] / train['gemm']:.0%} |",
        "",
    ]
    if info.get("live"):
        lv = info["live"]
        md += ["## The live page in the browser (Chapter 6b)", "",
               "ZFNet-small on tensorflow.js in headless Chromium "
               f"({next(iter(lv['backends'].values()))['browser']}), page opened from `file://`; median of "
               f"{lv['repeats']} calls (occlusion: of {max(lv['repeats'] // 3, 1)}) after one untimed call "
               "(`bench/bench_live.py`).", "",
               "| backend | forward, every layer's maps (goal ≤ 20 ms) | deconvnet projection, relu5 (≤ 50 ms) "
               "| occlusion, 7 px, step 2: 196 squares (≤ 0.5 s) | step 1: 784 squares (≤ 2 s) |",
               "|---|---|---|---|---|"]
        for name, t in lv["backends"].items():
            md.append(f"| {name} | {t['forward']:.1f} ms | {t['project']:.1f} ms | {t['occlusion_s2'] / 1000:.2f} s "
                      f"| {t['occlusion_s1'] / 1000:.2f} s |")
        md += ["", f"What the page adds to the built book: {sum(lv['bytes'].values()) / 1e6:.2f} MB ("
               + ", ".join(f"`{k}` {v / 1e6:.2f} MB" for k, v in lv["bytes"].items() if v >= 10_000) + ").", ""]
    return "\n".join(md)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="skip EfficientNet at stride 8; fewer mining images")
    p.add_argument("--no-book", action="store_true", help="do not time the whole book from a cold cache")
    p.add_argument("--book-only", action="store_true", help="only time the whole book and its chapters "
                   "(rewrites bench/BOOK.md, leaves bench/REPORT.md)")
    p.add_argument("--images", type=int, default=60000, help="images for the top-k mining benchmark")
    p.add_argument("--render", action="store_true", help="measure nothing: write the report again from the raw "
                   "figures of the last run (_build/bench.json)")
    a = p.parse_args()
    if a.book_only:
        write_book(time_book())
        return
    if a.render:
        write(render(json.loads((ROOT / "_build" / "bench.json").read_text())))
        return
    info = dict(machine=machine(), device=str(torch.device("cuda" if torch.cuda.is_available() else "cpu")),
                date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                repeats=a.repeats, load_before=load())
    print(info["machine"])
    info.update(bench_occlusion.measure(a.repeats, a.quick))
    info["topk"] = bench_topk.measure(10000 if a.quick else a.images, 512, a.repeats)
    info["train"] = bench_train.measure(100, max(a.repeats, 3), 128)
    info["live"] = bench_live.measure(10)
    info["load_after"] = load()
    (ROOT / "_build").mkdir(exist_ok=True)
    (ROOT / "_build" / "bench.json").write_text(json.dumps(info, indent=1, default=str) + "\n")  # the raw figures
    write(render(info))
    if not a.no_book:
        write_book(time_book())


def write_book(book: dict) -> None:
    md = render_book(book)
    (ROOT / "_build").mkdir(exist_ok=True)
    (ROOT / "_build" / "book-times.json").write_text(json.dumps(book, indent=1) + "\n")
    (ROOT / "bench" / "BOOK.md").write_text(md + "\n")
    print()
    print(md)


def write(md: str) -> None:
    for path in (ROOT / "_build" / "bench.md", ROOT / "bench" / "REPORT.md"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(md + "\n")
    print()
    print(md)


if __name__ == "__main__":
    main()
