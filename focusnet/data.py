"""Training and validation patches made on the fly by the defocus simulator.

Each in-focus source image is blurred to every level once (the expensive
part); a batch is then random 84x84 crops of random images at uniformly
random levels, each passed through its own random camera (gain and offset
log-uniform in the paper's ranges, Poisson noise) and a random flip/rotation.
Crops are uniform over the image, so background-only crops occur as often as
they do in real images, as in the paper: the classifier learns that they
carry little information (low certainty) rather than never seeing them.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .contract import INPUT_SCALE, NUM_LEVELS, PATCH_SIZE
from .errors import ImageFormatError, InvalidParameterError
from .optics import Optics
from .simulate import blur_levels, camera_counts, draw_cameras

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
    """

    name: str
    blurred: np.ndarray
    dark: float
    counts_per_electron: float


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


def prepare_source(image: np.ndarray, name: str, optics: Optics = Optics()) -> SourceImage:
    """Blur one in-focus image to all levels (8-bit images are rescaled)."""
    counts, counts_per_electron = source_counts(image, name, PATCH_SIZE)
    blurred = blur_levels(counts, range(NUM_LEVELS), optics).astype(np.float32)
    return SourceImage(name=name, blurred=blurred, dark=float(counts.min()), counts_per_electron=counts_per_electron)


def sample_batch(sources, batch_size: int, rng: np.random.Generator, augment: bool = True):
    """Draw a batch of simulated patches and their true levels.

    Parameters
    ----------
    sources : sequence of SourceImage
    batch_size : int
    rng : numpy.random.Generator
    augment : bool
        Random gain/offset and flips/rotations (always on for training).

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
    for i, (source_index, level) in enumerate(zip(which, levels)):
        source = sources[source_index]
        height, width = source.blurred.shape[1:]
        y = rng.integers(0, height - PATCH_SIZE + 1)
        x = rng.integers(0, width - PATCH_SIZE + 1)
        crops[i] = source.blurred[level, y:y + PATCH_SIZE, x:x + PATCH_SIZE]
        darks[i] = source.dark
        per_electron[i] = source.counts_per_electron
    if augment:
        gains, offsets = draw_cameras(rng, batch_size)
    else:
        gains, offsets = np.ones(batch_size), darks
    # One camera per patch: each parameter broadcasts over its patch.
    counts = camera_counts(crops, darks[:, None, None], per_electron[:, None, None], gains[:, None, None],
                           offsets[:, None, None], rng)
    if augment:
        for i in range(batch_size):
            counts[i] = np.rot90(counts[i], rng.integers(4))
            if rng.integers(2):
                counts[i] = counts[i][:, ::-1]
    patches = (counts / INPUT_SCALE).astype(np.float32)[..., None]
    return patches, levels.astype(np.int32)


def fixed_validation_set(sources, patches_per_level: int, seed: int):
    """A deterministic validation set: the same patches every time it is made."""
    return sample_batch(sources, patches_per_level * NUM_LEVELS, np.random.default_rng(seed))
