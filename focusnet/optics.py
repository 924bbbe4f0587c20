"""Point spread function of a defocused objective (Born & Wolf scalar model).

The intensity at radius ``r`` from the optical axis, a distance ``z`` from the
focal plane, is (Born & Wolf, *Principles of Optics*, 8.8; Yang et al. 2018)::

    PSF(r, z) = C |integral_0^1 J0(k NA/n r rho) exp(-i k z W(rho)) rho d rho|^2

where ``W`` is the optical path difference per unit defocus of the ray leaving
the pupil at relative radius ``rho`` (angle ``sin(theta) = NA rho / n``):

* ``"exact"`` (default): ``W = 1 - cos(theta) = 1 - sqrt(1 - (NA rho / n)^2)``,
  the path difference of a refocused spherical wave (as in Gibson & Lanni's
  model without coverslip or sample mismatch);
* ``"paraxial"``: its small-angle form ``W = (NA rho / n)^2 / 2`` (Born & Wolf's
  and the paper's).

They agree for low apertures (at 0.5 NA in air the exact blur is 5-10 % larger)
but not for immersion objectives: at 1.45 NA in oil a marginal ray's path
difference is 1.6 times the paraxial one and the defocus blur grows about
twice as fast. Models of format version 2 and earlier (the shipped model
among them) were trained with the paraxial form; their configs are upgraded
to say so (:func:`focusnet.classifier.upgrade_config`).

with ``k = 2 pi n / wavelength`` the wavenumber in the immersion medium
(``wavelength`` is the vacuum emission wavelength; for ``n = 1`` this is the
familiar ``2 pi / wavelength``, and for any ``n`` the in-focus PSF has its first
dark ring at ``0.61 wavelength / NA``). ``C = (k NA/n)^2 / pi`` makes the PSF integrate
to one over the plane (Parseval's theorem for the Hankel transform: the
integral of ``|h|^2 r dr`` is ``1 / (2 (k NA/n)^2)`` for any ``z``).

Defocus level ``L`` (0 = in focus) corresponds to ``z = L * z_step_um``.

The integral is evaluated for all radii and all defocus values at once: the
Bessel matrix ``J0(k NA/n r_i rho_j)`` at Gauss-Legendre nodes ``rho_j`` does
not depend on ``z``, so one matrix product gives every level. Pixel kernels
integrate the PSF over each camera pixel by supersampling.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from .contract import LEVELS as DEFAULT_LEVELS
from .errors import InvalidParameterError

# Radial sampling of the continuous profile before it is interpolated onto
# sub-pixel positions: the profile oscillates with a period of about
# wavelength / (2 NA), so 1/25 of a wavelength resolves it finely.
_RADIAL_STEP_FRACTION_OF_WAVELENGTH = 1.0 / 25.0
#: Forms of the defocus path difference (see the module's description).
DEFOCUS_PHASES = ("exact", "paraxial")


@dataclasses.dataclass(frozen=True)
class Optics:
    """Imaging parameters of the simulated microscope.

    Parameters
    ----------
    wavelength_um : float
        Emission wavelength in vacuum in micrometres (default 0.5, as in the paper).
    numerical_aperture : float
        Numerical aperture of the objective (default 0.5).
    refractive_index : float
        Refractive index of the immersion medium (default 1.0, air).
    pixel_size_um : float
        Pixel size in the sample plane in micrometres (default 0.65: BBBC006,
        20x objective with 2x2 camera binning).
    z_step_um : float
        Defocus distance between consecutive levels in micrometres (default
        2.0, so level 10 is 20 um from focus).
    energy_fraction : float
        Kernels are made large enough to hold at least this fraction of the
        PSF energy at the most defocused level requested (default 0.999).
    supersampling : int
        Sub-samples per pixel and axis used to integrate the PSF over a pixel
        (odd; default 5).
    defocus_phase : {"exact", "paraxial"}
        Form of the defocus path difference (see the module's description;
        default "exact").
    """

    wavelength_um: float = 0.5
    numerical_aperture: float = 0.5
    refractive_index: float = 1.0
    pixel_size_um: float = 0.65
    z_step_um: float = 2.0
    energy_fraction: float = 0.999
    supersampling: int = 5
    defocus_phase: str = "exact"

    def __post_init__(self):
        for name in ("wavelength_um", "numerical_aperture", "refractive_index", "pixel_size_um", "z_step_um"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise InvalidParameterError(f"Optics.{name} must be a positive number, got {value!r}")
        if self.numerical_aperture >= self.refractive_index:
            raise InvalidParameterError(
                f"numerical aperture ({self.numerical_aperture}) must be smaller than the "
                f"refractive index of the medium ({self.refractive_index})"
            )
        if not 0.5 < self.energy_fraction < 1:
            raise InvalidParameterError(f"Optics.energy_fraction must be in (0.5, 1), got {self.energy_fraction!r}")
        if not (isinstance(self.supersampling, int) and self.supersampling >= 1 and self.supersampling % 2 == 1):
            raise InvalidParameterError(f"Optics.supersampling must be a positive odd integer, "
                                        f"got {self.supersampling!r}")
        if self.defocus_phase not in DEFOCUS_PHASES:
            raise InvalidParameterError(f"Optics.defocus_phase must be one of {DEFOCUS_PHASES}, "
                                        f"got {self.defocus_phase!r}")

    @property
    def wavenumber(self) -> float:
        """Wavenumber in the immersion medium, ``k = 2 pi n / wavelength``, in 1/um."""
        return 2.0 * math.pi * self.refractive_index / self.wavelength_um

    @property
    def radial_frequency(self) -> float:
        """``k NA / n`` in 1/um: scales radius in the Bessel function's argument."""
        return self.wavenumber * self.numerical_aperture / self.refractive_index

    @property
    def marginal_sine(self) -> float:
        """``NA / n``: the sine of the marginal ray's angle in the immersion medium."""
        return self.numerical_aperture / self.refractive_index

    def path_difference(self, rho) -> np.ndarray:
        """Optical path difference per micrometre of defocus at relative pupil radius ``rho`` (0-1)."""
        sine = self.marginal_sine * np.asarray(rho, dtype=float)
        if self.defocus_phase == "paraxial":
            return 0.5 * sine**2
        # 1 - sqrt(1 - s^2), written to keep its precision for small s.
        return sine**2 / (1.0 + np.sqrt(1.0 - sine**2))

    def defocus_um(self, level) -> np.ndarray:
        """Defocus distance ``z`` in micrometres of a level (or array of levels)."""
        return np.asarray(level, dtype=float) * self.z_step_um

    def to_dict(self) -> dict:
        """Parameters as a JSON-serialisable dictionary."""
        return dataclasses.asdict(self)


