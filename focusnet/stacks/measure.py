"""Measuring a stack: every plane measured, the best plane picked.

:func:`predict_stack` measures each plane of one channel of a z-stack (each
time point on its own) with :func:`focusnet.inference.predict_image`, the one
inference path, and picks the **best plane**: the lowest *expected level*
(the probability-weighted mean level of the plane's whole-image
distribution, which unlike the most probable level still ranks planes that
all read level 0), ties going to the higher aggregate certainty. A parabola
fitted to the expected levels of the best plane and up to two planes on each
side refines it to a fractional plane ``best_plane_fit`` (and ``best_z_um``).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import List, Optional

import numpy as np

from ..contract import LEVELS
from ..errors import FocusnetError, InvalidParameterError
from ..files import replacing
from ..images import Stack, read_stack
from ..inference import FocusPrediction, choose_pixel_size, predict_image

__all__ = ["PlaneResult", "StackResult", "best_plane", "iter_planes", "judge_stack", "measure_planes", "output_stem",
           "predict_stack", "refine_best_plane", "write_planes"]

#: Planes on each side of the best one that the sub-plane fit uses.
FIT_HALF_WIDTH = 2


@dataclasses.dataclass
class PlaneResult:
    """One plane: its prediction, or why it could not be measured."""

    plane: int
    z_um: float
    prediction: Optional[FocusPrediction] = None
    error: Optional[FocusnetError] = None

    @property
    def expected_level(self) -> float:
        """The probability-weighted mean level of the plane (NaN when not measured)."""
        if self.prediction is None:
            return float("nan")
        return float(self.prediction.distribution @ np.asarray(LEVELS, dtype=float))

    @property
    def level_spread(self) -> float:
        """The standard deviation of the plane's level distribution (NaN when not measured)."""
        if self.prediction is None:
            return float("nan")
        levels = np.asarray(LEVELS, dtype=float)
        return float(math.sqrt(max(self.prediction.distribution @ (levels - self.expected_level) ** 2, 0.0)))


@dataclasses.dataclass
class StackResult:
    """One time point of one stack, judged by one channel.

    Attributes
    ----------
    path : str
    time : int
    channel : int
    channel_name : str
    z_step_um : float or None
        None when neither the file nor the caller states it (``z_um`` is NaN).
    pixel_size_um : float
    pixel_size_source : str
    planes : list of PlaneResult
    best_plane : int or None
        None when no plane could be measured.
    best_plane_fit : float
        The sub-plane estimate of the focal position, in planes (NaN without a best plane).
    best_plane_certainty : float
        The best plane's aggregate certainty.
    notes : list of str
    """

    path: str
    time: int
    channel: int
    channel_name: str
    z_step_um: Optional[float]
    pixel_size_um: float
    pixel_size_source: str
    planes: List[PlaneResult]
    best_plane: Optional[int] = None
    best_plane_fit: float = float("nan")
    best_plane_certainty: float = float("nan")
    notes: list = dataclasses.field(default_factory=list)

    @property
    def best_z_um(self) -> float:
        """The sub-plane estimate in micrometres from the first plane (NaN without a z step or best plane)."""
        return self.best_plane_fit * self.z_step_um if self.z_step_um else float("nan")

    @property
    def measured(self) -> List[PlaneResult]:
        """The planes that could be measured."""
        return [plane for plane in self.planes if plane.prediction is not None]


def best_plane(expected_levels, certainties) -> Optional[int]:
    """The index of the lowest expected level, ties to the higher certainty; None if all are NaN.

    Parameters
    ----------
    expected_levels, certainties : array_like
        One per plane; NaN for planes that were not measured.
    """
    expected = np.asarray(expected_levels, dtype=float)
    certainty = np.nan_to_num(np.asarray(certainties, dtype=float), nan=-1.0)
    candidates = np.flatnonzero(np.isfinite(expected))
    if candidates.size == 0:
        return None
    # Lexicographic: lowest expected level first, then highest certainty, then the first plane.
    order = np.lexsort((candidates, -certainty[candidates], expected[candidates]))
    return int(candidates[order[0]])


