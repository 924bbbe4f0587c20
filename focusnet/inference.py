"""Whole-image inference: the one function the CLI, CellProfiler, Fiji's numbers and tests call.

1. **Pixel size.** The image is resampled (anti-aliased, intensities kept in
   counts) to the pixel size the model was trained at, unless it already has
   it. The pixel size comes from the caller (``given``), the file
   (``file``), or is ``assumed`` to be the model's.
2. **Patches.** The (resampled) image is cut into ``floor(H/84) x floor(W/84)``
   non-overlapping patches, leftover pixels spread evenly between and around
   them as Fiji's plugin does (tile ``i`` starts at
   ``i*84 + (i+1)*space // (n+1)``, ``space = size - 84 n``). Positions are
   reported in the original image's pixels.
3. **Content.** Patches without structure above their noise
   (:mod:`focusnet.content`) are marked and take no part in the answer:
   empty background is neither in focus nor out of focus. Nor do patches
   too noisy to judge (structure-to-noise below
   :data:`focusnet.content.TOO_NOISY_BELOW`); an image with no patch left
   is "too noisy" (:class:`~focusnet.errors.TooNoisyError`).
4. **Levels.** Every patch gets a probability distribution over the 11
   defocus levels and a certainty ``1 - entropy(p) / ln(11)`` (1: all
   probability on one level; 0: uniform). The whole-image distribution is
   the certainty-weighted mean over the patches with content:
   ``defocus_level`` is its most probable level, ``aggregate_certainty`` its
   certainty, ``mean_certainty`` the mean certainty of those patches.
5. **Micrometres.** Levels become distances from focus for the user's
   objective (:mod:`focusnet.defocus`): ``defocus_um`` from the
   distribution's expected level, a lower bound when the most probable level
   is the last.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .content import content_from, judged_from, structure_to_noise
from .contract import INPUT_SCALE, NUM_LEVELS, PATCH_SIZE
from .defocus import DefocusScale, defocus_scale
from .errors import ImageFormatError, InvalidParameterError, NoContentError, TooNoisyError, UnmeasurableImageError
from .images import check_single_channel
from .loader import load_model
from .optics import Optics

__all__ = ["FocusPrediction", "NoContentError", "TooNoisyError", "UnmeasurableImageError", "aggregate", "certainty",
           "choose_pixel_size", "extract_patches", "model_optics", "objective_optics", "predict_image",
           "resample_to_model_pixels", "tile_starts", "to_counts"]


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


#: Patches cut, tested for content and classified per step. Small enough that a step's patches (1.8 MB
#: as float32) stay in the CPU's cache from one stage to the next: a 2048 x 2048 image took 0.057 s
#: with onnxruntime at 64 against 0.103 s at 1024 per step (TensorFlow: 0.067 s against 0.084 s; 2 CPUs).
PATCHES_PER_STEP = 64


#: Resampling within this relative difference of the model's pixel size is skipped.
PIXEL_SIZE_TOLERANCE = 0.005
#: Pixels coarser than the model's by more than this factor: blur below a pixel cannot be seen.
COARSE_PIXEL_FACTOR = 1.5


@dataclasses.dataclass
class FocusPrediction:
    """Focus of one image, per patch and as a whole.

    Attributes
    ----------
    probabilities : ndarray, shape (rows, cols, 11)
        Level distribution of each patch (as the network gives it, also for
        patches without content).
    patch_certainty : ndarray, shape (rows, cols)
    y, x : ndarray
        Top/left pixel of each row/column of patches, in the original image.
    distribution : ndarray, shape (11,)
        Certainty-weighted mean of the distributions of the patches with content.
    defocus_level : int
        Most probable level of ``distribution`` (0 = in focus).
    aggregate_certainty : float
        Certainty of ``distribution``.
    mean_certainty : float
        Mean certainty of the patches with content.
    has_content : ndarray of bool, shape (rows, cols)
        Whether each patch holds structure above its noise.
    judged : ndarray of bool, shape (rows, cols), or None
        The patches that take part in the answer: with content and not too
        noisy (:func:`focusnet.content.judged_from`); None: those with content.
    structure_to_noise : ndarray, shape (rows, cols), or None
        Each patch's structure over the pixel noise the model sees (the content
        test's measure, :func:`focusnet.content.structure_to_noise`): its signal-to-noise.
    patch_size : int
        Side of a patch in the original image's pixels (84 at the model's pixel size).
    pixel_size_um : float or None
        Pixel size in the sample plane the image was measured at.
    pixel_size_source : str
        ``given``, ``file`` or ``assumed`` (the model's).
    defocus_um : float
        Distance from focus of the user's objective for the whole image.
    defocus_um_lower_bound : bool
        True when the blur is beyond the last level: the distance is at least ``defocus_um``.
    patch_defocus_um : ndarray, shape (rows, cols)
        The same per patch (NaN without content).
    notes : tuple of str
        What the caller should tell the user (e.g. pixels too coarse to see fine blur).
    """

    probabilities: np.ndarray
    patch_certainty: np.ndarray
    y: np.ndarray
    x: np.ndarray
    distribution: np.ndarray
    defocus_level: int
    aggregate_certainty: float
    mean_certainty: float
    has_content: np.ndarray = None
    patch_size: int = PATCH_SIZE
    pixel_size_um: float | None = None
    pixel_size_source: str = "assumed"
    defocus_um: float = float("nan")
    defocus_um_lower_bound: bool = False
    patch_defocus_um: np.ndarray = None
    notes: tuple = ()
    structure_to_noise: np.ndarray = None
    judged: np.ndarray = None

    @property
    def judged_patches(self) -> np.ndarray:
        """The patches that take part in the answer (``judged``, else ``has_content``)."""
        return self.has_content if self.judged is None else self.judged

    @property
    def judged_fraction(self) -> float:
        """Fraction of the patches judged: with content and not too noisy."""
        return float(np.mean(self.judged_patches)) if self.num_patches else float("nan")

    @property
    def patch_levels(self) -> np.ndarray:
        """Most probable level of each patch, shape (rows, cols)."""
        return self.probabilities.argmax(axis=-1)

    @property
    def num_patches(self) -> int:
        return int(self.patch_certainty.size)

    @property
    def content_fraction(self) -> float:
        """Fraction of the patches with structure above their noise."""
        return float(np.mean(self.has_content)) if self.num_patches else float("nan")

    def patch_rows(self):
        """One dict per patch (row-major): row, col, y, x, content, judged, level, certainty, defocus_um, ...

        Patches not judged (no content, or too noisy) have no level (None)
        and NaN certainty, defocus and probabilities.
        """
        levels = self.patch_levels
        judged_patches = self.judged_patches
        nan_probabilities = np.full(self.probabilities.shape[-1], np.nan)
        for row, y in enumerate(self.y):
            for col, x in enumerate(self.x):
                judged = bool(judged_patches[row, col])
                yield {"row": row, "col": col, "y": int(y), "x": int(x), "content": bool(self.has_content[row, col]),
                       "judged": judged,
                       "defocus_level": int(levels[row, col]) if judged else None,
                       "certainty": float(self.patch_certainty[row, col]) if judged else float("nan"),
                       "defocus_um": float(self.patch_defocus_um[row, col]),
                       "defocus_um_lower_bound": judged and int(levels[row, col]) == self.probabilities.shape[-1] - 1,
                       "probabilities": self.probabilities[row, col] if judged else nan_probabilities,
                       "structure_to_noise": float("nan") if self.structure_to_noise is None
                       else float(self.structure_to_noise[row, col])}


#: Float images are converted to counts this many rows at a time (no full-size float64 copy).
_ROWS_PER_BLOCK = 1024


def _float_counts(image: np.ndarray, scale: float, name: str) -> np.ndarray:
    """``image * scale`` as float32 counts, block by block, refusing NaN, Inf and counts outside [0, 65535].

    float32 counts with scale 1 (already converted, e.g. by the CellProfiler module) are checked, not copied.
    """
    in_place = scale == 1.0 and image.dtype == np.float32
    counts = image if in_place else np.empty(image.shape, np.float32)
    low, high = math.inf, -math.inf
    for start in range(0, image.shape[0], _ROWS_PER_BLOCK):
        block = counts[start:start + _ROWS_PER_BLOCK]
        if not in_place:
            np.multiply(image[start:start + _ROWS_PER_BLOCK], scale, out=block, casting="unsafe")
        if not np.all(np.isfinite(block)):
            raise ImageFormatError(f"{name}: contains NaN or infinite values")
        low, high = min(low, float(block.min())), max(high, float(block.max()))
    # Half a count of slack: integer data stored as floats round-trips with rounding error.
    if low < -0.5 or high > INPUT_SCALE + 0.5:
        if 1.0 < scale <= INPUT_SCALE:  # a [0, 1] image: its values are what is wrong
            raise ImageFormatError(f"{name}: float pixels must lie in [0, 1] when a scale is given, found "
                                   f"[{low / scale:g}, {high / scale:g}]")
        raise ImageFormatError(f"{name}: pixels times the scale {scale:g} give counts [{low:g}, {high:g}], outside "
                               f"the raw counts [0, {INPUT_SCALE:g}] focusnet measures")
    if not in_place:
        np.clip(counts, 0, INPUT_SCALE, out=counts)
    return counts


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
                "e.g. 65535 for 16-bit or 4095 for 12-bit data) to recover raw counts", setting="scale"
            )
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
            raise InvalidParameterError(f"{name}: scale must be a positive number, got {scale!r}", setting="scale")
        return _float_counts(image, float(scale), name)
    if scale not in (None, 1, 1.0):
        raise InvalidParameterError(f"{name}: scale applies to float images only; integer pixels are already "
                                    "raw counts", setting="scale")
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


def model_optics(model) -> Optics:
    """The optics a model was trained with (its levels' meaning and its pixel size)."""
    return Optics(**model.config["simulator"]["optics"])


def choose_pixel_size(model, given=None, stated=None) -> tuple:
    """The pixel size to measure at, and where it came from: ``given`` beats the ``file``'s, else ``assumed``.

    Parameters
    ----------
    model : loaded model
        Its training pixel size is the one assumed.
    given : float, optional
        What the user gave (``--pixel-size``, a setting).
    stated : float, optional
        What the file states in physical units.

    Returns
    -------
    (float, str)
    """
    if given is not None:
        return float(given), "given"
    if stated is not None:
        return float(stated), "file"
    return model_optics(model).pixel_size_um, "assumed"


def objective_optics(model, wavelength_um=None, numerical_aperture=None, refractive_index=None,
                     **modality) -> Optics:
    """The user's objective, each parameter not given taken from the model's training optics.

    A real lens blurs as the exact defocus phase says, whatever phase the
    model was simulated with (:mod:`focusnet.optics`). ``modality`` takes
    :class:`~focusnet.optics.Optics`' ``modality``, ``pinhole_au``,
    ``excitation_wavelength_um`` and ``pinhole_spacing`` (None: widefield's
    defaults): a confocal's ``defocus_um`` has its own axial scale.

    Raises
    ------
    InvalidParameterError
        A parameter that is not positive, or an NA not below the immersion index.
    """
    trained = model_optics(model)
    return dataclasses.replace(
        trained,
        wavelength_um=trained.wavelength_um if wavelength_um is None else wavelength_um,
        numerical_aperture=trained.numerical_aperture if numerical_aperture is None else numerical_aperture,
        refractive_index=trained.refractive_index if refractive_index is None else refractive_index,
        defocus_phase="exact", **{field: value for field, value in modality.items() if value is not None})


def resample_to_model_pixels(counts: np.ndarray, zoom: float) -> np.ndarray:
    """Resample an image by ``zoom`` (anti-aliased, bilinear), intensities kept in counts (float32).

    Parameters
    ----------
    counts : ndarray, 2-D
        Raw counts.
    zoom : float
        The image's pixel size over the model's: below 1 the image shrinks.
    """
    from skimage.transform import rescale

    resampled = rescale(np.asarray(counts, dtype=np.float32), zoom, order=1, mode="reflect",
                        anti_aliasing=zoom < 1, preserve_range=True)
    return resampled.astype(np.float32)


def predict_image(image, model=None, scale=None, name: str = "image", pixel_size_um=None,
                  pixel_size_source: str | None = None, objective: Optics | None = None,
                  judge_noise: bool = True) -> FocusPrediction:
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
    pixel_size_um : float, optional
        Pixel size in the sample plane; default: the model's training pixel
        size (reported as ``assumed``).
    pixel_size_source : str, optional
        Where ``pixel_size_um`` came from (``given`` or ``file``); default ``given``.
    objective : Optics, optional
        The user's objective (wavelength, numerical aperture, immersion
        index) for ``defocus_um``; default: the lens of the model's training
        optics (:func:`objective_optics`).
    judge_noise : bool
        Leave out patches too noisy for their answer
        (:func:`focusnet.content.judged_from`); False judges every patch with
        content (to measure accuracy against signal-to-noise).

    Returns
    -------
    FocusPrediction

    Raises
    ------
    ImageFormatError
        Colour, multi-plane, non-numeric, NaN/Inf or out-of-range input.
    InvalidParameterError
        A pixel size that is not a positive number.
    UnmeasurableImageError
        Smaller than one patch at the model's pixel size, constant, or
        without content (:class:`~focusnet.errors.NoContentError`), or
        with content too noisy to judge (:class:`~focusnet.errors.TooNoisyError`).
    """
    model = load_model(model)
    counts = to_counts(image, scale, name)
    trained = model_optics(model)
    notes = []
    if pixel_size_um is None:
        pixel_size_um, pixel_size_source = trained.pixel_size_um, "assumed"
    elif not (isinstance(pixel_size_um, (int, float)) and math.isfinite(pixel_size_um) and pixel_size_um > 0):
        raise InvalidParameterError(f"{name}: pixel size must be a positive number of micrometres, "
                                    f"got {pixel_size_um!r}", setting="pixel_size_um")
    zoom = float(pixel_size_um) / trained.pixel_size_um
    if zoom > COARSE_PIXEL_FACTOR:
        notes.append(f"{name}: pixels of {pixel_size_um:g} um are {zoom:.1f}x coarser than the model's "
                     f"{trained.pixel_size_um:g} um: resampling cannot restore blur finer than a pixel, so low "
                     "levels are hard to tell apart; a model trained at your pixel size is better")
    resampled = abs(zoom - 1.0) > PIXEL_SIZE_TOLERANCE
    work = resample_to_model_pixels(counts, zoom) if resampled else counts
    height, width = work.shape
    if height < PATCH_SIZE or width < PATCH_SIZE:
        at = f" at the model's {trained.pixel_size_um:g} um pixels (from {counts.shape[1]}x{counts.shape[0]} " \
             f"pixels of {pixel_size_um:g} um)" if resampled else ""
        advice = ("; measure it with a model fine-tuned for your optics (trained from the shipped model at "
                  f"{pixel_size_um:g} um pixels)") if resampled else ""
        raise UnmeasurableImageError(f"{name}: {width}x{height} pixels{at} is smaller than one "
                                     f"{PATCH_SIZE}x{PATCH_SIZE} patch{advice}")
    if counts.min() == counts.max():
        raise UnmeasurableImageError(f"{name}: constant image (every pixel is {counts.min():g}); "
                                     "there is nothing to judge focus by")
    ys, xs = tile_starts(height), tile_starts(width)
    # Row-major patches (row outer), as Fiji's plugin and the export order them. Cut and
    # classified one batch at a time, so memory stays bounded however large the image.
    positions = [(y, x) for y in ys for x in xs]
    # Where each patch lies in the original image, and its content judged there, in the
    # original pixels (resampling would correlate the noise the test measures).
    # skimage rounds the resampled size, so a patch may be a pixel larger than the original.
    patch_size = min(int(round(PATCH_SIZE / zoom)), *counts.shape) if resampled else PATCH_SIZE
    original_y = np.clip(np.round(ys / zoom).astype(int), 0, counts.shape[0] - patch_size) if resampled else ys
    original_x = np.clip(np.round(xs / zoom).astype(int), 0, counts.shape[1] - patch_size) if resampled else xs
    original_positions = [(y, x) for y in original_y for x in original_x]
    probabilities, content, ratios = [], [], []
    for start in range(0, len(positions), PATCHES_PER_STEP):
        batch = slice(start, start + PATCHES_PER_STEP)
        patches = extract_patches(work, positions[batch])
        probabilities.append(model.predict_patches(patches))
        if resampled:
            regions = np.stack([counts[y:y + patch_size, x:x + patch_size] for y, x in original_positions[batch]])
            ratio, significant = structure_to_noise(regions, noise_reduction=1.0 / zoom, overwrite=True)
        else:  # a fresh copy as counts, which the test may change
            ratio, significant = structure_to_noise(patches * np.float32(INPUT_SCALE), overwrite=True)
        content.append(content_from(ratio, significant))
        ratios.append(ratio)
    grid = (len(ys), len(xs))
    content = np.concatenate(content).reshape(grid)
    ratios = np.concatenate(ratios).reshape(grid)
    probabilities = np.concatenate(probabilities).reshape(*grid, NUM_LEVELS)
    judged = judged_from(content, ratios) if judge_noise else content
    prediction = aggregate(probabilities, original_y, original_x, has_content=judged,
                           defocus=defocus_scale(trained, objective or objective_optics(model)))
    if not content.any():
        raise NoContentError(f"{name}: no content: none of its {prediction.num_patches} patches holds structure "
                             "above its noise (an empty or dark field); it is neither in focus nor out of focus",
                             num_patches=prediction.num_patches)
    if not judged.any():
        raise TooNoisyError(f"{name}: too noisy to judge: {int(content.sum())} of its {content.size} patches hold "
                            f"structure, but none stands far enough above its noise (structure-to-noise at most "
                            f"{float(ratios[content].max()):.2g}) for the model's answer to be reliable; more "
                            "light (exposure, binning) would make it measurable",
                            num_patches=prediction.num_patches, content_fraction=float(content.mean()))
    return dataclasses.replace(prediction, has_content=content, judged=judged, patch_size=patch_size,
                               pixel_size_um=float(pixel_size_um), pixel_size_source=pixel_size_source or "given",
                               notes=tuple(notes), structure_to_noise=ratios)


def aggregate(probabilities, ys, xs, has_content=None, defocus: DefocusScale | None = None) -> FocusPrediction:
    """Combine patch distributions (rows, cols, 11) into the whole-image answer.

    Parameters
    ----------
    probabilities : array_like, shape (rows, cols, 11)
    ys, xs : array_like
        Top/left pixels of the rows and columns of patches.
    has_content : array_like of bool, shape (rows, cols), optional
        Patches that take part (default: all).
    defocus : DefocusScale, optional
        Converts levels to micrometres (default: each level is the default
        simulator optics' z step, 2 um).
    """
    probabilities = np.asarray(probabilities, dtype=float)
    has_content = np.ones(probabilities.shape[:-1], bool) if has_content is None else np.asarray(has_content, bool)
    if defocus is None:
        defocus = defocus_scale(Optics(), Optics())
    patch_certainty = certainty(probabilities)
    flat, weights = probabilities[has_content], patch_certainty[has_content]
    if len(flat) == 0:
        distribution = np.full(probabilities.shape[-1], np.nan)
    elif weights.sum() > 0:
        distribution = (weights[:, None] * flat).sum(axis=0) / weights.sum()
    else:  # every patch uniform: no patch is more trustworthy than another
        distribution = flat.mean(axis=0)
    levels = np.arange(probabilities.shape[-1])
    last = levels[-1]
    with np.errstate(invalid="ignore"):
        defocus_level = int(np.argmax(distribution)) if len(flat) else -1
        image_um = float(defocus(last if defocus_level == last else distribution @ levels)) if len(flat) else np.nan
        # Like the image's: a patch whose most probable level is the last gets that level's distance, a lower bound.
        patch_last = probabilities.argmax(axis=-1) == last
        patch_um = np.where(has_content, np.where(patch_last, float(defocus(last)), defocus(probabilities @ levels)),
                            np.nan)
    return FocusPrediction(
        probabilities=probabilities,
        patch_certainty=patch_certainty,
        y=np.asarray(ys),
        x=np.asarray(xs),
        distribution=distribution,
        defocus_level=defocus_level,
        aggregate_certainty=float(certainty(distribution)) if len(flat) else float("nan"),
        mean_certainty=float(weights.mean()) if len(flat) else float("nan"),
        has_content=has_content,
        defocus_um=image_um,
        defocus_um_lower_bound=bool(defocus_level == last),
        patch_defocus_um=patch_um,
    )
