"""Shared fixtures: real images shipped in the repository, the development set, small synthetic models.

Core tests use only the repository's own images (``examples/images``,
``tests/data/images``). Tests that need the development set in
``../shared/data`` (which outside users do not have) use the ``shared_*``
fixtures: they are marked ``shared_data`` and skip, with the reason, when it
is absent.
"""

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FOCUSNET_SHARED_DATA", REPO.parent / "shared" / "data"))
EXAMPLES = REPO / "examples" / "images"
TEST_IMAGES = REPO / "tests" / "data" / "images"
#: The shipped in-focus image the shipped model never trained on.
HELD_OUT_IN_FOCUS = EXAMPLES / "BBBC006_z_aligned__a07__s1__w1_10.tif"

#: Fixtures that read ../shared/data: a test using any of them is marked shared_data.
SHARED_FIXTURES = {"shared_in_focus_paths", "shared_out_of_focus_paths", "shared_data_zstack"}


def pytest_collection_modifyitems(config, items):
    missing = not SHARED_DATA.is_dir()
    skip = pytest.mark.skip(reason=f"development data not found at {SHARED_DATA} (../shared/data beside the "
                                   "repository, or set FOCUSNET_SHARED_DATA); core tests use the repository's images")
    for item in items:
        if SHARED_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.shared_data)
        if missing and item.get_closest_marker("shared_data"):
            item.add_marker(skip)


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
