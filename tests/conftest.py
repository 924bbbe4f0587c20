"""Shared fixtures: real images from ../shared/data and small synthetic ones."""

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FOCUSNET_SHARED_DATA", REPO.parent / "shared" / "data"))


def _shared_folder(name):
    folder = SHARED_DATA / name
    files = sorted(folder.glob("*")) if folder.is_dir() else []
    if not files:
        pytest.fail(
            f"real test images missing: {folder} (the repository expects ../shared/data beside it, "
            "or set FOCUSNET_SHARED_DATA)"
        )
    return files


@pytest.fixture(scope="session")
def in_focus_paths():
    """The sharp BBBC006 images of ../shared/data."""
    return _shared_folder("bbbc006_in_focus")


@pytest.fixture(scope="session")
def out_of_focus_paths():
    """The real, optically defocused MCF-7 images of ../shared/data."""
    return _shared_folder("mcf7_out_of_focus")


@pytest.fixture(scope="session")
def in_focus_image(in_focus_paths):
    """One sharp 16-bit BBBC006 image (520 x 696, raw counts)."""
    from focusnet.images import read_image

    return read_image(in_focus_paths[0])


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def random_model_dir(tmp_path_factory):
    """A valid model folder with untrained (random) weights: for structure tests."""
    from focusnet.model import make_config, save_model
    from focusnet.network import ARCHITECTURES, build_trainable, fold_inference_weights
    from focusnet.optics import Optics

    directory = tmp_path_factory.mktemp("random_model")
    network = build_trainable(ARCHITECTURES["default"], seed=3)
    config = make_config("default", optics=Optics().to_dict(), augmentation={}, training={"steps": 0})
    save_model(directory, config, fold_inference_weights(network, ARCHITECTURES["default"]))
    return directory