def refine_best_plane(expected_levels, best: int, half_width: int = FIT_HALF_WIDTH) -> float:
    """Sub-plane focal position, in planes: the vertex of a parabola fitted around the best plane.

    The parabola is fitted (least squares) to the expected levels of the
    best plane and the measured planes up to ``half_width`` on each side. It
    needs a plane on each side and an upward curvature; otherwise the best
    plane itself is returned. The vertex is kept within one plane of it.
    """
    expected = np.asarray(expected_levels, dtype=float)
    window = np.arange(max(best - half_width, 0), min(best + half_width + 1, len(expected)))
    window = window[np.isfinite(expected[window])]
    if len(window) < 3 or not (window.min() < best < window.max()):
        return float(best)
    curvature, slope, _ = np.polyfit(window - best, expected[window], 2)
    if not curvature > 0:
        return float(best)
    return float(best + np.clip(-slope / (2.0 * curvature), -1.0, 1.0))


def iter_planes(planes, model, name: str, z_step_um: float, pixel_size_um: float, pixel_size_source: str,
                objective=None, scale=None):
    """Measure each plane with :func:`~focusnet.inference.predict_image`, yielding its result as soon as it is known.

    A plane that fails is yielded with its error. Front ends that show progress or can be
    cancelled (napari) take the results one by one; :func:`measure_planes` takes them all.

    Parameters
    ----------
    planes : ndarray, shape (Z, Y, X)
    model : loaded model
    name : str
        Names the stack in errors (each plane adds `` plane N``).

    Yields
    ------
    PlaneResult
    """
    for index, plane in enumerate(planes):
        z_um = index * z_step_um if z_step_um else float("nan")
        try:
            prediction = predict_image(plane, model, scale=scale, name=f"{name} plane {index}",
                                       pixel_size_um=pixel_size_um, pixel_size_source=pixel_size_source,
                                       objective=objective)
            yield PlaneResult(index, z_um, prediction)
        except FocusnetError as error:
            yield PlaneResult(index, z_um, error=error)


def measure_planes(planes, model, name: str, z_step_um: float, pixel_size_um: float, pixel_size_source: str,
                   objective=None, scale=None, bar=None) -> List[PlaneResult]:
    """Every plane's :class:`PlaneResult` (see :func:`iter_planes`); ``bar`` (tqdm) advances by one per plane."""
    results = []
    for result in iter_planes(planes, model, name, z_step_um, pixel_size_um, pixel_size_source, objective, scale):
        results.append(result)
        if bar is not None:
            bar.update(1)
    return results


def judge_stack(path, time: int, channel: int, channel_name: str, z_step_um, pixel_size_um: float,
                pixel_size_source: str, planes: List[PlaneResult], notes=()) -> StackResult:
    """A stack's result from its measured planes: the best plane, its sub-plane fit, and every plane's notes once.

    Parameters
    ----------
    path : str
        Names the stack (a file, or a layer in a viewer).
    planes : list of PlaneResult
        In plane order (:func:`iter_planes`).
    notes : sequence of str
        The stack's own notes (how its axes were read, a missing z step).
    """
    result = StackResult(str(path), time, channel, channel_name, z_step_um, pixel_size_um, pixel_size_source,
                         planes, notes=list(notes))
    for plane in result.measured:
        result.notes += [note for note in plane.prediction.notes if note not in result.notes]
    expected = [plane.expected_level for plane in planes]
    certainty = [plane.prediction.aggregate_certainty if plane.prediction else np.nan for plane in planes]
    best = best_plane(expected, certainty)
    if best is not None:
        result.best_plane = best
        result.best_plane_fit = refine_best_plane(expected, best)
        result.best_plane_certainty = float(certainty[best])
    return result


