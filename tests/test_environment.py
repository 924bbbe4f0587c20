"""The environments make builds: pins, packaging, and headless CellProfiler."""

import csv
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow  # pip, subprocesses, CellProfiler

BIN = Path(sys.executable).parent


def test_installed_versions_match_the_lock():
    from importlib.metadata import version

    name = "main" if sys.version_info[:2] == (3, 9) else "latest"
    pins = {}
    for line in (REPO / "requirements" / f"{name}.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            package, pinned = line.split("==")
            pins[package] = pinned
    assert len(pins) > 10
    mismatched = {p: (v, version(p)) for p, v in pins.items() if version(p) != v}
    assert not mismatched


def test_wheel_holds_only_the_focusnet_package(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(REPO)],
        check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("focusnet-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names}
    # The shipped model travels inside the package; its training checkpoint does not.
    for required in ("config.json", "weights.npz", "README.md"):
        assert f"focusnet/models/default/{required}" in names
    assert not [name for name in names if "checkpoint" in name]
    # export/ is installed as focusnet.export, never as a top-level "export", with only what
    # `focusnet export` needs: the TF1 load check is a test helper, the Fiji script an extra.
    assert sorted(name for name in names if name.startswith("focusnet/export/")) == [
        "focusnet/export/__init__.py", "focusnet/export/bioimageio_package.py", "focusnet/export/onnxexport.py",
        "focusnet/export/savedmodel.py", "focusnet/export/targets.py"]
    assert not [name for name in names if "tf1_check" in name or name.endswith(".groovy")]
    assert any(name.endswith(".dist-info/licenses/LICENSE") or name.endswith(".dist-info/LICENSE") for name in names)
    assert "focusnet/models/default/evaluation.json" in names and "focusnet/models/default-bundle.zip" in names
    assert "focusnet/models/default.onnx" in names
    # No generic names such as export/ or plugins/ in site-packages.
    assert {name for name in top_level if not name.endswith(".dist-info")} == {"focusnet"}, top_level


@pytest.mark.cellprofiler
def test_main_environment_pins():
    import numpy
    import tensorflow as tf

    assert sys.version_info[:2] == (3, 9)
    assert tf.__version__ == "2.15.1"
    assert tuple(int(x) for x in numpy.__version__.split(".")[:2]) < (1, 25)
    import pkg_resources  # noqa: F401  (cellprofiler needs it: setuptools < 70)


@pytest.mark.cellprofiler
def test_cellprofiler_version():
    result = subprocess.run([str(BIN / "cellprofiler"), "--version"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "4.2.8.1"


@pytest.mark.cellprofiler
def test_cellprofiler_runs_a_pipeline_headless(tmp_path, in_focus_paths):
    from focusnet.images import read_image, write_tiff

    images = tmp_path / "images"
    images.mkdir()
    expected = {}
    for path in in_focus_paths[:2]:
        name = path.stem + ".tif"
        raw = read_image(path)
        write_tiff(images / name, raw)
        expected[name] = raw.astype(float).mean() / 65535
    out = tmp_path / "out"
    result = subprocess.run(
        [str(BIN / "cellprofiler"), "-c", "-r", "-p", str(REPO / "tests" / "data" / "tiny_measure_intensity.cppipe"),
         "-i", str(images), "-o", str(out)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "JAVA_TOOL_OPTIONS": "-Xmx1g"},
    )
    # CellProfiler can exit 0 after a failure: judge by the measurements it wrote.
    table = out / "Image.csv"
    assert table.is_file(), result.stderr[-3000:]
    with open(table, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["FileName_DNA"] for row in rows) == sorted(expected)
    for row in rows:
        measured = float(row["Intensity_MeanIntensity_DNA"])
        assert measured == pytest.approx(expected[row["FileName_DNA"]], rel=1e-6)
