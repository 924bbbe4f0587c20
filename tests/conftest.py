"""Shared fixtures: real images shipped in the repository, the development set, small synthetic models.

Core tests use only the repository's own images (``examples/images``,
``tests/data/images``). Tests that need the development set in
``../shared/data`` (which outside users do not have) use the ``shared_*``
fixtures: they are marked ``shared_data`` and skip, with the reason, when it
is absent.

The tests come in four tiers, one folder each; the folder gives a test its tier's markers
(``pytest_collection_modifyitems`` below), so a contributor picks a tier by folder or by marker:

* ``tests/unit``: the library's logic in this process: no subprocess, no JVM, no training, no TF1
  runtime, no Dask (``make test-fast``, seconds); marked ``unit``.
* ``tests/integration``: whole command-line runs in subprocesses, training, the TF1 runtimes, Dask
  workers, javac (Fiji's arithmetic), whole defocus series through the model; marked ``integration``
  and ``slow``.
* ``tests/cellprofiler``: the CellProfiler module with CellProfiler's own objects and headless
  CellProfiler runs (also the CellProfiler 5 environment's suite); marked ``cellprofiler`` and ``slow``.
* ``tests/packaging``: the wheel and sdist, fresh venvs, the packaged CellProfiler apps' Python;
  marked ``packaging`` and ``slow``.
* ``tests/napari``: the napari widget in a real viewer (pytest-qt, under Xvfb), run in its own
  environment (``make test-napari``); marked ``napari`` and ``slow``, skipped where napari is not
  installed.

Tests that exercise TensorFlow itself (loading, training, exporting SavedModels and ONNX, the TF1
and bioimage.io checks) are also marked ``tensorflow``: the latest-Python environment runs the unit
tier and those (``make test-latest``).
"""

import csv
import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FOCUSNET_SHARED_DATA", REPO.parent / "shared" / "data"))
EXAMPLES = REPO / "examples" / "images"
TEST_IMAGES = REPO / "tests" / "data" / "images"
#: The shipped in-focus image the shipped model never trained on.
HELD_OUT_IN_FOCUS = EXAMPLES / "BBBC006_z_aligned__a07__s1__w1_10.tif"

#: CellProfiler of the environment running the tests (the main one: 4.2.8.1; `make test-cp5`: 5).
CELLPROFILER = Path(sys.executable).parent / "cellprofiler"
#: CellProfiler 5 tries to download Bio-Formats on its first start; offline, only its own readers are used.
def _cellprofiler_major_version():
    for distribution in ("cellprofiler-core", "cellprofiler-core-nightly"):
        try:
            return int(importlib.metadata.version(distribution).split(".")[0])
        except importlib.metadata.PackageNotFoundError:
            pass
    return None


CELLPROFILER_5 = (_cellprofiler_major_version() or 0) >= 5
READER_OPTIONS = ["-e", "imageio_reader", "imageio_reader_v3"] if CELLPROFILER_5 else []
#: The packaged 4.2 apps' Python 3.8 rebuilt as a virtual environment (scripts/make-env.sh app).
APP_CELLPROFILER = REPO / ".venv-app" / "bin" / "cellprofiler"

#: Fixtures that read ../shared/data: a test using any of them is marked shared_data.
SHARED_FIXTURES = {"shared_in_focus_paths", "shared_out_of_focus_paths", "shared_data_zstack"}

#: Each tier's folder under tests/ and the markers its tests get.
TIERS = {
    "unit": ("unit",),
    "integration": ("integration", "slow"),
    "cellprofiler": ("cellprofiler", "slow"),
    "packaging": ("packaging", "slow"),
    "napari": ("napari", "slow"),
}


def _tier(item):
    """The tier folder (tests/<tier>/...) an item was collected from."""
    parts = Path(str(item.fspath)).resolve().relative_to(REPO / "tests").parts
    if len(parts) < 2 or parts[0] not in TIERS:
        raise pytest.UsageError(f"{item.nodeid}: every test lives in a tier folder, one of "
                                f"{', '.join('tests/' + tier for tier in TIERS)} (see tests/conftest.py)")
    return parts[0]


