"""The built book, opened page by page in headless Chromium, renders offline.

Serves the HTML book (``_build/html``, or ``$CNNLIB_BOOK_HTML``; build it with ``make book-static``)
on 127.0.0.1 and opens every page in Debian's ``/usr/bin/chromium`` through playwright (``executable_path``:
playwright's own browsers are never used nor downloaded). A page fails when:

- it requests anything off the machine (CDNs for widgets, MathJax, fonts...): such requests are
  blocked and reported;
- a request fails or answers HTTP >= 400;
- an ``<img>`` does not load (``naturalWidth`` 0);
- its math is left unrendered by MathJax, or MathJax reports a TeX error;
- a script throws an uncaught error;
- it is a chapter 01_/02_/03_ and no ipywidget is rendered from the stored widget state;
- a line of code (a code cell or a code block in the text) is cut off at the right edge of its box
  (``theme/course.css`` wraps code at the column; printed outputs may scroll).

A full-page screenshot of each page is saved to ``_build/screenshots/``.
"""

import functools
import http.server
import os
import re
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

# enable_socket: runs under pytest-socket's --disable-socket too (it only talks to 127.0.0.1 and the browser).
pytestmark = [pytest.mark.browser, pytest.mark.enable_socket]

ROOT = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("CNNLIB_BOOK_HTML", ROOT / "_build" / "html")).resolve()
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WIDGET_CHAPTERS = ("01_", "02_", "03_")
TIMEOUT_MS = 30_000

# Sphinx 7.4 adds sphinx-thebe's inline `const THEBE_JS_URL = ...` script twice (registered with filename
# None, then again with ""): the second copy throws. Harmless: thebe is off and that URL is never fetched.
KNOWN_SCRIPT_ERRORS = {"Identifier 'THEBE_JS_URL' has already been declared"}
# A widget view rendered by embed-amd.js (the stored state alone is a <script> tag, not a widget).
RENDERED_WIDGET = ".jupyter-widgets.lm-Widget, .widget-slider, .widget-output"
STORED_WIDGET = 'script[type="application/vnd.jupyter.widget-view+json"]'
# Resolves to the sources of <img> elements that fail to load (lazy ones are made eager first).
BROKEN_IMAGES_JS = """async () => {
  const imgs = [...document.images];
  imgs.forEach(i => { i.loading = "eager"; });
  await Promise.all(imgs.map(i => i.decode().catch(() => null)));
  return imgs.filter(i => i.naturalWidth === 0).map(i => i.currentSrc || i.src);
}"""
# Resolves to the first line of every code box (not a printed output) whose text runs past its right edge.
CUT_CODE_JS = """() => [...document.querySelectorAll("div.highlight pre")]
  .filter(p => !p.closest("div.cell_output") && p.scrollWidth > p.clientWidth + 1)
  .map(p => p.textContent.split("\\n")[0].slice(0, 60))"""
# Resolves to a list of problems with the page's math (empty when it has none or all is typeset).
MATH_PROBLEMS_JS = r"""async () => {
  const maths = [...document.querySelectorAll(".math")];
  if (maths.length === 0) return [];
  if (!window.MathJax || !MathJax.startup) return ["page has math but MathJax did not load"];
  await MathJax.startup.promise;
  const raw = maths.filter(m => !m.querySelector("mjx-container")).map(m => m.textContent.trim());
  const errors = [...document.querySelectorAll("mjx-merror")].map(e => e.getAttribute("data-mjx-error"));
  const labels = [...document.querySelectorAll(".widget-label")].filter(l => /\$.+\$/.test(l.textContent));
  return raw.map(t => "unrendered math: " + t.slice(0, 60))
    .concat(labels.map(l => "unrendered math in a widget label: " + l.textContent))
    .concat(errors.map(e => "TeX error: " + e));
}"""


def _pages():
    """Every built page, relative to HTML (not the files under _static/, _sources/, ...)."""
    if not HTML.is_dir():
        return ["<no book>"]
    return sorted(p.relative_to(HTML).as_posix() for p in HTML.rglob("*.html")
                  if not p.relative_to(HTML).parts[0].startswith("_"))


def _is_local(url):
    parts = urlparse(url)
    return parts.scheme in ("data", "blob", "about") or (
        parts.scheme in ("http", "https") and parts.hostname in ("127.0.0.1", "localhost"))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} not found: run `make browser` (scripts/system_deps.sh browser)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.mark.parametrize("page_path", _pages())
def test_page_renders_offline(page_path, server, browser):
    if not HTML.is_dir():
        pytest.fail(f"{HTML} does not exist: run `make book-static` first")
    problems = []
    context = browser.new_context(viewport={"width": 1280, "height": 900})

    def block_off_machine(route):
        if _is_local(route.request.url):
            route.continue_()
        else:
            problems.append(f"off-machine request (blocked): {route.request.url}")
            route.abort()

    context.route("**/*", block_off_machine)
    page = context.new_page()
    page.on("requestfailed", lambda r: _is_local(r.url) and problems.append(
        f"request failed: {r.url} ({r.failure})"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"HTTP {r.status}: {r.url}"))
    page.on("pageerror", lambda e: str(e) in KNOWN_SCRIPT_ERRORS or problems.append(f"script error: {e}"))
    try:
        page.goto(server + page_path, wait_until="networkidle", timeout=TIMEOUT_MS)
        redirect = re.search(r'http-equiv="Refresh" content="0; url=([^"]+)"', (HTML / page_path).read_text())
        if redirect:  # jupyter-book's index.html only forwards to the root page
            page.wait_for_url("**/" + redirect[1], timeout=TIMEOUT_MS)
            page.wait_for_load_state("networkidle", timeout=TIMEOUT_MS)

        if Path(page_path).name.startswith(WIDGET_CHAPTERS):
            if page.locator(STORED_WIDGET).count() == 0:
                problems.append("no stored widget view: execute the notebook with its widget state saved")
            else:
                try:
                    page.wait_for_selector(RENDERED_WIDGET, state="attached", timeout=TIMEOUT_MS)
                    page.wait_for_load_state("networkidle", timeout=TIMEOUT_MS)  # the widget's fonts
                except PlaywrightTimeout:
                    problems.append(f"no ipywidget rendered within {TIMEOUT_MS // 1000} s")

        problems += page.evaluate(MATH_PROBLEMS_JS)
        problems += [f"image not loaded: {src}" for src in page.evaluate(BROKEN_IMAGES_JS)]
        problems += [f"code cut off at the right edge: {line}" for line in page.evaluate(CUT_CODE_JS)]
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SHOTS / (page_path.replace("/", "__")[: -len(".html")] + ".png"), full_page=True)
    finally:
        context.close()
    assert not problems, f"{page_path}:\n  " + "\n  ".join(problems)
