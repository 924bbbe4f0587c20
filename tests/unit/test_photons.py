"""Photon-limited imaging: detector models, binomial thinning, photon transfer."""

import numpy as np
import pytest

from focusnet.errors import InvalidParameterError
from focusnet.photons import Detector, binomial_thinning, photon_image, photon_transfer
from focusnet.simulate import blur_levels

FLAT = np.full(200_000, 50.0)  # 50 expected photons in every pixel


@pytest.mark.parametrize("detector, mean, variance", [
    # Camera: counts = gain (QE n + read noise) + offset.
    (Detector("camera", quantum_efficiency=0.8, gain=2.0, offset=100, read_noise=2.0), 100 + 2 * 40,
     4 * (40 + 4)),
    # EMCCD: the multiplication register doubles the shot-noise variance (excess noise factor sqrt 2).
    (Detector("emccd", gain=1.0, em_gain=300, offset=500, read_noise=30), 500 + 50, 2 * 50 + (30 / 300) ** 2),
    # PMT: Gamma pulses of shape k add a (1 + 1/k) factor to the variance of the detected photons.
    (Detector("pmt", gain=10.0, offset=0, pulse_shape=2.0, dark_counts=1.0), 10 * 51, 100 * 51 * 1.5),
])
def test_detectors_have_their_mean_and_noise(detector, mean, variance):
    counts = detector.record(FLAT, np.random.default_rng(0))
    assert counts.mean() == pytest.approx(mean, rel=0.01)
    assert counts.var() == pytest.approx(variance, rel=0.05)


def test_detectors_refuse_impossible_settings():
    with pytest.raises(InvalidParameterError, match="kind"):
        Detector("film")
    with pytest.raises(InvalidParameterError, match="quantum_efficiency"):
        Detector(quantum_efficiency=1.5)
    with pytest.raises(InvalidParameterError, match="read_noise"):
        Detector(read_noise=-1)


def test_thinning_a_poisson_image_gives_the_poisson_image_of_less_light():
    rng = np.random.default_rng(1)
    full = rng.poisson(400.0, 200_000) + 100
    thinned = binomial_thinning(full, 0.1, offset=100, rng=rng).astype(float) - 100
    assert thinned.mean() == pytest.approx(40, rel=0.01) and thinned.var() == pytest.approx(40, rel=0.05)
    with pytest.raises(InvalidParameterError, match="fraction"):
        binomial_thinning(full, 0, offset=100)


def test_photon_transfer_finds_a_cameras_gain_and_offset(in_focus_image):
    rng = np.random.default_rng(2)
    blurred = blur_levels(in_focus_image, [2])[0]
    for peak in (20, 200):
        photons = photon_image(blurred, float(in_focus_image.min()), peak, background_photons=peak / 20)
        counts = Detector("camera", gain=2.2, offset=100, read_noise=1.0).record(photons, rng)
        gain, offset = photon_transfer(counts)
        assert gain == pytest.approx(2.2, rel=0.1)
        # Read noise shifts the intercept by gain * read noise^2 (2.2 counts here).
        assert offset == pytest.approx(100 - 2.2, abs=3)


def test_photon_image_puts_the_peak_where_asked(in_focus_image):
    photons = photon_image(in_focus_image, float(in_focus_image.min()), 30, background_photons=2)
    assert np.percentile(photons - 2, 99.9) == pytest.approx(30) and photons.min() == pytest.approx(2)


def test_photon_limited_training_patches_have_their_drawn_light_and_fit_sixteen_bits(in_focus_image):
    from focusnet.photons import PEAK_PHOTONS_RANGE, draw_detector, record_photon_limited

    signal = in_focus_image.astype(float) - in_focus_image.min()
    peak = float(np.percentile(signal, 99.9))
    rng = np.random.default_rng(1)
    for kind in ("camera", "emccd", "pmt"):
        for _ in range(20):
            counts = record_photon_limited(signal, peak, rng, kind)
            assert counts.min() >= 0 and counts.max() <= 65535
    # The gain is capped so that the brightest pixel stays below saturation, whatever was drawn.
    assert draw_detector(np.random.default_rng(0), "camera", 1e6).gain * 1e6 < 65535
    # A camera without read noise at unit gain counts photons: its brightest objects hold the drawn peak.
    dim = Detector("camera", gain=1.0, offset=0.0).record(signal * (PEAK_PHOTONS_RANGE[0] / peak), rng)
    assert np.percentile(dim, 99.9) <= 5 * PEAK_PHOTONS_RANGE[0]
