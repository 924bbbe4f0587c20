"""Which patches hold structure above their noise: the rest is not "in focus", nor "out of focus".

A patch of empty background or a near-dark frame is pure shot noise, and a
network trained on real content can read noise as fine, sharp texture. So
before a patch takes part in an answer, focusnet asks whether it holds
structure at all, measured against the patch's own noise, which needs no
knowledge of the camera's gain:

* the pixel noise ``sigma`` is estimated from differences of neighbouring
  pixels (robustly: their median absolute deviation), which blur and
  smooth structure barely touch;
* isolated outliers (hot pixels: brighter than all four neighbours by more
  than 6 sigma) are set to their brightest neighbour, while real objects,
  however small and bright, keep their pixels;
* the patch is averaged in 7 x 7 blocks and a plane (uneven illumination) is
  removed; what varies between the blocks beyond what noise explains is
  structure.

A patch has content when that structure is both significant (chi-square
test of the block means against pure noise, p < 1e-6) and *above its noise*:
its standard deviation at least the pixel noise of the image as the model
sees it (after resampling to the model's pixel size, which averages noise
down). Pure Poisson noise at any mean gives a structure-to-noise ratio below
0.25 (tests/unit/test_content.py).

A patch with content can still be too noisy to judge: shot noise is high-frequency energy that
a blur classifier can read as sharpness, and at a low structure-to-noise its answers lose
accuracy. Patches below :data:`TOO_NOISY_BELOW` take no part in the answer, and an image with none
left is "too noisy". The threshold is one number for every answer: leaving out only some answers
(say, dim patches that read sharp) would bias the image's answer towards the others.
"""

from __future__ import annotations

import functools
import math

import numpy as np

#: Blocks per side in which a patch's structure is measured.
BLOCKS = 7
#: Structure must be at least this many times the pixel noise (as the model sees it).
MIN_STRUCTURE_TO_NOISE = 1.0
#: Patches with content but a structure-to-noise below this are too noisy to judge: measured for the shipped model
#: by ``benchmarks/accuracy_vs_snr.py`` (simulated defocus of held-out real images at 2 to 10^4 photons, cameras,
#: EMCCDs and PMTs) as the lowest bin edge from which every bin keeps at least 90 % of the accuracy (within one
#: level) that the model has on bright patches (structure-to-noise 16 and more).
TOO_NOISY_BELOW = 3.0
#: Significance of the structure against pure noise.
P_VALUE = 1e-6
#: A pixel brighter than all four neighbours by this many noise sigmas is a hot pixel.
HOT_PIXEL_SIGMAS = 6.0


#: The noise and the median are estimated from every ROW_STEP-th row (about 900 samples
#: per 84 x 84 patch: a few per cent of error; the medians are what costs time).
ROW_STEP = 8


def noise_sigma(regions: np.ndarray) -> np.ndarray:
    """Pixel noise of each region from neighbouring-pixel differences (robust to edges and blur).

    Parameters
    ----------
    regions : ndarray, shape (N, H, W)

    Returns
    -------
    ndarray, shape (N,)
    """
    rows = np.asarray(regions[:, ::ROW_STEP, :], dtype=np.float32)
    # Differences of neighbours are centred on 0 whatever the image: their median absolute
    # value is the noise's median absolute deviation.
    differences = np.abs(np.diff(rows, axis=2).reshape(len(rows), -1)) / np.float32(math.sqrt(2))
    # The median as np.median defines it (the middle value, or the mean of the middle two),
    # taken from a full sort: numpy's vectorised sort is twice as fast as its partition here.
    ordered = np.sort(differences, axis=1)
    middle = ordered.shape[1] // 2
    median = ordered[:, middle] if ordered.shape[1] % 2 else np.mean(ordered[:, middle - 1:middle + 1], axis=1)
    sigma = 1.4826 * median.astype(np.float64)
    # Very few photons: the median difference is 0; use the plain spread there.
    return np.where(sigma > 0, sigma, np.sqrt((differences.astype(np.float64) ** 2).mean(axis=1)))


