"""The live page (chapters/06b_live_network.md) computes what cnnlib computes, offline, opened either way.

Opens the built page (``make book-static``; ``$CNNLIB_BOOK_HTML`` as in test_book_browser.py) in Debian's
Chromium, from ``file://`` and from a server on 127.0.0.1, with every request that leaves the machine refused,
and compares ``window.zfnetLive`` with cnnlib for fixed images (two test images and a synthetic drawing): the
logits, the maps of the five ReLU layers, the deconvnet projection of one map per layer, and an occlusion map.
The page's own interface is exercised too: a drawing (a slow stroke, a fast one, a cancelled one), a click on a map
and the patch it shows, the square, image files (not an image; large and coloured; small and transparent), an empty
canvas, and pictures that a new image or a new square makes stale. Screenshots go to ``_build/screenshots/live-*.png``.
"""

import functools
import http.server
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from playwright.sync_api import sync_playwright
from test_book_browser import KNOWN_SCRIPT_ERRORS, _QuietHandler  # Sphinx's doubled thebe script is harmless

from cnnlib import data, deconvnet, occlusion, pretrained

pytestmark = [pytest.mark.browser, pytest.mark.enable_socket]

ROOT = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("CNNLIB_BOOK_HTML", ROOT / "_build" / "html")).resolve()
PAGE = HTML / "chapters" / "06b_live_network.html"
SHOTS = ROOT / "_build" / "screenshots"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LAYERS = ("relu1", "relu2", "relu3", "relu4", "relu5")
TOL = 1e-4


def _local(url: str) -> bool:
    return url.startswith(("file:", "data:", "blob:", "about:", "http://127.0.0.1", "http://localhost"))


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
    if not PAGE.exists():
        pytest.fail(f"{PAGE} does not exist: run `make book-static` first")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=FLAGS)
        yield b
        b.close()


