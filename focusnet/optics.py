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

and a pupil weighted either uniformly (``apodization="none"``, the textbook
model's) or as an aplanatic objective weights it (``"sine-condition"``): a
point source's light reaches the pupil with amplitude ``1 / sqrt(cos theta)``
(more solid angle per unit of pupil towards the edge), and a focused
excitation beam leaves it with ``sqrt(cos theta)`` (Richards & Wolf). At 0.5 NA
in air that is at most 7 %; at 1.2 NA in water the marginal rays carry 2.3
times the central ones' intensity and the defocus blur per micrometre grows
about 10 % (20 % at 1.45 NA in oil). The uniform pupil is the default
everywhere (training, ``defocus_um``): on the one real high-NA stack measured
(``benchmarks/real_stacks.py``) the sine condition moved ``defocus_um``
further from the truth, since what dominates there is not the lens.

The phases agree for low apertures (at 0.5 NA in air the exact blur is 5-10 % larger)
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
#: Pupil weightings (see the module's description): uniform, or an aplanatic objective's.
APODIZATIONS = ("none", "sine-condition")
#: How the microscope forms its image: a camera (widefield) or a point scanner with a pinhole (confocal).
MODALITIES = ("widefield", "confocal", "spinning-disk")
#: The fields only a confocal has (left out of a widefield's :meth:`Optics.to_dict`, as before they existed).
_CONFOCAL_FIELDS = ("modality", "pinhole_au", "excitation_wavelength_um", "pinhole_spacing")


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
    apodization : {"none", "sine-condition"}
        The pupil's weighting (see the module's description): uniform (default)
        or an aplanatic objective's.
    modality : {"widefield", "confocal", "spinning-disk"}
        A camera image (default), or a point-scanning confocal's
        (:func:`confocal_profile`): the excitation spot times the detection PSF
        seen through the pinhole, which also dims a thin layer out of focus.
        A spinning disk is a confocal whose out-of-focus light also reaches the
        camera through the other pinholes of its array (:func:`spinning_disk_profile`).
    pinhole_au : float
        Confocal only: the pinhole's diameter in Airy units (default 1).
    excitation_wavelength_um : float or None
        Confocal only: the excitation wavelength (default: 90 % of the emission wavelength).
    pinhole_spacing : float
        Spinning disk only: the distance between pinholes over their diameter (default 5, as
        in Yokogawa's CSU discs: 50 um pinholes 253 um apart).
    """

    wavelength_um: float = 0.5
    numerical_aperture: float = 0.5
    refractive_index: float = 1.0
    pixel_size_um: float = 0.65
    z_step_um: float = 2.0
    energy_fraction: float = 0.999
    supersampling: int = 5
    defocus_phase: str = "exact"
    modality: str = "widefield"
    pinhole_au: float = 1.0
    excitation_wavelength_um: float | None = None
    pinhole_spacing: float = 5.0
    apodization: str = "none"

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
        if self.apodization not in APODIZATIONS:
            raise InvalidParameterError(f"Optics.apodization must be one of {APODIZATIONS}, "
                                        f"got {self.apodization!r}")
        if self.modality not in MODALITIES:
            raise InvalidParameterError(f"Optics.modality must be one of {MODALITIES}, got {self.modality!r}")
        if not (isinstance(self.pinhole_au, (int, float)) and math.isfinite(self.pinhole_au) and self.pinhole_au > 0):
            raise InvalidParameterError(f"Optics.pinhole_au must be a positive number of Airy units, "
                                        f"got {self.pinhole_au!r}")
        if not (isinstance(self.pinhole_spacing, (int, float)) and math.isfinite(self.pinhole_spacing)
                and self.pinhole_spacing >= 1):
            raise InvalidParameterError(f"Optics.pinhole_spacing must be at least 1 (pinholes do not overlap), "
                                        f"got {self.pinhole_spacing!r}")
        excitation = self.excitation_wavelength_um
        if excitation is not None and not (isinstance(excitation, (int, float)) and math.isfinite(excitation)
                                           and 0 < excitation <= self.wavelength_um):
            raise InvalidParameterError(f"Optics.excitation_wavelength_um must be positive and not above the "
                                        f"emission wavelength ({self.wavelength_um} um), got {excitation!r}")

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

    def pupil_amplitude(self, rho, illumination: bool = False) -> np.ndarray:
        """The pupil's amplitude at relative radius ``rho`` (0-1): 1, or the sine condition's weighting.

        ``illumination``: a focused beam's (``sqrt(cos theta)``) rather than
        a point source's light collected (``1 / sqrt(cos theta)``).
        """
        rho = np.asarray(rho, dtype=float)
        if self.apodization == "none":
            return np.ones_like(rho)
        cosine = np.sqrt(1.0 - (self.marginal_sine * rho) ** 2)
        return np.sqrt(cosine) if illumination else 1.0 / np.sqrt(cosine)

    def defocus_um(self, level) -> np.ndarray:
        """Defocus distance ``z`` in micrometres of a level (or array of levels)."""
        return np.asarray(level, dtype=float) * self.z_step_um

    def to_dict(self) -> dict:
        """Parameters as a JSON-serialisable dictionary (a widefield's without the confocal fields, a uniform
        pupil's without ``apodization``: as before they existed)."""
        values = dataclasses.asdict(self)
        if self.modality == "widefield":
            for name in _CONFOCAL_FIELDS:
                del values[name]
        if self.apodization == "none":
            del values["apodization"]
        return values


def _gauss_legendre_on_unit_interval(num_nodes: int):
    nodes, weights = np.polynomial.legendre.leggauss(num_nodes)
    return (nodes + 1.0) / 2.0, weights / 2.0


def psf_profile(radius_um, defocus_um, optics: Optics = Optics(), illumination: bool = False) -> np.ndarray:
    """Continuous PSF intensity (per square micrometre) at given radii and defocus.

    Parameters
    ----------
    radius_um : array_like
        Distances from the optical axis in micrometres, shape ``(R,)``.
    defocus_um : array_like
        Defocus distances ``z`` in micrometres, shape ``(Z,)``.
    optics : Optics
        Imaging parameters.
    illumination : bool
        A focused excitation beam's profile rather than a point source's image
        (they differ only in the sine condition's pupil weighting).

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
    weighting = optics.pupil_amplitude(rho, illumination)
    pupil = np.exp(-1j * phase) * (weighting * rho * weights)[:, None]
    amplitude = bessel @ pupil
    intensity = (a**2 / math.pi) * np.abs(amplitude) ** 2
    if optics.apodization == "none":
        return intensity
    # Parseval: a weighted pupil's plane integral is 2 * integral(weighting^2 rho d rho) instead of 1.
    return intensity / (2.0 * float(np.sum(weighting**2 * rho * weights)))


@dataclasses.dataclass(frozen=True)
class PSFKernels:
    """Pixel-integrated PSF kernels of a set of defocus levels.

    Attributes
    ----------
    levels : tuple of int
        Defocus levels, one kernel each.
    kernels : ndarray, shape (len(levels), 2*radius_px+1, 2*radius_px+1)
        Kernels normalised to sum to 1, or for a confocal to the light the pinhole passes relative to focus
        (read-only).
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
    if optics.modality != "widefield":
        # The product of two PSFs has no widefield tail: the geometric blur, the pinhole and a few Airy units hold
        # it. Relative to focus, so the kernels keep the light the pinhole loses out of focus.
        geometric = float(np.abs(defocus).max()) * math.tan(math.asin(optics.marginal_sine))
        confocal_support = min(support_um, geometric + (0.5 * optics.pinhole_au + 4) * airy_unit_um(optics))
        near = radial_grid <= confocal_support + 2 * pixel
        confocal = confocal_profile(radial_grid[near], defocus, optics, optics.pinhole_au,
                                    optics.excitation_wavelength_um)
        if optics.modality == "confocal":
            radial_grid, profile, support_um = radial_grid[near], confocal, confocal_support
            radius_px = int(math.ceil(support_um / pixel))
        else:  # the spinning disk's crosstalk is widefield light: it keeps the widefield support
            profile = spinning_disk_profile(np.pad(confocal, ((0, int((~near).sum())), (0, 0))), profile,
                                            optics.pinhole_spacing)

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
    # Widefield: every kernel holds the layer's whole light. Confocal: what the pinhole passes, relative to focus.
    kernels = full / (captured[:, None, None] if optics.modality == "widefield" else 1.0)
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


def psf_kernels_at(defocus_um, optics: Optics = Optics()) -> PSFKernels:
    """:func:`psf_kernels` at given distances from focus (micrometres, >= 0) instead of levels (cached)."""
    distances = tuple(float(distance) for distance in defocus_um)
    if not distances or min(distances) < 0:
        raise InvalidParameterError(f"distances from focus must be given and >= 0, got {distances}")
    return _cached_kernels(dataclasses.replace(optics, z_step_um=1.0), distances)


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


# --- confocal ------------------------------------------------------------------------------------
# A point-scanning confocal records, from a point of a thin fluorescent layer a distance z from focus at
# radius r, h(r, z) = h_exc(r, z) * [h_det(., z) convolved with the pinhole P](r) (Wilson & Sheppard 1984):
# the widefield intensity PSFs at the excitation and emission wavelengths, and the pinhole's disc
# back-projected into the sample (pinhole_au Airy units of 1.22 emission / NA). A widefield PSF integrates to
# 1 at every z (a thin layer is as bright out of focus, only blurred); the confocal's integral falls with z
# (optical sectioning), which confocal_profile keeps by normalising to its in-focus integral.

#: Samples per emission Airy radius of the 2-D grid the pinhole convolution is computed on.
_SAMPLES_PER_AIRY_RADIUS = 8


def airy_unit_um(optics: Optics) -> float:
    """One Airy unit in the sample plane: the diameter of the emission Airy disc, ``1.22 wavelength / NA``."""
    return 1.22 * optics.wavelength_um / optics.numerical_aperture


#: Quadrature of the pinhole's disc: Gauss-Legendre rings (in r^2, equal area) per Airy unit of its diameter
#: (at least this many), each with three times as many equally spaced angles.
_PINHOLE_RINGS_PER_AU = 8


def _pinhole_filtered_detection(radius_um, defocus_um, optics: Optics, pinhole_au: float) -> np.ndarray:
    """The detection PSF averaged over the pinhole's disc centred at ``radius_um`` (shape (R, Z)).

    The disc is sampled by a polar quadrature (points a fraction of an Airy
    radius apart, :data:`_PINHOLE_RINGS_PER_AU`) on a finely tabulated radial
    profile: no 2-D grid, so high NA and large defocus cost no more than focus.
    """
    radius = np.atleast_1d(np.asarray(radius_um, dtype=float))
    pinhole_radius = 0.5 * pinhole_au * airy_unit_um(optics)
    rings = max(_PINHOLE_RINGS_PER_AU, int(math.ceil(_PINHOLE_RINGS_PER_AU * pinhole_au)))
    angles = 3 * rings
    nodes, weights = _gauss_legendre_on_unit_interval(rings)
    ring = pinhole_radius * np.sqrt(nodes)  # Gauss-Legendre in (r / R)^2: weights are areas
    angle = 2 * math.pi * (np.arange(angles) + 0.5) / angles
    dx = (ring[:, None] * np.cos(angle)[None, :]).ravel()
    dy = (ring[:, None] * np.sin(angle)[None, :]).ravel()
    weight = np.repeat(weights, angles) / angles
    step = 0.61 * optics.wavelength_um / optics.numerical_aperture / (4 * _SAMPLES_PER_AIRY_RADIUS)
    fine = np.arange(0.0, float(radius.max(initial=0.0)) + pinhole_radius + 2 * step, step)
    detection = psf_profile(fine, defocus_um, optics)  # (fine, Z)
    distance = np.hypot(radius[:, None] + dx[None, :], dy[None, :])  # (R, points)
    result = np.empty((radius.size, detection.shape[1]))
    for index in range(detection.shape[1]):
        result[:, index] = np.interp(distance, fine, detection[:, index]) @ weight
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
    exc = psf_profile(radius, with_focus, dataclasses.replace(optics, wavelength_um=excitation), illumination=True)
    det = _pinhole_filtered_detection(radius, with_focus, optics, pinhole_au)
    profile = exc * det
    # Normalise by the in-focus integral (2 pi r dr), computed on a grid fine enough for it.
    fine = np.linspace(0.0, 4 * airy_unit_um(optics) + 0.5 * pinhole_au * airy_unit_um(optics), 801)
    focus = psf_profile(fine, [0.0], dataclasses.replace(optics, wavelength_um=excitation), illumination=True)[:, 0] * \
        _pinhole_filtered_detection(fine, [0.0], optics, pinhole_au)[:, 0]
    total = float(trapezoid(focus * 2 * math.pi * fine, fine))
    return profile[:, 1:] / total


def crosstalk_fraction(pinhole_spacing: float) -> float:
    """The fraction of a spinning disk's area its pinholes open: ``pi / 4 / spacing**2`` (a square array)."""
    return math.pi / 4 / pinhole_spacing**2


def spinning_disk_profile(confocal, widefield, pinhole_spacing: float = 5.0) -> np.ndarray:
    """A spinning disk's PSF from the confocal and widefield profiles on the same radii (relative to focus).

    Out-of-focus emission reaches the camera through every pinhole of the
    disc, not only the conjugate one: a fraction of the widefield image
    (:func:`crosstalk_fraction`) adds to the confocal one (an approximation
    after Wilson, "Resolution and optical sectioning in the confocal
    microscope", J Microsc 2011). Normalised so the in-focus integral is 1.
    """
    fraction = crosstalk_fraction(pinhole_spacing)
    return (np.asarray(confocal) + fraction * np.asarray(widefield)) / (1.0 + fraction)


def modality_profile(radius_um, defocus_um, optics: Optics = Optics()) -> np.ndarray:
    """The PSF of ``optics.modality`` at given radii and defocus, shape (R, Z).

    Widefield: :func:`psf_profile` (integral 1). Confocal: :func:`confocal_profile` with the optics'
    pinhole and excitation; spinning disk: :func:`spinning_disk_profile`. Both relative to focus (their
    integral out of focus is the light the pinhole passes).
    """
    if optics.modality == "widefield":
        return psf_profile(radius_um, defocus_um, optics)
    confocal = confocal_profile(radius_um, defocus_um, optics, optics.pinhole_au, optics.excitation_wavelength_um)
    if optics.modality == "confocal":
        return confocal
    return spinning_disk_profile(confocal, psf_profile(radius_um, defocus_um, optics), optics.pinhole_spacing)


def sectioning(defocus_um, optics: Optics = Optics(), pinhole_au: float = 1.0,
               excitation_wavelength_um: float | None = None) -> np.ndarray:
    """The fraction of a thin layer's in-focus signal a confocal records at each defocus (1 at focus)."""
    from scipy.integrate import trapezoid

    defocus = np.atleast_1d(np.asarray(defocus_um, dtype=float))
    reach = float(np.abs(defocus).max()) * math.tan(math.asin(optics.numerical_aperture / optics.refractive_index))
    radius = np.linspace(0.0, reach + 4 * airy_unit_um(optics), 1601)
    profile = confocal_profile(radius, defocus, optics, pinhole_au, excitation_wavelength_um)
    return trapezoid(profile * (2 * math.pi * radius)[:, None], radius, axis=0)
