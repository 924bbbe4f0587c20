"""Training pairs for refocusing, made by the physical simulator, and the intensity normalisation.

Each in-focus source image is blurred once to every level the model learns
(:func:`focusnet.simulate.blur_levels`). A pair is then a random crop at a
random level seen through a random camera (gain and offset as the
classifier's augmentation, Poisson noise) as input, and the same crop at
level 0 through the same camera *without* noise as target: the network
learns to undo defocus and to leave out the shot noise, which carries no
information about the sample.

Input and target are normalised by the input *image's* percentiles
(:func:`normalisation`), as at inference, where the whole image is known.
For training the percentiles of each noisy level are computed once per
source from one noise draw in photoelectrons; a camera's gain and offset
then map them exactly, since noise is drawn before the gain applies.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..data import source_counts
from ..optics import Optics
from ..simulate import blur_levels, camera_counts, draw_cameras

#: Percentiles of the input image that map to 0 and 1 (CSBDeep's defaults; bioimage.io ``scale_range``).
PERCENTILES = (1.0, 99.8)
#: Smallest range (in counts) a normalisation divides by: flat images are not inflated into noise.
MIN_RANGE = 1.0


def normalisation(counts: np.ndarray, percentiles=PERCENTILES) -> tuple:
    """The input's ``(low, range)``: ``(counts - low) / range`` maps its percentiles to 0 and 1."""
    low, high = np.percentile(counts, percentiles)
    return float(low), float(max(high - low, MIN_RANGE))


@dataclasses.dataclass
class RefocusSource:
    """An in-focus image blurred to every level a refocus model learns.

    Attributes
    ----------
    name : str
    blurred : ndarray, shape (levels, H, W), float32
        Noise-free intensities in counts; index = level.
    dark : float
        The source camera's dark level in counts (image minimum).
    counts_per_electron : float
    electron_percentiles : ndarray, shape (levels, 2)
        Percentiles (:data:`PERCENTILES`) of each level in photoelectrons, with shot noise.
    """

    name: str
    blurred: np.ndarray
    dark: float
    counts_per_electron: float
    electron_percentiles: np.ndarray


def prepare_refocus_source(image: np.ndarray, name: str, max_level: int, optics: Optics = Optics(),
                           patch_size: int = 0, seed: int = 0) -> RefocusSource:
    """Blur one in-focus image to levels ``0..max_level`` (8-bit images are rescaled as for the classifier)."""
    counts, counts_per_electron = source_counts(image, name, patch_size)
    blurred = blur_levels(counts, range(max_level + 1), optics)
    dark = float(counts.min())
    rng = np.random.default_rng([seed, 17])
    electrons = [rng.poisson(np.maximum(level - dark, 0) / counts_per_electron) * counts_per_electron
                 for level in blurred]
    percentiles = np.array([np.percentile(e, PERCENTILES) for e in electrons])
    return RefocusSource(name, blurred.astype(np.float32), dark, counts_per_electron, percentiles)


def sample_pairs(sources, batch_size: int, patch_size: int, max_level: int, rng: np.random.Generator,
                 augment: bool = True):
    """A batch of (defocused input, in-focus target) crops, normalised, with their levels.

    Returns
    -------
    inputs, targets : ndarray, shape (batch_size, patch_size, patch_size, 1), float32
    levels : ndarray of int, shape (batch_size,)
    scales : ndarray, shape (batch_size, 2)
        Each pair's ``(low, range)`` in counts (to turn outputs back into counts).
    """
    areas = np.array([s.blurred.shape[1] * s.blurred.shape[2] for s in sources], dtype=float)
    which = rng.choice(len(sources), size=batch_size, p=areas / areas.sum())
    levels = rng.integers(0, max_level + 1, size=batch_size)
    if augment:
        gains, offsets = draw_cameras(rng, batch_size)
    else:
        gains, offsets = np.ones(batch_size), np.array([sources[i].dark for i in which])
    inputs = np.empty((batch_size, patch_size, patch_size), np.float32)
    targets = np.empty_like(inputs)
    scales = np.empty((batch_size, 2))
    for i, (index, level) in enumerate(zip(which, levels)):
        source = sources[index]
        height, width = source.blurred.shape[1:]
        y = rng.integers(0, height - patch_size + 1)
        x = rng.integers(0, width - patch_size + 1)
        window = (slice(y, y + patch_size), slice(x, x + patch_size))
        noisy = camera_counts(source.blurred[level][window], source.dark, source.counts_per_electron, gains[i],
                              offsets[i], rng)
        # The target is what a noise-free camera would record (not rounded: no information is lost).
        clean = np.maximum(source.blurred[0][window] - source.dark, 0.0) * gains[i] + offsets[i]
        low_e, high_e = source.electron_percentiles[level]
        low = low_e * gains[i] + offsets[i]
        span = max((high_e - low_e) * gains[i], MIN_RANGE)
        if augment:
            turns, flip = rng.integers(4), rng.integers(2)
            noisy, clean = np.rot90(noisy, turns), np.rot90(clean, turns)
            if flip:
                noisy, clean = noisy[:, ::-1], clean[:, ::-1]
        inputs[i] = (noisy - low) / span
        targets[i] = (clean - low) / span
        scales[i] = low, span
    return inputs[..., None], targets[..., None], levels, scales


def fixed_pairs(sources, count: int, patch_size: int, max_level: int, seed: int):
    """A deterministic validation set: the same pairs every time it is made."""
    return sample_pairs(sources, count, patch_size, max_level, np.random.default_rng(seed))
