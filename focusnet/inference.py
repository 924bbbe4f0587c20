"""Whole-image inference: the one function the CLI, CellProfiler and tests call.

An image is cut into ``floor(H/84) x floor(W/84)`` non-overlapping patches,
leftover pixels spread evenly between and around them as Fiji's plugin does
(tile ``i`` starts at ``i*84 + (i+1)*space // (n+1)``, ``space = size - 84 n``).
Every patch gets a probability distribution over the 11 defocus levels, its
most probable level and a certainty ``1 - entropy(p) / ln(11)`` (1: all
probability on one level; 0: uniform). The whole-image answer is the
certainty-weighted mean of the patch distributions: ``defocus_level`` is its
most probable level and ``aggregate_certainty`` its certainty;
``mean_certainty`` is the mean patch certainty.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .classifier import PATCHES_PER_BATCH
from .contract import INPUT_SCALE, NUM_LEVELS, PATCH_SIZE
from .errors import ImageFormatError, InvalidParameterError, UnmeasurableImageError
from .images import check_single_channel
from .loader import load_model

__all__ = ["FocusPrediction", "UnmeasurableImageError", "aggregate", "certainty", "extract_patches", "predict_image",
           "tile_starts", "to_counts"]


def certainty(probabilities) -> np.ndarray:
    """1 minus the entropy of each distribution (last axis) normalised by ln(K)."""
    from scipy.special import entr

    probabilities = np.asarray(probabilities, dtype=float)
    entropy = entr(probabilities).sum(axis=-1)
    return np.clip(1.0 - entropy / math.log(probabilities.shape[-1]), 0.0, 1.0)


def tile_starts(size: int, patch: int = PATCH_SIZE) -> np.ndarray:
    """Start offsets of the non-overlapping tiles along one axis (Fiji's spacing)."""
    count = size // patch
    space = size - patch * count
    index = np.arange(count)
    return index * patch + (index + 1) * space // (count + 1)


@dataclasses.dataclass
class FocusPrediction:
    """Focus of one image, per patch and as a whole.

    Attributes
    ----------
    probabilities : ndarray, shape (rows, cols, 11)
        Level distribution of each patch.
    patch_certainty : ndarray, shape (rows, cols)
    y, x : ndarray
        Top/left pixel of each row/column of patches.
    distribution : ndarray, shape (11,)
        Certainty-weighted mean of the patch distributions.
    defocus_level : int
        Most probable level of ``distribution`` (0 = in focus).
    aggregate_certainty : float
        Certainty of ``distribution``.
    mean_certainty : float
        Mean patch certainty.
    """

    probabilities: np.ndarray
    patch_certainty: np.ndarray
    y: np.ndarray
    x: np.ndarray
    distribution: np.ndarray
    defocus_level: int
    aggregate_certainty: float
    mean_certainty: float

    @property
    def patch_levels(self) -> np.ndarray:
        """Most probable level of each patch, shape (rows, cols)."""
        return self.probabilities.argmax(axis=-1)

    @property
    def num_patches(self) -> int:
        return int(self.patch_certainty.size)

    def patch_rows(self):
        """One dict per patch (row-major): row, col, y, x, level, certainty, probabilities."""
        levels = self.patch_levels
        for row, y in enumerate(self.y):
            for col, x in enumerate(self.x):
                yield {"row": row, "col": col, "y": int(y), "x": int(x), "defocus_level": int(levels[row, col]),
                       "certainty": float(self.patch_certainty[row, col]),
                       "probabilities": self.probabilities[row, col]}


def to_counts(image, scale=None, name: str = "image") -> np.ndarray:
    """Raw counts of an image, with clear errors for bad input.

    Integer images are returned as they are (no copy: patches are converted as
    they are cut out); float images become float32 counts.

    Parameters
    ----------
    image : array_like, 2-D
        Integer raw counts (e.g. uint16), or floats in [0, 1] together with
        ``scale``.
    scale : float, optional
        For float images: the count that 1.0 stands for (65535 for 16-bit
        data, 4095 for 12-bit data stored as such).
    name : str
        Names the image in error messages.
    """
    image = check_single_channel(image, name)
    if image.dtype.kind == "f":
        if scale is None:
            raise ImageFormatError(
                f"{name}: floating-point pixels need an explicit scale (the count 1.0 stands for, "
                "e.g. 65535 for 16-bit or 4095 for 12-bit data) to recover raw counts"
            )
        if not np.all(np.isfinite(image)):
            raise ImageFormatError(f"{name}: contains NaN or infinite values")
        if image.min() < 0 or image.max() > 1.0 + 1e-6:
            raise ImageFormatError(f"{name}: float pixels must lie in [0, 1] when a scale is given, "
                                   f"found [{image.min():g}, {image.max():g}]")
        if not (math.isfinite(scale) and 0 < scale <= INPUT_SCALE):
            raise InvalidParameterError(f"{name}: scale must be in (0, {INPUT_SCALE:g}], got {scale!r}")
        return np.clip(image.astype(np.float64) * scale, 0, INPUT_SCALE).astype(np.float32)
    if scale not in (None, 1, 1.0):
        raise InvalidParameterError(f"{name}: scale applies to float images only; integer pixels are already "
                                    "raw counts")
    # uint8/uint16 pixels are in range by type; only other integer types need a scan.
    if image.dtype not in (np.uint8, np.uint16) and (image.min() < 0 or image.max() > INPUT_SCALE):
        raise ImageFormatError(f"{name}: integer pixels must be raw counts in [0, {INPUT_SCALE:g}], "
                               f"found [{image.min()}, {image.max()}]")
    return image


def extract_patches(counts: np.ndarray, positions) -> np.ndarray:
    """Patches at the given top-left corners, as network input (counts / 65535, float32).

    Parameters
    ----------
    counts : ndarray, 2-D
        Raw counts of any numeric type (e.g. uint16): each patch is converted as it
        is copied, without a float copy of the whole image.
    positions : sequence of (y, x)

    Returns
    -------
    ndarray, shape (len(positions), 84, 84), float32
    """
    patches = np.empty((len(positions), PATCH_SIZE, PATCH_SIZE), np.float32)
    for index, (y, x) in enumerate(positions):
        patches[index] = counts[y:y + PATCH_SIZE, x:x + PATCH_SIZE]
    patches *= np.float32(1.0 / INPUT_SCALE)
    return patches


def predict_image(image, model=None, scale=None, name: str = "image") -> FocusPrediction:
    """Measure the focus of one image.

    Parameters
    ----------
    image : array_like, 2-D
        Raw counts (uint16 or other integers), or floats in [0, 1] with ``scale``.
    model : FocusModel, BundleModel, str or Path, optional
        A loaded model, a model folder or an exported bundle; default: the
        model shipped with focusnet.
    scale : float, optional
        For float images, the count that 1.0 stands for.
    name : str
        Names the image in error messages.

    Returns
    -------
    FocusPrediction

    Raises
    ------
    ImageFormatError
        Colour, multi-plane, non-numeric, NaN/Inf or out-of-range input.
    UnmeasurableImageError
        Smaller than one patch, or constant (no content to judge).
    """
    model = load_model(model)
    counts = to_counts(image, scale, name)
    height, width = counts.shape
    if height < PATCH_SIZE or width < PATCH_SIZE:
        raise UnmeasurableImageError(f"{name}: {width}x{height} pixels is smaller than one "
                                     f"{PATCH_SIZE}x{PATCH_SIZE} patch")
    if counts.min() == counts.max():
        raise UnmeasurableImageError(f"{name}: constant image (every pixel is {counts.min():g}); "
                                     "there is nothing to judge focus by")
    ys, xs = tile_starts(height), tile_starts(width)
    # Row-major patches (row outer), as Fiji's plugin and the export order them. Cut and
    # classified one batch at a time, so memory stays bounded however large the image.
    positions = [(y, x) for y in ys for x in xs]
    probabilities = np.concatenate([
        model.predict_patches(extract_patches(counts, positions[start:start + PATCHES_PER_BATCH]))
        for start in range(0, len(positions), PATCHES_PER_BATCH)
    ])
    return aggregate(probabilities.reshape(len(ys), len(xs), NUM_LEVELS), ys, xs)


def aggregate(probabilities, ys, xs) -> FocusPrediction:
    """Combine patch distributions (rows, cols, 11) into the whole-image answer."""
    probabilities = np.asarray(probabilities, dtype=float)
    patch_certainty = certainty(probabilities)
    weights = patch_certainty.ravel()
    flat = probabilities.reshape(-1, probabilities.shape[-1])
    if weights.sum() > 0:
        distribution = (weights[:, None] * flat).sum(axis=0) / weights.sum()
    else:  # every patch uniform: no patch is more trustworthy than another
        distribution = flat.mean(axis=0)
    return FocusPrediction(
        probabilities=probabilities,
        patch_certainty=patch_certainty,
        y=np.asarray(ys),
        x=np.asarray(xs),
        distribution=distribution,
        defocus_level=int(np.argmax(distribution)),
        aggregate_certainty=float(certainty(distribution)),
        mean_certainty=float(patch_certainty.mean()),
    )
