"""What the napari widget computes, without Qt: requests from layers, the measuring jobs, result layers and CSVs.

Everything here goes through focusnet's one inference path (:func:`focusnet.predict_image`,
:func:`focusnet.stacks.measure.iter_planes`, :func:`focusnet.refocus_image`), so the numbers
napari shows are the command line's. The widget (:mod:`focusnet.napari._widget`) runs the
jobs in a worker thread and turns their results into layers, a table and a focus curve.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

import numpy as np

from ..contract import IMAGE_COLUMNS, LEVELS, PATCH_COLUMNS, STACK_COLUMNS, STACK_PLANE_COLUMNS
from ..errors import ImageFormatError, InvalidParameterError

#: Units napari layers may state that mean micrometres.
MICROMETRE_UNITS = ("micrometer", "micrometre", "micron", "um", "µm")
#: How many of a patch's most probable levels its hover text lists.
TOP_LEVELS = 3


@dataclasses.dataclass(frozen=True)
class Request:
    """One measurement asked of the widget: which data, along which axis, with which settings.

    Attributes
    ----------
    name : str
        The layer's name (names results and errors).
    data : array-like
        The layer's data (numpy or dask), last two axes Y and X.
    axis : int or None
        The axis of planes for a stack; None for one 2-D image (the plane the viewer shows).
    index : tuple of int
        The viewer's position on every axis (fixes the axes other than ``axis``, Y and X).
    pixel_size_um : float or None
        Given by the user (wins), else None.
    stated_pixel_size_um : float or None
        What the layer's scale states.
    z_step_um : float or None
        Plane spacing (given, else the layer's scale along ``axis``), None when unknown.
    model : str or None
        A model folder, bundle or ``.onnx`` file; None: the shipped model.
    objective : dict
        ``wavelength_um``, ``numerical_aperture``, ``refractive_index`` (None: the model's).
    scale : float or None
        For float data: the count 1.0 stands for.
    """

    name: str
    data: object
    axis: Optional[int]
    index: tuple
    pixel_size_um: Optional[float] = None
    stated_pixel_size_um: Optional[float] = None
    z_step_um: Optional[float] = None
    model: Optional[str] = None
    objective: dict = dataclasses.field(default_factory=dict)
    scale: Optional[float] = None

    @property
    def planes(self) -> int:
        """How many planes a stack request measures (1 for a 2-D one)."""
        return 1 if self.axis is None else int(self.data.shape[self.axis])

    def plane(self, number: int | None = None) -> np.ndarray:
        """Plane ``number`` along ``axis`` (None: the plane the viewer shows), as a numpy array."""
        position = list(self.index)
        if number is not None:
            position[self.axis] = number
        return np.asarray(self.data[tuple(position[:-2])])


def _is_micrometres(units) -> bool:
    return str(units).strip().lower() in MICROMETRE_UNITS


def stated_size(layer, axis: int) -> Optional[float]:
    """The layer's scale along ``axis`` as micrometres, or None where it states none.

    A scale in micrometres counts; so does a scale other than 1 with napari's default
    unit (pixel), since readers that know the pixel size set the scale without units.
    A scale of 1 pixel states nothing.
    """
    scale = float(layer.scale[axis])
    units = getattr(layer, "units", None)
    unit = units[axis] if units is not None else "pixel"
    if _is_micrometres(unit):
        return scale
    return None if scale == 1.0 else scale


def check_layer(layer) -> None:
    """Refuse what focusnet cannot measure, with the CLI's kind of message.

    Raises
    ------
    ImageFormatError
        Not an image layer (labels, points, ...), RGB, multiscale, empty, or fewer than two axes.
    """
    from napari.layers import Image

    if layer is None:
        raise InvalidParameterError("no layer selected: add or open an image first")
    if not isinstance(layer, Image):
        raise ImageFormatError(f"{layer.name}: a {type(layer).__name__} layer; focusnet measures image layers "
                               "(grey-level microscope images)")
    if layer.rgb:
        raise ImageFormatError(f"{layer.name}: RGB/colour layer; focusnet measures one fluorescence channel (open "
                               "the channels as separate layers)")
    if layer.multiscale:
        raise ImageFormatError(f"{layer.name}: multiscale (pyramid) layer; open its full-resolution level as "
                               "an image layer")
    shape = tuple(layer.data.shape)
    if len(shape) < 2 or 0 in shape:
        raise ImageFormatError(f"{layer.name}: empty layer (shape {shape}); there is nothing to measure")


def make_request(layer, current_step, axis: Optional[int], pixel_size_um=None, z_step_um=None, model=None,
                 objective=None, scale=None) -> Request:
    """A checked :class:`Request` for a layer at the viewer's position.

    Parameters
    ----------
    layer : napari.layers.Image
    current_step : tuple of int
        ``viewer.dims.current_step`` (the world's axes; the layer's are its last ``ndim``).
    axis : int or None
        The layer axis holding the planes of a stack; None to measure the plane shown.
    pixel_size_um, z_step_um, scale : float or None
        The user's values (None or 0: not given).

    Raises
    ------
    ImageFormatError, InvalidParameterError
        A layer focusnet cannot measure (:func:`check_layer`), pixels that are not square,
        an axis that is not a plane axis.
    """
    check_layer(layer)
    ndim = layer.ndim
    if axis is not None and not 0 <= axis < ndim - 2:
        raise InvalidParameterError(f"{layer.name}: axis {axis} is not a plane axis of this {ndim}-D layer (choose one "
                                    f"of 0-{ndim - 3}; the last two are Y and X)")
    if ndim == 2 and axis is not None:
        raise InvalidParameterError(f"{layer.name}: a 2-D layer has no planes to go through")
    height, width = stated_size(layer, ndim - 2), stated_size(layer, ndim - 1)
    if (height is None) != (width is None) or (height is not None and not math.isclose(height, width, rel_tol=1e-3)):
        raise InvalidParameterError(f"{layer.name}: its pixels are not square (scale {layer.scale[-2]:g} x "
                                    f"{layer.scale[-1]:g}); give the pixel size to measure at")
    world = tuple(int(step) for step in current_step)[-ndim:] if ndim <= len(current_step) else (0,) * ndim
    index = tuple(min(max(value, 0), size - 1) for value, size in zip(world, layer.data.shape))
    z_step = z_step_um or (stated_size(layer, axis) if axis is not None else None)
    return Request(name=layer.name, data=layer.data, axis=axis, index=index, pixel_size_um=pixel_size_um or None,
                   stated_pixel_size_um=width, z_step_um=z_step, model=model or None,
                   objective={key: value or None for key, value in (objective or {}).items()}, scale=scale or None)


@dataclasses.dataclass
class ImageOutcome:
    """A measured 2-D plane: the prediction and what the CSVs need."""

    request: Request
    prediction: object
    pixel_size_um: float
    pixel_size_source: str


def _settings(request: Request, model):
    from ..inference import choose_pixel_size, objective_optics

    size, source = choose_pixel_size(model, request.pixel_size_um, request.stated_pixel_size_um)
    return size, source, objective_optics(model, **request.objective)


def measure_image(request: Request) -> ImageOutcome:
    """Measure the plane the viewer shows (:func:`focusnet.predict_image`)."""
    from ..inference import predict_image
    from ..loader import load_model

    model = load_model(request.model)
    size, source, objective = _settings(request, model)
    prediction = predict_image(request.plane(), model, scale=request.scale, name=request.name, pixel_size_um=size,
                               pixel_size_source=source, objective=objective)
    return ImageOutcome(request, prediction, size, source)


def measure_stack(request: Request):
    """Measure every plane along the request's axis, yielding ``(done, total)``; returns the StackResult.

    A generator, so that a worker thread reports progress and can stop between planes.
    """
    from ..loader import load_model
    from ..stacks.measure import iter_planes, judge_stack

    model = load_model(request.model)
    size, source, objective = _settings(request, model)
    notes = [] if request.z_step_um else [f"{request.name}: the layer states no z spacing, so z_um is NaN (give "
                                          "the plane spacing)"]
    planes = (request.plane(number) for number in range(request.planes))
    results = []
    for result in iter_planes(planes, model, request.name, request.z_step_um, size, source, objective,
                              request.scale):
        results.append(result)
        yield len(results), request.planes
    return judge_stack(request.name, 0, 0, "", request.z_step_um, size, source, results, notes)


def refocus_plane(request: Request):
    """Refocus the plane the viewer shows (:func:`focusnet.refocus_image`, the shipped refocus model)."""
    from ..loader import load_model
    from ..refocus.restore import refocus_image

    classifier = load_model(request.model)
    size, source, objective = _settings(request, classifier)
    return refocus_image(request.plane(), classifier=classifier, scale=request.scale, name=request.name,
                         pixel_size_um=size, pixel_size_source=source, objective=objective)


# --- result layers -------------------------------------------------------------------------------

def _grid_step(shape) -> int:
    from ..figures import overlay_step

    return overlay_step(shape)


def patch_labels(prediction, shape) -> tuple:
    """The patches as labels (patch ``i`` row-major is label ``i + 1``) on a grid of step ``k`` pixels.

    Returns
    -------
    labels : ndarray of int32, shape (ceil(H/k), ceil(W/k))
    step : int
        ``k`` (large images are drawn coarser, as focusnet's overlays).
    """
    step = _grid_step(shape)
    labels = np.zeros((-(-shape[0] // step), -(-shape[1] // step)), np.int32)
    size = max(1, round(prediction.patch_size / step))
    label = 1
    for y in prediction.y:
        for x in prediction.x:
            labels[y // step:y // step + size, x // step:x // step + size] = label
            label += 1
    return labels, step


def patch_colours(prediction) -> dict:
    """Label -> RGBA: focusnet's level colours, pale where uncertain, its no-content colour where not judged."""
    from ..figures import NO_CONTENT_COLOUR, level_colours

    colours = level_colours(prediction.patch_levels, prediction.patch_certainty).reshape(-1, 3)
    judged = prediction.judged_patches.ravel()
    table = {0: np.zeros(4), None: np.zeros(4)}
    for index, (colour, is_judged) in enumerate(zip(colours, judged)):
        table[index + 1] = np.append(colour if is_judged else NO_CONTENT_COLOUR, 1.0)
    return table


def patch_features(prediction) -> dict:
    """One row per label (0: background), for napari's status bar: level, certainty, µm and top probabilities."""
    rows = list(prediction.patch_rows())
    features = {"index": [0], "level": ["-"], "certainty": [float("nan")], "defocus_um": [float("nan")],
                "top_levels": [""]}
    for number, row in enumerate(rows, start=1):
        features["index"].append(number)
        if row["judged"]:
            order = np.argsort(row["probabilities"])[::-1][:TOP_LEVELS]
            features["level"].append(str(row["defocus_level"]))
            features["top_levels"].append(", ".join(f"{LEVELS[i]}: {row['probabilities'][i]:.2f}" for i in order))
        else:
            features["level"].append("no content" if not row["content"] else "too noisy")
            features["top_levels"].append("")
        features["certainty"].append(round(row["certainty"], 3))
        features["defocus_um"].append(round(row["defocus_um"], 2))
    return features


def summary_rows(prediction) -> list:
    """The whole image's answer as (name, value) rows for the widget's table."""
    bound = " (at least)" if prediction.defocus_um_lower_bound else ""
    return [("defocus level", str(prediction.defocus_level)),
            ("defocus (µm)", f"{prediction.defocus_um:.2f}{bound}"),
            ("aggregate certainty", f"{prediction.aggregate_certainty:.3f}"),
            ("mean certainty", f"{prediction.mean_certainty:.3f}"),
            ("content fraction", f"{prediction.content_fraction:.2f}"),
            ("judged fraction", f"{prediction.judged_fraction:.2f}"),
            ("pixel size (µm)", f"{prediction.pixel_size_um:g} ({prediction.pixel_size_source})")]


def plane_rows(stack) -> list:
    """One row per plane for the widget's table: plane, z, level, expected level, spread, certainty, reason."""
    from ..records import failure_reason

    rows = []
    for plane in stack.planes:
        best = "best" if plane.plane == stack.best_plane else ""
        if plane.prediction is None:
            rows.append((str(plane.plane), f"{plane.z_um:.2f}", "", "", "", "", failure_reason(plane.error)))
            continue
        rows.append((str(plane.plane), f"{plane.z_um:.2f}", str(plane.prediction.defocus_level),
                     f"{plane.expected_level:.2f}", f"{plane.level_spread:.2f}",
                     f"{plane.prediction.aggregate_certainty:.3f}", best))
    return rows


def best_plane_map(stack, shape) -> tuple:
    """For each patch, the plane where it reads sharpest (lowest expected level; judged patches only).

    Returns
    -------
    labels : ndarray of int32, shape of :func:`patch_labels`
        The plane + 1 (0: no plane judged the patch).
    step : int
    """
    measured = stack.measured
    if not measured:
        return np.zeros((1, 1), np.int32), 1
    levels = np.asarray(LEVELS, dtype=float)
    expected = np.stack([np.where(plane.prediction.judged_patches, plane.prediction.probabilities @ levels, np.inf)
                         for plane in measured])
    best = np.array([plane.plane for plane in measured])[np.argmin(expected, axis=0)] + 1
    best[~np.isfinite(expected.min(axis=0))] = 0
    reference = measured[0].prediction
    labels, step = patch_labels(reference, shape)
    patch_of_pixel = labels - 1
    inside = labels > 0
    flat = best.ravel()
    labels[inside] = flat[patch_of_pixel[inside]]
    return labels, step


# --- the command line's CSVs ------------------------------------------------------------------------

def write_image_csvs(outcome: ImageOutcome, image_csv, patches_csv=None) -> None:
    """``focusnet predict``'s ``--csv`` (and ``--patches-csv``) rows for the measured plane."""
    from ..records import image_record, patch_records, write_csv

    name = outcome.request.name
    write_csv(image_csv, IMAGE_COLUMNS, [image_record(name, outcome.prediction, None, outcome.pixel_size_um,
                                                      outcome.pixel_size_source)])
    if patches_csv:
        write_csv(patches_csv, PATCH_COLUMNS, list(patch_records(name, outcome.prediction)))


def write_stack_csvs(stack, planes_csv, summary_csv=None) -> None:
    """``focusnet stack``'s ``--csv`` (and summary) rows for the measured stack."""
    from ..records import plane_record, stack_record, write_csv

    write_csv(planes_csv, STACK_PLANE_COLUMNS, [plane_record(stack, plane) for plane in stack.planes])
    if summary_csv:
        write_csv(summary_csv, STACK_COLUMNS, [stack_record(stack)])
