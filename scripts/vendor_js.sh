#!/usr/bin/env bash
# Regenerates _vendor/: the JavaScript the built book loads instead of CDNs (the book must render offline).
#   widgets/embed-amd.js + *.woff2  <- @jupyter-widgets/html-manager (renders the stored ipywidgets state)
#   widgets/require.js              <- requirejs (the AMD loader embed-amd.js needs)
#   mathjax/tex-chtml.js + fonts    <- mathjax v3 (renders $...$ and $$...$$)
# Needs npm and a registry; run it only to change a version, then commit _vendor/ (and update its README.md).
# Leaves _vendor/README.md and _vendor/widgets-setup.js (written for the book) alone.
# Usage: scripts/vendor_js.sh
set -euo pipefail

HTML_MANAGER=1.0.15   # @jupyter-widgets/controls ^5.0.13, as jupyterlab_widgets 3.0.x (ipywidgets 8.1.x)
REQUIREJS=2.3.8
MATHJAX=3.2.2         # sphinx.ext.mathjax speaks the MathJax 3 configuration

root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/_vendor
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cd "$tmp"
npm pack --silent "@jupyter-widgets/html-manager@$HTML_MANAGER" "requirejs@$REQUIREJS" "mathjax@$MATHJAX" >/dev/null
for name in html-manager requirejs mathjax; do
  mkdir "$name" && tar xzf ./*"$name"-*.tgz -C "$name" --strip-components=1
done

rm -rf "$out/widgets" "$out/mathjax"
mkdir -p "$out/widgets" "$out/mathjax/output/chtml/fonts" "$out/mathjax/input/tex"

# Widgets: the AMD bundle and the Font Awesome woff2 fonts it references (browsers take woff2 first).
cp html-manager/dist/embed-amd.js html-manager/dist/*.woff2 "$out/widgets/"
cp html-manager/dist/embed.js.LICENSE.txt "$out/widgets/THIRD-PARTY-NOTICES.txt"
cp requirejs/require.js "$out/widgets/"

# MathJax: the combined TeX -> CommonHTML component, its woff fonts, and the TeX extensions that
# `autoload` fetches on first use (\boldsymbol, \color, \cancel, ...). No a11y/sre (only from the menu).
mj=mathjax/es5
cp "$mj/tex-chtml.js" "$out/mathjax/"
cp mathjax/LICENSE "$out/mathjax/"
cp -r "$mj/output/chtml/fonts/woff-v2" "$out/mathjax/output/chtml/fonts/"
cp -r "$mj/input/tex/extensions" "$out/mathjax/input/tex/"
rm "$out/mathjax/input/tex/extensions/all-packages.js"

echo "vendor_js: html-manager $HTML_MANAGER, requirejs $REQUIREJS, mathjax $MATHJAX -> $out ($(du -sk "$out" | cut -f1) KB)"
