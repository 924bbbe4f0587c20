"""Smoke runs of the benchmarks (tiny sizes): they run and report what they promise."""

import json
import subprocess
import sys

import pytest

from conftest import REPO

# Both need CellProfiler (the main environment): they use CellProfiler's MeasureImageQuality.
pytestmark = pytest.mark.cellprofiler


def test_speed_benchmark_smoke(tmp_path):
    out = tmp_path / "speed.json"
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "speed.py"), "--smoke", "--json", str(out)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    for key in ("focusnet_s", "onnx_s", "paper_arch_s", "measureimagequality_s", "plls_s", "focusnet_peak_mb",
                "cellprofiler_images_per_s"):
        assert report[key] > 0, key
    # Measured in a fresh process: the peak while measuring includes the ready state.
    assert 0 < report["focusnet_ready_mb"] <= report["focusnet_peak_mb"]
    assert "| image | patches | focusnet |" in result.stdout


@pytest.mark.shared_data  # real images of the development set
def test_accuracy_benchmark_smoke(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "accuracy.py"), "--smoke", "--out",
                             str(tmp_path)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "accuracy.json").read_text())
    assert set(report["fscore"]) == {"as imaged", "gain x0.2", "gain x5", "offset +1000"}
    for scores in list(report["fscore"].values()) + [report["real_images_fscore"]]:
        assert set(scores) == {"FocusScore", "LocalFocusScore", "Correlation", "PowerLogLogSlope", "focusnet"}
        assert all(0 <= value <= 1 for value in scores.values())
    assert len(report["real_images"]) == 13
    for name in ("accuracy.md", "fscore.png", "metric_vs_level.png"):
        assert (tmp_path / name).is_file()


def test_profile_benchmark_smoke(tmp_path):
    out = tmp_path / "profile.json"
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "profile.py"), "--smoke", "--json", str(out)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert [row["backend"] for row in rows] == ["tensorflow", "onnxruntime"]
    for row in rows:
        stages = row["stages"]
        assert stages["network"] > 0 and stages["content test"] > 0 and stages["other"] >= 0
        assert sum(stages.values()) == pytest.approx(row["total"])