def predict_stack(path, model=None, channel=None, axes: str | None = None, z_step_um: float | None = None,
                  pixel_size_um: float | None = None, objective=None, scale: float | None = None,
                  progress: bool = False, stack: Stack | None = None, bar=None) -> List[StackResult]:
    """Measure every plane of one channel of a z-stack, for each time point, and pick its best plane.

    Parameters
    ----------
    path : path-like
        Multi-page TIFF, ImageJ hyperstack or OME-TIFF.
    model : optional
        A loaded model, folder or bundle (default: the shipped model); load
        it once and pass it when measuring many stacks.
    channel : int or str, optional
        The channel to judge focus by: an index or a name the file gives
        (default: the first).
    axes : str, optional
        Overrides the file's axes (e.g. ``CZYX``).
    z_step_um : float, optional
        Plane spacing; default: what the file states. Without either, planes
        are still judged but ``z_um`` is NaN (a note says so).
    pixel_size_um : float, optional
        Default: what the file states, else the model's (assumed).
    objective : Optics, optional
        For ``defocus_um`` (default: the lens the model was trained for).
    scale : float, optional
        For floating-point stacks in [0, 1]: the count 1.0 stands for.
    progress : bool
        Show a progress bar over the planes (ignored when ``bar`` is given).
    stack : Stack, optional
        The stack at ``path``, when the caller has read it already.
    bar : tqdm, optional
        A progress bar to advance by one per plane (shared over many stacks).

    Returns
    -------
    list of StackResult
        One per time point.

    Raises
    ------
    InputNotFoundError, ImageFormatError
        The file cannot be read as a stack.
    InvalidParameterError
        No such channel.
    """
    from tqdm import tqdm

    from ..loader import load_model

    model = load_model(model)
    stack = read_stack(path, axes) if stack is None else stack
    channel_index = stack.channel_index(channel)
    notes = list(stack.notes)
    z_step = z_step_um if z_step_um is not None else stack.z_step_um
    if z_step is None:
        notes.append(f"{path}: the file states no z spacing, so z_um is NaN (give the plane spacing)")
    elif not (isinstance(z_step, (int, float)) and math.isfinite(z_step) and z_step > 0):
        raise InvalidParameterError(f"{path}: z step must be a positive number of micrometres, got {z_step!r}",
                                    setting="z_step_um")
    size, source = choose_pixel_size(model, pixel_size_um, stack.pixel_size_um)
    times = stack.data.shape[0]
    own_bar = bar is None
    if own_bar:
        bar = tqdm(total=times * stack.data.shape[2], desc="planes", unit="plane", disable=not progress)
    results = []
    try:
        for time in range(times):
            name = f"{Path(path).name}" + (f" time {time}" if times > 1 else "")
            planes = measure_planes(stack.data[time, channel_index], model, name, z_step, size, source,
                                    objective=objective, scale=scale, bar=bar)
            results.append(judge_stack(path, time, channel_index, stack.channel_names[channel_index], z_step, size,
                                       source, planes, notes))
    finally:
        if own_bar:
            bar.close()
    return results


def output_stem(path, time: int | None = None) -> str:
    """The file stem for a stack's outputs: ``<stack stem>``, and ``_t<T>`` for time point T of several."""
    stem = Path(path).name
    for suffix in (".ome.tiff", ".ome.tif", ".tiff", ".tif"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return stem + (f"_t{time}" if time is not None else "")


def write_planes(path, planes, pixel_size_um: float | None = None, channel_names=None) -> Path:
    """Write one plane (``YX``) or one plane of every channel (``CYX``) as an ImageJ TIFF, whole or not at all.

    Parameters
    ----------
    planes : ndarray, shape (Y, X) or (C, Y, X)
    pixel_size_um : float, optional
        Written as the calibration when known; leave it out when it was only
        assumed, so that nothing downstream mistakes it for a measurement.
    channel_names : list of str, optional
        The channels' labels (``CYX`` only).
    """
    import tifffile

    planes = np.ascontiguousarray(planes)
    metadata = {"axes": "CYX", "Labels": list(channel_names)} if planes.ndim == 3 else {}
    calibration = {}
    if pixel_size_um is not None:
        calibration = {"resolution": (1 / pixel_size_um, 1 / pixel_size_um)}
        metadata["unit"] = "micron"
    with replacing(path) as temporary:
        tifffile.imwrite(temporary, planes, imagej=True, metadata=metadata, **calibration)
    return Path(path)