def pytest_collection_modifyitems(config, items):
    missing = not SHARED_DATA.is_dir()
    skip = pytest.mark.skip(reason=f"development data not found at {SHARED_DATA} (../shared/data beside the "
                                   "repository, or set FOCUSNET_SHARED_DATA); core tests use the repository's images")
    for item in items:
        tier = _tier(item)
        if tier == "unit" and item.get_closest_marker("slow"):
            raise pytest.UsageError(f"{item.nodeid} is marked slow: slow tests belong outside tests/unit")
        for name in TIERS[tier]:
            item.add_marker(name)
        if SHARED_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.shared_data)
        if missing and item.get_closest_marker("shared_data"):
            item.add_marker(skip)


#: Programs that no test in tests/unit may start (the unit tier runs in the test's own process).
PROGRAMS_OUTSIDE_UNIT = ("python", "java", "javac", "cellprofiler", "focusnet", "pip", "bioimageio")


@pytest.fixture(autouse=True)
def _unit_tests_start_no_program(request, monkeypatch):
    """In tests/unit, starting Python, a JVM, CellProfiler or pip is an error naming the tier to move the test to."""
    if request.node.get_closest_marker("unit") is None:
        return
    start = subprocess.Popen.__init__

    def guarded(self, args, *more, **options):
        program = args if isinstance(args, (str, bytes, os.PathLike)) else args[0]
        name = Path(os.fsdecode(program).split()[0]).name
        if name.startswith(PROGRAMS_OUTSIDE_UNIT) or os.fsdecode(program) == sys.executable:
            raise AssertionError(f"a unit test started {name}: tests that start programs belong in tests/integration")
        start(self, args, *more, **options)

    monkeypatch.setattr(subprocess.Popen, "__init__", guarded)


def _shared_files(name, pattern="*"):
    folder = SHARED_DATA / name
    files = sorted(folder.glob(pattern)) if folder.is_dir() else []
    if not files:
        pytest.skip(f"development data missing: {folder}")
    return files


@pytest.fixture(scope="session")
def in_focus_paths():
    """Real sharp BBBC006 images shipped in the repository: a07 (held out, also ``in_focus_image``), a01, a02."""
    return [HELD_OUT_IN_FOCUS] + sorted(TEST_IMAGES.glob("BBBC006_*.tif"))


@pytest.fixture(scope="session")
def out_of_focus_paths():
    """Real, optically defocused MCF-7 images shipped in the repository."""
    return [EXAMPLES / "MCF7_out_of_focus_a19_s2.tif", TEST_IMAGES / "MCF7_out_of_focus_a01_s1.tif"]


@pytest.fixture(scope="session")
def in_focus_image():
    """One sharp 16-bit BBBC006 image (520 x 696, raw counts), shipped in examples/."""
    from focusnet.images import read_image

    return read_image(HELD_OUT_IN_FOCUS)


@pytest.fixture(scope="session")
def shared_in_focus_paths():
    """The development set's sharp BBBC006 images (../shared/data/bbbc006_in_focus)."""
    return _shared_files("bbbc006_in_focus")


@pytest.fixture(scope="session")
def shared_out_of_focus_paths():
    """The development set's real, optically defocused MCF-7 images."""
    return _shared_files("mcf7_out_of_focus")


@pytest.fixture(scope="session")
def shared_data_zstack():
    """The development set's real widefield z-stack (100x/1.45 oil, 0.13 um pixels, 0.3 um steps)."""
    return _shared_files("zstacks", "*.tif")[0]


@pytest.fixture(scope="session")
def model():
    """The shipped model, loaded once."""
    from focusnet.loader import load_model

    return load_model()


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def random_model_dir(tmp_path_factory):
    """A valid model folder with untrained (random) weights: for structure tests."""
    from focusnet.classifier import make_config
    from focusnet.model import save_model
    from focusnet.network import ARCHITECTURES, build_trainable, fold_inference_weights
    from focusnet.optics import Optics

    directory = tmp_path_factory.mktemp("random_model")
    network = build_trainable(ARCHITECTURES["default"], seed=3)
    config = make_config("default", optics=Optics().to_dict(), augmentation={}, training={"settings": {"steps": 0}})
    save_model(directory, config, fold_inference_weights(network, ARCHITECTURES["default"]))
    return directory


