"""Tests of the defocus simulator: blur, sensor model, augmentation."""

import math

import numpy as np
import pytest

from focusnet.simulate import (
    GAIN_RANGE,
    OFFSET_RANGE,
    Sensor,
    apply_sensor,
    blur_levels,
    degrade,
    random_sensor,
    simulate_series,
)


def test_blur_conserves_total_signal(in_focus_image):
    blurred = blur_levels(in_focus_image, [0, 5, 10])
    # Reflective borders keep the mean up to what crosses the border.
    np.testing.assert_allclose(blurred.mean(axis=(1, 2)), in_focus_image.mean(), rtol=2e-3)
    assert blurred.shape == (3,) + in_focus_image.shape


def test_blur_of_a_point_is_the_kernel():
    from focusnet.optics import psf_kernels

    image = np.zeros((401, 401))
    image[200, 200] = 1.0
    blurred = blur_levels(image, [6])[0]
    kernel = psf_kernels([6]).kernels[0]
    r = kernel.shape[0] // 2
    np.testing.assert_allclose(blurred[200 - r:200 + r + 1, 200 - r:200 + r + 1], kernel, atol=1e-12)


def test_noise_preserves_mean_and_has_poisson_variance(rng):
    source_offset, signal, counts_per_electron, gain, offset = 100.0, 900.0, 2.0, 3.0, 50.0
    flat = np.full((400, 400), source_offset + signal)
    sensor = Sensor(gain=gain, offset=offset, counts_per_electron=counts_per_electron, source_offset=source_offset)
    out = apply_sensor(flat, sensor, rng).astype(float)
    # Back to photoelectrons: (counts - offset) / (gain * counts_per_electron).
    electrons = (out - offset) / (gain * counts_per_electron)
    expected_mean = signal / counts_per_electron
    standard_error = math.sqrt(expected_mean / electrons.size)
    assert abs(electrons.mean() - expected_mean) < 4 * standard_error
    # Poisson: variance equals mean (in photoelectrons), up to rounding to counts.
    assert electrons.var() == pytest.approx(expected_mean, rel=0.03)


def test_without_noise_only_gain_and_offset_apply():
    image = np.array([[100.0, 300.0], [1100.0, 100.0]])
    out = apply_sensor(image, Sensor(gain=2.0, offset=10.0, noise=False, source_offset=100.0))
    np.testing.assert_array_equal(out, [[10, 410], [2010, 10]])
    assert out.dtype == np.uint16


def test_output_is_clipped_to_16_bits():
    image = np.array([[0.0, 60000.0]])
    out = apply_sensor(image, Sensor(gain=5.0, offset=1000.0, noise=False, source_offset=0.0))
    np.testing.assert_array_equal(out, [[1000, 65535]])


def test_default_gain_keeps_the_mean_intensity(in_focus_image):
    series = simulate_series(in_focus_image, [0, 4, 10], seed=0)
    np.testing.assert_allclose(series.mean(axis=(1, 2)), in_focus_image.mean(), rtol=3e-3)


def test_same_seed_same_output(in_focus_image):
    crop = in_focus_image[:200, :200]
    first = degrade(crop, 4, seed=7)
    np.testing.assert_array_equal(first, degrade(crop, 4, seed=7))
    assert not np.array_equal(first, degrade(crop, 4, seed=8))
    np.testing.assert_array_equal(simulate_series(crop, [1, 2], seed=5), simulate_series(crop, [1, 2], seed=5))


def test_augmentation_draws_log_uniform_gain_and_offset():
    rng = np.random.default_rng(0)
    sensors = [random_sensor(rng) for _ in range(4000)]
    gains = np.array([s.gain for s in sensors])
    offsets = np.array([s.offset for s in sensors])
    assert gains.min() >= GAIN_RANGE[0] and gains.max() <= GAIN_RANGE[1]
    assert offsets.min() >= OFFSET_RANGE[0] and offsets.max() <= OFFSET_RANGE[1]
    # Log-uniform: the log is uniform, so its mean is the midpoint and each
    # decade-half holds about half of the draws.
    assert np.log(gains).mean() == pytest.approx(0.0, abs=0.05)
    assert np.mean(offsets < math.sqrt(1000)) == pytest.approx(0.5, abs=0.03)
    # Reproducible from the seed.
    again = random_sensor(np.random.default_rng(0))
    assert (again.gain, again.offset) == (sensors[0].gain, sensors[0].offset)


def test_gain_scales_the_signal_above_the_offset(in_focus_image):
    crop = in_focus_image
    low = degrade(crop, 3, Sensor(gain=0.2, offset=1000.0, noise=False)).astype(float)
    high = degrade(crop, 3, Sensor(gain=5.0, offset=1000.0, noise=False)).astype(float)
    bright = low - 1000 >= 50  # where rounding to whole counts is negligible
    assert bright.sum() > 100
    ratio = (high - 1000)[bright].sum() / (low - 1000)[bright].sum()
    assert ratio == pytest.approx(25.0, rel=0.01)


def test_noise_needs_a_generator():
    with pytest.raises(ValueError, match="random generator"):
        apply_sensor(np.ones((4, 4)), Sensor(noise=True), rng=None)


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.full((50, 50), np.nan), "NaN or infinite"),
        (np.zeros((50, 50, 3)), "RGB"),
        (np.zeros((5, 50, 50)), "multi-plane"),
        (np.array([["a", "b"], ["c", "d"]]), "not numeric"),
    ],
)
def test_bad_images_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        degrade(bad, 2, seed=0)


@pytest.mark.parametrize("kwargs", [{"gain": 0.0}, {"gain": float("inf")}, {"offset": -1.0}, {"offset": 70000.0},
                                    {"counts_per_electron": -2.0}])
def test_invalid_sensor_is_refused(kwargs):
    with pytest.raises(ValueError, match="Sensor"):
        Sensor(**kwargs)
