"""A whole defocus series of a real image through the simulator.

The simulator's unit tests are in tests/unit/test_simulate.py.
"""

import numpy as np
from scipy import ndimage

from focusnet.simulate import (
    Sensor,
    simulate_series,
)


def laplacian_variance(image):
    return float(ndimage.laplace(image.astype(float)).var())


def smoothed_laplacian_variance(image):
    # Laplacian of Gaussian (sigma 2 px): a sharpness measure that noise does not dominate.
    return float(ndimage.gaussian_laplace(image.astype(float), 2.0).var())


def test_sharpness_of_real_image_falls_strictly_with_level(in_focus_image):
    noise_free = simulate_series(in_focus_image, sensor=Sensor(noise=False))
    sharpness = [laplacian_variance(image) for image in noise_free]
    assert np.all(np.diff(sharpness) < 0), sharpness

    noisy = simulate_series(in_focus_image, seed=3)
    sharpness = [smoothed_laplacian_variance(image) for image in noisy]
    assert np.all(np.diff(sharpness) < 0), sharpness