@pytest.fixture(scope="module")
def crops(in_focus_paths, out_of_focus_paths):
    """Real 260 x 348 crops, sharp and blurred (a batch of them measures quickly)."""
    from focusnet.images import read_image

    images = [read_image(path) for path in list(in_focus_paths) + list(out_of_focus_paths)]
    return [image[y:y + 260, x:x + 348] for image in images for y, x in ((0, 0), (250, 340))]


@pytest.fixture
def model_copy(tmp_path, random_model_dir):
    """A copy of ``random_model_dir`` that a test may change."""
    target = tmp_path / "model"
    shutil.copytree(random_model_dir, target)
    return target


#: synthetic_stack's planes, and the focal plane of each of its time points (not the middle one).
SYNTHETIC_STACK_PLANES = 11
SYNTHETIC_STACK_FOCUS = (3, 6)


@pytest.fixture(scope="module")
def synthetic_stack(tmp_path_factory, in_focus_image):
    """OME-TIFF, 2 time points x 2 channels x 11 planes 2 um apart, focus at planes 3 and 6.

    Channel "empty" is camera noise alone (no content); channel "nuclei" is a real in-focus crop
    blurred by the simulator (the shipped model's lens) by its distance from that time's focus.
    """
    import tifffile

    from focusnet.optics import Optics
    from focusnet.simulate import AS_IMAGED, blur_levels

    crop = in_focus_image[:260, :348].astype(float)
    dark = crop.min()
    blurred = blur_levels(crop, range(SYNTHETIC_STACK_PLANES), Optics(defocus_phase="paraxial"))
    rng = np.random.default_rng(0)
    data = np.empty((2, 2, SYNTHETIC_STACK_PLANES) + crop.shape, np.uint16)
    for time, focus in enumerate(SYNTHETIC_STACK_FOCUS):
        for plane in range(SYNTHETIC_STACK_PLANES):
            data[time, 1, plane] = AS_IMAGED.apply(blurred[abs(plane - focus)], dark, rng)
            data[time, 0, plane] = rng.poisson(150.0, crop.shape) + 100
    path = tmp_path_factory.mktemp("zstack") / "well_A01.ome.tif"
    tifffile.imwrite(path, data, metadata={"axes": "TCZYX", "PhysicalSizeX": 0.65, "PhysicalSizeY": 0.65,
                                           "PhysicalSizeZ": 2.0, "Channel": {"Name": ["empty", "nuclei"]}})
    return path, data


@pytest.fixture
def two_sharp_images(tmp_path, in_focus_paths):
    """A folder of two real sharp 16-bit TIFFs (a fresh copy for each test)."""
    from focusnet.images import read_image, write_tiff

    folder = tmp_path / "images"
    folder.mkdir()
    for path in in_focus_paths[:2]:
        write_tiff(folder / (path.stem + ".tif"), read_image(path))
    return folder


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def cellprofiler_command(pipeline, images, out, *options, cellprofiler=CELLPROFILER, plugins=REPO / "plugins"):
    """The arguments of a headless run (``-c -r``) of ``pipeline`` with the plugins in ``plugins``."""
    readers = READER_OPTIONS if cellprofiler == CELLPROFILER else []
    return [str(cellprofiler), "-c", "-r", "-p", str(pipeline), "-i", str(images), "-o", str(out),
            "--plugins-directory", str(plugins), *readers, *map(str, options)]


def run_cellprofiler(pipeline, images, out, *options, cellprofiler=CELLPROFILER, plugins=REPO / "plugins",
                     heap="1g"):
    """Run a pipeline headless; return the CompletedProcess.

    It runs in the output's parent folder, so nothing is imported from the working directory.
    """
    return subprocess.run(cellprofiler_command(pipeline, images, out, *options, cellprofiler=cellprofiler,
                                               plugins=plugins),
                          capture_output=True, text=True, timeout=900, cwd=Path(out).parent,
                          env={**os.environ, "JAVA_TOOL_OPTIONS": f"-Xmx{heap}"})