def _open(browser, url, problems):
    context = browser.new_context(viewport={"width": 1280, "height": 900})

    def route(r):
        if _local(r.request.url):
            r.continue_()
        else:
            problems.append(f"off-machine request (blocked): {r.request.url}")
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("pageerror", lambda e: str(e) in KNOWN_SCRIPT_ERRORS or problems.append(f"script error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.goto(url, wait_until="load")
    page.evaluate("window.zfnetLiveReady.then(() => 1)")
    return context, page


@pytest.fixture(scope="module")
def reference():
    """cnnlib's values for three fixed images: test images 0 (ankle boot) and 1 (pullover), and a drawing-like
    image (two strokes) that no class owns."""
    model = pretrained.load(device="cpu")
    X_test, _ = data.load_fashion_mnist("test")
    drawing = torch.zeros(1, 28, 28)
    drawing[0, 6:22, 9:12] = 0.9
    drawing[0, 6:9, 9:20] = 0.7
    X = torch.stack([X_test[0], X_test[1], drawing])  # (3, 1, 28, 28)
    ref = []
    with torch.no_grad():
        mods = dict(model.features.named_children())
        for x in X:
            maps, a = {}, x[None]
            for name, m in mods.items():
                a = m(a)
                if name in LAYERS:
                    maps[name] = a[0].clone()
            channels = {l: int(maps[l].flatten(1).amax(1).argmax()) for l in LAYERS}
            proj = {l: deconvnet.project(model, x[None], l, channels[l])[0, 0] for l in LAYERS}
            occ = occlusion.occlusion_maps(model, x, size=7, stride=2, fill=0.286041, progress=False)
            ref.append({"x": x[0].flatten().tolist(), "logits": model(x[None])[0], "maps": maps,
                        "channels": channels, "proj": proj, "occ": occ})
    return ref


def _pixels(page, selector, nth=0):
    """The RGBA pixels of the ``nth`` canvas that ``selector`` matches, ``(H, W, 4)`` uint8."""
    w, h, rgba = page.evaluate("""([s, n]) => { const c = document.querySelectorAll(s)[n];
        return [c.width, c.height, Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data)]; }""",
                               [selector, nth])
    return np.array(rgba, dtype=np.uint8).reshape(h, w, 4)


def _drawn(page):
    """The page's 28 × 28 image as the drawing canvas shows it (the centre of each 7 × 7 cell), in [0, 1]."""
    px = _pixels(page, "#zfnet-live .zl-draw")  # (196, 196, 4)
    return px[3::7, 3::7, 0] / 255.0


def _wait_showing(page, name):
    """Until the page has drawn the image loaded from file ``name`` (refresh() says "Showing …")."""
    page.wait_for_function("n => { const t = document.querySelector('#zfnet-live .zl-status').innerText;"
                           " return t.includes('Showing') && t.includes(n); }", arg=name)


def _close(name, got, want, problems):
    got, want = np.asarray(got, dtype=np.float64), want.detach().double().numpy().reshape(-1)
    err = np.abs(got.reshape(-1) - want).max() / max(1.0, np.abs(want).max())
    if not err <= TOL:
        problems.append(f"{name}: largest difference {err:.2e} (relative to max(1, |cnnlib|)) > {TOL}")
    return err


@pytest.mark.parametrize("how", ["file", "http"])
def test_page_equals_cnnlib(how, browser, server, reference):
    problems = []
    url = PAGE.as_uri() if how == "file" else server + "chapters/06b_live_network.html"
    context, page = _open(browser, url, problems)
    try:
        assert page.evaluate("zfnetLive.backend") == "wasm"
        worst = 0.0
        for k, ref in enumerate(reference):
            out = page.evaluate("x => zfnetLive.forward(x)", ref["x"])
            worst = max(worst, _close(f"image {k} logits", out["logits"], ref["logits"], problems))
            for l in LAYERS:
                worst = max(worst, _close(f"image {k} {l}", out[l], ref["maps"][l], problems))
                p = page.evaluate("([x, l, c]) => zfnetLive.project(x, l, c)", [ref["x"], l, ref["channels"][l]])
                worst = max(worst, _close(f"image {k} projection {l}/{ref['channels'][l]}", p["image"],
                                          ref["proj"][l].reshape(28, 28, 1), problems))
            occ = page.evaluate("x => zfnetLive.occlusion(x, {size: 7, stride: 2, fill: 0.286041})", ref["x"])
            worst = max(worst, _close(f"image {k} occlusion p(target)", occ["prob"], ref["occ"].prob, problems))
            if occ["target"] != ref["occ"].target:
                problems.append(f"image {k}: occlusion target {occ['target']} != {ref['occ'].target}")
            if occ["rows"] != ref["occ"].rows.tolist():
                problems.append(f"image {k}: occlusion centres {occ['rows']} != {ref['occ'].rows.tolist()}")
        print(f"{how}: largest difference from cnnlib {worst:.2e}")
    finally:
        context.close()
    assert not problems, "\n".join(problems)


def test_page_interface(browser, tmp_path):
    """Draw, pick a map, move the square, compute a map; then bad input: a file that is not an image, an image of
    another size and colour, an empty canvas. Each leaves a message, never an error or a silent picture."""
    problems = []
    context, page = _open(browser, PAGE.as_uri(), problems)
    status = page.locator("#zfnet-live .zl-status")
    try:
        page.wait_for_selector("#zfnet-live .zl-bar")
        assert page.locator("#zfnet-live .zl-map").count() == 96  # layer 3's maps shown first
        assert "ms" in page.locator("#zfnet-live .zl-small").last.inner_text()  # the first occlusion map
        page.locator("#zfnet-live [data-layer=relu1]").click()
        assert page.locator("#zfnet-live .zl-map").count() == 32
        page.locator("#zfnet-live .zl-map").nth(5).click()
        page.wait_for_timeout(100)
        assert "relu1, map 5" in page.locator("#zfnet-live").inner_text()
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SHOTS / "live-test-image.png", full_page=True)

        page.locator("#zfnet-live .zl-clear").click()
        page.wait_for_timeout(100)
        assert "empty" in status.inner_text()
        page.locator("#zfnet-live .zl-draw").scroll_into_view_if_needed()
        box = page.locator("#zfnet-live .zl-draw").bounding_box()  # in the viewport's coordinates
        page.mouse.move(box["x"] + 70, box["y"] + 40)
        page.mouse.down()
        for t in range(31):  # a trouser-like stroke, down and back up (a V: 15 steps each way, no jump)
            page.mouse.move(box["x"] + 70 + 3 * t, box["y"] + 40 + 5 * min(t, 30 - t))
        page.mouse.up()
        page.wait_for_timeout(100)
        drawn = page.evaluate("() => document.querySelector('#zfnet-live .zl-probs').innerText")
        assert "empty" not in drawn and "forward pass" in drawn
        page.locator("#zfnet-live .zl-occ").scroll_into_view_if_needed()
        occ = page.locator("#zfnet-live .zl-occ").bounding_box()
        page.mouse.move(occ["x"] + 100, occ["y"] + 100)
        assert "with the square at" in page.locator("#zfnet-live .zl-occp").inner_text()
        page.locator("#zfnet-live .zl-run1").click()
        page.wait_for_timeout(100)
        assert "28×28 squares" in page.locator("#zfnet-live").inner_text()
        page.screenshot(path=SHOTS / "live-drawing.png", full_page=True)

        bad = tmp_path / "notes.png"
        bad.write_text("not an image")
        page.locator("#zfnet-live .zl-file").set_input_files(str(bad))
        page.wait_for_function("() => document.querySelector('#zfnet-live .zl-status').dataset.kind === 'error'")
        assert "is not an image" in status.inner_text()

        from PIL import Image  # a 60×40 colour image on a white border: resized, grayed, inverted, and said so
        img = Image.new("RGB", (60, 40), "white")
        img.paste((200, 30, 30), (20, 5, 40, 35))
        img.save(tmp_path / "shoe.png")
        page.locator("#zfnet-live .zl-file").set_input_files(str(tmp_path / "shoe.png"))
        page.wait_for_function("() => document.querySelector('#zfnet-live .zl-status').innerText.includes('shoe')")
        text = status.inner_text()
        for said in ("resized from 60×40 to 28×28", "converted from colour to gray", "inverted"):
            assert said in text, text
    finally:
        context.close()
    assert not problems, "\n".join(problems)


def test_stale_pictures_are_dropped(browser):
    """A new image or a new side of the square drops the occlusion map computed before; an empty canvas blanks
    panels 4 and 5, and the square does not move over it."""
    problems = []
    context, page = _open(browser, PAGE.as_uri(), problems)
    live = "#zfnet-live "
    occ_text = page.locator(live + ".zl-occtext")
    try:
        page.wait_for_selector(live + ".zl-bar")
        assert _pixels(page, live + ".zl-occmap", 0)[..., 3].any()  # the first map, of the first test image
        page.locator(live + ".zl-sample").select_option("5")
        page.wait_for_timeout(100)
        for n in (0, 1):
            assert not _pixels(page, live + ".zl-occmap", n)[..., 3].any(), f"map {n} of the old image still shown"
        assert "image changed" in occ_text.inner_text()
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SHOTS / "live-stale.png", full_page=True)  # a new image, its maps not computed yet
        page.locator(live + ".zl-run2").click()
        assert _pixels(page, live + ".zl-occmap", 0)[..., 3].any() and "14×14 squares" in occ_text.inner_text()
        page.locator(live + ".zl-size").fill("5")
        assert not _pixels(page, live + ".zl-occmap", 0)[..., 3].any(), "map of another square side still shown"
        assert "5 px" in occ_text.inner_text()

        page.locator(live + ".zl-clear").click()
        page.wait_for_timeout(100)
        for n in range(4):
            assert not _pixels(page, live + ".zl-proj", n)[..., 3].any(), f"panel 4, picture {n}: not blank"
        for sel, n in ((".zl-occ", 0), (".zl-occmap", 0), (".zl-occmap", 1)):
            assert not _pixels(page, live + sel, n)[..., 3].any(), f"panel 5, {sel} {n}: not blank"
        page.locator(live + ".zl-occ").scroll_into_view_if_needed()
        occ = page.locator(live + ".zl-occ").bounding_box()
        page.mouse.move(occ["x"] + 100, occ["y"] + 100)
        page.mouse.move(occ["x"] + 60, occ["y"] + 120)
        assert not _pixels(page, live + ".zl-occ")[..., 3].any(), "the square was drawn over an empty canvas"
        assert page.locator(live + ".zl-occp").inner_text() == ""
        page.screenshot(path=SHOTS / "live-empty.png", full_page=True)  # panels 3 to 5 blank
    finally:
        context.close()
    assert not problems, "\n".join(problems)


