"""Training and validation patches made on the fly by the defocus simulator.

Each in-focus source image is blurred to every level once (the expensive
part); a batch is then random 84x84 crops of random images at uniformly
random levels, each passed through its own random camera (gain and offset
log-uniform in the paper's ranges, Poisson noise) and a random flip/rotation.
Crops are uniform over the image, so background-only crops occur as often as
they do in real images, as in the paper: the classifier learns that they
carry little information (low certainty) rather than never seeing them.

A share of the patches is photon-limited instead
(:func:`focusnet.photons.record_photon_limited`): the sample is given from a
few photons to 10^4 at its brightest in-focus pixel and recorded by a random
camera, EMCCD or (confocal patches) PMT, so that shot noise at a few photons
per pixel, which looks like fine texture, is seen with its true level. A
share of those is blurred by a point-scanning confocal's PSF
(:mod:`focusnet.optics`) at the distance where it blurs as much as the
level (:func:`confocal_distances`), recorded by a PMT.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .contract import INPUT_SCALE, NUM_LEVELS, PATCH_SIZE
from .errors import ImageFormatError, InvalidParameterError
from .optics import Optics
from .photons import WIDEFIELD_DETECTORS, record_photon_limited
from .simulate import blur_distances, blur_levels, camera_counts, draw_cameras

# 8-bit sources (e.g. CellProfiler's ExampleFly) are brought to a 16-bit-like
# intensity range; their photon statistics stay those of the 8-bit values.
EIGHT_BIT_SCALE = 16.0


@dataclasses.dataclass
class SourceImage:
    """An in-focus image blurred to every level, ready for cropping.

    Attributes
    ----------
    name : str
    blurred : ndarray, shape (11, H, W), float32
        Noise-free intensities in counts.
    dark : float
        The source camera's dark level in counts (image minimum).
    counts_per_electron : float
    peak : float
    confocal : ndarray, shape (11, H, W), float32, or None
    """

    name: str
    blurred: np.ndarray
    dark: float
    counts_per_electron: float
    #: The in-focus image's brightest objects above ``dark`` (99.9th percentile): photon-limited patches' peak.
    peak: float = 1.0
    #: The image blurred by a confocal at each level's equal-blur distance (above ``dark``; each level keeps the
    #: in-focus light), or None.
    confocal: np.ndarray | None = None


def source_counts(image: np.ndarray, name: str, min_side: int) -> tuple:
    """An in-focus training image as float64 counts, and the counts per photoelectron (8-bit: rescaled).

    Raises
    ------
    ImageFormatError, InvalidParameterError
        Not one channel, floating-point pixels, or smaller than ``min_side`` on a side.
    """
    from .images import check_single_channel

    image = check_single_channel(image, name)
    if image.dtype.kind == "f":
        # As predict: raw counts cannot be guessed from floats, and [0, 1] floats read as counts hold no
        # structure worth learning.
        raise ImageFormatError(f"{name}: floating-point pixels; training needs raw counts: save the image as "
                               "integers (e.g. 16-bit), multiplying by the count that 1.0 stands for")
    if min(image.shape) < min_side:
        raise InvalidParameterError(f"{name}: training images must be at least {min_side} px on each side, "
                                    f"got {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float64) * EIGHT_BIT_SCALE, EIGHT_BIT_SCALE
    return image.astype(np.float64), 1.0


def confocal_optics(optics: Optics) -> Optics:
    """The training lens as a point-scanning confocal (1 Airy unit; a real lens: the exact defocus phase)."""
    return dataclasses.replace(optics, modality="confocal", defocus_phase="exact")


def confocal_distances(optics: Optics) -> np.ndarray:
    """Micrometres from focus at which the training lens, as a confocal, blurs as much as each level."""
    from .defocus import defocus_scale

    return defocus_scale(optics, confocal_optics(optics))(np.arange(NUM_LEVELS))


def prepare_source(image: np.ndarray, name: str, optics: Optics = Optics(), confocal: bool = False) -> SourceImage:
    """Blur one in-focus image to all levels (8-bit images are rescaled), and as a confocal if asked."""
    counts, counts_per_electron = source_counts(image, name, PATCH_SIZE)
    blurred = blur_levels(counts, range(NUM_LEVELS), optics).astype(np.float32)
    dark = float(counts.min())
    peak = max(float(np.percentile(blurred[0] - dark, 99.9)), 1.0)
    confocal_blurred = None
    if confocal:
        confocal_blurred = blur_distances(counts - dark, confocal_distances(optics), confocal_optics(optics))
        # The light a thin layer loses out of focus is not kept: a thick sample keeps much of it, and the
        # photon-limited peak is drawn at random anyway, so brightness tells nothing about the level.
        totals = confocal_blurred.sum(axis=(1, 2))
        confocal_blurred *= (totals[0] / np.maximum(totals, np.finfo(float).tiny))[:, None, None]
        confocal_blurred = confocal_blurred.astype(np.float32)
    return SourceImage(name=name, blurred=blurred, dark=dark, counts_per_electron=counts_per_electron, peak=peak,
                       confocal=confocal_blurred)


def sample_batch(sources, batch_size: int, rng: np.random.Generator, augment: bool = True,
                 photon_limited_fraction: float = 0.0, confocal_fraction: float = 0.0):
    """Draw a batch of simulated patches and their true levels.

    Parameters
    ----------
    sources : sequence of SourceImage
    batch_size : int
    rng : numpy.random.Generator
    augment : bool
        Random gain/offset and flips/rotations (always on for training).
    photon_limited_fraction : float
        Share of patches recorded in dim light by a random camera or EMCCD
        (:func:`focusnet.photons.record_photon_limited`); needs ``augment``.
    confocal_fraction : float
        Share of patches seen by a confocal and recorded in dim light by a PMT
        (sources prepared with ``confocal=True``); needs ``augment``.

    Returns
    -------
    patches : ndarray, shape (batch_size, 84, 84, 1), float32
        Raw counts divided by 65535, as the network expects.
    levels : ndarray, shape (batch_size,), int32
    """
    # Images are picked in proportion to their area: every region is equally likely.
    areas = np.array([s.blurred.shape[1] * s.blurred.shape[2] for s in sources], dtype=float)
    which = rng.choice(len(sources), size=batch_size, p=areas / areas.sum())
    levels = rng.integers(0, NUM_LEVELS, size=batch_size)
    crops = np.empty((batch_size, PATCH_SIZE, PATCH_SIZE), np.float64)
    darks = np.empty(batch_size)
    per_electron = np.empty(batch_size)
    corners = np.empty((batch_size, 2), np.intp)
    for i, (source_index, level) in enumerate(zip(which, levels)):
        source = sources[source_index]
        height, width = source.blurred.shape[1:]
        y = rng.integers(0, height - PATCH_SIZE + 1)
        x = rng.integers(0, width - PATCH_SIZE + 1)
        crops[i] = source.blurred[level, y:y + PATCH_SIZE, x:x + PATCH_SIZE]
        corners[i] = y, x
        darks[i] = source.dark
        per_electron[i] = source.counts_per_electron
    if augment:
        gains, offsets = draw_cameras(rng, batch_size)
    else:
        gains, offsets = np.ones(batch_size), darks
    # One camera per patch: each parameter broadcasts over its patch.
    counts = camera_counts(crops, darks[:, None, None], per_electron[:, None, None], gains[:, None, None],
                           offsets[:, None, None], rng)
    if augment and (photon_limited_fraction > 0 or confocal_fraction > 0):
        kinds = rng.choice(3, size=batch_size, p=[1 - photon_limited_fraction - confocal_fraction,
                                                  photon_limited_fraction, confocal_fraction])
        for i in np.nonzero(kinds)[0]:
            source = sources[which[i]]
            if kinds[i] == 2:
                y, x = corners[i]
                signal = source.confocal[levels[i], y:y + PATCH_SIZE, x:x + PATCH_SIZE].astype(np.float64)
                counts[i] = record_photon_limited(signal, source.peak, rng, "pmt")
            else:
                counts[i] = record_photon_limited(crops[i] - source.dark, source.peak, rng,
                                                  WIDEFIELD_DETECTORS[rng.integers(len(WIDEFIELD_DETECTORS))])
    if augment:
        for i in range(batch_size):
            counts[i] = np.rot90(counts[i], rng.integers(4))
            if rng.integers(2):
                counts[i] = counts[i][:, ::-1]
    patches = (counts / INPUT_SCALE).astype(np.float32)[..., None]
    return patches, levels.astype(np.int32)


def fixed_validation_set(sources, patches_per_level: int, seed: int, photon_limited_fraction: float = 0.0,
                         confocal_fraction: float = 0.0):
    """A deterministic validation set: the same patches every time it is made (drawn as training's are)."""
    return sample_batch(sources, patches_per_level * NUM_LEVELS, np.random.default_rng(seed),
                        photon_limited_fraction=photon_limited_fraction, confocal_fraction=confocal_fraction)