def _gauss_legendre_on_unit_interval(num_nodes: int):
    nodes, weights = np.polynomial.legendre.leggauss(num_nodes)
    return (nodes + 1.0) / 2.0, weights / 2.0


def psf_profile(radius_um, defocus_um, optics: Optics = Optics()) -> np.ndarray:
    """Continuous PSF intensity (per square micrometre) at given radii and defocus.

    Parameters
    ----------
    radius_um : array_like
        Distances from the optical axis in micrometres, shape ``(R,)``.
    defocus_um : array_like
        Defocus distances ``z`` in micrometres, shape ``(Z,)``.
    optics : Optics
        Imaging parameters.

    Returns
    -------
    ndarray, shape (R, Z)
        Intensity normalised so that its integral over the plane is 1.
    """
    radius = np.atleast_1d(np.asarray(radius_um, dtype=float))
    defocus = np.atleast_1d(np.asarray(defocus_um, dtype=float))
    a = optics.radial_frequency
    # Enough nodes to follow the fastest oscillation of the integrand (Bessel
    # argument a*r plus the defocus phase at the pupil's edge) with margin.
    marginal_phase = optics.wavenumber * float(optics.path_difference(1.0))
    highest_frequency = a * radius.max(initial=0.0) + marginal_phase * np.abs(defocus).max(initial=0.0)
    rho, weights = _gauss_legendre_on_unit_interval(int(highest_frequency / 2) + 64)
    from scipy.special import j0

    bessel = j0(np.multiply.outer(radius, a * rho))  # (R, nodes), independent of z
    phase = optics.wavenumber * np.multiply.outer(optics.path_difference(rho), defocus)
    pupil = np.exp(-1j * phase) * (rho * weights)[:, None]
    amplitude = bessel @ pupil
    return (a**2 / math.pi) * np.abs(amplitude) ** 2


