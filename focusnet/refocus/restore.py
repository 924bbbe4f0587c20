"""Refocusing one image, where the focus classifier says it can be restored, and measuring the result.

The classifier measures the input first. An image without content, in focus
(level 0) or beyond the levels the refocus model restores (its
``restorable_levels``, set by its evaluation) is not refocused, and the
result says why. Otherwise the image is resampled to the model's pixel size,
normalised by its own percentiles, refocused, and the *correction* (refocused
minus input, at the model's pixels) is resampled back and added to the
original pixels, so detail finer than the model's pixels is kept. Where the
classifier's content test found no structure above the noise (empty
background), the correction fades to zero (:func:`content_weights`): the
network denoises, and denoised noise can look like structure, so refocusing
never touches regions that hold nothing to restore. The classifier then
measures the output; a result whose level did not go down is flagged as not
improved.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from ..errors import FocusnetError, UnmeasurableImageError
from ..inference import PIXEL_SIZE_TOLERANCE, FocusPrediction, predict_image, resample_to_model_pixels, to_counts
from ..loader import load_model
from .model import load_refocus_model
from .pairs import normalisation

#: Images whose pixels are more than this factor finer or coarser than the refocus model's are not refocused:
#: measured on a real 100x stack (0.13 um pixels), the shipped 0.65 um model's correction, resampled, cost
#: PSNR on every plane (mean -1.45 dB), where a model fine-tuned to those pixels gained.
MAX_PIXEL_SIZE_FACTOR = 1.5


@dataclasses.dataclass(frozen=True)
class RefocusResult:
    """The outcome of refocusing one image.

    Attributes
    ----------
    image : ndarray or None
        The refocused image, same shape and dtype as the input (None when not refocused).
    refocused : bool
    reason : str
        Why it was not refocused, or why the result is flagged; empty otherwise.
    before, after : FocusPrediction or None
        The classifier's measurement of input and output (None where it could not measure).
    seconds : float
    """

    image: np.ndarray | None
    refocused: bool
    reason: str
    before: FocusPrediction | None
    after: FocusPrediction | None
    seconds: float

    @property
    def improved(self) -> bool:
        """Whether the classifier reads the output at a lower level than the input."""
        return (self.refocused and self.after is not None and self.before is not None
                and self.after.defocus_level < self.before.defocus_level)


def content_weights(prediction: FocusPrediction, shape) -> np.ndarray | None:
    """Per pixel, 1 in patches with content and 0 in those without, feathered; None when all have content.

    Each pixel takes the value of the patch whose centre is nearest (pixels
    between or beyond patches included), then a Gaussian of an eighth of a
    patch smooths the steps inside the patches with content, so no seam
    shows where the correction fades and none of it reaches the others.
    """
    from scipy.ndimage import gaussian_filter

    if prediction.has_content.all():
        return None
    half = prediction.patch_size / 2
    rows = np.abs(np.arange(shape[0])[:, None] - (np.asarray(prediction.y) + half)[None]).argmin(axis=1)
    cols = np.abs(np.arange(shape[1])[:, None] - (np.asarray(prediction.x) + half)[None]).argmin(axis=1)
    mask = prediction.has_content[rows[:, None], cols[None, :]].astype(np.float32)
    return np.minimum(gaussian_filter(mask, sigma=prediction.patch_size / 8, mode="nearest"), mask)


def restore_counts(counts: np.ndarray, model, zoom: float = 1.0, weights: np.ndarray | None = None) -> np.ndarray:
    """The network's refocused image in counts (float32), for counts at ``zoom`` times the model's pixel size.

    ``weights`` (see :func:`content_weights`) scales the correction per pixel.
    No checks and no decisions: :func:`refocus_image` is the user's entry point.
    """
    model = load_refocus_model(model)
    counts = np.asarray(counts, np.float32)
    resampled = abs(zoom - 1.0) > PIXEL_SIZE_TOLERANCE
    work = resample_to_model_pixels(counts, zoom) if resampled else counts
    low, span = normalisation(work)
    correction = (model.run((work - low) / span) - (work - low) / span) * span
    if resampled:
        from skimage.transform import resize

        correction = resize(correction, counts.shape, order=1, mode="reflect", anti_aliasing=False,
                            preserve_range=True).astype(np.float32)
    return counts + (correction if weights is None else weights * correction)


def _as_input_type(counts: np.ndarray, like: np.ndarray, scale) -> np.ndarray:
    """Counts back in the input's type and range (integers rounded and clipped; floats divided by the scale)."""
    if like.dtype.kind == "f":
        return (np.clip(counts, 0, None) / float(scale)).astype(like.dtype)
    info = np.iinfo(like.dtype)
    return np.clip(np.rint(counts), max(info.min, 0), info.max).astype(like.dtype)


