"""The release: ``python -m build`` makes a wheel and an sdist that install and measure on their own."""

import email
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from conftest import EXAMPLES, REPO, pip_environment, read_csv
from focusnet import __version__
from focusnet.contract import PAPER_DOI, SHIPPED_BUNDLE, SHIPPED_ONNX

#: The shipped models, as paths inside the package.
MODEL_FILES = [path.relative_to(REPO).as_posix() for path in (SHIPPED_BUNDLE, SHIPPED_ONNX)]


def test_the_wheel_holds_the_licence_the_models_and_complete_metadata(distributions):
    with zipfile.ZipFile(distributions.wheel) as wheel:
        names = wheel.namelist()
        info = f"focusnet-{__version__}.dist-info"
        metadata = email.message_from_string(wheel.read(f"{info}/METADATA").decode("utf-8"))
        assert wheel.read(f"{info}/licenses/LICENSE") == (REPO / "LICENSE").read_bytes()
        for name in MODEL_FILES:
            assert wheel.read(name) == (REPO / name).read_bytes()
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    assert "focusnet/export/bioimageio_package.py" in names  # `focusnet export` is installed
    assert not [name for name in names if name.startswith(("tests/", "plugins/", "fiji/", "scripts/"))]
    assert "focusnet = focusnet.cli:main" in entry_points
    assert metadata["Name"] == "focusnet" and metadata["Version"] == __version__
    assert metadata["Requires-Python"] == ">=3.8"
    assert metadata["License"] == "Apache-2.0" and metadata["License-File"] == "LICENSE"
    assert PAPER_DOI in metadata["Project-URL"]
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert metadata.get_payload().strip() == (REPO / "README.md").read_text().strip()
    classifiers = metadata.get_all("Classifier")
    assert [f"Programming Language :: Python :: 3.{minor}" in classifiers for minor in range(8, 14)] == [True] * 6
    assert {"onnx", "tf", "dask"} <= set(metadata.get_all("Provides-Extra"))
    assert any(requirement.startswith("onnxruntime") and 'extra == "onnx"' in requirement
               for requirement in metadata.get_all("Requires-Dist"))


def test_the_wheel_holds_only_the_focusnet_package(distributions):
    # The release's wheel (built once per session by the distributions fixture), as pip installs it.
    names = zipfile.ZipFile(distributions.wheel).namelist()
    top_level = {name.split("/")[0] for name in names}
    # The shipped model travels inside the package; its training checkpoint does not.
    for required in ("config.json", "weights.npz", "README.md"):
        assert f"focusnet/models/default/{required}" in names and f"focusnet/models/refocus/{required}" in names
    assert "focusnet/models/refocus/evaluation.json" in names and "focusnet/refocus/restore.py" in names
    assert not [name for name in names if "checkpoint" in name]
    # export/ is installed as focusnet.export, never as a top-level "export", with only what
    # `focusnet export` needs: the TF1 load check is a test helper, the Fiji script an extra.
    assert sorted(name for name in names if name.startswith("focusnet/export/")) == [
        "focusnet/export/__init__.py", "focusnet/export/bioimageio_package.py", "focusnet/export/imagej.py",
        "focusnet/export/onnxexport.py",
        "focusnet/export/refocus_export.py", "focusnet/export/savedmodel.py", "focusnet/export/targets.py"]
    assert not [name for name in names if "tf1_check" in name or name.endswith(".groovy")]
    assert any(name.endswith(".dist-info/licenses/LICENSE") or name.endswith(".dist-info/LICENSE") for name in names)
    assert "focusnet/models/default/evaluation.json" in names and "focusnet/models/default-bundle.zip" in names
    assert "focusnet/models/default.onnx" in names
    # The napari plugin: its manifest, the sample images and the entry point napari finds it by.
    for required in ("napari.yaml", "_widget.py", "_reader.py", "_sample_data.py",
                     "data/BBBC006_z_aligned__a07__s1__w1_10.tif", "data/MCF7_out_of_focus_a19_s2.tif"):
        assert f"focusnet/napari/{required}" in names, required
    entry_points = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
    with zipfile.ZipFile(distributions.wheel) as archive:
        assert "focusnet = focusnet.napari:napari.yaml" in archive.read(entry_points).decode()
    # No generic names such as export/ or plugins/ in site-packages.
    assert {name for name in top_level if not name.endswith(".dist-info")} == {"focusnet"}, top_level


