#!/usr/bin/env bash
# The system packages some tests need: Xvfb and the X libraries Qt needs (the napari tier runs under
# xvfb-run), ImageJ 1.x (Debian's imagej: /usr/share/java/ij.jar; the ImageJ plugin's tests run it
# in batch mode under Xvfb) and Groovy (the Fiji script's test runs it with stubs for Fiji's TensorFlow).
#
#   scripts/install-test-packages.sh STAMP    writes STAMP when xvfb-run, groovy and ij.jar are there
#
# On Debian/Ubuntu as root (CI) it installs the packages with apt-get. Elsewhere it says what to
# install and exits 0: those tests then skip with that reason instead of failing the build.
set -uo pipefail
stamp=${1:?usage: install-test-packages.sh STAMP}
packages=(xvfb xauth libgl1 libegl1 libgl1-mesa-dri libdbus-1-3 libfontconfig1 libxkbcommon-x11-0 libxcb-icccm4
    libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0
    libxcb-cursor0 imagej groovy)

ready() { command -v xvfb-run >/dev/null && command -v groovy >/dev/null && [[ -f /usr/share/java/ij.jar ]]; }

if ! ready; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "install-test-packages: installing ${packages[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${packages[@]}" >/dev/null || echo "install-test-packages: apt-get failed; the napari and ImageJ tests will skip"
    else
        echo "install-test-packages: xvfb-run or ImageJ not found and cannot install them here (needs root and" \
            "apt-get); install ${packages[*]} to run the napari and ImageJ tests, which skip without them"
    fi
fi
ready && touch "$stamp"
exit 0
