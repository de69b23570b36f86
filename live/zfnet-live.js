// ZFNet-small live in the page: forward pass, feature maps, deconvnet projection and occlusion, with no kernel
// and no network. Computed by tensorflow.js's WebAssembly backend (vendored in _vendor/tfjs/) on the shipped
// weights (window.ZFNET_LIVE, written by scripts/export_live.py from cnnlib.live). The same computation as
// cnnlib: tests/test_live_page.py checks logits, maps, projections and an occlusion map against it.
//
// Layout: tensors are NHWC (channels last), as tensorflow.js computes; window.zfnetLive returns maps CHW.
(function () {
  "use strict";

  const SIDE = 28;                 // Fashion-MNIST images: 28 × 28, one channel, values in [0, 1]
  const LAYERS = ["relu1", "relu2", "relu3", "relu4", "relu5"];
  const CONV_OF = { relu1: "conv1", relu2: "conv2", relu3: "conv3", relu4: "conv4", relu5: "conv5" };
  const TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf"];

  // ---------------------------------------------------------------------------------------------------------
  // The network (no DOM here): weights, forward, deconvnet, occlusion
  // ---------------------------------------------------------------------------------------------------------

  function fromHalf(b64) {
    // float16 bytes (little-endian) -> Float32Array, exactly (every float16 is a float32)
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const h = new Uint16Array(bytes.buffer);
    const out = new Float32Array(h.length);
    for (let i = 0; i < h.length; i++) {
      const s = h[i] & 0x8000 ? -1 : 1, e = (h[i] >> 10) & 0x1f, f = h[i] & 0x3ff;
      out[i] = e === 0 ? s * f * 2 ** -24 : e === 31 ? (f ? NaN : s * Infinity) : s * (1 + f / 1024) * 2 ** (e - 15);
    }
    return out;
  }

  function loadNet(D) {
    const W = {};
    for (const [name, e] of Object.entries(D.layers)) {
      W[name] = { ...e, w: tf.tensor(fromHalf(e.weight), e.shape), b: tf.tensor1d(fromHalf(e.bias)) };
    }
    if (D.lrn && D.lrn.size % 2 !== 1) throw new Error(`LRN of even size ${D.lrn.size} is not supported`);
    return W;
  }

  // x: (N, 28, 28, 1) -> {relu1..relu5, logits}; PyTorch's LocalResponseNorm divides alpha by its size,
  // tensorflow.js's does not, and sums over depth_radius channels on each side.
  function forward(net, D, x, keepMaps) {
    const conv = (x, name) => tf.fused.conv2d({ x, filter: net[name].w, strides: 1, pad: net[name].padding[0],
      bias: net[name].b, activation: "relu" });
    const pool = (x) => tf.maxPool(x, D.pool.size, D.pool.stride, D.pool.padding);
    const norm = (x) => (D.lrn ? tf.localResponseNormalization(x, (D.lrn.size - 1) / 2, D.lrn.k,
      D.lrn.alpha / D.lrn.size, D.lrn.beta) : x);
    const fc = (x, name, act) => tf.fused.matMul({ a: x, b: net[name].w, bias: net[name].b, activation: act });
    const out = {};
    out.relu1 = conv(x, "conv1");
    out.relu2 = conv(norm(pool(out.relu1)), "conv2");
    out.relu3 = conv(norm(pool(out.relu2)), "conv3");
    out.relu4 = conv(out.relu3, "conv4");
    out.relu5 = conv(out.relu4, "conv5");
    const flat = tf.reshape(pool(out.relu5), [x.shape[0], -1]);
    out.logits = fc(fc(fc(flat, "fc6", "relu"), "fc7", "relu"), "fc8", "linear");
    if (!keepMaps) for (const l of LAYERS) delete out[l];
    return out;
  }

  // Max-pooling's switches, as PyTorch records them: for every output (i, j, c) the input position of the
  // window's maximum, the first one in row-major order when several tie (padding never wins).
  function switches(a, H, W, C, D) {
    const { size, stride, padding } = D.pool;
    const h = Math.floor((H + 2 * padding - size) / stride) + 1, w = Math.floor((W + 2 * padding - size) / stride) + 1;
    const sw = new Int32Array(h * w * C);
    for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) for (let c = 0; c < C; c++) {
      let best = -Infinity, at = -1;
      for (let u = 0; u < size; u++) {
        const r = i * stride - padding + u;
        if (r < 0 || r >= H) continue;
        for (let v = 0; v < size; v++) {
          const q = j * stride - padding + v;
          if (q < 0 || q >= W) continue;
          const val = a[(r * W + q) * C + c];
          if (val > best || at < 0) { best = val; at = r * W + q; }
        }
      }
      sw[(i * w + j) * C + c] = at;
    }
    return { sw, h, w };
  }

  // The deconvnet's three operations (Zeiler & Fergus 2014, Sec. 2.1) on flat NHWC arrays / tensors.
  function unpool(r, s, H, W, C) {          // put each value back at its switch; overlapping windows add up
    const out = new Float32Array(H * W * C);
    for (let k = 0; k < s.h * s.w; k++) for (let c = 0; c < C; c++) out[s.sw[k * C + c] * C + c] += r[k * C + c];
    return out;
  }
  const rectify = (r) => r.map((v) => (v > 0 ? v : 0));
  function filterDown(net, r, H, W, name) { // transposed convolution with the same filters, bias dropped
    const e = net[name], [, , Cin, Cout] = e.shape;
    return tf.tidy(() => tf.conv2dTranspose(tf.tensor4d(r, [1, H, W, Cout]), e.w, [1, H, W, Cin], 1, e.padding[0])
      .dataSync());
  }

  // The strongest unit of map `channel` of `layer` for one image, projected to pixels (cnnlib.deconvnet.project).
  function project(net, D, image, layer, channel) {
    const maps = tf.tidy(() => {
      const o = forward(net, D, tf.tensor4d(image, [1, SIDE, SIDE, 1]), true);
      return Object.fromEntries(LAYERS.map((l) => [l, { data: o[l].dataSync(), shape: o[l].shape.slice(1) }]));
    });
    const [h, w, C] = maps[layer].shape;
    if (!(channel >= 0 && channel < C)) throw new Error(`project: ${layer} has ${C} maps, got ${channel}`);
    let best = -Infinity, at = 0;
    const a = maps[layer].data;
    for (let k = 0; k < h * w; k++) if (a[k * C + channel] > best) { best = a[k * C + channel]; at = k; }
    let r = new Float32Array(h * w * C);
    r[at * C + channel] = best;                          // every other activation of the layer set to 0
    const order = LAYERS.slice(0, LAYERS.indexOf(layer) + 1).reverse();
    for (const l of order) {                             // down from `layer` to the image
      const [H, W] = maps[l].shape;
      r = filterDown(net, rectify(r), H, W, CONV_OF[l]); // rectify, then filter
      if (l === "relu2" || l === "relu3") {              // below conv2 / conv3: LRN (passed), then unpool
        const below = l === "relu2" ? "relu1" : "relu2";
        const [Hb, Wb, Cb] = maps[below].shape;
        r = unpool(r, switches(maps[below].data, Hb, Wb, Cb, D), Hb, Wb, Cb);
      }
    }
    return { image: r, unit: [Math.floor(at / w), at % w], value: best };
  }

  // cnnlib.occlusion's grid: centres stride//2, stride//2 + stride, ...; a square begins size//2 before its
  // centre and is cut at the border.
  function centres(stride) {
    const c = [];
    for (let v = Math.floor(stride / 2); v < SIDE; v += stride) c.push(v);
    return c;
  }
  function occlude(image, r, c, size, fill) {
    const out = Float32Array.from(image);
    const r0 = Math.max(r - Math.floor(size / 2), 0), r1 = Math.min(r - Math.floor(size / 2) + size, SIDE);
    const c0 = Math.max(c - Math.floor(size / 2), 0), c1 = Math.min(c - Math.floor(size / 2) + size, SIDE);
    for (let i = r0; i < r1; i++) for (let j = c0; j < c1; j++) out[i * SIDE + j] = fill;
    return out;
  }
  function probabilities(net, D, images /* Float32Array n·784 */) {
    const n = images.length / (SIDE * SIDE);
    return tf.tidy(() => tf.softmax(forward(net, D, tf.tensor4d(images, [n, SIDE, SIDE, 1]), false).logits)
      .dataSync());
  }
  // Zeiler & Fergus's Fig. 7 (d, e): p(target) and the most probable class for every square position.
  function occlusion(net, D, image, { size = 8, stride = 2, fill = D.gray, target = null, batch = 196 } = {}) {
    const rows = centres(stride), n = rows.length * rows.length, K = D.classes.length;
    if (target === null) { const p = probabilities(net, D, image); target = p.indexOf(Math.max(...p)); }
    const prob = new Float32Array(n), top = new Int32Array(n);
    for (let start = 0; start < n; start += batch) {
      const m = Math.min(batch, n - start), stack = new Float32Array(m * SIDE * SIDE);
      for (let k = 0; k < m; k++) {
        const q = start + k;
        stack.set(occlude(image, rows[Math.floor(q / rows.length)], rows[q % rows.length], size, fill), k * SIDE * SIDE);
      }
      const p = probabilities(net, D, stack);
      for (let k = 0; k < m; k++) {
        const pk = p.subarray(k * K, (k + 1) * K);
        prob[start + k] = pk[target];
        top[start + k] = pk.indexOf(Math.max(...pk));
      }
    }
    return { prob, top, rows, target, side: rows.length };
  }

  // ---------------------------------------------------------------------------------------------------------
  // The page
  // ---------------------------------------------------------------------------------------------------------

  const el = (tag, attrs = {}, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) if (k === "class") e.className = v; else e.setAttribute(k, v);
    for (const k of kids) e.append(k);
    return e;
  };
  function canvas(px, cls = "") {       // px × px on the page whatever the theme's image rules say
    return el("canvas", { width: px, height: px, class: cls, style: `width:${px}px;height:${px}px` });
  }
  // Draw an H×W array (values already in [0, 1] or RGB triples) into a canvas, nearest-neighbour, scaled up.
  function paint(cv, H, W, pixel) {
    const small = document.createElement("canvas");
    small.width = W; small.height = H;
    const ctx = small.getContext("2d"), img = ctx.createImageData(W, H);
    for (let k = 0; k < H * W; k++) {
      const [r, g, b] = pixel(k);
      img.data.set([r, g, b, 255], 4 * k);
    }
    ctx.putImageData(img, 0, 0);
    const big = cv.getContext("2d");
    big.imageSmoothingEnabled = false;
    big.clearRect(0, 0, cv.width, cv.height);
    big.drawImage(small, 0, 0, cv.width, cv.height);
  }
  // An h × w patch's canvas: k·w × k·h pixels with k = floor(96 / max(h, w)), so its aspect is kept (and it is ≥ 64 px).
  function fitPatch(cv, h, w) {
    const k = Math.floor(96 / Math.max(h, w));
    cv.width = k * w; cv.height = k * h; cv.style.width = `${k * w}px`; cv.style.height = `${k * h}px`;
  }
  const blank = (...cvs) => cvs.forEach((cv) => cv.getContext("2d").clearRect(0, 0, cv.width, cv.height));
  const grayPx = (a, scale = 1, offset = 0) => (k) => { const v = Math.round(255 * Math.min(1, Math.max(0, a[k] * scale + offset))); return [v, v, v]; };
  function magma(t) {                                    // matplotlib's magma at 5 stops, linearly between
    const s = [[0, 0, 4], [81, 18, 124], [183, 55, 121], [252, 137, 97], [252, 253, 191]];
    const x = Math.min(1, Math.max(0, t)) * 4, i = Math.min(3, Math.floor(x)), f = x - i;
    return s[i].map((v, j) => Math.round(v + f * (s[i + 1][j] - v)));
  }
  const hex = (h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));

  function build(root, net, D) {
    const state = { image: new Float32Array(SIDE * SIDE), target: null, layer: "relu1", picked: null, sq: null,
      size: 8, stroke: null /* the last brush position while the pointer is down */, note: "" };
    const isEmpty = () => state.image.every((v) => v === 0);
    const status = el("div", { class: "zl-status", role: "status" });
    const say = (text, kind = "info") => { status.textContent = text; status.dataset.kind = kind; };

    // Input: a drawing canvas, a test image, or a file
    const draw = canvas(196, "zl-draw");
    const samples = el("select", { class: "zl-sample", "aria-label": "a Fashion-MNIST test image" },
      el("option", { value: "" }, "a test image…"));
    const imgs = Uint8Array.from(atob(D.samples.images), (c) => c.charCodeAt(0));
    D.samples.labels.forEach((y, k) => samples.append(el("option", { value: k },
      `#${D.samples.indices[k]}: ${D.classes[y]}`)));
    const file = el("input", { type: "file", accept: "image/*", class: "zl-file", "aria-label": "an image file" });
    const clear = el("button", { class: "zl-clear" }, "clear");
    const probs = el("div", { class: "zl-probs" });
    root.append(el("div", { class: "zl-row" },
      el("div", { class: "zl-col" }, el("div", { class: "zl-cap" }, "1. Draw a garment (white on black), or pick one"),
        draw, el("div", { class: "zl-controls" }, clear, samples), el("div", { class: "zl-controls" }, file)),
      el("div", { class: "zl-col zl-grow" }, el("div", { class: "zl-cap" }, "2. ZFNet-small's class probabilities"),
        probs)), status);

    // Feature maps, one layer at a time
    const tabs = el("div", { class: "zl-tabs", role: "tablist" }), grid = el("div", { class: "zl-grid" });
    const mapCanvases = {};
    for (const l of LAYERS) {
      const b = el("button", { role: "tab", "data-layer": l }, `layer ${l.slice(-1)} (${l})`);
      b.onclick = () => { state.layer = l; refresh(); };
      tabs.append(b);
    }
    const projCap = el("div", { class: "zl-cap" }, "4. Click a map: its strongest unit, projected down by the deconvnet");
    const projImg = canvas(140, "zl-proj"), projRec = canvas(140, "zl-proj");
    const projPatch = canvas(96, "zl-proj zl-patch"), projPatchRec = canvas(96, "zl-proj zl-patch");
    const projText = el("div", { class: "zl-small zl-projtext" });
    root.append(el("div", { class: "zl-cap" }, "3. The feature maps after each ReLU (white: the layer's largest value)"),
      tabs, grid, projCap, el("div", { class: "zl-row" },
        el("figure", {}, projImg, el("figcaption", {}, "the image, unit's field boxed")),
        el("figure", {}, projRec, el("figcaption", {}, "deconvnet projection")),
        el("figure", {}, projPatch, el("figcaption", {}, "image patch")),
        el("figure", {}, projPatchRec, el("figcaption", {}, "projection, same patch"))), projText);

    // Occlusion
    const occ = canvas(196, "zl-occ"), occP = el("div", { class: "zl-small zl-occp" });
    const sizeIn = el("input", { type: "range", min: 3, max: 14, value: 8, class: "zl-size", "aria-label": "occluder side" });
    const sizeLabel = el("span", {}, "8 px");
    const run2 = el("button", { class: "zl-run2" }, "map, step 2 (196 squares)");
    const run1 = el("button", { class: "zl-run1" }, "map, step 1 (784 squares)");
    const mapP = canvas(196, "zl-occmap"), mapTop = canvas(196, "zl-occmap"), occText = el("div", { class: "zl-small zl-occtext" });
    root.append(el("div", { class: "zl-cap" }, "5. Occlusion (Fig. 7): move the gray square over the image"),
      el("div", { class: "zl-row" },
        el("figure", {}, occ, el("figcaption", {}, occP)),
        el("figure", {}, mapP, el("figcaption", {}, "p(target) for each square position")),
        el("figure", {}, mapTop, el("figcaption", {}, "most probable class there"))),
      el("div", { class: "zl-controls" }, "square side ", sizeIn, sizeLabel, run2, run1), occText);

    // --- drawing and input
    function dab(y, x, erase) {                       // a soft round brush centred at (y, x), in pixels
      for (let i = Math.floor(y - 2); i <= Math.ceil(y + 2); i++) for (let j = Math.floor(x - 2); j <= Math.ceil(x + 2); j++) {
        if (i < 0 || j < 0 || i >= SIDE || j >= SIDE) continue;
        const k = Math.exp(-((i - y) ** 2 + (j - x) ** 2) / 1.2), p = i * SIDE + j;
        state.image[p] = erase ? state.image[p] * (1 - k) : Math.min(1, state.image[p] + 0.6 * k);
      }
    }
    // A stroke: dabs every half pixel from the last position to this one, so that a fast stroke is continuous.
    function brush(ev, erase) {
      const r = draw.getBoundingClientRect();
      const y = ((ev.clientY - r.top) / r.height) * SIDE - 0.5, x = ((ev.clientX - r.left) / r.width) * SIDE - 0.5;
      const [y0, x0] = state.stroke ?? [y, x], n = Math.max(1, Math.ceil(2 * Math.hypot(y - y0, x - x0)));
      for (let t = 1; t <= n; t++) dab(y0 + ((y - y0) * t) / n, x0 + ((x - x0) * t) / n, erase);
      state.stroke = [y, x];
      newImage(null, "");
    }
    const endStroke = () => { state.stroke = null; };
    draw.addEventListener("pointerdown", (e) => { draw.setPointerCapture(e.pointerId); endStroke(); brush(e, e.button === 2 || e.shiftKey); });
    draw.addEventListener("pointermove", (e) => { if (state.stroke) brush(e, e.buttons === 2 || e.shiftKey); });
    for (const end of ["pointerup", "pointercancel", "lostpointercapture"]) draw.addEventListener(end, endStroke);
    draw.addEventListener("contextmenu", (e) => e.preventDefault());
    clear.onclick = () => { state.image.fill(0); newImage(null, ""); };
    samples.onchange = () => {
      if (samples.value === "") return;
      const k = +samples.value;
      for (let p = 0; p < SIDE * SIDE; p++) state.image[p] = imgs[k * SIDE * SIDE + p] / 255;
      newImage(D.samples.labels[k], `test image #${D.samples.indices[k]}, a ${D.classes[D.samples.labels[k]]}`);
    };
    file.onchange = () => {
      const f = file.files[0];
      if (!f) return;
      const reader = new FileReader();
      reader.onload = () => {
        const img = new Image();
        img.onerror = () => say(`“${f.name}” is not an image the browser can read (${f.type || "unknown type"}): nothing changed.`, "error");
        img.onload = () => { readImage(img, f.name); };
        img.src = reader.result;
      };
      reader.onerror = () => say(`Could not read “${f.name}”.`, "error");
      reader.readAsDataURL(f);
    };
    function readImage(img, name) {
      const W = img.naturalWidth, H = img.naturalHeight;
      if (!W || !H) { say(`“${name}” has no pixels.`, "error"); return; }
      const big = document.createElement("canvas");
      big.width = W; big.height = H;
      const g = big.getContext("2d");
      g.drawImage(img, 0, 0);
      const px = g.getImageData(0, 0, W, H).data;
      let colour = false, transparent = false, border = 0, nb = 0;
      const gray = new Float32Array(W * H);
      for (let k = 0; k < W * H; k++) {               // composited on white (transparent is white), gray by luma
        const a = px[4 * k + 3] / 255, [r, gg, b] = [0, 1, 2].map((c) => px[4 * k + c] * a + 255 * (1 - a));
        transparent ||= a < 1;
        colour ||= r !== gg || gg !== b;
        gray[k] = (0.299 * r + 0.587 * gg + 0.114 * b) / 255;
        const i = Math.floor(k / W), j = k % W;
        if (i === 0 || j === 0 || i === H - 1 || j === W - 1) { border += gray[k]; nb++; }
      }
      const invert = border / nb > 0.5;               // Fashion-MNIST: a light garment on black
      const v = (i, j) => (invert ? 1 - gray[i * W + j] : gray[i * W + j]);
      const s = Math.max(W, H), oy = (s - H) / 2, ox = (s - W) / 2;  // centred in an s × s square, black around
      if (s < SIDE) {                                 // smaller than 28 × 28: enlarged, nearest neighbour
        for (let I = 0; I < SIDE; I++) for (let J = 0; J < SIDE; J++) {
          const i = Math.floor(((I + 0.5) * s) / SIDE - oy), j = Math.floor(((J + 0.5) * s) / SIDE - ox);
          state.image[I * SIDE + J] = i >= 0 && j >= 0 && i < H && j < W ? v(i, j) : 0;
        }
      } else {                                        // 28 × 28 or larger: area-averaged
        const out = new Float32Array(SIDE * SIDE), cnt = new Float32Array(SIDE * SIDE);
        for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) {
          const p = Math.min(SIDE - 1, Math.floor(((i + oy) * SIDE) / s)) * SIDE + Math.min(SIDE - 1, Math.floor(((j + ox) * SIDE) / s));
          out[p] += v(i, j); cnt[p]++;
        }
        for (let p = 0; p < SIDE * SIDE; p++) state.image[p] = cnt[p] ? out[p] / cnt[p] : 0;
      }
      const did = [W !== SIDE || H !== SIDE ? `${s < SIDE ? "enlarged (nearest neighbour)" : "resized"} from ${W}×${H} to ` +
        `28×28${W !== H ? " (centred on a black square)" : ""}` : "", transparent ? "transparent pixels taken as white" : "",
        colour ? "converted from colour to gray" : "", invert ? "inverted (its border was light)" : ""].filter(Boolean);
      newImage(null, `“${name}”` + (did.length ? `: ${did.join(", ")}` : ""));
      say(`Your image ${state.note}. The network was trained on Fashion-MNIST: centred garments, light on black.`);
    }
    // The image changed (drawn, cleared, picked, loaded): its target and note; the occlusion map is of the old one.
    function newImage(target, note) {
      state.target = target; state.note = note;
      if (target === null) samples.value = "";
      dropMap("The image changed: compute the map again with the buttons above.");
      schedule();
    }
    function dropMap(why) { blank(mapP, mapTop); occText.textContent = why; }

    // --- computing and drawing
    let pending = false;
    function schedule() { if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; refresh(); }); } }
    function refresh() {
      paint(draw, SIDE, SIDE, grayPx(state.image));
      for (const b of tabs.children) b.setAttribute("aria-selected", b.dataset.layer === state.layer);
      if (isEmpty()) {                                   // panels 3 to 5 blank: nothing to compute on
        probs.replaceChildren(el("div", { class: "zl-small" }, "The canvas is empty: draw a garment or pick a test image."));
        grid.replaceChildren(); blank(projImg, projRec, projPatch, projPatchRec, occ, mapP, mapTop);
        projText.textContent = occP.textContent = occText.textContent = "";
        say("The canvas is empty: draw a garment with the mouse (shift or the right button erases), pick a test " +
          "image, or open an image file.", "warn");
        return;
      }
      const t0 = performance.now();
      const out = tf.tidy(() => {
        const o = forward(net, D, tf.tensor4d(state.image, [1, SIDE, SIDE, 1]), true);
        const r = { p: tf.softmax(o.logits).dataSync() };
        for (const l of LAYERS) r[l] = { data: o[l].dataSync(), shape: o[l].shape.slice(1) };
        return r;
      });
      const ms = performance.now() - t0;
      const best = out.p.indexOf(Math.max(...out.p));
      probs.replaceChildren(...D.classes.map((name, c) => el("div", { class: "zl-bar" + (c === best ? " zl-best" : "") },
        el("span", { class: "zl-name" }, name + (c === state.target ? " (true)" : "")),
        el("span", { class: "zl-track" }, el("span", { class: "zl-fill", style: `width:${(100 * out.p[c]).toFixed(1)}%` })),
        el("span", { class: "zl-val" }, out.p[c].toFixed(3)))), el("div", { class: "zl-small" },
        `forward pass with every layer's maps: ${ms.toFixed(1)} ms`));
      // maps of the chosen layer, scaled by the layer's largest value
      const { data, shape: [H, W, C] } = out[state.layer];
      let top = 0;
      for (const v of data) top = Math.max(top, v);
      if (!mapCanvases[state.layer]) mapCanvases[state.layer] = Array.from({ length: C }, (_, c) => {
        const cv = canvas(56, "zl-map"); cv.title = `${state.layer}, map ${c}`;
        cv.onclick = () => { state.picked = { layer: state.layer, channel: c }; schedule(); };
        return cv;
      });
      const cvs = mapCanvases[state.layer];
      grid.replaceChildren(...cvs);
      cvs.forEach((cv, c) => {
        paint(cv, H, W, (k) => { const v = Math.round(255 * (top > 0 ? data[k * C + c] / top : 0)); return [v, v, v]; });
        cv.classList.toggle("zl-picked", !!state.picked && state.picked.layer === state.layer && state.picked.channel === c);
      });
      if (top === 0) say(`Every map of ${state.layer} is zero for this image.`, "warn");
      else if (state.note) say(`Showing ${state.note}.`);
      else say("Your drawing. Draw on, pick a test image, or open an image file.");
      drawProjection();
      drawOcclusion();
    }
    function strongestMap(layer) {
      const o = tf.tidy(() => tf.argMax(tf.max(forward(net, D, tf.tensor4d(state.image, [1, SIDE, SIDE, 1]), true)[layer],
        [0, 1, 2])).dataSync()[0]);
      return o;
    }
    function drawProjection() {
      blank(projImg, projRec, projPatch, projPatchRec);
      if (!state.picked) { projText.textContent = "No map picked yet."; return; }
      const { layer, channel } = state.picked, t0 = performance.now();
      const pr = project(net, D, state.image, layer, channel), ms = performance.now() - t0;
      paint(projImg, SIDE, SIDE, grayPx(state.image));
      if (!(pr.value > 0)) {  // no unit to box, no patch to cut
        projText.textContent = `${layer}, map ${channel} is zero everywhere for this image: there is nothing to project.`;
        return;
      }
      const g = D.geometry[layer], [ui, uj] = pr.unit;
      const r0 = ui * g.jump - g.padding, c0 = uj * g.jump - g.padding;   // the unit's receptive field
      const box = [Math.max(r0, 0), Math.max(c0, 0), Math.min(r0 + g.size, SIDE), Math.min(c0 + g.size, SIDE)];
      let m = 0;
      for (const v of pr.image) m = Math.max(m, Math.abs(v));
      const half = m > 0 ? 0.5 / m : 0;                 // gray 0, white +m, black -m
      paint(projRec, SIDE, SIDE, grayPx(pr.image, half, 0.5));
      const crop = (a, scale, offset) => (k) => {
        const w = box[3] - box[1];
        return grayPx(a, scale, offset)((box[0] + Math.floor(k / w)) * SIDE + box[1] + (k % w));
      };
      const ph = box[2] - box[0], pw = box[3] - box[1];
      fitPatch(projPatch, ph, pw); fitPatch(projPatchRec, ph, pw);
      paint(projPatch, ph, pw, crop(state.image, 1, 0));
      paint(projPatchRec, ph, pw, crop(pr.image, half, 0.5));
      for (const cv of [projImg, projRec]) {
        const ctx = cv.getContext("2d"), s = cv.width / SIDE;
        ctx.strokeStyle = "#e33"; ctx.lineWidth = 2;
        ctx.strokeRect(box[1] * s, box[0] * s, (box[3] - box[1]) * s, (box[2] - box[0]) * s);
      }
      const cut = ph < g.size || pw < g.size;
      projText.textContent = `${layer}, map ${channel}: strongest unit at (${ui}, ${uj}), activation ` +
        `${pr.value.toFixed(3)}; its field is ${g.size}×${g.size} pixels${cut ? `, cut at the border to ${ph}×${pw}` : ""}. ` +
        `Projection in ${ms.toFixed(1)} ms, on its own colour scale: gray 0, white its largest absolute value ` +
        `(${m.toPrecision(3)}), black minus that.`;
    }
    // The occlusion target: a test image's true class, else the most probable class of the whole, unoccluded image.
    const targetIs = () => (state.target === null ? "the most probable class of the whole, unoccluded image" : "the true class");
    function drawOcclusion() {
      const p0 = probabilities(net, D, state.image);
      const t = state.target ?? p0.indexOf(Math.max(...p0));
      let shown = state.image;
      if (state.sq) shown = occlude(state.image, state.sq[0], state.sq[1], state.size, D.gray);
      paint(occ, SIDE, SIDE, grayPx(shown));
      const p = state.sq ? probabilities(net, D, shown) : p0, top = p.indexOf(Math.max(...p));
      occP.textContent = `p(${D.classes[t]}, ${targetIs()}) = ${p[t].toFixed(3)}` + (state.sq
        ? ` with the square at (${state.sq[0]}, ${state.sq[1]}), ${p0[t].toFixed(3)} without. Most probable with ` +
          `the square: ${D.classes[top]} (${p[top].toFixed(3)}).`
        : " (no square yet).");
    }
    function occMove(ev) {
      if (isEmpty()) return;                             // an empty canvas: nothing to occlude
      const r = occ.getBoundingClientRect();
      state.sq = [Math.min(SIDE - 1, Math.max(0, Math.floor(((ev.clientY - r.top) / r.height) * SIDE))),
        Math.min(SIDE - 1, Math.max(0, Math.floor(((ev.clientX - r.left) / r.width) * SIDE)))];
      drawOcclusion();
    }
    occ.addEventListener("pointermove", occMove);
    occ.addEventListener("pointerdown", occMove);
    sizeIn.oninput = () => {
      state.size = +sizeIn.value; sizeLabel.textContent = `${state.size} px`;
      dropMap(`The square's side is now ${state.size} px: compute the map again.`);
      if (!isEmpty()) drawOcclusion();
    };
    function runMap(stride) {
      if (isEmpty()) { say("The canvas is empty: there is nothing to occlude.", "warn"); return; }
      const t0 = performance.now();
      const o = occlusion(net, D, state.image, { size: state.size, stride, target: state.target });
      const ms = performance.now() - t0;
      paint(mapP, o.side, o.side, (k) => magma(o.prob[k]));
      paint(mapTop, o.side, o.side, (k) => hex(TAB10[o.top[k]]));
      let lo = 0;
      o.prob.forEach((v, k) => { if (v < o.prob[lo]) lo = k; });
      const seen = [...new Set(o.top)].map((c) => `<span style="color:${TAB10[c]}">■</span> ${D.classes[c]}`);
      occText.innerHTML = `${o.side}×${o.side} squares of ${state.size} px at step ${stride} in ${ms.toFixed(0)} ms. ` +
        `p(${D.classes[o.target]}, ${targetIs()}) from ${Math.min(...o.prob).toFixed(3)} (square at ` +
        `${o.rows[Math.floor(lo / o.side)]}, ${o.rows[lo % o.side]}) to ${Math.max(...o.prob).toFixed(3)}; colour scale ` +
        `magma, black 0, pale yellow 1. Classes seen: ${seen.join(", ")}.`;
    }
    run2.onclick = () => runMap(2);
    run1.onclick = () => runMap(1);

    // first state: the first test image; layer 3's strongest map picked; the square on the image; a map at step 2
    samples.value = "0"; samples.onchange();
    state.layer = "relu3";
    state.picked = { layer: "relu3", channel: strongestMap("relu3") };
    state.sq = [14, 14];
    refresh();
    runMap(2);
    say(`ZFNet-small (${D.provenance.name}, epoch ${D.provenance.epoch}, test accuracy ${(100 * D.provenance.test_acc).toFixed(2)} %) ` +
      `runs in this page on tensorflow.js's ${tf.getBackend()} backend. Showing ${state.note}.`);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Start: check the browser, set up the WebAssembly backend from data: URLs, build the page
  // ---------------------------------------------------------------------------------------------------------
  async function start() {
    const D = window.ZFNET_LIVE;
    if (typeof WebAssembly !== "object") throw new Error("This browser has no WebAssembly, which the live network needs.");
    if (!window.tf || !tf.wasm || !window.TFJS_WASM_BINARIES) throw new Error("tensorflow.js did not load.");
    if (!D) throw new Error("The network's weights (zfnet-live-data.js) did not load: build the book with `make book`.");
    const bin = window.TFJS_WASM_BINARIES;
    const backend = new URLSearchParams(location.search).get("backend") || "wasm";
    if (backend === "wasm") {
      tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false); // threads need cross-origin isolation: never here
      tf.wasm.setWasmPaths({ "tfjs-backend-wasm.wasm": bin["tfjs-backend-wasm.wasm"],
        "tfjs-backend-wasm-simd.wasm": bin["tfjs-backend-wasm-simd.wasm"],
        "tfjs-backend-wasm-threaded-simd.wasm": bin["tfjs-backend-wasm-simd.wasm"] });
    }
    if (!(await tf.setBackend(backend))) throw new Error(`tensorflow.js could not start its ${backend} backend.`);
    await tf.ready();
    const net = loadNet(D);
    const api = {
      backend: tf.getBackend(), data: D,
      forward: (image) => tf.tidy(() => {
        const o = forward(net, D, tf.tensor4d(Float32Array.from(image), [1, SIDE, SIDE, 1]), true);
        const r = { logits: Array.from(o.logits.dataSync()) };
        for (const l of LAYERS) r[l] = Array.from(tf.transpose(o[l], [0, 3, 1, 2]).dataSync()); // CHW
        return r;
      }),
      project: (image, layer, channel) => {
        const p = project(net, D, Float32Array.from(image), layer, channel);
        return { image: Array.from(p.image), unit: p.unit, value: p.value };
      },
      occlusion: (image, opts) => {
        const o = occlusion(net, D, Float32Array.from(image), opts || {});
        return { prob: Array.from(o.prob), top: Array.from(o.top), rows: o.rows, target: o.target };
      },
      time: (what, reps = 10, opts = {}) => {     // median milliseconds, for bench/bench_live.py
        const img = new Float32Array(SIDE * SIDE);
        const imgs = Uint8Array.from(atob(D.samples.images), (c) => c.charCodeAt(0));
        for (let p = 0; p < SIDE * SIDE; p++) img[p] = imgs[p] / 255;
        const run = { forward: () => api.forward(img), project: () => project(net, D, img, opts.layer || "relu5", opts.channel || 0),
          occlusion: () => occlusion(net, D, img, opts) }[what];
        run();                                    // warm-up
        const t = [];
        for (let k = 0; k < reps; k++) { const t0 = performance.now(); run(); t.push(performance.now() - t0); }
        return t.sort((a, b) => a - b)[Math.floor(reps / 2)];
      },
    };
    window.zfnetLive = api;
    const root = document.getElementById("zfnet-live");
    if (root) build(root, net, D);
    return api;
  }

  window.zfnetLiveReady = start().catch((err) => {
    const root = document.getElementById("zfnet-live");
    if (root) root.replaceChildren(el("div", { class: "zl-status", "data-kind": "error" },
      `The live network cannot run here: ${err.message || err}`));
    throw err;
  });
})();