def test_the_sdist_holds_the_licence_the_models_and_the_sources(distributions):
    with tarfile.open(distributions.sdist) as sdist:
        root = f"focusnet-{__version__}/"
        names = {name[len(root):] for name in sdist.getnames()}
        for name in ["LICENSE", "README.md", "setup.cfg", "pyproject.toml", "PKG-INFO", "export/onnxexport.py",
                     *MODEL_FILES]:
            assert name in names, name
        assert sdist.extractfile(root + MODEL_FILES[1]).read() == (REPO / MODEL_FILES[1]).read_bytes()


def find_python(version):
    """A CPython of ``version`` (e.g. "3.13") in pyenv's versions or on the PATH, or None."""
    candidates = []
    if shutil.which("pyenv"):
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
        candidates += sorted(Path(root).glob(f"versions/{version}.*/bin/python{version}"), reverse=True)
    candidates.append(shutil.which(f"python{version}"))  # pyenv's shims fail unless the version is selected
    check = f"import sys; sys.exit('%d.%d' % sys.version_info[:2] != '{version}')"
    return next((Path(candidate) for candidate in candidates
                 if candidate and subprocess.run([str(candidate), "-c", check], capture_output=True).returncode == 0),
                None)


@pytest.fixture(scope="module")
def with_tensorflow(tmp_path_factory):
    """``focusnet predict`` of the examples with TensorFlow and the shipped bundle, here: what each venv must match."""
    images = sorted(EXAMPLES.glob("*.tif"))
    out = tmp_path_factory.mktemp("tensorflow") / "tensorflow.csv"
    subprocess.run([sys.executable, "-m", "focusnet", "predict", *map(str, images), "--model", str(SHIPPED_BUNDLE),
                    "--csv", str(out)], check=True, capture_output=True, timeout=900)
    return read_csv(out)


# Each Python with the lock pinning its versions: onnx.lock (the versions pinned for measuring) has
# wheels for 3.12 and 3.13, onnx-py310.lock pins 3.10's. Python 3.8 is tested with the packaged
# CellProfiler apps' Python (test_packaged_app.py), 3.9 and 3.11 in the main and CellProfiler 5 environments.
@pytest.mark.parametrize(("version", "lock"), [("3.10", "onnx-py310.lock"), ("3.12", "onnx.lock"),
                                               ("3.13", "onnx.lock")])
def test_a_fresh_venv_with_the_wheel_measures_the_examples(version, lock, distributions, with_tensorflow, tmp_path):
    """``pip install focusnet-*.whl[onnx]`` in a new venv: it measures as TensorFlow does, with the shipped model."""
    python = find_python(version)
    if python is None:
        pytest.skip(f"no Python {version} here (pyenv install {version})")
    venv = tmp_path / "venv"
    subprocess.run([str(python), "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # --no-compile: the same files installed, without byte-compiling every dependency up front (half
    # of the install's time); Python compiles what the measuring imports.
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-compile", f"{distributions.wheel}[onnx]", "-c",
         str(REPO / "requirements" / lock)], capture_output=True, text=True, timeout=900,
        env=pip_environment())
    assert install.returncode == 0, install.stderr[-3000:]
    images = sorted(EXAMPLES.glob("*.tif"))
    # From a folder outside the clone, so only the installed package can be imported.
    found = subprocess.run(
        [str(python), "-c", "import focusnet, importlib.util as u; from focusnet.contract import SHIPPED_ONNX as m; "
         "print(focusnet.__file__); print(m.is_file()); print(u.find_spec('tensorflow') is None)"],
        capture_output=True, text=True, check=True, cwd=tmp_path)
    package, onnx_found, no_tensorflow = found.stdout.split()
    assert package.startswith(str(venv)) and onnx_found == "True" and no_tensorflow == "True"
    subprocess.run([str(venv / "bin" / "focusnet"), "predict", *map(str, images), "--csv", "installed.csv"],
                   check=True, capture_output=True, timeout=900, cwd=tmp_path)
    installed, tensorflow = read_csv(tmp_path / "installed.csv"), with_tensorflow
    assert [row["image"] for row in installed] == [row["image"] for row in tensorflow] == [str(p) for p in images]
    for measured, expected in zip(installed, tensorflow):
        assert measured["defocus_level"] == expected["defocus_level"]
        for column in [name for name in expected if name.startswith("prob_")] + ["aggregate_certainty"]:
            assert float(measured[column]) == pytest.approx(float(expected[column]), abs=1e-5), column