@dataclasses.dataclass(frozen=True)
class PSFKernels:
    """Pixel-integrated PSF kernels of a set of defocus levels.

    Attributes
    ----------
    levels : tuple of int
        Defocus levels, one kernel each.
    kernels : ndarray, shape (len(levels), 2*radius_px+1, 2*radius_px+1)
        Kernels normalised to sum to 1 (read-only).
    captured_energy : ndarray, shape (len(levels),)
        Fraction of each PSF's total energy inside its kernel before
        normalisation.
    radius_px : int
        Half-width of the kernels in pixels.
    optics : Optics
        Parameters they were computed with.
    """

    levels: tuple
    kernels: np.ndarray
    captured_energy: np.ndarray
    radius_px: int
    optics: Optics

    def kernel(self, level: int) -> np.ndarray:
        """Kernel of one level."""
        try:
            return self.kernels[self.levels.index(level)]
        except ValueError:
            raise KeyError(f"level {level} is not among the computed levels {self.levels}") from None


def _encircled_energy(radius_um: np.ndarray, profile: np.ndarray) -> np.ndarray:
    # Trapezoidal integral of PSF * 2 pi r dr from the axis outwards.
    integrand = profile * (2.0 * math.pi * radius_um)[:, None]
    steps = 0.5 * (integrand[1:] + integrand[:-1]) * np.diff(radius_um)[:, None]
    return np.concatenate([np.zeros((1, profile.shape[1])), np.cumsum(steps, axis=0)])


def _profile_covering_energy(optics: Optics, defocus_um: np.ndarray):
    """Radial grid, PSF profile on it, and the radius holding the energy fraction.

    The radius is the smallest one at which the most defocused PSF keeps
    ``optics.energy_fraction`` of its energy, plus one pixel of margin.
    """
    step = optics.wavelength_um * _RADIAL_STEP_FRACTION_OF_WAVELENGTH
    largest = int(np.argmax(np.abs(defocus_um)))
    # Far from the axis the missing energy falls like 2 / (pi k NA/n r); start
    # from that estimate plus the geometric blur radius and grow if needed.
    geometric = abs(defocus_um[largest]) * math.tan(math.asin(optics.numerical_aperture / optics.refractive_index))
    tail = 2.0 / (math.pi * optics.radial_frequency * (1.0 - optics.energy_fraction))
    search_radius = geometric + 1.25 * tail + 2 * optics.pixel_size_um
    limit = 2 * search_radius
    while True:
        radius = np.arange(0.0, search_radius + step, step)
        profile = psf_profile(radius, defocus_um, optics)
        energy = _encircled_energy(radius, profile[:, [largest]])[:, 0]
        if search_radius > limit:
            # The quadrature's total fell short of 1 (seen at 1.45 NA, 0.3 um): count the fraction of what it holds.
            energy = energy / energy[-1]
        inside = np.nonzero(energy >= optics.energy_fraction)[0]
        if inside.size and radius[inside[0]] + optics.pixel_size_um < radius[-1]:
            return radius, profile, float(radius[inside[0]]) + optics.pixel_size_um
        search_radius *= 1.5


