"""Through-focus stacks: every plane measured, the best plane picked, focus curves drawn.

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

from .contract import LEVELS, STACK_COLUMNS, STACK_PLANE_COLUMNS
from .errors import FocusnetError, InvalidParameterError
from .files import replacing
from .images import Hyperstack, read_hyperstack
from .inference import FocusPrediction, choose_pixel_size, predict_image

__all__ = ["PlaneResult", "StackResult", "best_plane", "measure_planes", "plane_rows", "predict_stack",
           "refine_best_plane", "save_focus_curve", "stack_row", "write_best_planes"]

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


def measure_planes(planes, model, name: str, z_step_um: float, pixel_size_um: float, pixel_size_source: str,
                   objective=None, scale=None, bar=None) -> List[PlaneResult]:
    """Measure each plane with :func:`~focusnet.inference.predict_image`; a plane that fails is kept with its error.

    Parameters
    ----------
    planes : ndarray, shape (Z, Y, X)
    model : loaded model
    name : str
        Names the stack in errors (each plane adds `` plane N``).
    bar : tqdm, optional
        Advanced by one per plane.
    """
    results = []
    for index, plane in enumerate(planes):
        z_um = index * z_step_um if z_step_um else float("nan")
        try:
            prediction = predict_image(plane, model, scale=scale, name=f"{name} plane {index}",
                                       pixel_size_um=pixel_size_um, pixel_size_source=pixel_size_source,
                                       objective=objective)
            results.append(PlaneResult(index, z_um, prediction))
        except FocusnetError as error:
            results.append(PlaneResult(index, z_um, error=error))
        if bar is not None:
            bar.update(1)
    return results


def predict_stack(path, model=None, channel=None, axes: str | None = None, z_step_um: float | None = None,
                  pixel_size_um: float | None = None, objective=None, scale: float | None = None,
                  progress: bool = False, stack: Hyperstack | None = None, bar=None) -> List[StackResult]:
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
    stack : Hyperstack, optional
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

    from .loader import load_model

    model = load_model(model)
    stack = read_hyperstack(path, axes) if stack is None else stack
    channel_index = stack.channel_index(channel)
    notes = list(stack.notes)
    z_step = z_step_um if z_step_um is not None else stack.z_step_um
    if z_step is None:
        notes.append(f"{path}: the file states no z spacing, so z_um is NaN (give --z-step)")
    elif not (isinstance(z_step, (int, float)) and math.isfinite(z_step) and z_step > 0):
        raise InvalidParameterError(f"{path}: z step must be a positive number of micrometres, got {z_step!r}")
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
            result = StackResult(str(path), time, channel_index, stack.channel_names[channel_index], z_step, size,
                                 source, planes, notes=list(notes))
            for plane in result.measured:
                result.notes += [note for note in plane.prediction.notes if note not in result.notes]
            expected = [plane.expected_level for plane in planes]
            certainty = [plane.prediction.aggregate_certainty if plane.prediction else np.nan for plane in planes]
            best = best_plane(expected, certainty)
            if best is not None:
                result.best_plane = best
                result.best_plane_fit = refine_best_plane(expected, best)
                result.best_plane_certainty = float(certainty[best])
            results.append(result)
    finally:
        if own_bar:
            bar.close()
    return results


def _number(value) -> str:
    from .batch import format_number

    return format_number(float(value)) if value is not None else "nan"


def plane_rows(result: StackResult) -> List[List[str]]:
    """Rows of :data:`focusnet.contract.STACK_PLANE_COLUMNS`, one per plane (NaN where not measured)."""
    rows = []
    for plane in result.planes:
        head = [result.path, str(result.time), result.channel_name, str(plane.plane), _number(plane.z_um)]
        prediction = plane.prediction
        if prediction is None:
            measured = len(STACK_PLANE_COLUMNS) - len(head) - 2
            rows.append(head + ["nan"] * measured
                        + [_number(getattr(plane.error, "content_fraction", float("nan"))), "0"])
            continue
        rows.append(head + [str(prediction.defocus_level), _number(plane.expected_level),
                            _number(prediction.defocus_um), str(int(prediction.defocus_um_lower_bound)),
                            _number(prediction.aggregate_certainty), _number(prediction.mean_certainty),
                            _number(prediction.content_fraction), str(int(plane.plane == result.best_plane))])
    return rows


def stack_row(result: StackResult) -> List[str]:
    """The row of :data:`focusnet.contract.STACK_COLUMNS` for one stack and time point."""
    head = [result.path, str(result.time), result.channel_name, str(len(result.planes)), str(len(result.measured))]
    tail = [_number(result.z_step_um), _number(result.pixel_size_um), result.pixel_size_source]
    if result.best_plane is None:
        return head + ["nan"] * (len(STACK_COLUMNS) - len(head) - len(tail)) + tail
    best = result.planes[result.best_plane]
    return head + [str(result.best_plane), _number(result.best_plane_fit), _number(best.z_um),
                   _number(result.best_z_um), str(best.prediction.defocus_level),
                   _number(best.prediction.defocus_um), _number(result.best_plane_certainty)] + tail


def output_stem(result: StackResult, times: int) -> str:
    """The file stem for a stack's outputs: ``<stack stem>`` (``_t<T>`` when it has several time points)."""
    stem = Path(result.path).name
    for suffix in (".ome.tiff", ".ome.tif", ".tiff", ".tif"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return stem + (f"_t{result.time}" if times > 1 else "")


def write_best_planes(result: StackResult, stack: Hyperstack, path) -> Path:
    """Write the best plane of every channel as one ImageJ TIFF (axes CYX) carrying the source's pixel size.

    Only a pixel size that was given or stated travels with the plane, never an assumed one.

    Raises
    ------
    InvalidParameterError
        When the stack has no best plane (no plane could be measured).
    """
    import tifffile

    if result.best_plane is None:
        raise InvalidParameterError(f"{result.path}: no plane could be measured, so there is no best plane to write")
    planes = np.ascontiguousarray(stack.data[result.time, :, result.best_plane])
    metadata = {"axes": "CYX", "Labels": list(stack.channel_names)}
    calibration = {}
    if result.pixel_size_source != "assumed":
        calibration = {"resolution": (1 / result.pixel_size_um, 1 / result.pixel_size_um)}
        metadata["unit"] = "micron"
    with replacing(path) as temporary:
        tifffile.imwrite(temporary, planes, imagej=True, metadata=metadata, **calibration)
    return Path(path)


def save_focus_curve(result: StackResult, path, defocus=None) -> Path:
    """Level and ``defocus_um`` against z, with a certainty band, the best plane and its sub-plane estimate.

    The band is the expected level plus and minus the spread (standard
    deviation) of each plane's level distribution: narrow where the model is
    sure. Points are coloured by aggregate certainty; the most probable level
    is drawn as small crosses.

    Parameters
    ----------
    defocus : DefocusScale, optional
        Converts the band to micrometres (default: the planes' own
        ``defocus_um`` without a band).
    """
    from .figures import pyplot

    plt = pyplot()
    planes = [plane for plane in result.planes if plane.prediction is not None]
    figure, (level_axis, um_axis) = plt.subplots(2, 1, figsize=(7, 6.5), sharex=True)
    if planes:
        z = np.array([plane.z_um for plane in planes])
        expected = np.array([plane.expected_level for plane in planes])
        spread = np.array([plane.level_spread for plane in planes])
        certainty = np.array([plane.prediction.aggregate_certainty for plane in planes])
        low, high = np.clip(expected - spread, 0, LEVELS[-1]), np.clip(expected + spread, 0, LEVELS[-1])
        level_axis.fill_between(z, low, high, color="C0", alpha=0.18, lw=0, label="expected level +- spread")
        level_axis.plot(z, expected, color="C0", lw=1)
        points = level_axis.scatter(z, expected, c=certainty, cmap="viridis", vmin=0, vmax=1, s=22, zorder=3)
        level_axis.plot(z, [plane.prediction.defocus_level for plane in planes], "x", color="grey", ms=4,
                        label="most probable level")
        colour_bar = figure.colorbar(points, ax=[level_axis, um_axis])
        colour_bar.set_label("aggregate certainty")
        micrometres = np.array([plane.prediction.defocus_um for plane in planes])
        if defocus is not None:
            um_axis.fill_between(z, defocus(low), defocus(high), color="C1", alpha=0.18, lw=0)
        um_axis.plot(z, micrometres, "o-", color="C1", ms=4, label="defocus_um")
        bound = np.array([plane.prediction.defocus_um_lower_bound for plane in planes])
        if bound.any():
            um_axis.scatter(z[bound], micrometres[bound], marker="^", s=40, color="C3", zorder=3,
                            label="lower bound (beyond the last level)")
    for axis in (level_axis, um_axis):
        if result.best_plane is not None:
            axis.axvline(result.planes[result.best_plane].z_um, color="C2", lw=0.8)
            axis.axvline(result.best_z_um, color="C2", lw=0.8, ls="--")
    level_axis.set_ylabel("defocus level")
    level_axis.set_ylim(-0.5, LEVELS[-1] + 0.5)
    level_axis.legend(fontsize=8, loc="upper center")
    um_axis.set_xlabel("z (um)")
    um_axis.set_ylabel("distance from focus (um)")
    if planes:
        um_axis.legend(fontsize=8, loc="upper center")
    best = (f"best plane {result.best_plane} (z {result.best_z_um:.2f} um fitted), certainty "
            f"{result.best_plane_certainty:.2f}" if result.best_plane is not None else "no plane measured")
    level_axis.set_title(f"{Path(result.path).name}, channel {result.channel_name}"
                         + (f", time {result.time}" if result.time else "") + f": {best}", fontsize=9)
    with replacing(path) as temporary:
        figure.savefig(temporary, dpi=110)
    plt.close(figure)
    return Path(path)
