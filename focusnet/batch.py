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
from .images import find_images, read_image_file
from .inference import FocusPrediction, choose_pixel_size, predict_image
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
    pixel_size_um : float or None
        The pixel size the image was (or would have been) measured at.
    pixel_size_source : str
        ``given``, ``file`` or ``assumed`` ('' when the file could not be read).
    """

    path: str
    prediction: Optional[FocusPrediction]
    error: Optional[Exception] = None
    image: Optional[np.ndarray] = None
    pixel_size_um: Optional[float] = None
    pixel_size_source: str = ""

    @property
    def measured(self) -> bool:
        return self.prediction is not None

    @property
    def reason(self) -> str:
        """Why the image was not measured ('' when it was)."""
        return "" if self.error is None else str(self.error)


def predict_paths(paths, model=None, scale=None, progress: bool = False, pixel_size_um=None,
                  objective=None) -> Iterator[ImageResult]:
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
    pixel_size_um : float, optional
        Pixel size in the sample plane of every image (overrides what files
        state); default: what each file states, else the model's (assumed).
    objective : Optics, optional
        The user's objective, for ``defocus_um`` (default: the model's optics).

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
    return _measure_each(files, model, scale, progress, pixel_size_um, objective)


def _measure_each(files, model, scale, progress, pixel_size_um, objective) -> Iterator[ImageResult]:
    from tqdm import tqdm

    for path in tqdm(files, desc="predict", unit="image", disable=not progress or len(files) < 2):
        image, size, source = None, None, ""
        try:
            read = read_image_file(path)
            image = read.pixels
            size, source = choose_pixel_size(model, pixel_size_um, read.pixel_size_um)
            prediction = predict_image(image, model, scale=scale, name=path, pixel_size_um=size,
                                       pixel_size_source=source, objective=objective)
        except (FocusnetError, OSError) as error:
            # One bad file must not stop a batch: the caller records why, and goes on.
            yield ImageResult(path, None, error, image, size, source)
            continue
        yield ImageResult(path, prediction, None, image, size, source)


def format_number(value) -> str:
    """A CSV cell: floats with enough digits that a value read back equals the float32 result."""
    return f"{value:.9g}" if isinstance(value, float) else str(value)


def image_row(result: ImageResult) -> List[str]:
    """The row of :data:`focusnet.contract.IMAGE_COLUMNS` for one image (NaN when not measured).

    An image without content keeps its patch count and a content fraction of 0.
    """
    size = format_number(float(result.pixel_size_um)) if result.pixel_size_um is not None else "nan"
    prediction = result.prediction
    if prediction is None:
        patches = getattr(result.error, "num_patches", 0)
        content = format_number(float(getattr(result.error, "content_fraction", float("nan"))))
        measured = IMAGE_COLUMNS.index("patches") - 1  # level, certainties, probabilities
        return [result.path] + ["nan"] * measured + [str(patches), content, "nan", "nan", size,
                                                     result.pixel_size_source]
    return ([result.path, str(prediction.defocus_level), format_number(prediction.mean_certainty),
             format_number(prediction.aggregate_certainty)]
            + [format_number(float(p)) for p in prediction.distribution]
            + [str(prediction.num_patches), format_number(prediction.content_fraction),
               format_number(float(prediction.defocus_um)), str(int(prediction.defocus_um_lower_bound)), size,
               result.pixel_size_source])


def patch_rows(result: ImageResult) -> Iterator[List[str]]:
    """The rows of :data:`focusnet.contract.PATCH_COLUMNS` for one image (none when not measured).

    Patches without content have ``content`` 0 and NaN level, certainty,
    probabilities and ``defocus_um``.
    """
    if result.prediction is None:
        return
    size = str(result.prediction.patch_size)
    for patch in result.prediction.patch_rows():
        level = "nan" if patch["defocus_level"] is None else str(patch["defocus_level"])
        yield ([result.path] + [str(patch[key]) for key in ("row", "col", "y", "x")] + [level]
               + [format_number(patch["certainty"])] + [format_number(float(p)) for p in patch["probabilities"]]
               + [str(int(patch["content"])), format_number(patch["defocus_um"]), size,
                  str(int(patch["defocus_um_lower_bound"])) if patch["content"] else "nan"])
