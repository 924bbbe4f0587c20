"""Reading and writing single-channel microscope images.

TIFF goes through tifffile (LZW and other codecs through imagecodecs), other
formats such as 16-bit PNG through imageio. Only single-channel 2-D numeric
images are accepted; anything else is refused with an error naming the file
and its shape.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import ImageFormatError, InputNotFoundError

__all__ = ["IMAGE_SUFFIXES", "ImageFormatError", "check_single_channel", "find_images", "is_tiff", "read_image",
           "write_tiff"]

TIFF_SUFFIXES = (".tif", ".tiff")
IMAGE_SUFFIXES = TIFF_SUFFIXES + (".png",)
# Classic and BigTIFF headers, little- and big-endian.
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def is_tiff(path) -> bool:
    """Whether a file is a TIFF by its content (some TIFFs are named .png)."""
    with open(path, "rb") as handle:
        return handle.read(4) in _TIFF_MAGIC


def check_single_channel(image: np.ndarray, source: str) -> np.ndarray:
    """Return ``image`` as a 2-D array, or raise if it is not one.

    Singleton axes (e.g. a one-page stack of shape ``(1, H, W)``) are dropped.

    Parameters
    ----------
    image : ndarray
        Pixel data.
    source : str
        What to name in the error message (file name or image name).

    Raises
    ------
    ImageFormatError
        For colour, multi-plane, non-numeric, complex or empty data.
    """
    image = np.asarray(image)
    shape = image.shape
    if image.dtype.kind not in "uif":
        raise ImageFormatError(
            f"{source}: pixel type {image.dtype} is not numeric; expected integer or float intensities"
        )
    if image.size == 0:
        raise ImageFormatError(f"{source}: image is empty (shape {shape})")
    squeezed = image.squeeze() if image.ndim > 2 else image
    if squeezed.ndim == 2:
        return squeezed
    if squeezed.ndim == 3 and squeezed.shape[-1] in (3, 4):
        kind = "an RGB" if squeezed.shape[-1] == 3 else "an RGBA"
        raise ImageFormatError(
            f"{source}: {kind} colour image of shape {shape}; focusnet measures single-channel "
            "fluorescence images: save or select one channel"
        )
    if squeezed.ndim >= 3:
        raise ImageFormatError(
            f"{source}: a multi-plane image (stack, channels or time points) of shape {shape}; "
            "focusnet measures one 2-D plane at a time: split the stack into single planes"
        )
    raise ImageFormatError(f"{source}: expected a 2-D image, got shape {shape}")


def read_image(path) -> np.ndarray:
    """Read a single-channel 2-D image, keeping its pixel type (e.g. uint16).

    The decoder is chosen by the file's content, not its name.

    Parameters
    ----------
    path : str or Path
        TIFF (any tifffile codec) or PNG/other format imageio reads.

    Returns
    -------
    ndarray
        2-D array of raw intensities.

    Raises
    ------
    InputNotFoundError
        If the file does not exist (a ``FileNotFoundError``).
    ImageFormatError
        If the file cannot be decoded or is not a single-channel 2-D image.
    """
    import imageio.v2 as imageio
    import tifffile

    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"{path}: no such image file")
    try:
        if is_tiff(path):
            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                if len(tif.series) > 1 or len(series.pages) > 1:
                    raise ImageFormatError(
                        f"{path}: a multi-plane TIFF ({len(tif.series)} series, first of shape "
                        f"{series.shape}); focusnet measures one 2-D plane at a time: split the stack"
                    )
                image = series.asarray()
        else:
            image = imageio.imread(path)
    except ImageFormatError:
        raise
    except Exception as error:  # decoders raise many types; name the file
        raise ImageFormatError(f"{path}: cannot be read as an image ({type(error).__name__}: {error})") from error
    return check_single_channel(image, str(path))


def write_tiff(path, image: np.ndarray) -> None:
    """Write a 2-D image as a (lossless, zlib-compressed) TIFF, keeping its pixel type."""
    import tifffile

    tifffile.imwrite(os.fspath(path), np.asarray(image), compression="zlib")


def find_images(paths) -> list:
    """Expand files, folders and glob patterns into a sorted list of image files.

    Parameters
    ----------
    paths : iterable of str or Path
        Files, folders (their image files, not recursive) or glob patterns.

    Raises
    ------
    InputNotFoundError
        If an argument matches nothing (a ``FileNotFoundError``).
    """
    import glob

    found = []
    for argument in paths:
        argument = os.fspath(argument)
        if os.path.isdir(argument):
            matches = [
                str(p) for p in sorted(Path(argument).iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            ]
            if not matches:
                raise InputNotFoundError(f"{argument}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
        elif os.path.isfile(argument):
            matches = [argument]
        else:
            matches = sorted(m for m in glob.glob(argument) if os.path.isfile(m))
            if not matches:
                raise InputNotFoundError(f"{argument}: no such file, folder or matching files")
        found.extend(m for m in matches if m not in found)
    return found
