"""Reading and writing single-channel microscope images.

TIFF goes through tifffile (LZW and other codecs through imagecodecs), other
formats such as 16-bit PNG through imageio. Only single-channel 2-D numeric
images are accepted; anything else is refused with an error naming the file
and its shape.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from .errors import ImageFormatError, InputNotFoundError

__all__ = ["STACK_AXES", "IMAGE_SUFFIXES", "ImageFile", "ImageFormatError", "Stack",
           "check_single_channel", "find_images", "is_tiff", "read_image", "read_image_file",
           "read_stack", "tiff_pixel_size_um", "tiff_z_step_um",
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


#: Micrometres per unit, for the length units microscope files state.
UNIT_MICROMETRES = {"m": 1e6, "cm": 1e4, "mm": 1e3, "µm": 1.0, "μm": 1.0, "um": 1.0, "micron": 1.0, "microns": 1.0,
                    "micrometer": 1.0, "micrometre": 1.0, "nm": 1e-3, "nanometer": 1e-3, "Å": 1e-4, "pm": 1e-6}


def _micrometres(value, unit) -> float | None:
    factor = UNIT_MICROMETRES.get(str(unit).strip().replace("\\u00B5", "µ")) if unit is not None else None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    if factor is None or not (value > 0 and np.isfinite(value)):
        return None
    return value * factor


def _ome_pixels(tif) -> dict:
    import tifffile

    image = tifffile.xml2dict(tif.ome_metadata)["OME"]["Image"]
    return (image[0] if isinstance(image, list) else image)["Pixels"]


def tiff_pixel_size_um(tif) -> float | None:
    """The pixel size in the sample plane that a TIFF states in physical units, in micrometres.

    OME-TIFF ``PhysicalSizeX/Y`` (with their units; micrometres when none is
    given, as the OME schema says), or an ImageJ TIFF's resolution with its
    unit (micron, µm, nm, ...). Resolution tags without a physical unit (a
    camera's 72 dpi) are ignored. X and Y are averaged when they differ.

    Parameters
    ----------
    tif : tifffile.TiffFile

    Returns
    -------
    float or None
        None when the file states no physical pixel size.
    """
    sizes = []
    try:
        if tif.is_ome:
            pixels = _ome_pixels(tif)
            for axis in "XY":
                unit = pixels.get(f"PhysicalSize{axis}Unit", "µm")
                sizes.append(_micrometres(pixels.get(f"PhysicalSize{axis}"), unit))
        elif tif.is_imagej:
            unit = (tif.imagej_metadata or {}).get("unit")
            for tag in ("XResolution", "YResolution"):
                numerator, denominator = tif.pages[0].tags[tag].value
                sizes.append(_micrometres(denominator / numerator, unit) if numerator else None)
    except (KeyError, TypeError, ValueError, IndexError):  # malformed metadata states nothing usable
        return None
    sizes = [size for size in sizes if size is not None]
    return float(np.mean(sizes)) if sizes else None


def tiff_z_step_um(tif) -> float | None:
    """The z spacing of a TIFF stack in micrometres (OME ``PhysicalSizeZ``, ImageJ ``spacing``), or None."""
    try:
        if tif.is_ome:
            pixels = _ome_pixels(tif)
            return _micrometres(pixels.get("PhysicalSizeZ"), pixels.get("PhysicalSizeZUnit", "µm"))
        if tif.is_imagej:
            metadata = tif.imagej_metadata or {}
            return _micrometres(metadata.get("spacing"), metadata.get("unit"))
    except (KeyError, TypeError, ValueError, IndexError):
        return None
    return None


@dataclasses.dataclass
class ImageFile:
    """A single-channel image as read, with the pixel size its file states.

    Attributes
    ----------
    pixels : ndarray, 2-D
        Raw intensities, in the file's pixel type.
    pixel_size_um : float or None
        The pixel size in the sample plane the file states in physical units
        (see :func:`tiff_pixel_size_um`); None when it states none.
    """

    pixels: np.ndarray
    pixel_size_um: float | None = None


def read_image_file(path) -> ImageFile:
    """Read a single-channel 2-D image and the physical pixel size its file states.

    The decoder is chosen by the file's content, not its name.

    Parameters
    ----------
    path : str or Path
        TIFF (any tifffile codec; OME and ImageJ metadata are read) or
        PNG/other format imageio reads.

    Returns
    -------
    ImageFile

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
    pixel_size = None
    try:
        if is_tiff(path):
            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                if len(tif.series) > 1 or len(series.pages) > 1:
                    raise ImageFormatError(
                        f"{path}: a multi-plane TIFF ({len(tif.series)} series, first of shape "
                        f"{series.shape}); focusnet measures one 2-D plane at a time: split the stack, "
                        "or measure it with 'focusnet evaluate-stack'"
                    )
                image = series.asarray()
                pixel_size = tiff_pixel_size_um(tif)
        else:
            image = imageio.imread(path)
    except ImageFormatError:
        raise
    except Exception as error:  # decoders raise many types; name the file
        raise ImageFormatError(f"{path}: cannot be read as an image ({type(error).__name__}: {error})") from error
    return ImageFile(check_single_channel(image, str(path)), pixel_size)


def read_image(path) -> np.ndarray:
    """Read a single-channel 2-D image, keeping its pixel type (e.g. uint16).

    See :func:`read_image_file`, which also gives the pixel size the file states.

    Returns
    -------
    ndarray
        2-D array of raw intensities.
    """
    return read_image_file(path).pixels


#: The order :func:`read_stack` gives every stack's axes.
STACK_AXES = "TCZYX"
#: tifffile's axis codes for "pages of unknown meaning" (plain multi-page TIFFs).
_UNNAMED_AXES = "IQ"


@dataclasses.dataclass
class Stack:
    """The z-stacks of a TIFF: time points, channels and z planes, in ``TCZYX`` order.

    Attributes
    ----------
    data : ndarray, shape (T, C, Z, Y, X)
    channel_names : list of str
        The file's channel names (OME ``Channel Name``, ImageJ ``Labels`` per
        channel), or ``C0``, ``C1``, ... where it names none.
    z_step_um, pixel_size_um : float or None
        What the file states (None when it states nothing in physical units).
    axes : str
        The file's axes as they were interpreted (tifffile's codes, or those the caller gave).
    notes : list of str
        How unnamed axes were read (say so to the user).
    """

    data: np.ndarray
    channel_names: list
    z_step_um: float | None = None
    pixel_size_um: float | None = None
    axes: str = STACK_AXES
    notes: list = dataclasses.field(default_factory=list)

    def channel_index(self, channel) -> int:
        """The index of a channel given by index (int or digits) or by name.

        Raises
        ------
        InvalidParameterError
            For an index out of range or a name the file does not hold.
        """
        from .errors import InvalidParameterError

        names = ", ".join(f"{i}: {name}" for i, name in enumerate(self.channel_names))
        if channel is None:
            return 0
        text = str(channel)
        if text in self.channel_names:
            return self.channel_names.index(text)
        if text.lstrip("-").isdigit():
            index = int(text)
            if 0 <= index < len(self.channel_names):
                return index
        raise InvalidParameterError(f"no channel {channel!r}: the stack has {len(self.channel_names)} channel(s) "
                                    f"({names}); give an index or one of these names", setting="channel")


def _channel_names(tif, count: int) -> list:
    names = []
    try:
        if tif.is_ome:
            channels = _ome_pixels(tif).get("Channel", [])
            channels = channels if isinstance(channels, list) else [channels]
            names = [str(channel.get("Name", "")) for channel in channels]
        elif tif.is_imagej:
            labels = (tif.imagej_metadata or {}).get("Labels")
            names = list(labels) if isinstance(labels, (list, tuple)) and len(labels) == count else []
    except (KeyError, TypeError, ValueError, AttributeError):
        names = []
    if len(names) != count or len(set(names)) != count or not all(names):
        return [f"C{index}" for index in range(count)]
    return names


def _to_stack_axes(data: np.ndarray, axes: str, path) -> tuple:
    """``data`` with axes in TCZYX order (missing ones of size 1), and notes on how unnamed axes were read."""
    axes, notes = axes.upper(), []
    if len(axes) != data.ndim or len(set(axes)) != len(axes):
        raise ImageFormatError(f"{path}: cannot read axes {axes!r} for data of shape {data.shape}; give the axes, "
                               "one distinct letter per dimension (T, C, Z, Y, X; e.g. CZYX)", setting="axes")
    if "Y" not in axes or "X" not in axes:
        raise ImageFormatError(f"{path}: axes {axes!r} name no Y and X")
    sizes = dict(zip(axes, data.shape))
    if sizes.get("S", 1) > 1:
        raise ImageFormatError(f"{path}: colour samples (axes {axes}, shape {data.shape}); focusnet measures one "
                               "channel of fluorescence: save channels as planes (C), not as RGB")
    others = [axis for axis in axes if axis not in STACK_AXES and sizes[axis] > 1]
    if others and sizes.get("Z", 1) == 1 and len(others) == 1:
        # A plain multi-page TIFF: its pages are the planes.
        notes.append(f"{path}: axis {others[0]} ({sizes[others[0]]} pages) read as z; give the stack's axes if it "
                     "is not")
        axes = axes.replace("Z", "z").replace(others[0], "Z")  # a size-1 Z, if any, is dropped below
        others = []
    if others:
        raise ImageFormatError(f"{path}: cannot tell which of the axes {axes} (shape {data.shape}) is z; give the "
                               "stack's axes, e.g. CZYX", setting="axes")
    # Drop the other axes (all of size 1 by now), add the missing ones, and order them.
    keep = [i for i, axis in enumerate(axes) if axis in STACK_AXES]
    data = data.reshape([data.shape[i] for i in keep])
    present = "".join(axes[i] for i in keep)
    for axis in STACK_AXES:
        if axis not in present:
            data = data[np.newaxis]
            present = axis + present
    return np.moveaxis(data, [present.index(axis) for axis in STACK_AXES], range(5)), notes


def read_stack(path, axes: str | None = None) -> Stack:
    """Read the z-stacks of a TIFF: multi-page TIFF, ImageJ hyperstack or OME-TIFF, any channels and times.

    Parameters
    ----------
    path : path-like
    axes : str, optional
        The data's axes (tifffile codes: T, C, Z, Y, X; e.g. ``CZYX``),
        overriding the file's metadata. A plain multi-page TIFF's pages are
        read as z (and the notes say so).

    Raises
    ------
    InputNotFoundError, ImageFormatError
        Missing file; not a TIFF; axes that do not fit; colour (RGB) data;
        fewer than two planes.
    """
    import tifffile

    path = Path(path)
    if path.is_dir():
        raise InputNotFoundError(f"{path} is a folder; give one stack file (focusnet stack measures folders)")
    if not path.is_file():
        raise InputNotFoundError(f"{path}: no such stack file")
    if not is_tiff(path):
        raise ImageFormatError(f"{path}: stacks are read from TIFF files (multi-page, ImageJ or OME-TIFF)")
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            data = series.asarray()
            file_axes = series.axes
            z_step, pixel_size = tiff_z_step_um(tif), tiff_pixel_size_um(tif)
            sizes = dict(zip((axes or file_axes).upper(), data.shape))
            names = _channel_names(tif, sizes.get("C", 1))
            file_pages = len(tif.pages)
            stated = (tif.imagej_metadata or {}).get("images") if tif.is_imagej else None
            is_ome = tif.is_ome
    except Exception as error:  # decoders raise many types; name the file
        raise ImageFormatError(f"{path}: cannot be read as a stack ({type(error).__name__}: {error})") from error
    # What was read must be the whole file: tifffile stops quietly at a broken page chain and makes a
    # series of each run of pages of one size (an OME-TIFF's several series are positions; the first is read).
    planes = int(np.prod([size for axis, size in zip(file_axes, data.shape) if axis not in "YXS"]))
    if isinstance(stated, int) and stated > planes:
        raise ImageFormatError(f"{path}: the file states {stated} planes but only {planes} can be read; it is "
                               "truncated or damaged")
    if not is_ome and file_pages > len(series.pages):
        raise ImageFormatError(f"{path}: only the first {len(series.pages)} of its {file_pages} pages form one "
                               "image series (pages of other sizes or types follow); a stack's planes must all "
                               "have one size")
    if data.dtype.kind not in "uif":
        raise ImageFormatError(f"{path}: pixel type {data.dtype} is not numeric")
    data, notes = _to_stack_axes(data, axes or file_axes, path)
    if data.shape[2] < 2:
        raise ImageFormatError(f"{path}: {data.shape[2]} plane per channel and time point; a z-stack needs at "
                               "least two")
    return Stack(data, names, z_step, pixel_size, (axes or file_axes).upper(), notes)


def write_tiff(path, image: np.ndarray) -> None:
    """Write a 2-D image as a (lossless, zlib-compressed) TIFF, keeping its pixel type; whole or not at all."""
    import tifffile

    from .files import replacing

    with replacing(path) as temporary:
        tifffile.imwrite(os.fspath(temporary), np.asarray(image), compression="zlib")


def find_images(paths, duplicates: list | None = None) -> list:
    """Expand files, folders and glob patterns into a sorted list of image files, each once.

    Parameters
    ----------
    paths : iterable of str or Path
        Files, folders (their image files, not recursive) or glob patterns.
    duplicates : list, optional
        Receives the paths left out because they name a file already found
        (the same file named twice, or by another path).

    Raises
    ------
    InputNotFoundError
        If an argument matches nothing (a ``FileNotFoundError``).
    """
    import glob

    found, seen = [], set()
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
        for match in matches:
            key = os.path.realpath(match)
            if key in seen:
                if duplicates is not None:
                    duplicates.append(match)
                continue
            seen.add(key)
            found.append(match)
    return found
