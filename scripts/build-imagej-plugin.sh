#!/usr/bin/env bash
# Build the ImageJ plugin, imagej/focusnet_.jar, from imagej/src against ImageJ's ij.jar.
#
#   scripts/build-imagej-plugin.sh [OUT.jar]     default: imagej/focusnet_.jar
#
# Java 8 bytecode (Fiji still ships Java 8), the shipped model (focusnet.json and imagej-model.properties
# of focusnet/models/default-bundle.zip) and the sources inside, fixed entry dates: the same sources and JDK
# give the same bytes, which tests/integration/test_imagej.py checks against the committed jar.
# ij.jar: $IJ_JAR, else Debian's /usr/share/java/ij.jar (apt-get install imagej).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/imagej/focusnet_.jar}
ij=${IJ_JAR:-/usr/share/java/ij.jar}
[[ -f $ij ]] || { echo "build-imagej-plugin: $ij not found: install ImageJ (apt-get install imagej) or set IJ_JAR" >&2; exit 1; }
command -v javac >/dev/null || { echo "build-imagej-plugin: javac not found: install a JDK (apt-get install default-jdk)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/jar/focusnet/default-bundle" "$work/jar/src/focusnet"
javac --release 8 -encoding UTF-8 -Xlint:all,-options -Werror -cp "$ij" -d "$work/jar" "$root"/imagej/src/focusnet/*.java
cp "$root/imagej/plugins.config" "$work/jar/"
cp "$root"/imagej/src/focusnet/*.java "$work/jar/src/focusnet/"
(cd "$work/jar/focusnet/default-bundle" && jar xf "$root/focusnet/models/default-bundle.zip" focusnet.json \
    imagej-model.properties)
version=$(sed -n 's/.*VERSION = "\(.*\)";/\1/p' "$root/imagej/src/focusnet/Measure_Focus.java")
printf 'Implementation-Title: focusnet\nImplementation-Version: %s\nBuild-Jdk-Spec: %s\n' "$version" \
    "$(javac -version 2>&1 | sed 's/javac \([0-9]*\).*/\1/')" > "$work/manifest.txt"
# Entries in a fixed order with a fixed date: reproducible bytes.
(cd "$work/jar" && find . -type f | LC_ALL=C sort > "$work/entries")
(cd "$work/jar" && jar --create --date=1980-01-02T00:00:00Z --file "$work/out.jar" --manifest "$work/manifest.txt" \
    @"$work/entries")
mv "$work/out.jar" "$out"
echo "build-imagej-plugin: wrote $out"