def refusal(before: FocusPrediction, model) -> str:
    """Why an image the classifier measured as ``before`` is not refocused by ``model``, or "" when it is.

    In focus (level 0), a level outside the model's ``restorable_levels``, or
    pixels more than :data:`MAX_PIXEL_SIZE_FACTOR` finer or coarser than the model's.
    """
    level, restorable = before.defocus_level, model.restorable_levels
    if level == 0:
        return "in focus (level 0): nothing to restore"
    if level not in restorable:
        return (f"level {level} is beyond what the refocus model restores (levels {min(restorable)}-"
                f"{max(restorable)}): the defocused image no longer holds the detail to restore")
    zoom = before.pixel_size_um / model.optics.pixel_size_um
    if not 1 / MAX_PIXEL_SIZE_FACTOR <= zoom <= MAX_PIXEL_SIZE_FACTOR:
        return (f"pixels of {before.pixel_size_um:g} um are {max(zoom, 1 / zoom):.1f}x "
                f"{'coarser' if zoom > 1 else 'finer'} than the refocus model's {model.optics.pixel_size_um:g} um, "
                "outside what it was validated for: fine-tune a refocus model for your pixel size and optics")
    return ""


def refocus_image(image, model=None, classifier=None, scale=None, name: str = "image", pixel_size_um=None,
                  pixel_size_source: str | None = None, objective=None, force: bool = False) -> RefocusResult:
    """Refocus one image if it can be restored, and measure its focus before and after.

    Parameters
    ----------
    image : array_like, 2-D
        Raw counts (integers), or floats in [0, 1] with ``scale``.
    model : RefocusModel or path-like, optional
        A refocus model folder; default: the one shipped with focusnet.
    classifier : optional
        The focus classifier that decides and checks (any model ``predict`` takes); default: the shipped one.
    scale : float, optional
        For float images, the count that 1.0 stands for.
    name : str
        Names the image in messages.
    pixel_size_um : float, optional
        Pixel size in the sample plane; default: the models' (reported as assumed).
    pixel_size_source : str, optional
        Where ``pixel_size_um`` came from (``given`` or ``file``).
    objective : Optics, optional
        The user's objective, for ``defocus_um`` (see :func:`focusnet.predict_image`).
    force : bool
        Refocus whatever the level (content is still required): for validation, not for users.

    Returns
    -------
    RefocusResult

    Raises
    ------
    ImageFormatError, InvalidParameterError
        As :func:`focusnet.predict_image` (colour, NaN, float without scale, bad pixel size).
    ModelError
        A refocus model that is missing or damaged, or onnxruntime not installed.
    """
    start = time.perf_counter()
    refocus_model = load_refocus_model(model)
    classifier = load_model(classifier)
    source = np.asarray(image)
    counts = to_counts(source, scale, name)
    measure = dict(model=classifier, scale=scale, name=name, pixel_size_um=pixel_size_um,
                   pixel_size_source=pixel_size_source, objective=objective)

    def not_refocused(reason, before=None):
        return RefocusResult(None, False, reason, before, None, time.perf_counter() - start)

    try:
        before = predict_image(source, **measure)
    except UnmeasurableImageError as error:  # no content, too small, constant
        return not_refocused(str(error).replace(f"{name}: ", "", 1))
    # predict_image has checked the pixel size.
    zoom = before.pixel_size_um / refocus_model.optics.pixel_size_um
    reason = refusal(before, refocus_model)
    if reason and not force:
        return not_refocused(reason, before)
    level = before.defocus_level
    weights = content_weights(before, counts.shape)
    refocused = _as_input_type(restore_counts(counts, refocus_model, zoom, weights), source, scale)
    try:
        after = predict_image(refocused, **measure)
    except FocusnetError as error:
        return RefocusResult(refocused, True, f"not improved: the output cannot be measured ({error})", before, None,
                             time.perf_counter() - start)
    reason = "" if after.defocus_level < level else \
        f"not improved: the classifier reads level {after.defocus_level} after, {level} before"
    return RefocusResult(refocused, True, reason, before, after, time.perf_counter() - start)
