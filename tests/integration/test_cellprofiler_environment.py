"""The main environment's CellProfiler: its version, and a headless run of a pipeline without the plugin."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.cellprofiler  # the main environment's CellProfiler 4.2.8.1

BIN = Path(sys.executable).parent

def test_cellprofiler_version():
    result = subprocess.run([str(BIN / "cellprofiler"), "--version"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "4.2.8.1"


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
