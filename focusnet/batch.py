"""Measuring many images: paths in, one result per image out, and the CSV rows of each.

:func:`predict_paths` is what ``focusnet predict``, the benchmarks and the
tests use; the command line only parses arguments and writes what it yields.
One image that cannot be read or measured becomes a result with a reason,
never the end of the batch.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator, List, Optional

import numpy as np

from .contract import IMAGE_COLUMNS
from .errors import FocusnetError
from .images import find_images, read_image
from .inference import FocusPrediction, predict_image
from .loader import load_model


@dataclasses.dataclass
class ImageResult:
    """The outcome for one image of a batch.

    Attributes
    ----------
    path : str
        The image file, as found.
    prediction : FocusPrediction or None
        None when the image could not be measured.
    error : Exception or None
        Why it could not be measured (a :class:`~focusnet.errors.FocusnetError`,
        or an ``OSError`` from reading the file); None when measured.
    image : ndarray or None
        The pixels as read (for overlays); None when reading failed.
    """

    path: str
    prediction: Optional[FocusPrediction]
    error: Optional[Exception] = None
    image: Optional[np.ndarray] = None

    @property
    def measured(self) -> bool:
        return self.prediction is not None

    @property
    def reason(self) -> str:
        """Why the image was not measured ('' when it was)."""
        return "" if self.error is None else str(self.error)


def predict_paths(paths, model=None, scale=None, progress: bool = False) -> Iterator[ImageResult]:
    """Measure every image that files, folders and glob patterns name, one at a time.

    The model is loaded and the paths are expanded before this returns, so a
    bad model or a path that matches nothing is raised at once; then each
    image is read and measured as the returned iterator is consumed.

    Parameters
    ----------
    paths : iterable of str or Path
        Image files, folders (their images, not recursive) or glob patterns.
    model : str, Path or loaded model, optional
        Default: the model shipped with focusnet.
    scale : float, optional
        For floating-point images in [0, 1]: the count 1.0 stands for.
    progress : bool
        Show a progress bar (when there are at least two images).

    Returns
    -------
    iterator of ImageResult
        One per image, in the sorted order :func:`focusnet.images.find_images`
        gives.

    Raises
    ------
    ModelError
        If the model cannot be loaded.
    InputNotFoundError
        If an argument matches no file.
    """
    model = load_model(model)
    files = find_images(paths)
    return _measure_each(files, model, scale, progress)


def _measure_each(files, model, scale, progress) -> Iterator[ImageResult]:
    from tqdm import tqdm

    for path in tqdm(files, desc="predict", unit="image", disable=not progress or len(files) < 2):
        image = None
        try:
            image = read_image(path)
            prediction = predict_image(image, model, scale=scale, name=path)
        except (FocusnetError, OSError) as error:
            # One bad file must not stop a batch: the caller records why, and goes on.
            yield ImageResult(path, None, error, image)
            continue
        yield ImageResult(path, prediction, None, image)


def format_number(value) -> str:
    """A CSV cell: floats with enough digits that a value read back equals the float32 result."""
    return f"{value:.9g}" if isinstance(value, float) else str(value)


def image_row(result: ImageResult) -> List[str]:
    """The row of :data:`focusnet.contract.IMAGE_COLUMNS` for one image (NaN when not measured)."""
    prediction = result.prediction
    if prediction is None:
        return [result.path] + ["nan"] * (len(IMAGE_COLUMNS) - 2) + ["0"]
    return ([result.path, str(prediction.defocus_level), format_number(prediction.mean_certainty),
             format_number(prediction.aggregate_certainty)]
            + [format_number(float(p)) for p in prediction.distribution] + [str(prediction.num_patches)])


def patch_rows(result: ImageResult) -> Iterator[List[str]]:
    """The rows of :data:`focusnet.contract.PATCH_COLUMNS` for one image (none when not measured)."""
    if result.prediction is None:
        return
    for patch in result.prediction.patch_rows():
        yield ([result.path] + [str(patch[key]) for key in ("row", "col", "y", "x", "defocus_level")]
               + [format_number(patch["certainty"])] + [format_number(float(p)) for p in patch["probabilities"]])
