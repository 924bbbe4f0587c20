"""The PSF of a point-scanning confocal microscope for a thin fluorescent layer out of focus.

A confocal microscope excites with a focused spot and detects through a
pinhole. For a thin fluorescent layer a distance ``z`` from the focal plane,
the intensity it records from a point of the layer at radius ``r`` from the
scan position is (Wilson & Sheppard, *Theory and Practice of Scanning Optical
Microscopy*, 1984)::

    h(r, z) = h_exc(r, z) * [h_det(., z) convolved with the pinhole P](r)

with ``h_exc`` and ``h_det`` the widefield intensity PSFs
(:func:`focusnet.optics.psf_profile`) at the excitation and emission
wavelengths, and ``P`` the pinhole's disc back-projected into the sample
(``pinhole_au`` Airy units: diameter ``pinhole_au * 1.22 emission / NA``).
Unlike the widefield PSF, whose integral over the plane is 1 at every
``z`` (a thin layer is as bright out of focus as in focus, only blurred), the
confocal PSF's integral falls with ``z``: the pinhole rejects light from out
of focus (optical sectioning). :func:`confocal_profile` keeps that: it is
normalised so that its integral in focus is 1.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .errors import InvalidParameterError
from .optics import Optics, psf_profile

#: Samples per emission Airy radius of the 2-D grid the pinhole convolution is computed on.
_SAMPLES_PER_AIRY_RADIUS = 12


def airy_unit_um(optics: Optics) -> float:
    """One Airy unit in the sample plane: the diameter of the emission Airy disc, ``1.22 wavelength / NA``."""
    return 1.22 * optics.wavelength_um / optics.numerical_aperture


def _pinhole_filtered_detection(radius_um, defocus_um, optics: Optics, pinhole_au: float) -> np.ndarray:
    """The detection PSF convolved with the pinhole's disc, at ``radius_um`` (shape (R, Z))."""
    from scipy.signal import fftconvolve

    step = 0.61 * optics.wavelength_um / optics.numerical_aperture / _SAMPLES_PER_AIRY_RADIUS
    pinhole_radius = 0.5 * pinhole_au * airy_unit_um(optics)
    extent = float(np.max(radius_um)) + pinhole_radius + 2 * step
    half = int(math.ceil(extent / step))
    axis = np.arange(-half, half + 1) * step
    grid_radius = np.hypot(axis[:, None], axis[None, :])
    fine = np.arange(0.0, grid_radius.max() + 2 * step, step / 4)
    detection = psf_profile(fine, defocus_um, optics)  # (fine, Z)
    disc = (grid_radius <= pinhole_radius).astype(float)
    if not disc.any():  # a pinhole smaller than the grid: a point detector
        disc[half, half] = 1.0
    disc /= disc.sum()
    result = np.empty((len(radius_um), len(defocus_um)))
    for index in range(len(defocus_um)):
        plane = np.interp(grid_radius, fine, detection[:, index])
        filtered = fftconvolve(plane, disc, mode="same")[half, half:]  # along +x from the centre
        result[:, index] = np.interp(radius_um, axis[half:], filtered)
    return result


def confocal_profile(radius_um, defocus_um, optics: Optics = Optics(), pinhole_au: float = 1.0,
                     excitation_wavelength_um: float | None = None) -> np.ndarray:
    """Confocal PSF intensity of a thin layer (per square micrometre), with its optical sectioning.

    Parameters
    ----------
    radius_um : array_like, shape (R,)
        Distances from the axis in micrometres.
    defocus_um : array_like, shape (Z,)
        Distances of the layer from the focal plane in micrometres.
    optics : Optics
        The objective and the emission wavelength (``optics.wavelength_um``).
    pinhole_au : float
        Pinhole diameter in Airy units (1 is usual; large values approach widefield detection).
    excitation_wavelength_um : float, optional
        Default: 90 % of the emission wavelength (a typical Stokes shift).

    Returns
    -------
    ndarray, shape (R, Z)
        Normalised so that the in-focus PSF integrates to 1 over the plane; out of focus the integral is
        smaller (the fraction of a thin layer's light the pinhole passes, relative to focus).
    """
    from scipy.integrate import trapezoid

    if not (math.isfinite(pinhole_au) and pinhole_au > 0):
        raise InvalidParameterError(f"pinhole size must be a positive number of Airy units, got {pinhole_au!r}")
    excitation = excitation_wavelength_um if excitation_wavelength_um is not None else 0.9 * optics.wavelength_um
    if not (math.isfinite(excitation) and 0 < excitation <= optics.wavelength_um):
        raise InvalidParameterError(f"the excitation wavelength must be positive and not above the emission "
                                    f"wavelength ({optics.wavelength_um} um), got {excitation!r}")
    radius = np.atleast_1d(np.asarray(radius_um, dtype=float))
    defocus = np.atleast_1d(np.asarray(defocus_um, dtype=float))
    with_focus = np.concatenate([[0.0], defocus])
    exc = psf_profile(radius, with_focus, dataclasses.replace(optics, wavelength_um=excitation))
    det = _pinhole_filtered_detection(radius, with_focus, optics, pinhole_au)
    profile = exc * det
    # Normalise by the in-focus integral (2 pi r dr), computed on a grid fine enough for it.
    fine = np.linspace(0.0, 4 * airy_unit_um(optics) + 0.5 * pinhole_au * airy_unit_um(optics), 801)
    focus = psf_profile(fine, [0.0], dataclasses.replace(optics, wavelength_um=excitation))[:, 0] * \
        _pinhole_filtered_detection(fine, [0.0], optics, pinhole_au)[:, 0]
    total = float(trapezoid(focus * 2 * math.pi * fine, fine))
    return profile[:, 1:] / total


def sectioning(defocus_um, optics: Optics = Optics(), pinhole_au: float = 1.0,
               excitation_wavelength_um: float | None = None) -> np.ndarray:
    """The fraction of a thin layer's in-focus signal a confocal records at each defocus (1 at focus)."""
    from scipy.integrate import trapezoid

    defocus = np.atleast_1d(np.asarray(defocus_um, dtype=float))
    reach = float(np.abs(defocus).max()) * math.tan(math.asin(optics.numerical_aperture / optics.refractive_index))
    radius = np.linspace(0.0, reach + 4 * airy_unit_um(optics), 1601)
    profile = confocal_profile(radius, defocus, optics, pinhole_au, excitation_wavelength_um)
    return trapezoid(profile * (2 * math.pi * radius)[:, None], radius, axis=0)
