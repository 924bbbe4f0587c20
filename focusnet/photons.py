"""Photon-limited imaging: detectors users have, fewer photons from real images, and a camera's gain.

* :class:`Detector` records a photon image (expected photons per pixel) the
  way a real detector does: a camera (sCMOS or CCD: quantum efficiency,
  Poisson shot noise, Gaussian read noise, gain and offset), an EMCCD (the
  electron-multiplying register's Gamma-distributed gain, excess noise factor
  sqrt(2)) or a point scanner's PMT or HyD (dark counts, and a pulse height
  that varies from photon to photon: Gamma of shape ``pulse_shape``).
* :func:`photon_image` scales a noise-free image so that its brightest object
  holds a given number of photons per pixel.
* :func:`binomial_thinning` keeps each detected photon of a real raw image
  with probability ``fraction``: an exact model of collecting that fraction
  of the light with the same detector (Poisson(n) thinned is Poisson(f n)).
* :func:`photon_transfer` estimates a camera's gain (counts per
  photoelectron) and offset from one image, from how the local variance of
  its pixels grows with their mean (the photon transfer curve).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .errors import InvalidParameterError
from .simulate import UINT16_MAX

DETECTOR_KINDS = ("camera", "emccd", "pmt")


@dataclasses.dataclass(frozen=True)
class Detector:
    """A detector that turns expected photons per pixel into raw counts.

    Parameters
    ----------
    kind : {"camera", "emccd", "pmt"}
        sCMOS/CCD camera, electron-multiplying CCD, or a point scanner's photomultiplier or hybrid detector.
    quantum_efficiency : float
        Fraction of photons detected (0-1].
    gain : float
        Counts per detected photoelectron (camera, EMCCD: after multiplication; PMT/HyD: mean counts per
        photon pulse).
    offset : float
        Counts added to every pixel (the dark level).
    read_noise : float
        Gaussian read noise in photoelectrons, before the gain (camera and EMCCD).
    em_gain : float
        The EMCCD's electron multiplication (mean electrons out per electron in).
    pulse_shape : float
        PMT/HyD: the shape of the Gamma distribution of one photon's pulse height (large: uniform pulses, a HyD;
        about 2: a PMT).
    dark_counts : float
        PMT/HyD: dark counts per pixel (expected, Poisson), added to the photons.
    """

    kind: str = "camera"
    quantum_efficiency: float = 1.0
    gain: float = 1.0
    offset: float = 100.0
    read_noise: float = 0.0
    em_gain: float = 1.0
    pulse_shape: float = 2.0
    dark_counts: float = 0.0

    def __post_init__(self):
        if self.kind not in DETECTOR_KINDS:
            raise InvalidParameterError(f"Detector.kind must be one of {DETECTOR_KINDS}, got {self.kind!r}")
        if not 0 < self.quantum_efficiency <= 1:
            raise InvalidParameterError("Detector.quantum_efficiency must be in (0, 1], got "
                                        f"{self.quantum_efficiency!r}")
        for name in ("gain", "em_gain", "pulse_shape"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InvalidParameterError(f"Detector.{name} must be a positive number, got {value!r}")
        for name in ("offset", "read_noise", "dark_counts"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise InvalidParameterError(f"Detector.{name} must be a number >= 0, got {value!r}")

    def record(self, photons, rng: np.random.Generator) -> np.ndarray:
        """Raw counts (float64, whole numbers in [0, 65535]) of an image of expected photons per pixel."""
        photons = np.maximum(np.asarray(photons, dtype=np.float64), 0.0)
        if self.kind == "pmt":
            detected = rng.poisson(photons * self.quantum_efficiency + self.dark_counts)
            # A sum of n Gamma(k, g/k) pulses is Gamma(n k, g/k); no photon, no pulse.
            signal = np.where(detected > 0, rng.gamma(np.maximum(detected, 1) * self.pulse_shape,
                                                      self.gain / self.pulse_shape), 0.0)
        else:
            electrons = rng.poisson(photons * self.quantum_efficiency).astype(np.float64)
            if self.kind == "emccd":
                electrons = np.where(electrons > 0, rng.gamma(np.maximum(electrons, 1), self.em_gain), 0.0)
                electrons = electrons / self.em_gain  # back to input electrons, with the register's excess noise
            if self.read_noise:
                electrons = electrons + rng.normal(0.0, self.read_noise / (self.em_gain if self.kind == "emccd"
                                                                           else 1.0), photons.shape)
            signal = electrons * self.gain
        return np.clip(np.rint(signal + self.offset), 0, UINT16_MAX)


def photon_image(noise_free, dark: float, peak_photons: float, background_photons: float = 0.0) -> np.ndarray:
    """Expected photons per pixel: the signal above ``dark`` scaled so its 99.9th percentile is ``peak_photons``.

    Parameters
    ----------
    noise_free : array_like
        A noise-free image in counts (e.g. a simulated defocus level of a real in-focus image).
    dark : float
        Its dark level (no light).
    peak_photons : float
        Photons per pixel at the brightest objects (the 99.9th percentile, robust to a few hot pixels).
    background_photons : float
        Photons per pixel added everywhere (out-of-focus light, autofluorescence).
    """
    signal = np.maximum(np.asarray(noise_free, dtype=np.float64) - dark, 0.0)
    peak = float(np.percentile(signal, 99.9))
    if not (peak > 0 and peak_photons > 0):
        raise InvalidParameterError("photon_image needs an image with signal above its dark level and "
                                    "peak_photons > 0")
    return signal * (peak_photons / peak) + background_photons


def binomial_thinning(counts, fraction: float, offset: float, gain: float = 1.0,
                      rng: np.random.Generator | None = None) -> np.ndarray:
    """A real raw image as if it had collected ``fraction`` of its light (uint16, same detector).

    Each detected photoelectron, ``(counts - offset) / gain`` rounded, is kept
    with probability ``fraction``. For a shot-noise-limited detector this is
    exact: a thinned Poisson count is a Poisson count of the thinned mean.
    Read noise is not thinned (it is a small share at the fractions used).

    Parameters
    ----------
    counts : array_like of int
        Raw counts.
    fraction : float
        In (0, 1].
    offset : float
        The detector's dark level in counts.
    gain : float
        Counts per photoelectron (:func:`photon_transfer` estimates it).
    rng : numpy.random.Generator, optional
    """
    if not 0 < fraction <= 1:
        raise InvalidParameterError(f"fraction must be in (0, 1], got {fraction!r}")
    if not (math.isfinite(gain) and gain > 0):
        raise InvalidParameterError(f"gain must be a positive number of counts per photoelectron, got {gain!r}")
    rng = np.random.default_rng() if rng is None else rng
    electrons = np.rint(np.maximum(np.asarray(counts, dtype=np.float64) - offset, 0.0) / gain).astype(np.int64)
    kept = rng.binomial(electrons, fraction)
    return np.clip(np.rint(kept * gain + offset), 0, UINT16_MAX).astype(np.uint16)


def photon_transfer(image, block: int = 8) -> tuple:
    """A camera's gain (counts per photoelectron) and offset, estimated from one raw image.

    In ``block`` x ``block`` tiles, the variance of second differences along
    rows (a sixth of it: the noise variance; smooth structure cancels) is
    fitted against the tile's mean: shot noise gives
    ``variance = gain * (mean - offset)``, so the slope is the gain and the
    intercept on the mean axis is the offset. The fit goes through the median
    tile of each of 20 brightness bins, which keeps edges and hot pixels out.

    Returns
    -------
    (float, float)
        Gain and offset, in counts.
    """
    image = np.asarray(image, dtype=np.float64)
    height, width = (image.shape[0] // block) * block, (image.shape[1] // block) * block
    if height < block or width < 2 * block:
        raise InvalidParameterError(f"photon_transfer needs an image of at least {block} x {2 * block} pixels")
    tiles = image[:height, :width].reshape(height // block, block, width // block, block).swapaxes(1, 2)
    tiles = tiles.reshape(-1, block, block)
    means = tiles.mean(axis=(1, 2))
    # Second differences along rows cancel smooth structure (linear ramps); for white noise their variance is 6x.
    noise = np.diff(tiles, n=2, axis=2).var(axis=(1, 2)) / 6.0
    # Per bin of brightness, the median tile: flat regions outnumber edges, whose structure adds variance.
    edges = np.quantile(means, np.linspace(0, 1, 21))
    centres, variances = [], []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (means >= low) & (means <= high)
        if inside.sum() >= 5:
            centres.append(np.median(means[inside]))
            variances.append(np.median(noise[inside]))
    if len(centres) < 3:
        raise InvalidParameterError("photon_transfer: too few tiles to fit; give a larger image")
    slope, intercept = np.polyfit(centres, variances, 1)
    if not slope > 0:
        raise InvalidParameterError("photon_transfer: the noise does not grow with the signal in this image "
                                    "(not raw counts, or too little range to fit)")
    return float(slope), float(-intercept / slope)


#: Photons per pixel at the brightest objects (in focus) that photon-limited training patches get (log-uniform).
PEAK_PHOTONS_RANGE = (2.0, 1e4)
#: Background light (out-of-focus haze, autofluorescence) as a fraction of the peak (log-uniform).
BACKGROUND_FRACTION_RANGE = (0.002, 0.3)
#: The detectors training draws, each parameter log-uniform in its range: sCMOS/CCD cameras, EMCCDs and a
#: point scanner's PMT or HyD. Gains in counts per photoelectron (per photon pulse for a PMT).
DETECTOR_RANGES = {
    "camera": {"gain": (0.3, 5.0), "offset": (1.0, 1000.0), "read_noise": (0.5, 3.0)},
    "emccd": {"gain": (0.5, 20.0), "offset": (100.0, 1000.0), "read_noise": (10.0, 60.0), "em_gain": (30.0, 300.0)},
    "pmt": {"gain": (1.0, 50.0), "offset": (1.0, 100.0), "pulse_shape": (1.5, 20.0), "dark_counts": (0.005, 0.5)},
}
#: Counts a detector's brightest pixel may reach (16 bits, with headroom for noise).
_HEADROOM_COUNTS = 50000.0


def _log_uniform(rng: np.random.Generator, bounds) -> float:
    return float(np.exp(rng.uniform(math.log(bounds[0]), math.log(bounds[1]))))


def draw_detector(rng: np.random.Generator, kind: str, brightest_photons: float) -> Detector:
    """A random detector of ``kind`` from :data:`DETECTOR_RANGES`, its gain capped so the brightest pixel fits.

    Parameters
    ----------
    rng : numpy.random.Generator
    kind : {"camera", "emccd", "pmt"}
    brightest_photons : float
        Expected photons at the brightest pixel it will record (peak plus background).
    """
    values = {name: _log_uniform(rng, bounds) for name, bounds in DETECTOR_RANGES[kind].items()}
    values["gain"] = min(values["gain"], (_HEADROOM_COUNTS - values["offset"]) / max(brightest_photons, 1.0))
    return Detector(kind=kind, **values)


def record_photon_limited(signal, peak_signal: float, rng: np.random.Generator, kind: str) -> np.ndarray:
    """A noise-free signal recorded in dim light by a random detector (the training augmentation).

    The signal (counts above the dark level) is scaled so that ``peak_signal``
    becomes a peak drawn from :data:`PEAK_PHOTONS_RANGE`, a background from
    :data:`BACKGROUND_FRACTION_RANGE` is added, and :func:`draw_detector`'s
    detector records it.

    Parameters
    ----------
    signal : ndarray
        Noise-free counts above the dark level (e.g. a crop of a blurred level).
    peak_signal : float
        The in-focus image's peak (its 99.9th percentile above dark): the same sample blurred keeps its light,
        so blurred crops are dimmer.
    rng : numpy.random.Generator
    kind : {"camera", "emccd", "pmt"}

    Returns
    -------
    ndarray of float64
        Raw counts.
    """
    peak_photons = _log_uniform(rng, PEAK_PHOTONS_RANGE)
    background = peak_photons * _log_uniform(rng, BACKGROUND_FRACTION_RANGE)
    photons = np.maximum(signal, 0.0) * (peak_photons / peak_signal) + background
    return draw_detector(rng, kind, float(photons.max())).record(photons, rng)


def photon_limited_augmentation(fraction: float, confocal_fraction: float) -> dict:
    """How a run's photon-limited augmentation is recorded in the model's ``config.json``."""
    return {"fraction": fraction, "confocal_fraction": confocal_fraction,
            "peak_photons_range": list(PEAK_PHOTONS_RANGE),
            "background_fraction_range": list(BACKGROUND_FRACTION_RANGE),
            "detectors": {kind: {name: list(bounds) for name, bounds in ranges.items()}
                          for kind, ranges in DETECTOR_RANGES.items()},
            "widefield_detectors": list(WIDEFIELD_DETECTORS), "confocal_detector": "pmt"}


#: Detectors of photon-limited widefield patches (a confocal's are PMTs).
WIDEFIELD_DETECTORS = ("camera", "emccd")
