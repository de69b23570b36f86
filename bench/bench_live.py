"""The live page's network in the browser: how fast ZFNet-small runs on tensorflow.js in headless Chromium.

Builds a bare page from the same files as the book's (``_vendor/tfjs/``, ``live/``, the export of
``cnnlib.live``) in a temporary folder, opens it from ``file://`` in Debian's Chromium and times, in the page
(``window.zfnetLive.time``: the median of ``repeats`` calls after one untimed call, with
``performance.now()``):

* one forward pass with every layer's maps read back (goal: at most 20 ms);
* one deconvnet projection of a relu5 unit, the deepest and so the longest (goal: at most 50 ms);
* a full occlusion map with a 7-px square at stride 2 (196 squares; goal 0.5 s) and stride 1 (784; goal 2 s).

Also the bytes the page adds to the book. ``extra`` names a folder holding other tensorflow.js backends
(``tf-backend-cpu.min.js``, ``tf-backend-webgl.min.js`` from npm) to time them the same way: the candidates
the runtime was chosen among. Nothing here asserts a time.

    .venv/bin/python bench/bench_live.py [--repeats 10] [--extra DIR]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCRIPTS = ["tf-core.min.js", "tf-backend-wasm.min.js", "tfjs-wasm-binaries.js", "zfnet-live-data.js",
           "zfnet-live.js"]


def page_bytes() -> dict[str, int]:
    """What the live page adds to the built book, file by file (tensorflow.js, the weights, the page's code)."""
    from cnnlib import live

    with tempfile.TemporaryDirectory() as tmp:
        data = live.write_js(Path(tmp) / "zfnet-live-data.js")
        sizes = {"zfnet-live-data.js (weights, samples)": data.stat().st_size}
    for f in sorted((ROOT / "_vendor" / "tfjs").iterdir()):
        sizes[f"tfjs/{f.name}"] = f.stat().st_size
    for f in sorted((ROOT / "live").glob("zfnet-live.*")):
        sizes[f.name] = f.stat().st_size
    return sizes


def measure(repeats: int = 10, extra: str | None = None, log=print) -> dict:
    from playwright.sync_api import sync_playwright

    from cnnlib import live

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for f in (ROOT / "_vendor" / "tfjs").iterdir():
            shutil.copy(f, tmp)
        for f in (ROOT / "live").glob("zfnet-live.*"):
            shutil.copy(f, tmp)
        live.write_js(tmp / "zfnet-live-data.js")
        backends = ["wasm"]
        scripts = list(SCRIPTS)
        if extra:
            for name, backend in (("tf-backend-cpu.min.js", "cpu"), ("tf-backend-webgl.min.js", "webgl")):
                if (Path(extra) / name).exists():
                    shutil.copy(Path(extra) / name, tmp)
                    scripts.insert(2, name)
                    backends.append(backend)
        tags = "\n".join(f'<script src="{s}"></script>' for s in scripts)
        (tmp / "index.html").write_text(f'<!doctype html><meta charset="utf-8"><body>{tags}</body>')
        rows = {}
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=FLAGS)
            for backend in backends:
                page = browser.new_page()
                page.goto((tmp / "index.html").as_uri() + f"?backend={backend}")
                page.evaluate("window.zfnetLiveReady.then(() => 1)")
                r = 3 if backend != "wasm" else repeats  # the slow candidates: fewer calls
                t = {
                    "forward": page.evaluate(f"zfnetLive.time('forward', {r})"),
                    "project": page.evaluate(f"zfnetLive.time('project', {r}, {{layer: 'relu5'}})"),
                    "occlusion_s2": page.evaluate(f"zfnetLive.time('occlusion', {max(r // 3, 1)}, "
                                                  "{size: 7, stride: 2})"),
                    "occlusion_s1": page.evaluate(f"zfnetLive.time('occlusion', {max(r // 3, 1)}, "
                                                  "{size: 7, stride: 1})"),
                    "backend": page.evaluate("zfnetLive.backend"),
                    "browser": browser.version,
                }
                rows[backend] = t
                log(f"live page, {backend}: forward {t['forward']:.1f} ms, projection {t['project']:.1f} ms, "
                    f"occlusion 196 squares {t['occlusion_s2']:.0f} ms, 784 squares {t['occlusion_s1']:.0f} ms")
                page.close()
            browser.close()
    return {"backends": rows, "bytes": page_bytes(), "repeats": repeats}


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--extra", help="a folder with tf-backend-cpu.min.js / tf-backend-webgl.min.js to compare")
    a = p.parse_args()
    result = measure(a.repeats, a.extra)
    for name, size in result["bytes"].items():
        print(f"{name}: {size / 1e6:.2f} MB")
    print(f"total: {sum(result['bytes'].values()) / 1e6:.2f} MB")
