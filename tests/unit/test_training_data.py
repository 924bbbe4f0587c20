"""Training batches: the photon-limited and confocal shares of the augmentation."""

import numpy as np
import pytest

from focusnet.data import confocal_distances, prepare_source, sample_batch
from focusnet.errors import InvalidParameterError
from focusnet.optics import Optics
from focusnet.train import _BEFORE_PHOTON_LIMITED, TrainingSettings


@pytest.fixture(scope="module")
def source(in_focus_image):
    return prepare_source(in_focus_image[:200, :200], "image", confocal=True)


def test_photon_limited_patches_are_dimmer_and_batches_reproducible(source):
    bright, levels = sample_batch([source], 64, np.random.default_rng(0))
    dim, dim_levels = sample_batch([source], 64, np.random.default_rng(0), photon_limited_fraction=1.0)
    again, _ = sample_batch([source], 64, np.random.default_rng(0), photon_limited_fraction=1.0)
    np.testing.assert_array_equal(dim, again)
    np.testing.assert_array_equal(levels, dim_levels)
    # Signal above each patch's minimum: a few photons to 10^4 at the peak, against the source's own light.
    assert _median_spread(dim) < _median_spread(bright)


def _median_spread(patches):
    return np.median(np.percentile(patches, 99, axis=(1, 2, 3)) - patches.min(axis=(1, 2, 3)))


def test_confocal_patches_come_from_the_confocal_blur(source):
    assert source.confocal.shape == source.blurred.shape
    # Each level keeps the in-focus light (brightness says nothing about the level) ...
    totals = source.confocal.sum(axis=(1, 2))
    np.testing.assert_allclose(totals, totals[0], rtol=1e-4)
    # ... and blurs as the level's distance for the confocal says: deeper levels are smoother.
    roughness = [np.abs(np.diff(level, axis=1)).mean() for level in source.confocal]
    assert all(a > b for a, b in zip(roughness[:6], roughness[1:6]))
    distances = confocal_distances(Optics(defocus_phase="paraxial"))
    assert distances[0] == 0 and np.all(np.diff(distances) > 0)
    patches, _ = sample_batch([source], 32, np.random.default_rng(3), confocal_fraction=1.0)
    assert np.isfinite(patches).all() and patches.max() <= 1.0


def test_the_dim_shares_are_checked_and_old_runs_had_none():
    with pytest.raises(InvalidParameterError, match="add up"):
        TrainingSettings(photon_limited_fraction=0.8, confocal_fraction=0.3)
    with pytest.raises(InvalidParameterError):
        TrainingSettings(photon_limited_fraction=-0.1)
    assert set(_BEFORE_PHOTON_LIMITED.values()) == {0.0}