def test_projection_patches_and_zero_maps(browser, tmp_path):
    """Panel 4: the patch keeps the aspect of the receptive field cut to the image, "cut at the border" is said
    only when it is cut, and a map that is zero everywhere gets no box and no patch."""
    problems = []
    context, page = _open(browser, PAGE.as_uri(), problems)
    live = "#zfnet-live "
    text = page.locator(live + ".zl-projtext")
    try:
        page.wait_for_selector(live + ".zl-bar")
        geometry = page.evaluate("zfnetLive.data.geometry")
        said_cut = []
        for layer, channel in [("relu1", c) for c in range(8)] + [("relu5", 0)]:
            page.locator(f"{live}[data-layer={layer}]").click()
            page.locator(live + ".zl-map").nth(channel).click()
            page.wait_for_function("s => document.querySelector('#zfnet-live .zl-projtext').innerText.includes(s)",
                                   arg=f"{layer}, map {channel}:")
            t = text.inner_text()
            ui, uj = (int(v) for v in t.split("strongest unit at (")[1].split(")")[0].split(", "))
            g = geometry[layer]
            r0, c0 = ui * g["jump"] - g["padding"], uj * g["jump"] - g["padding"]
            ph = min(r0 + g["size"], 28) - max(r0, 0)
            pw = min(c0 + g["size"], 28) - max(c0, 0)
            cut = ph < g["size"] or pw < g["size"]
            said_cut.append(cut)
            assert ("cut at the border" in t) == cut, t
            if cut:
                assert f"cut at the border to {ph}×{pw}" in t, t
            k = 96 // max(ph, pw)
            for n in (0, 1):
                h, w = _pixels(page, live + ".zl-patch", n).shape[:2]
                assert (h, w) == (k * ph, k * pw), f"{layer} map {channel}: patch {w}×{h} for a {pw}×{ph} field"
                assert max(h, w) >= 64
        assert True in said_cut and False in said_cut  # both cases were seen
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SHOTS / "live-relu5.png", full_page=True)  # relu5 map 0 of the first test image

        # an image for which some relu1 map is zero everywhere: a faint 2 × 2 dot, loaded from a file
        from PIL import Image
        dot = np.zeros((28, 28), dtype=np.uint8)
        dot[13:15, 13:15] = 51
        Image.fromarray(dot, "L").save(tmp_path / "dot.png")
        model = pretrained.load(device="cpu")
        with torch.no_grad():
            relu1 = model.features[:2](torch.from_numpy(dot / 255.0).float()[None, None])[0]  # (32, 28, 28)
        zero = int((relu1.flatten(1).amax(1) == 0).nonzero()[0, 0])
        page.locator(live + ".zl-file").set_input_files(str(tmp_path / "dot.png"))
        _wait_showing(page, "dot.png")
        page.locator(f"{live}[data-layer=relu1]").click()
        page.locator(live + ".zl-map").nth(zero).click()
        page.wait_for_function("s => document.querySelector('#zfnet-live .zl-projtext').innerText.startsWith(s)",
                               arg=f"relu1, map {zero} ")
        assert f"relu1, map {zero} is zero everywhere" in text.inner_text()
        image = _pixels(page, live + ".zl-proj", 0)
        assert not ((image[..., 0] > 150) & (image[..., 1] < 100)).any(), "a red box around no unit"
        for n in (1, 2, 3):
            assert not _pixels(page, live + ".zl-proj", n)[..., 3].any(), f"panel 4, picture {n}: not blank"
    finally:
        context.close()
    assert not problems, "\n".join(problems)


