"""Property tests of the Born & Wolf defocus PSF."""

import dataclasses
import math

import numpy as np
import pytest

from focusnet.contract import NUM_LEVELS
from focusnet.optics import DEFAULT_LEVELS, Optics, blur_diameter_px, psf_kernels, psf_profile


@pytest.fixture(scope="module")
def kernels():
    return psf_kernels()


def test_kernels_sum_to_one(kernels):
    assert kernels.kernels.shape == (NUM_LEVELS, 2 * kernels.radius_px + 1, 2 * kernels.radius_px + 1)
    np.testing.assert_allclose(kernels.kernels.sum(axis=(1, 2)), 1.0, rtol=1e-12)
    assert np.all(kernels.kernels >= 0)


def test_kernel_holds_the_required_energy_at_level_10(kernels):
    # Energy inside the kernel before normalisation, as a fraction of the total
    # (which is 1 by construction of the constant C).
    assert kernels.captured_energy[kernels.levels.index(10)] >= 0.999
    assert np.all(kernels.captured_energy > 0.998)
    assert np.all(kernels.captured_energy <= 1.0 + 1e-3)


def test_kernels_are_radially_symmetric(kernels):
    for kernel in kernels.kernels:
        np.testing.assert_allclose(kernel, kernel.T, rtol=0, atol=1e-15)
        np.testing.assert_allclose(kernel, kernel[::-1, :], rtol=0, atol=1e-15)
        np.testing.assert_allclose(kernel, kernel[:, ::-1], rtol=0, atol=1e-15)
    # Pixels at the same distance in different directions (3-4-5 triangles)
    # differ only by the pixel's square footprint.
    r = kernels.radius_px
    for level in (3, 6, 10):
        kernel = kernels.kernel(level)
        for a, b in ((kernel[r + 6, r + 8], kernel[r + 10, r]), (kernel[r + 3, r + 4], kernel[r + 5, r])):
            assert a == pytest.approx(b, rel=0.08)