@functools.lru_cache(maxsize=16)
def _cached_kernels(optics: Optics, levels: tuple) -> PSFKernels:
    defocus = optics.defocus_um(levels)
    pixel = optics.pixel_size_um
    radial_grid, profile, support_um = _profile_covering_energy(optics, defocus)
    radius_px = int(math.ceil(support_um / pixel))

    # Sub-pixel sample positions of one quadrant (the PSF is radially symmetric).
    s = optics.supersampling
    offsets = (np.arange(s) - (s - 1) / 2) / s
    coords = (np.arange(radius_px + 1)[:, None] + offsets[None, :]).ravel() * pixel
    sample_radius = np.hypot(coords[:, None], coords[None, :]).ravel()

    # Pixel value = mean of the profile, linearly interpolated at the pixel's
    # sub-samples, times the pixel area. That is linear in the profile and
    # the same for every level: one sparse matrix maps profile -> pixels.
    # The kernel's support is the disc of radius support_um.
    n = radius_px + 1
    step = radial_grid[1]
    position = sample_radius / step
    index = np.minimum(position.astype(np.intp), radial_grid.size - 2)
    upper_weight = position - index
    inside = sample_radius <= support_um
    sub_row, sub_col = np.divmod(np.arange(sample_radius.size), n * s)
    pixel_index = ((sub_row // s) * n + sub_col // s)[inside]
    scale = pixel**2 / s**2
    from scipy.sparse import coo_matrix

    to_pixels = coo_matrix(
        (
            np.concatenate([(1.0 - upper_weight[inside]) * scale, upper_weight[inside] * scale]),
            (np.concatenate([pixel_index, pixel_index]), np.concatenate([index[inside], index[inside] + 1])),
        ),
        shape=(n * n, radial_grid.size),
    ).tocsr()
    quadrant = (to_pixels @ profile).reshape(n, n, len(levels))
    quadrant = np.moveaxis(quadrant, -1, 0)  # (levels, n, n)
    full = np.concatenate([quadrant[:, :0:-1, :], quadrant], axis=1)
    full = np.concatenate([full[:, :, :0:-1], full], axis=2)

    captured = full.sum(axis=(1, 2))
    kernels = full / captured[:, None, None]
    kernels.setflags(write=False)
    captured.setflags(write=False)
    return PSFKernels(levels=levels, kernels=kernels, captured_energy=captured, radius_px=radius_px, optics=optics)


def psf_kernels(levels=DEFAULT_LEVELS, optics: Optics = Optics()) -> PSFKernels:
    """Pixel-integrated PSF kernels for the given defocus levels (cached).

    All kernels share one size, chosen so that the most defocused level keeps
    at least ``optics.energy_fraction`` of its energy; each kernel is then
    normalised to sum to 1.

    Parameters
    ----------
    levels : iterable of int
        Defocus levels; level ``L`` is ``z = L * optics.z_step_um``.
    optics : Optics
        Imaging parameters.

    Returns
    -------
    PSFKernels
    """
    levels = tuple(int(level) for level in levels)
    if not levels:
        raise InvalidParameterError("at least one defocus level is required")
    if min(levels) < 0:
        raise InvalidParameterError(f"defocus levels must be >= 0, got {levels}")
    return _cached_kernels(optics, levels)


def blur_diameter_px(kernel: np.ndarray, energy_fraction: float = 0.84) -> float:
    """Diameter in pixels of the centred circle holding a fraction of the kernel's energy.

    The default 84 % is the energy inside the first dark ring of an in-focus
    Airy pattern, so at focus this is the Airy-disc diameter; far from focus it
    approaches the geometric blur-disc diameter.
    """
    kernel = np.asarray(kernel, dtype=float)
    centre = (np.asarray(kernel.shape) - 1) / 2
    yy, xx = np.indices(kernel.shape)
    radius = np.hypot(yy - centre[0], xx - centre[1]).ravel()
    order = np.argsort(radius, kind="stable")
    cumulative = np.cumsum(kernel.ravel()[order]) / kernel.sum()
    # Interpolate the radius where the cumulative energy crosses the fraction.
    return 2.0 * float(np.interp(energy_fraction, cumulative, radius[order]))
