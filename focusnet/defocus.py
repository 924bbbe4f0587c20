"""Defocus levels as micrometres of defocus of the user's own objective.

A model's level ``L`` means the blur its training optics give at
``z = L * z_step_um`` (by default 20x/0.5 NA in air, 500 nm, 2 um per level)
with the defocus phase it was simulated with (:mod:`focusnet.optics`).
Another objective reaches the same blur at another distance: a 1.45 NA oil
objective blurs several times faster per micrometre. focusnet converts with
its own Born & Wolf PSF (:func:`focusnet.optics.psf_profile`): the *defocus
blur* is the diameter of the circle holding 84 % of the PSF's energy, beyond
the objective's in-focus spot (the two added in quadrature, so level 0 is
0 um for every objective), measured in micrometres in the sample plane, where
the model sees the image once it is resampled to the model's pixel size.
``L`` maps to the distance at which the user's objective, a real lens with
the exact defocus phase, gives the model's level-``L`` defocus blur. Above and below focus look the same: it is a
distance.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from .contract import NUM_LEVELS
from .optics import Optics, _encircled_energy, modality_profile

#: Energy fraction whose circle's diameter measures blur (the Airy disc's at focus).
BLUR_ENERGY_FRACTION = 0.84
#: Levels are converted on this grid and interpolated between (1/20 of a level).
_LEVEL_GRID = np.linspace(0.0, NUM_LEVELS - 1, 20 * (NUM_LEVELS - 1) + 1)


def blur_diameter_um(defocus_um, optics: Optics, energy_fraction: float = BLUR_ENERGY_FRACTION) -> np.ndarray:
    """Diameter (um, sample plane) of the circle holding ``energy_fraction`` of the PSF at each defocus.

    Parameters
    ----------
    defocus_um : array_like
        Distances from focus in micrometres.
    optics : Optics
        Wavelength, numerical aperture and immersion index (pixel size and
        z step are not used).
    energy_fraction : float

    Returns
    -------
    ndarray of float, the shape of ``defocus_um``
    """
    defocus = np.abs(np.atleast_1d(np.asarray(defocus_um, dtype=float)))
    sine = optics.numerical_aperture / optics.refractive_index
    # Search far enough: the geometric blur radius plus the diffraction tail.
    geometric = defocus.max(initial=0.0) * sine / math.sqrt(1.0 - sine * sine)
    step = optics.wavelength_um / 25.0
    outer = 2.0 * (geometric + 3.0 * optics.wavelength_um / optics.numerical_aperture) + step
    while True:
        radius = np.arange(0.0, outer + step, step)
        energy = _encircled_energy(radius, modality_profile(radius, defocus, optics))
        if optics.modality != "widefield":
            # A confocal's PSF holds less light out of focus (the pinhole's sectioning) and has no widefield
            # tail within the geometric blur plus a few Airy units: the fraction is of the light it holds.
            energy = energy / np.maximum(energy[-1], np.finfo(float).tiny)
        if np.all(energy[-1] >= energy_fraction):
            break
        outer *= 1.5
    diameters = [2.0 * float(np.interp(energy_fraction, energy[:, i], radius)) for i in range(defocus.size)]
    return np.reshape(diameters, np.shape(defocus_um))


def _same_lens(a: Optics, b: Optics) -> bool:
    # The same lens simulated with another defocus phase, or seen by another modality, blurs differently
    # per micrometre.
    def lens(optics):
        return (optics.wavelength_um, optics.numerical_aperture, optics.refractive_index, optics.defocus_phase,
                optics.modality, optics.pinhole_au, optics.excitation_wavelength_um, optics.pinhole_spacing,
                optics.apodization)

    return lens(a) == lens(b)


@dataclasses.dataclass(frozen=True)
class DefocusScale:
    """Converts a model's (fractional) levels to micrometres of defocus of an objective.

    Build it with :func:`defocus_scale` (cached).

    Attributes
    ----------
    model_optics : Optics
        The optics the model was trained with (its levels' meaning).
    objective : Optics
        The user's objective (wavelength, NA, immersion index).
    levels, micrometres : ndarray
        The conversion on a grid of 1/20 level, increasing.
    """

    model_optics: Optics
    objective: Optics
    levels: np.ndarray
    micrometres: np.ndarray

    def __call__(self, level) -> np.ndarray:
        """Defocus in micrometres of the objective for (fractional) levels 0-10."""
        return np.interp(np.asarray(level, dtype=float), self.levels, self.micrometres)

    @property
    def level_step_um(self) -> float:
        """Mean micrometres per level over the whole range (level 10's distance / 10)."""
        return float(self.micrometres[-1] / self.levels[-1])


def level_blur_um(model_optics: Optics) -> np.ndarray:
    """The model's defocus blur (um, beyond its in-focus spot) at each level of the 1/20-level grid.

    What an objective's blur is matched to (:func:`defocus_scale`); the ImageJ plugin gets it in its bundle.
    """
    diameter = blur_diameter_um(_LEVEL_GRID * model_optics.z_step_um, model_optics)
    return np.sqrt(np.maximum(diameter**2 - diameter[0] ** 2, 0.0))


@functools.lru_cache(maxsize=32)
def defocus_scale(model_optics: Optics, objective: Optics) -> DefocusScale:
    """The level-to-micrometre conversion for an objective (see the module's description).

    Parameters
    ----------
    model_optics : Optics
        The model's training optics (``config["simulator"]["optics"]``).
    objective : Optics
        The user's objective; the model's optics when they are the same.
    """
    if _same_lens(model_optics, objective):
        return DefocusScale(model_optics, objective, _LEVEL_GRID, _LEVEL_GRID * model_optics.z_step_um)
    target = level_blur_um(model_optics)
    # The objective's defocus blur on a z grid reaching past the model's largest one (the blur
    # radius grows at least as fast as z NA / n, the paraxial geometric radius).
    reach = target[-1] / (2.0 * objective.numerical_aperture / objective.refractive_index) + objective.wavelength_um
    while True:
        # A confocal's profile costs a 2-D pinhole convolution per distance: a coarser grid, interpolated.
        z = np.linspace(0.0, reach, 301 if objective.modality == "widefield" else 41)
        diameter = blur_diameter_um(z, objective)
        blur = np.maximum.accumulate(np.sqrt(np.maximum(diameter**2 - diameter[0] ** 2, 0.0)))
        if blur[-1] >= target[-1]:
            break
        reach *= 1.5
    micrometres = np.interp(target, blur, z)
    micrometres[0] = 0.0
    return DefocusScale(model_optics, objective, _LEVEL_GRID, np.maximum.accumulate(micrometres))
