#!/usr/bin/env bash
# Installs the Debian packages the course needs, only those that are missing, with apt-get.
#   data    -> dataset-fashion-mnist (the IDX files under /usr/share/datasets/fashion-mnist)
#              tuxpaint-stamps-default (cut-out photos under /usr/share/tuxpaint/stamps)
#              mate-backgrounds, plasma-workspace-wallpapers (nature and scene photos, cnnlib.photos)
#   browser -> chromium (headless, for the rendered-book test)
# Data that is already there (in Debian's folders, or where a CNNLIB_* variable points: README, "Data") needs
# no apt at all. When something is missing and apt-get cannot install it, this script exits non-zero, names
# the package and says how to get the data by hand.
set -euo pipefail
what=${1:?usage: system_deps.sh data|browser}

by_hand() {
  cat >&2 <<EOF
system_deps: to get the data by hand, without apt: download the .deb of $* from packages.debian.org
  (architecture "all"), unpack each with
      dpkg-deb -x FILE.deb ~/cnn-data        (or: ar x FILE.deb && tar xf data.tar.*)
  and point the course at the folders (README, "Data"):
      export CNNLIB_FASHION_MNIST=~/cnn-data/usr/share/datasets/fashion-mnist
      export CNNLIB_TUXPAINT_STAMPS=~/cnn-data/usr/share/tuxpaint/stamps
      export CNNLIB_MATE_NATURE=~/cnn-data/usr/share/backgrounds/mate/nature
      export CNNLIB_PLASMA_WALLPAPERS=~/cnn-data/usr/share/wallpapers
EOF
}

apt_install() {  # apt_install PACKAGE...: 0 when installed, 1 (after saying why) when not
  if ! command -v apt-get >/dev/null; then
    echo "system_deps: cannot install $*: apt-get is not available on this machine." >&2
    return 1
  fi
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if ! command -v sudo >/dev/null; then
      echo "system_deps: cannot install $*: not root and no sudo." >&2
      return 1
    fi
    sudo="sudo"
  fi
  if ! $sudo apt-get update -qq; then
    echo "system_deps: warning: 'apt-get update' failed; trying the package lists already on this machine." >&2
  fi
  if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@"; then
    echo "system_deps: 'apt-get install $*' failed (see apt's message above)." >&2
    return 1
  fi
}

# Each data package: its variable, its Debian folder, and a file the course reads from it.
DATA=(
  "dataset-fashion-mnist CNNLIB_FASHION_MNIST /usr/share/datasets/fashion-mnist train-images-idx3-ubyte.gz"
  "tuxpaint-stamps-default CNNLIB_TUXPAINT_STAMPS /usr/share/tuxpaint/stamps animals/mammals"
  "mate-backgrounds CNNLIB_MATE_NATURE /usr/share/backgrounds/mate/nature LadyBird.jpg"
  "plasma-workspace-wallpapers CNNLIB_PLASMA_WALLPAPERS /usr/share/wallpapers Path/contents/images"
)

missing_data() {  # prints the packages whose file is not there; fails on a variable that points nowhere useful
  local line package var folder file bad=0
  for line in "${DATA[@]}"; do
    read -r package var folder file <<<"$line"
    if [ -n "${!var:-}" ]; then
      if [ ! -e "${!var}/$file" ]; then
        echo "system_deps: $var=${!var} lacks $file (the files of $package); fix the variable or unset it." >&2
        bad=1
      fi
    elif [ ! -e "$folder/$file" ]; then
      echo "$package"
    fi
  done
  return $bad
}

case "$what" in
  data)
    missing=$(missing_data) || exit 1
    [ -z "$missing" ] && exit 0  # everything is there: no apt
    # shellcheck disable=SC2086  # one word per package
    if ! apt_install $missing; then
      echo "system_deps: the course's data is incomplete: missing $(echo $missing)." >&2
      by_hand $missing
      exit 1
    fi
    still=$(missing_data) || exit 1
    if [ -n "$still" ]; then
      echo "system_deps: apt-get ran, but the files of $(echo $still) are still missing." >&2
      by_hand $still
      exit 1
    fi ;;
  browser)
    if ! command -v chromium >/dev/null; then
      apt_install chromium || { echo "system_deps: install Chromium (the rendered-book test drives" \
        "/usr/bin/chromium) with your system's package manager." >&2; exit 1; }
    fi ;;
  *) echo "system_deps: unknown target '$what' (expected data or browser)" >&2; exit 2 ;;
esac
