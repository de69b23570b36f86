"""Export the shipped ZFNet-small for the book's live page (chapters/06b_live_network.md).

Writes _build/live/zfnet-live-data.js (weights in tensorflow.js's layout, layer settings, receptive fields,
sample test images; see cnnlib/live.py). `make book` and `make book-static` run it; _config.yml serves
_build/live/ as static files.
Usage: python scripts/export_live.py [OUT]
"""

import sys
import time

from cnnlib import live

start = time.perf_counter()
out = live.write_js(sys.argv[1] if len(sys.argv) > 1 else "_build/live/zfnet-live-data.js")
print(f"export_live: {out} ({out.stat().st_size / 1e6:.2f} MB) in {time.perf_counter() - start:.1f} s")
