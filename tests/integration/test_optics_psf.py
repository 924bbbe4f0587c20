"""The continuous defocus PSF, integrated numerically (seconds; the kernels' tests are in tests/unit/test_optics.py)."""

import math

import numpy as np
from scipy.integrate import trapezoid

from focusnet.optics import psf_profile


def test_continuous_psf_integrates_to_one():
    # Independent of the kernel code: radial integral of the profile far out.
    radius = np.arange(0.0, 300.0, 0.01)
    profile = psf_profile(radius, [0.0, 10.0, 20.0])
    energy = trapezoid(profile * 2 * math.pi * radius[:, None], radius, axis=0)
    # The tail beyond 300 um holds about 2 / (pi k NA r) = 0.03 %.
    assert np.all(energy > 0.999) and np.all(energy < 1.0001), energy