def test_psf_is_symmetric_in_defocus_sign():
    radius = np.linspace(0, 30, 3001)
    z = np.array([1.0, 4.0, 13.0])
    np.testing.assert_allclose(psf_profile(radius, z), psf_profile(radius, -z), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("wavelength,na,n", [(0.5, 0.5, 1.0), (0.6, 0.8, 1.0), (0.52, 1.2, 1.515)])
def test_first_dark_ring_at_airy_radius(wavelength, na, n):
    optics = Optics(wavelength_um=wavelength, numerical_aperture=na, refractive_index=n)
    airy = 0.61 * wavelength / na
    radius = np.linspace(0.5 * airy, 1.5 * airy, 20001)
    profile = psf_profile(radius, [0.0], optics)[:, 0]
    first_minimum = radius[np.argmin(profile)]
    assert first_minimum == pytest.approx(airy, rel=0.01)
    # A real zero, not just a dip.
    assert profile.min() < 1e-4 * psf_profile([0.0], [0.0], optics)[0, 0]


def test_blur_width_grows_monotonically_and_linearly(kernels):
    diameters = np.array([blur_diameter_px(k) for k in kernels.kernels])
    assert np.all(np.diff(diameters) > 0), diameters
    z = np.array(kernels.levels, dtype=float) * 2.0
    far = z >= 4.0  # beyond a few wavelengths of wave aberration, geometric optics
    slope, intercept = np.polyfit(z[far], diameters[far], 1)
    fitted = slope * z[far] + intercept
    r_squared = 1 - np.sum((diameters[far] - fitted) ** 2) / np.sum((diameters[far] - diameters[far].mean()) ** 2)
    assert r_squared > 0.99, (r_squared, diameters)
    # Geometric optics: the ray leaving the pupil at radius rho lands at z tan(theta), sin(theta) =
    # NA rho / n, and the pupil (uniformly lit) holds 84 % of its energy within rho = sqrt(0.84).
    geometric_slope = 2 * math.tan(math.asin(0.5 * math.sqrt(0.84))) / 0.65
    assert slope == pytest.approx(geometric_slope, rel=0.1)


def test_blur_diameter_spans_about_3_to_30_pixels(kernels):
    assert 1.5 <= blur_diameter_px(kernels.kernel(0)) <= 4.5
    assert 22 <= blur_diameter_px(kernels.kernel(10)) <= 36


def test_parameters_change_the_blur():
    narrow = psf_kernels([10], Optics(numerical_aperture=0.3))
    wide = psf_kernels([10], Optics(numerical_aperture=0.5))
    small_pixels = psf_kernels([10], Optics(pixel_size_um=0.325))
    assert blur_diameter_px(narrow.kernels[0]) < blur_diameter_px(wide.kernels[0])
    assert blur_diameter_px(small_pixels.kernels[0]) == pytest.approx(2 * blur_diameter_px(wide.kernels[0]), rel=0.05)


def test_kernels_are_cached_per_parameter_set():
    assert psf_kernels() is psf_kernels(DEFAULT_LEVELS, Optics())
    assert psf_kernels(optics=Optics(wavelength_um=0.6)) is not psf_kernels()
    with pytest.raises(ValueError, match="read-only"):
        psf_kernels().kernels[0, 0, 0] = 1.0


@pytest.mark.parametrize(
    "field,value",
    [("numerical_aperture", 1.2), ("wavelength_um", 0.0), ("pixel_size_um", -1.0), ("supersampling", 4),
     ("energy_fraction", 1.0), ("z_step_um", float("nan")), ("defocus_phase", "gaussian")],
)
def test_invalid_optics_are_refused(field, value):
    with pytest.raises(ValueError, match=field if field != "numerical_aperture" else "numerical aperture"):
        Optics(**{field: value})


def test_negative_levels_are_refused():
    with pytest.raises(ValueError, match="levels must be >= 0"):
        psf_kernels([-1, 0])


@pytest.mark.parametrize("numerical_aperture,refractive_index", [(0.5, 1.0), (1.2, 1.333), (1.45, 1.512)])
def test_far_from_focus_the_blur_is_the_geometric_one(numerical_aperture, refractive_index):
    from focusnet.defocus import blur_diameter_um

    # 20 um from focus, where diffraction is small: the 84 % energy diameter is 2 z tan(theta_84)
    # with sin(theta_84) = sqrt(0.84) NA / n, or its small-angle form for the paraxial phase.
    z = 20.0
    sine = math.sqrt(0.84) * numerical_aperture / refractive_index
    for phase, expected in (("exact", 2 * z * math.tan(math.asin(sine))), ("paraxial", 2 * z * sine)):
        optics = Optics(numerical_aperture=numerical_aperture, refractive_index=refractive_index,
                        defocus_phase=phase)
        assert blur_diameter_um(z, optics) == pytest.approx(expected, rel=0.05), phase


def test_the_two_phases_agree_at_low_aperture_and_at_focus():
    radius = np.linspace(0, 5, 501)
    for optics in (Optics(numerical_aperture=0.1), Optics(numerical_aperture=1.4, refractive_index=1.515)):
        exact = psf_profile(radius, [0.0], optics)
        paraxial = psf_profile(radius, [0.0], dataclasses.replace(optics, defocus_phase="paraxial"))
        np.testing.assert_allclose(exact, paraxial, rtol=1e-10, atol=1e-12)
    low = Optics(numerical_aperture=0.1)
    np.testing.assert_allclose(psf_profile(radius, [20.0], low),
                               psf_profile(radius, [20.0], dataclasses.replace(low, defocus_phase="paraxial")),
                               rtol=0.02, atol=1e-4 * psf_profile([0.0], [20.0], low)[0, 0])


def test_kernels_are_made_where_the_quadrature_falls_short_of_the_whole_energy():
    # At 1.45 NA and 0.3 um the numerical total stays just under 0.999 of the energy: the search once never ended.
    from focusnet.optics import Optics, psf_kernels

    optics = Optics(wavelength_um=0.461, numerical_aperture=1.45, refractive_index=1.512, pixel_size_um=0.13,
                    z_step_um=0.3)
    kernels = psf_kernels((1,), optics)
    assert kernels.kernels[0].sum() == pytest.approx(1.0) and kernels.radius_px < 400