def test_small_transparent_image_file(browser, tmp_path):
    """A file smaller than 28 × 28 is enlarged pixel by pixel (nearest neighbour); its transparent pixels are
    taken as white (here: a light border, so the image is inverted), and the page says both."""
    from PIL import Image
    img = Image.new("RGBA", (14, 14), (0, 0, 0, 0))
    img.putpixel((4, 3), (0, 0, 0, 255))  # one opaque black pixel at row 3, column 4
    img.save(tmp_path / "dot14.png")
    problems = []
    context, page = _open(browser, PAGE.as_uri(), problems)
    try:
        page.wait_for_selector("#zfnet-live .zl-bar")
        page.locator("#zfnet-live .zl-file").set_input_files(str(tmp_path / "dot14.png"))
        _wait_showing(page, "dot14.png")
        text = page.locator("#zfnet-live .zl-status").inner_text()
        for said in ("enlarged (nearest neighbour) from 14×14 to 28×28", "transparent pixels taken as white",
                     "inverted"):
            assert said in text, text
        want = np.zeros((28, 28))
        want[6:8, 8:10] = 1.0  # the pixel as a 2 × 2 block, the transparent rest black after inversion
        assert np.abs(_drawn(page) - want).max() < 0.01, np.argwhere(_drawn(page) > 0.01).tolist()
    finally:
        context.close()
    assert not problems, "\n".join(problems)


