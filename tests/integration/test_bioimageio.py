"""The bioimage.io package: `bioimageio test` on both weight formats, and the TF 1.15 load of its SavedModel."""

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from helpers import RUNTIME_PATCH_TOLERANCE

pytest.importorskip("bioimageio.core", reason="bioimageio.core is installed in the 'latest' environment (Python 3.12)")
pytestmark = pytest.mark.tensorflow  # TensorFlow SavedModels, bioimageio test runs (also on the latest Python)

BIOIMAGEIO = Path(sys.executable).parent / "bioimageio"
TF115 = REPO / ".venv-tf1.15" / "bin" / "python"
RUNS = 5


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    from focusnet.export.bioimageio_package import export_bioimageio

    return export_bioimageio(None, tmp_path_factory.mktemp("bioimageio") / "focusnet.bioimageio.zip")


def test_the_package_holds_what_the_zoo_needs(package):
    import yaml

    names = set(zipfile.ZipFile(package).namelist())
    assert {"rdf.yaml", "README.md", "cover.png", "test_input.npy", "test_output.npy", "weights.onnx",
            "tf_weights.zip"} <= names
    rdf = yaml.safe_load(zipfile.ZipFile(package).read("rdf.yaml"))
    assert rdf["format_version"].startswith("0.5") and rdf["license"] == "Apache-2.0"
    assert [axis.get("id", axis["type"]) for axis in rdf["outputs"][0]["axes"]] == ["batch", "y", "x", "channel"]
    assert rdf["outputs"][0]["axes"][1]["scale"] == 84 and len(rdf["outputs"][0]["axes"][3]["channel_names"]) == 11
    assert rdf["cite"][0]["doi"] == "10.1186/s12859-018-2087-4"
    assert np.load(zipfile.ZipFile(package).open("test_output.npy")).shape == (1, 3, 4, 11)


@pytest.mark.parametrize("weight_format", ["onnx", "tensorflow_saved_model_bundle"])
def test_bioimageio_test_passes_every_time(package, weight_format, tmp_path):
    for run in range(RUNS):
        # In a scratch folder: bioimageio.core unpacks TensorFlow weights into the working directory.
        result = subprocess.run([str(BIOIMAGEIO), "test", str(package), "--weight-format", weight_format],
                                capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert result.returncode == 0, f"run {run + 1} of {RUNS}:\n{result.stdout[-4000:]}"
        assert "passed" in result.stdout


def test_tensorflow_1_15_loads_the_serve_savedmodel(package, tmp_path):
    assert TF115.exists(), f"{TF115} missing: build it with 'make tf1-envs' (make test does)"
    with zipfile.ZipFile(package) as archive:
        archive.extract("tf_weights.zip", tmp_path)
        test_input = np.load(archive.open("test_input.npy"))
        expected = np.load(archive.open("test_output.npy"))
    np.save(tmp_path / "input.npy", test_input / np.float32(65535))  # the rdf's scale_linear preprocessing
    result = subprocess.run([str(TF115), str(REPO / "tests" / "tf1_check.py"), str(tmp_path / "tf_weights.zip"),
                             str(tmp_path / "input.npy"), str(tmp_path / "out.npz"), "serve", "serving_default",
                             "image", "probabilities"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = np.load(tmp_path / "out.npz")
    assert str(out["tensorflow_version"]).startswith("1.15")
    np.testing.assert_allclose(out["probabilities"], expected, atol=RUNTIME_PATCH_TOLERANCE)


def test_the_command_line_writes_the_package(tmp_path):
    from focusnet.cli import main

    out = tmp_path / "p.zip"
    assert main(["export", "--format", "bioimageio", "--out", str(out)]) == 0 and zipfile.is_zipfile(out)
    assert main(["export", "--format", "bioimageio", "--out", str(out)]) == 1  # exists


def test_the_refocus_package_passes_bioimageio_test(tmp_path):
    import yaml

    from focusnet.cli import main

    out = tmp_path / "refocus.zip"
    assert main(["export", "--refocus-model", "--format", "bioimageio", "--out", str(out)]) == 0
    rdf = yaml.safe_load(zipfile.ZipFile(out).read("rdf.yaml"))
    steps = [step["id"] for step in rdf["inputs"][0]["preprocessing"]]
    assert "scale_range" in steps and list(rdf["weights"]) == ["onnx"], steps
    result = subprocess.run([str(BIOIMAGEIO), "test", str(out)], capture_output=True, text=True, timeout=600,
                            cwd=tmp_path)
    assert result.returncode == 0 and "passed" in result.stdout, result.stdout[-4000:]
