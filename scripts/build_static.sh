#!/usr/bin/env bash
# Build the book from the outputs stored in the notebooks, without executing them
# (`make test` has just executed and checked every chapter with nbval).
# Usage: scripts/build_static.sh BIN_DIR [jupyter-book flags...]
set -euo pipefail
bin=$1; shift
rm -rf _build/html  # pages from an earlier build must not linger
mkdir -p _build
sed 's/execute_notebooks: cache/execute_notebooks: "off"/' _config.yml > _build/_config_static.yml
grep -q 'execute_notebooks: "off"' _build/_config_static.yml
"$bin/jupyter-book" build --all . --config _build/_config_static.yml "$@"