def run_pipeline(name, images, out, options=(), **keywords):
    """Run one of pipelines/ headless; return the rows of its Image.csv and the CompletedProcess.

    ``options`` are more command-line arguments (e.g. ``["--always-continue"]``).
    """
    result = run_cellprofiler(REPO / "pipelines" / name, images, out, *options, **keywords)
    # CellProfiler can exit 0 after dropping a plugin: judge by what it wrote.
    table = out / "Image.csv"
    assert table.is_file(), result.stdout[-2000:] + result.stderr[-4000:]
    return read_csv(table), result


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory, in_focus_paths, out_of_focus_paths):
    """Real images (as .tif), plus one smaller than a patch, a constant image and a dark field of pure noise."""
    from focusnet.images import read_image, write_tiff

    folder = tmp_path_factory.mktemp("cp_images")
    for path in list(in_focus_paths[-2:]) + list(out_of_focus_paths[:2]):
        write_tiff(folder / (path.stem[:40] + ".tif"), read_image(path))
    write_tiff(folder / "tiny.tif", (np.arange(50 * 60) % 700 + 100).astype(np.uint16).reshape(50, 60))
    write_tiff(folder / "constant.tif", np.full((300, 300), 120, np.uint16))
    dark = np.random.default_rng(7).poisson(12, (300, 400)) + 100  # an empty, near-dark field: shot noise only
    write_tiff(folder / "dark_field.tif", dark.astype(np.uint16))
    return folder


@pytest.fixture(scope="session")
def focusnet_predict(image_folder, tmp_path_factory):
    """``focusnet predict`` of ``image_folder`` with the shipped model (as a bundle), by file name."""
    from focusnet.contract import SHIPPED_BUNDLE

    out = tmp_path_factory.mktemp("predict") / "focus.csv"
    subprocess.run([sys.executable, "-m", "focusnet", "predict", str(image_folder), "--model", str(SHIPPED_BUNDLE),
                    "--csv", str(out)], check=True, capture_output=True, timeout=900)
    return {Path(row["image"]).name: row for row in read_csv(out)}


def pip_environment():
    """The environment for pip in a test: quiet, with pip's own cache (PIP_CACHE_DIR or ~/.cache/pip), which
    scripts/make-env.sh has filled, so the tests' installs download and build nothing again."""
    return {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}


class Distributions(NamedTuple):
    wheel: Path
    sdist: Path


@pytest.fixture(scope="session")
def distributions(tmp_path_factory):
    """focusnet's wheel and sdist, built from this tree by ``python -m build`` (isolated, as for a release)."""
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO)], capture_output=True,
                            text=True, timeout=900, env=pip_environment())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = out.glob("focusnet-*.whl")
    (sdist,) = out.glob("focusnet-*.tar.gz")
    return Distributions(wheel, sdist)


def make_refocus_model(directory, identity=False, seed=0, restorable=(1, 2, 3, 4, 5, 6)):
    """A valid refocus model folder with random weights of a tiny U-Net (``identity``: a zero correction)."""
    from focusnet.optics import Optics
    from focusnet.refocus.model import make_refocus_config, save_refocus_model
    from focusnet.refocus.training import RefocusSettings
    from focusnet.refocus.unet import expected_weight_shapes

    settings = RefocusSettings(base_filters=4, depth=2, patch_size=64)
    generator = np.random.default_rng(seed)
    weights = {name: generator.normal(0, 0.05, shape).astype(np.float32)
               for name, shape in expected_weight_shapes(settings.spec).items()}
    if identity:
        weights["out/kernel"][:] = 0
        weights["out/bias"][:] = 0
    config = make_refocus_config(settings, Optics(defocus_phase="paraxial"), {"settings": {}, "images": [],
                                                                             "validation_images": []})
    config["restorable_levels"] = list(restorable)
    return save_refocus_model(directory, config, weights)


@pytest.fixture(scope="session")
def refocus_model_dir(tmp_path_factory):
    """A tiny refocus model with random weights (its output differs from its input)."""
    return make_refocus_model(tmp_path_factory.mktemp("refocus_random"))


@pytest.fixture(scope="session")
def identity_refocus_model_dir(tmp_path_factory):
    """A tiny refocus model whose correction is zero: its output is its input."""
    return make_refocus_model(tmp_path_factory.mktemp("refocus_identity"), identity=True)
