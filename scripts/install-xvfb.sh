#!/usr/bin/env bash
# Xvfb and the X libraries Qt needs, for the napari tier (make test-napari runs it under xvfb-run).
#
#   scripts/install-xvfb.sh STAMP    writes STAMP when xvfb-run is there (installed now or before)
#
# On Debian/Ubuntu as root (CI) it installs the packages with apt-get. Elsewhere it says what to
# install and exits 0: the napari tests then skip with that reason instead of failing the build.
set -uo pipefail
stamp=${1:?usage: install-xvfb.sh STAMP}
packages=(xvfb xauth libgl1 libegl1 libgl1-mesa-dri libdbus-1-3 libfontconfig1 libxkbcommon-x11-0 libxcb-icccm4
    libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0
    libxcb-cursor0)

if ! command -v xvfb-run >/dev/null; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "install-xvfb: installing ${packages[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${packages[@]}" >/dev/null || echo "install-xvfb: apt-get failed; the napari tests will skip"
    else
        echo "install-xvfb: xvfb-run not found and cannot install it here (needs root and apt-get); install" \
            "${packages[*]} to run the napari tests, which skip without it"
    fi
fi
command -v xvfb-run >/dev/null && touch "$stamp"
exit 0
