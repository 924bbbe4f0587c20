"""Physical defocus simulation: optical blur followed by a camera model.

An in-focus image in raw camera counts is degraded to defocus level ``L`` by

1. blurring it with the defocused PSF of that level (FFT convolution with
   reflective borders; :mod:`focusnet.optics`), then
2. simulating the sensor: counts above the source camera's offset become
   photoelectrons, Poisson shot noise is drawn, and the result is multiplied
   by a gain, shifted by a sensor offset, rounded and clipped to 16 bits.

Blur conserves the total signal and noise conserves it on average, so with
``gain=1`` and the default offset the mean intensity of every level equals
that of the input. Level 0 applies the in-focus (diffraction-limited) PSF.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .errors import InvalidParameterError
from .optics import DEFAULT_LEVELS, Optics, psf_kernels, psf_kernels_at

UINT16_MAX = 65535

#: Gain and offset ranges of the training augmentation (Yang et al. 2018).
GAIN_RANGE = (0.2, 5.0)
OFFSET_RANGE = (1.0, 1000.0)


@dataclasses.dataclass(frozen=True)
class Sensor:
    """Camera model applied after the optical blur.

    Parameters
    ----------
    gain : float
        Multiplies the signal (photoelectrons times ``counts_per_electron``);
        models exposure time, illumination and camera gain.
    offset : float or None
        Sensor offset (dark level) in counts added to the output. ``None``
        keeps the source image's offset.
    counts_per_electron : float
        Conversion of the source image: counts per photoelectron (default 1).
    source_offset : float or None
        Dark level of the source image in counts, subtracted before counts
        become photoelectrons. ``None`` estimates it as the image's minimum.
    noise : bool
        Draw Poisson shot noise on the photoelectrons.
    """

    gain: float = 1.0
    offset: float | None = None
    counts_per_electron: float = 1.0
    source_offset: float | None = None
    noise: bool = True

    def __post_init__(self):
        for name in ("gain", "counts_per_electron"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InvalidParameterError(f"Sensor.{name} must be a positive number, got {value!r}")
        for name in ("offset", "source_offset"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and 0 <= value <= UINT16_MAX):
                raise InvalidParameterError(f"Sensor.{name} must be in [0, {UINT16_MAX}] counts or None, got {value!r}")


def draw_cameras(rng: np.random.Generator, size=None, gain_range=GAIN_RANGE, offset_range=OFFSET_RANGE):
    """The training augmentation's cameras: gains, then offsets, each log-uniform in its range.

    The one place the augmentation is drawn: :func:`random_sensor` and the
    training batches (:func:`focusnet.data.sample_batch`) both use it.

    Parameters
    ----------
    rng : numpy.random.Generator
    size : int, optional
        Number of cameras; ``None`` draws one (floats).
    gain_range, offset_range : tuple of float
        Inclusive ranges (defaults: the paper's gain 0.2-5 and offset 1-1000 counts).

    Returns
    -------
    gains, offsets : float or ndarray
    """
    gains = np.exp(rng.uniform(np.log(gain_range[0]), np.log(gain_range[1]), size))
    offsets = np.exp(rng.uniform(np.log(offset_range[0]), np.log(offset_range[1]), size))
    return gains, offsets


def random_sensor(rng: np.random.Generator, gain_range=GAIN_RANGE, offset_range=OFFSET_RANGE, **fields) -> Sensor:
    """Draw one training augmentation as a :class:`Sensor` (see :func:`draw_cameras`).

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    gain_range, offset_range : tuple of float
        Inclusive ranges.
    **fields
        Other :class:`Sensor` fields (e.g. ``noise=False``).
    """
    gain, offset = draw_cameras(rng, None, gain_range, offset_range)
    return Sensor(gain=float(gain), offset=float(offset), **fields)


@dataclasses.dataclass(frozen=True)
class CameraVariant:
    """A change of camera applied to a simulated image: gain, and counts added to the dark level.

    Evaluation, benchmarks and tests all check robustness against the same
    :data:`CAMERA_VARIANTS`.
    """

    name: str
    gain: float = 1.0
    added_offset: float = 0.0

    def apply(self, blurred, dark: float, rng: np.random.Generator) -> np.ndarray:
        """Image a noise-free blurred image (counts) through this camera, with Poisson noise.

        Parameters
        ----------
        blurred : ndarray
            Noise-free intensities in the source's counts.
        dark : float
            The source camera's dark level (its in-focus image's minimum).
        rng : numpy.random.Generator

        Returns
        -------
        ndarray of uint16
        """
        sensor = Sensor(gain=self.gain, offset=dark + self.added_offset)
        return apply_sensor(blurred, sensor, rng, source_offset=dark)


#: The camera as imaged.
AS_IMAGED = CameraVariant("as imaged")
#: The camera changes every model is checked against (within the training augmentation's ranges).
CAMERA_VARIANTS = (CameraVariant("gain x0.2", gain=0.2), CameraVariant("gain x5", gain=5.0),
                   CameraVariant("offset +100", added_offset=100.0), CameraVariant("offset +1000", added_offset=1000.0))


def _as_counts(image) -> np.ndarray:
    from .images import check_single_channel

    image = check_single_channel(image, "image")
    if not np.all(np.isfinite(image)):
        raise InvalidParameterError("image contains NaN or infinite values")
    return image.astype(np.float64, copy=False)


def blur_levels(image, levels=DEFAULT_LEVELS, optics: Optics = Optics()) -> np.ndarray:
    """Blur an in-focus image to each defocus level, without noise.

    Parameters
    ----------
    image : array_like, shape (H, W)
        In-focus image in raw counts.
    levels : iterable of int
        Defocus levels.
    optics : Optics
        Imaging parameters.

    Returns
    -------
    ndarray, shape (len(levels), H, W), float64
        Blurred images; borders are handled by reflecting the image.
    """
    return _convolve(_as_counts(image), psf_kernels(levels, optics))


def blur_distances(image, defocus_um, optics: Optics = Optics()) -> np.ndarray:
    """:func:`blur_levels` at given distances from focus in micrometres (e.g. a confocal's equal-blur distances)."""
    return _convolve(_as_counts(image), psf_kernels_at(defocus_um, optics))


def _convolve(counts: np.ndarray, psf) -> np.ndarray:
    from scipy.signal import fftconvolve

    r = psf.radius_px
    padded = np.pad(counts, r, mode="reflect")
    blurred = fftconvolve(padded[None], psf.kernels, mode="valid", axes=(1, 2))
    # FFT round-off can leave tiny negatives where the image is zero.
    return np.maximum(blurred, 0.0)


def apply_sensor(blurred, sensor: Sensor = Sensor(), rng: np.random.Generator | None = None, source_offset=None):
    """Turn a noise-free image in counts into a camera image (uint16).

    Parameters
    ----------
    blurred : array_like
        Noise-free intensities in source counts (any shape).
    sensor : Sensor
        Camera model.
    rng : numpy.random.Generator, optional
        Needed when ``sensor.noise`` is true.
    source_offset : float, optional
        Dark level to use when ``sensor.source_offset`` is None (e.g. the
        minimum of the original in-focus image); defaults to the minimum of
        ``blurred``.

    Returns
    -------
    ndarray of uint16
    """
    blurred = np.asarray(blurred, dtype=np.float64)
    if sensor.source_offset is not None:
        dark = sensor.source_offset
    elif source_offset is not None:
        dark = float(source_offset)
    else:
        dark = float(blurred.min())
    if sensor.noise and rng is None:
        raise InvalidParameterError("a random generator (rng or seed) is needed to draw noise")
    offset = dark if sensor.offset is None else sensor.offset
    counts = camera_counts(blurred, dark, sensor.counts_per_electron, sensor.gain, offset,
                           rng if sensor.noise else None)
    return counts.astype(np.uint16)


def camera_counts(blurred, dark, counts_per_electron, gain, offset, rng=None) -> np.ndarray:
    """The camera model on noise-free counts; every parameter may be an array that broadcasts.

    Counts above ``dark`` become photoelectrons, Poisson noise is drawn when
    ``rng`` is given, then gain and offset apply; the result is rounded and
    clipped to 16 bits (as float64). :func:`apply_sensor` uses it for one
    camera, training batches for a different camera per patch.
    """
    electrons = np.maximum(np.asarray(blurred, dtype=np.float64) - dark, 0.0) / counts_per_electron
    if rng is not None:
        electrons = rng.poisson(electrons).astype(np.float64)
    return np.clip(np.rint(electrons * counts_per_electron * gain + offset), 0, UINT16_MAX)


def degrade(image, level: int, sensor: Sensor = Sensor(), optics: Optics = Optics(), seed=None) -> np.ndarray:
    """Simulate one defocus level of an in-focus image.

    Parameters
    ----------
    image : array_like, shape (H, W)
        In-focus image in raw counts (e.g. uint16).
    level : int
        Defocus level (``z = level * optics.z_step_um``).
    sensor : Sensor
        Camera model (gain, offset, noise).
    optics : Optics
        Imaging parameters.
    seed : int or numpy.random.Generator, optional
        Seeds the noise; the same seed gives the same output.

    Returns
    -------
    ndarray of uint16, shape (H, W)
    """
    return simulate_series(image, [level], sensor=sensor, optics=optics, seed=seed)[0]


def simulate_series(image, levels=DEFAULT_LEVELS, sensor: Sensor = Sensor(), optics: Optics = Optics(), seed=None):
    """Simulate several defocus levels of one in-focus image.

    Each level gets its own noise, drawn from one generator seeded by ``seed``.

    Returns
    -------
    ndarray of uint16, shape (len(levels), H, W)
    """
    counts = _as_counts(image)
    rng = np.random.default_rng(seed)
    blurred = blur_levels(counts, levels, optics)
    return np.stack([apply_sensor(b, sensor, rng, source_offset=counts.min()) for b in blurred])
