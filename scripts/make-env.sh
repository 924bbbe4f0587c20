#!/usr/bin/env bash
# Create one of focusnet's two virtual environments from scratch.
#
#   scripts/make-env.sh main   DIR   Python 3.9 + tensorflow-cpu 2.15.1 + headless CellProfiler 4.2.8.1
#   scripts/make-env.sh latest DIR   Python 3.12 (or 3.11) + the newest TensorFlow 2.x pinned in the lock
#   scripts/make-env.sh tf1.15 DIR   Python 3.7 + tensorflow 1.15.5 (Fiji's newest TF runtime)
#   scripts/make-env.sh tf1.12 DIR   Python 3.6 + tensorflow 1.12.3 (Fiji's default TF runtime)
#   scripts/make-env.sh lint   DIR   the linter (ruff), on Python 3.12 or 3.11
#   scripts/make-env.sh onnx   DIR   Python 3.12 (or 3.11) + focusnet[onnx], no TensorFlow
#   scripts/make-env.sh napari DIR   Python 3.12 (or 3.11) + focusnet[napari] (napari, PyQt6, onnxruntime) and
#                                    pytest-qt, no TensorFlow
#   scripts/make-env.sh onnx-py310 DIR  the same requirements on Python 3.10, only to pin its lock (the
#                                    release tests install the wheel on 3.10 with it)
#   scripts/make-env.sh cp5    DIR   Python 3.11 + CellProfiler 5 (nightly, pinned) + TensorFlow 2.15.1, headless
#   scripts/make-env.sh app    DIR   Python 3.8 + numpy 1.23 + headless CellProfiler 4.2.8.1, as the packaged
#                                    4.2 apps run; no TensorFlow and no focusnet (the tests add those)
#
# The TF1 environments only load exported bundles (tests/tf1_check.py); they
# hold no focusnet.
#
# Versions come from requirements/<name>.lock, used as pip constraints, so a
# fresh machine builds the same environment. If the lock is missing (only when
# a maintainer regenerates it on purpose) pip resolves requirements/<name>.in
# and the result is written to the lock.
#
# Downloads and built wheels go to pip's own cache (PIP_CACHE_DIR, by default ~/.cache/pip), so a
# second clone on the same machine builds its environments without downloading or compiling again.
set -euo pipefail

name=${1:?usage: make-env.sh main|latest DIR}
venv=${2:?usage: make-env.sh main|latest DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
# onnx-py310 has the requirements of onnx and a lock of its own.
requirements_in="$root/requirements/${name%-py310}.in"
lock="$root/requirements/$name.lock"
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PIP_NO_INPUT=1

die() {
    echo "make-env: $*" >&2
    exit 1
}

# Print the path of a CPython interpreter of exactly version $1 (e.g. 3.9),
# looking on PATH first and then in pyenv's versions folder.
find_python() {
    local version=$1 candidate
    local check="import sys; sys.exit(0 if '%d.%d' % sys.version_info[:2] == '$version' else 1)"
    for candidate in "python$version" "$(command -v pyenv >/dev/null && echo "$(pyenv root)/versions")"; do
        if [[ -d $candidate ]]; then
            # newest patch release first
            local found
            for found in $(ls -d "$candidate/$version".*/bin/python"$version" 2>/dev/null | sort -V -r); do
                if "$found" -c "$check" 2>/dev/null; then echo "$found"; return 0; fi
            done
        elif command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c "$check" 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

case $name in
main | app)
    if [[ $name == main ]]; then
        python=$(find_python 3.9) || die "Python 3.9 is required (CellProfiler 4.2 runs on it) and was not found.
  Install it, e.g. 'pyenv install 3.9.18' (https://github.com/pyenv/pyenv) or your OS package 'python3.9 python3.9-venv python3.9-dev', then run make again."
    else
        python=$(find_python 3.8) || die "Python 3.8 is required (the packaged CellProfiler 4.2 apps run on it) and was not found.
  Install it, e.g. 'pyenv install 3.8.18' (https://github.com/pyenv/pyenv), then run make again."
    fi
    javac=$(command -v javac) || die "A Java Development Kit (JDK 11 or 17, with javac) is required to build python-javabridge for CellProfiler and was not found.
  Install it, e.g. 'apt-get install openjdk-17-jdk-headless' (Debian/Ubuntu) or 'brew install openjdk@17' (macOS), then run make again."
    JAVA_HOME=$(dirname "$(dirname "$(readlink -f "$javac")")")
    export JAVA_HOME
    [[ -d $JAVA_HOME/include ]] || die "JDK at $JAVA_HOME has no include/ folder (a JRE, not a JDK?). Install a full JDK 17."
    ;;
tf1.15 | tf1.12)
    version=$([[ $name == tf1.15 ]] && echo 3.7 || echo 3.6)
    python=$(find_python "$version") || die "Python $version is required to prove bundles load in TensorFlow ${name#tf} (Fiji's runtime) and was not found.
  Install it, e.g. 'pyenv install $version' (https://github.com/pyenv/pyenv), then run make again."
    ;;
cp5)
    python=$(find_python 3.11 || find_python 3.10) || die "Python 3.11 or 3.10 is required for CellProfiler 5 (scipy < 1.11) and was not found.
  Install it, e.g. 'pyenv install 3.11.7', then run make again."
    ;;
latest | lint | onnx | napari)
    python=$(find_python 3.12 || find_python 3.11) || die "Python 3.12 or 3.11 is required for the '$name' environment and was not found.
  Install it, e.g. 'pyenv install 3.12.1' or your OS package 'python3.12 python3.12-venv', then run make again."
    ;;
onnx-py310)
    python=$(find_python 3.10) || die "Python 3.10 is required for the '$name' environment and was not found.
  Install it, e.g. 'pyenv install 3.10.13', then run make again."
    ;;