def test_brush_is_continuous_and_stops(browser):
    """A fast stroke (one pointer move across the canvas) draws a continuous line; after a pointercancel the
    pointer draws no more until it is pressed again."""
    problems = []
    context, page = _open(browser, PAGE.as_uri(), problems)
    try:
        page.wait_for_selector("#zfnet-live .zl-bar")
        page.locator("#zfnet-live .zl-clear").click()
        draw = page.locator("#zfnet-live .zl-draw")
        draw.scroll_into_view_if_needed()
        box = draw.bounding_box()

        def at(i, j):  # the viewport position of the centre of pixel (i, j)
            return box["x"] + (j + 0.5) * box["width"] / 28, box["y"] + (i + 0.5) * box["height"] / 28

        page.mouse.move(*at(4, 4))
        page.mouse.down()
        page.mouse.move(*at(23, 20))  # one move event, 25 pixels away
        page.mouse.up()
        page.wait_for_timeout(100)
        img = _drawn(page)
        line = [img[round(4 + 19 * t), round(4 + 16 * t)] for t in np.linspace(0, 1, 50)]
        assert min(line) > 0.3, f"the stroke has gaps: {np.round(line, 2).tolist()}"

        page.locator("#zfnet-live .zl-clear").click()
        page.mouse.move(*at(4, 4))
        page.mouse.down()
        draw.dispatch_event("pointercancel")  # e.g. the browser took the touch for a scroll
        page.mouse.move(*at(20, 20))
        page.mouse.move(*at(21, 21))
        page.mouse.up()
        page.wait_for_timeout(100)
        img = _drawn(page)
        assert img[4, 4] > 0.3 and img[12:, 12:].max() == 0, "the brush went on drawing after pointercancel"
    finally:
        context.close()
    assert not problems, "\n".join(problems)


def test_page_without_webassembly_says_so(browser):
    """A browser without WebAssembly gets a message in the page, not a blank panel or a wrong picture."""
    context = browser.new_context()
    context.add_init_script("delete window.WebAssembly")
    page = context.new_page()
    try:
        page.goto(PAGE.as_uri(), wait_until="load")
        page.wait_for_selector("#zfnet-live .zl-status[data-kind=error]")
        text = page.locator("#zfnet-live").inner_text()
        assert "cannot run here" in text and "WebAssembly" in text
        assert page.locator("#zfnet-live canvas").count() == 0
    finally:
        context.close()