def _remove_hot_pixels(regions: np.ndarray, sigma: np.ndarray) -> None:
    """Cap isolated outliers at their brightest neighbour plus HOT_PIXEL_SIGMAS noise sigmas.

    In place; the border rows and columns are left as they are. A capped hot
    pixel adds at most 6 sigma / (block area) to its block's mean: nothing.
    """
    centre = regions[:, 1:-1, 1:-1]
    neighbours = np.maximum(regions[:, :-2, 1:-1], regions[:, 2:, 1:-1])
    np.maximum(neighbours, regions[:, 1:-1, :-2], out=neighbours)
    np.maximum(neighbours, regions[:, 1:-1, 2:], out=neighbours)
    neighbours += (HOT_PIXEL_SIGMAS * sigma).astype(np.float32)[:, None, None]
    np.minimum(centre, neighbours, out=centre)


def _plane_residual_projection() -> np.ndarray:
    rows, cols = np.mgrid[0:BLOCKS, 0:BLOCKS]
    design = np.stack([np.ones(BLOCKS * BLOCKS), rows.ravel(), cols.ravel()], axis=1)
    return np.eye(BLOCKS * BLOCKS) - design @ np.linalg.pinv(design)


_RESIDUAL = _plane_residual_projection()
_DOF = BLOCKS * BLOCKS - 3


@functools.lru_cache(maxsize=None)
def _significant_variance_ratio() -> float:
    """The block means' variance over the noise's that pure noise exceeds with probability P_VALUE (chi-square).

    scipy.special's inverse, not scipy.stats.chi2.isf: the same number, and importing scipy.stats
    takes 0.7 s, more than onnxruntime and focusnet together.
    """
    from scipy.special import chdtri

    return float(chdtri(_DOF, P_VALUE)) / _DOF


def structure_to_noise(regions: np.ndarray, noise_reduction: float = 1.0, overwrite: bool = False):
    """How much structure each region holds beyond its noise.

    Parameters
    ----------
    regions : ndarray, shape (N, H, W) or (H, W)
        Raw counts of patches, in the image's own pixels (at least ``BLOCKS``
        pixels per side).
    noise_reduction : float
        How much the model's view averages the pixel noise down (the linear
        resampling factor when the image is downsampled to the model's
        pixels; 1 otherwise).
    overwrite : bool
        The caller's float32 regions may be changed (hot pixels capped in
        place), saving a copy.

    Returns
    -------
    ratio : ndarray, shape (N,)
        Standard deviation of the structure over the noise the model sees.
    significant : ndarray of bool, shape (N,)
        Whether the block means vary more than noise explains (p < 1e-6).
    """
    regions = np.asarray(regions)
    if regions.ndim == 2:
        regions = regions[None]
    sigma = noise_sigma(regions)
    block_h, block_w = regions.shape[1] // BLOCKS, regions.shape[2] // BLOCKS
    clipped = regions[:, :block_h * BLOCKS, :block_w * BLOCKS]
    if not (overwrite and clipped.dtype == np.float32 and clipped.flags.c_contiguous):
        clipped = np.array(clipped, dtype=np.float32)
    _remove_hot_pixels(clipped, sigma)
    sums = clipped.reshape(len(regions) * BLOCKS, block_h, BLOCKS * block_w).sum(axis=1)
    sums = sums.reshape(len(regions), BLOCKS, BLOCKS, block_w).sum(axis=3, dtype=np.float64)
    means = sums.reshape(len(regions), -1) / (block_h * block_w)
    residual = means @ _RESIDUAL.T
    variance = (residual**2).sum(axis=1) / _DOF
    with np.errstate(divide="ignore", invalid="ignore"):
        block_noise = sigma**2 / (block_h * block_w)
        significant = (sigma > 0) & (variance / block_noise > _significant_variance_ratio())
        ratio = np.sqrt(np.maximum(variance - block_noise, 0.0)) * max(noise_reduction, 1.0) / sigma
    ratio = np.where(sigma > 0, ratio, 0.0)  # constant regions: nothing to judge
    return ratio, significant


def content_from(ratio: np.ndarray, significant: np.ndarray) -> np.ndarray:
    """The content rule on :func:`structure_to_noise`'s answer: significant and at least the noise."""
    return significant & (ratio >= MIN_STRUCTURE_TO_NOISE)


def judged_from(content: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """The patches that take part in an answer: with content, and not too noisy (:data:`TOO_NOISY_BELOW`)."""
    return np.asarray(content, bool) & (np.asarray(ratio) >= TOO_NOISY_BELOW)


def has_content(regions: np.ndarray, noise_reduction: float = 1.0) -> np.ndarray:
    """Whether each patch holds structure above its noise (see the module's description)."""
    return content_from(*structure_to_noise(regions, noise_reduction))