*)
    die "unknown environment '$name' (main, app, cp5, latest, onnx, onnx-py310, napari, tf1.15, tf1.12 or lint)"
    ;;
esac

echo "make-env: creating $venv ($name) with $python"
rm -rf "$venv"
"$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip)

constraints=()
if [[ -f $lock ]]; then
    constraints=(-c "$lock")
else
    echo "make-env: $lock is missing: resolving $requirements_in and writing a new lock"
fi

# pip 22+ no longer runs on Python 3.6; old pips cannot always tell that from an index.
"${pip[@]}" install --upgrade "${constraints[@]}" "pip$([[ $name == tf1.12 ]] && echo '<22')"
if [[ $name == main || $name == app ]]; then
    # Build prerequisites of python-javabridge, which must build without isolation.
    # The same numpy as the environment's requirements (the packaged 4.2 apps ship 1.23).
    numpy=$(grep -E '^numpy' "$requirements_in")
    "${pip[@]}" install --upgrade "${constraints[@]}" "setuptools>=64,<70" wheel "$numpy" cython
    "${pip[@]}" install "${constraints[@]}" --no-build-isolation python-javabridge==4.0.3
fi
if [[ $name == tf1.* ]]; then
    # Old wheels only: never build these from source.
    "${pip[@]}" install "${constraints[@]}" --only-binary tensorflow,numpy,grpcio,h5py,protobuf -r "$requirements_in"
else
    "${pip[@]}" install "${constraints[@]}" -r "$requirements_in"
fi
if [[ $name == main || $name == app ]]; then
    "${pip[@]}" install "${constraints[@]}" --no-deps cellprofiler==4.2.8.1 cellprofiler-core==4.2.8.1
fi
if [[ $name == cp5 ]]; then
    "${pip[@]}" install "${constraints[@]}" --no-deps cellprofiler-nightly==5.0.0.dev784
fi
if [[ $name == main || $name == latest || $name == onnx || $name == cp5 || $name == napari ]]; then
    # focusnet itself, editable; its dependencies are all installed above.
    "${pip[@]}" install --no-deps --no-build-isolation -e "$root"
fi

if [[ ! -f $lock ]]; then
    {
        echo "# Exact versions of the '$name' environment, generated by scripts/make-env.sh"
        echo "# from requirements/$(basename "$requirements_in") with $("$venv/bin/python" -V). Used as pip constraints."
        "${pip[@]}" freeze --all --exclude-editable | grep -v -E '^(focusnet|pip)=='
    } >"$lock"
    echo "make-env: wrote $lock"
fi

# cellprofiler declares wxPython and mysqlclient, deliberately left out (GUI and
# MySQL only); every other inconsistency is an error.
if ! problems=$("${pip[@]}" check 2>&1); then
    problems=$(grep -v -i -E 'requires (wxpython|mysqlclient),' <<<"$problems" || true)
    [[ -z $problems ]] || die "pip reports inconsistent requirements in $venv:
$problems"
fi
touch "$venv/.complete"
echo "make-env: $venv is ready"
