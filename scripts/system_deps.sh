#!/usr/bin/env bash
# Installs the Debian packages the course needs, only when missing and only where apt-get is usable.
#   data    -> dataset-fashion-mnist (the IDX files under /usr/share/datasets/fashion-mnist)
#              tuxpaint-stamps-default (cut-out photos under /usr/share/tuxpaint/stamps)
#              mate-backgrounds, plasma-workspace-wallpapers (nature and scene photos, cnnlib.photos)
#   browser -> chromium (headless, for the rendered-book test)
set -euo pipefail
what=${1:?usage: system_deps.sh data|browser}

apt_install() {
  if ! command -v apt-get >/dev/null; then
    echo "system_deps: apt-get not found; install '$*' with your system's package manager." >&2
    return 1
  fi
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@"
}

case "$what" in
  data)
    if [ -z "${CNNLIB_FASHION_MNIST:-}" ] && [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
      apt_install dataset-fashion-mnist || echo "system_deps: Fashion-MNIST is missing; see README (Data)." >&2
    fi
    if [ -z "${CNNLIB_TUXPAINT_STAMPS:-}" ] && [ ! -d /usr/share/tuxpaint/stamps/animals ]; then
      apt_install tuxpaint-stamps-default || echo "system_deps: the tuxpaint stamps are missing; see README (Data)." >&2
    fi
    if [ ! -d /usr/share/backgrounds/mate/nature ] || [ ! -d /usr/share/wallpapers/Path ]; then
      apt_install mate-backgrounds plasma-workspace-wallpapers || echo "system_deps: the wallpaper photos are missing; see README (Data)." >&2
    fi ;;
  browser)
    command -v chromium >/dev/null || apt_install chromium ;;
  *) echo "system_deps: unknown target '$what' (expected data or browser)" >&2; exit 2 ;;
esac
