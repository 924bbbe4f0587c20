"""ONNX in other processes: measuring in the focusnet[onnx] environment without TensorFlow, the benchmark.

Export, parity and the loader's refusals are tested in tests/unit/test_onnx.py.
"""

import csv
import json
import subprocess

import numpy as np
import pytest

from conftest import REPO
from focusnet.images import read_image
from focusnet.inference import predict_image
from focusnet.loader import load_model

pytestmark = pytest.mark.tensorflow  # ONNX against TensorFlow (also on the latest Python)

ONNX_PYTHON = REPO / ".venv-onnx" / "bin" / "python"


@pytest.mark.skipif(not ONNX_PYTHON.exists(),
                    reason="the focusnet[onnx] environment (.venv-onnx) is built by make test")
def test_measuring_needs_no_tensorflow(tmp_path):
    """A venv with focusnet[onnx] only: it picks the shipped ONNX model and matches TensorFlow within 1e-5."""
    no_tf = subprocess.run([str(ONNX_PYTHON), "-c", "import tensorflow"], capture_output=True, text=True)
    assert no_tf.returncode != 0 and "No module named 'tensorflow'" in no_tf.stderr
    images = REPO / "examples" / "images"
    result = subprocess.run([str(ONNX_PYTHON), "-m", "focusnet", "predict", str(images), "--csv",
                             str(tmp_path / "onnx.csv")], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "with onnx default.onnx" in result.stdout
    with open(tmp_path / "onnx.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    tensorflow_model = load_model()
    for row in rows:
        expected = predict_image(read_image(row["image"]), tensorflow_model)
        assert int(row["defocus_level"]) == expected.defocus_level
        np.testing.assert_allclose([float(row[f"prob_{level}"]) for level in range(11)], expected.distribution,
                                   atol=1e-5)


@pytest.mark.skipif(not ONNX_PYTHON.exists(),
                    reason="the focusnet[onnx] environment (.venv-onnx) is built by make test")
@pytest.mark.parametrize("model", ["focusnet/models/default-bundle.zip", "focusnet/models/default"])
def test_a_tensorflow_model_without_tensorflow_says_what_runs_instead(tmp_path, model):
    image = REPO / "examples" / "images" / "BBBC006_z_aligned__a07__s1__w1_10.tif"
    result = subprocess.run([str(ONNX_PYTHON), "-m", "focusnet", "predict", str(image), "--model", str(REPO / model),
                             "--csv", str(tmp_path / "f.csv")], capture_output=True, text=True, timeout=600)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "TensorFlow is not installed here" in result.stderr and "ONNX model" in result.stderr
    assert not (tmp_path / "f.csv").exists()


def test_the_backend_benchmark_runs(tmp_path):
    import sys

    out = tmp_path / "onnx.json"
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "onnxruntime_vs_tensorflow.py"), "--smoke",
                             "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    backends = {row["backend"]: row for row in report["backends"]}
    assert backends["tensorflow"]["tensorflow_imported"] and not backends["onnxruntime"]["tensorflow_imported"]
    assert all(row["seconds_per_image"] > 0 and row["peak_mb"] > 0 for row in backends.values())
    assert report["max_probability_difference"] < 1e-3


@pytest.mark.skipif(not ONNX_PYTHON.exists(),
                    reason="the focusnet[onnx] environment (.venv-onnx) is built by make test")
def test_refocusing_needs_no_tensorflow(tmp_path, in_focus_image):
    """focusnet refocus where TensorFlow is not installed: the ONNX classifier decides, as TensorFlow's does."""
    from focusnet.images import write_tiff
    from focusnet.refocus.model import load_refocus_model
    from focusnet.refocus.restore import refocus_image
    from focusnet.simulate import degrade

    images = tmp_path / "images"
    images.mkdir()
    defocused = degrade(in_focus_image, 3, optics=load_refocus_model().optics, seed=4)
    write_tiff(images / "blurred.tif", defocused)
    result = subprocess.run([str(ONNX_PYTHON), "-m", "focusnet", "refocus", str(images), "--out", str(tmp_path / "out"),
                             "--csv", str(tmp_path / "refocus.csv")], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "refocus.csv", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    expected = refocus_image(defocused)
    assert row["refocused"] == "yes" and int(row["defocus_level_after"]) == expected.after.defocus_level
    refocused = read_image(tmp_path / "out" / "blurred_refocused.tif")
    assert np.abs(refocused.astype(int) - expected.image.astype(int)).max() <= 1
