"""One record per result: images, patches, planes, stacks and failures, keyed by the contract's column names.

Every table focusnet writes (``focusnet predict``'s and ``focusnet stack``'s
CSV files), the CellProfiler module's measurements and any other front end
take their values from the functions here, so a column is defined once, in
:mod:`focusnet.contract`. A record is a plain ``dict`` from column name to a
Python value (``int``, ``float``, ``bool``, ``str``; NaN where a value is not
known), which also goes into a run's journal as JSON; :func:`cells` turns it
into CSV text.

Most columns are read by name from the result they describe (a
:class:`~focusnet.inference.FocusPrediction` attribute of the same name), and
the column lists are read from the contract when a record is made, so a new
column that a prediction already knows is one edit: its name in the contract.
"""

from __future__ import annotations

import math
from pathlib import Path

from . import contract
from .contract import PROBABILITY_COLUMNS
from .errors import FocusnetError, UnmeasurableImageError

NAN = float("nan")

#: Image columns whose FocusPrediction attribute has another name.
_PREDICTION_ATTRIBUTE = {"patches": "num_patches"}


def _plain(value):
    """A numpy scalar as the Python value of the same kind (JSON and CSV take those)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "dtype"):
        kind = value.dtype.kind
        return bool(value) if kind == "b" else int(value) if kind in "iu" else float(value)
    return value


def failure_counts(error) -> tuple:
    """``(patches, content_fraction, judged_fraction)`` that a failure still knows: what an unmeasurable image was
    cut into."""
    if isinstance(error, UnmeasurableImageError):
        return error.num_patches, error.content_fraction, error.judged_fraction
    return 0, NAN, NAN


def image_record(path, prediction=None, error=None, pixel_size_um=None, pixel_size_source: str = "") -> dict:
    """The record of one image (:data:`~focusnet.contract.IMAGE_COLUMNS`).

    Parameters
    ----------
    path : str
    prediction : FocusPrediction, optional
        None when the image could not be measured: its values are NaN, but
        for the patch count and content fraction the error still knows.
    error : Exception, optional
        Why it could not be measured.
    pixel_size_um : float, optional
        The pixel size it was (or would have been) measured at.
    pixel_size_source : str
        ``given``, ``file`` or ``assumed`` ('' when the file could not be read).
    """
    columns = contract.IMAGE_COLUMNS
    record = dict.fromkeys(columns, NAN)
    record["image"] = str(path)
    if prediction is None:
        record["patches"], record["content_fraction"], record["judged_fraction"] = failure_counts(error)
        record["reason"] = failure_reason(error)
    else:
        for column in columns:
            if column not in ("image", "reason"):
                record[column] = _prediction_value(prediction, column)
        record["reason"] = ""
    record["pixel_size_um"] = NAN if pixel_size_um is None else float(pixel_size_um)
    record["pixel_size_source"] = pixel_size_source
    return record


def _prediction_value(prediction, column):
    if column in PROBABILITY_COLUMNS:
        return float(prediction.distribution[PROBABILITY_COLUMNS.index(column)])
    return _plain(getattr(prediction, _PREDICTION_ATTRIBUTE.get(column, column)))


def patch_records(path, prediction):
    """The records of an image's patches (:data:`~focusnet.contract.PATCH_COLUMNS`), row-major.

    Patches not judged (``judged`` False: no content, or too noisy) have no
    level (NaN), and NaN certainty, probabilities, ``defocus_um`` and
    ``defocus_um_lower_bound``.
    """
    for patch in prediction.patch_rows():
        judged = patch["judged"]
        record = {"image": str(path), "size": int(prediction.patch_size), "content": patch["content"],
                  "defocus_level": NAN if patch["defocus_level"] is None else patch["defocus_level"],
                  "defocus_um_lower_bound": bool(patch["defocus_um_lower_bound"]) if judged else NAN}
        record.update(zip(PROBABILITY_COLUMNS, (float(p) for p in patch["probabilities"])))
        columns = contract.PATCH_COLUMNS
        for column in columns:
            if column not in record:
                record[column] = _plain(patch[column])
        yield {column: record[column] for column in columns}


def failure_reason(error) -> str:
    """The short reason a table gives for a result that ``error`` stopped (e.g. "too noisy"; "error" when unknown)."""
    return error.reason if isinstance(error, FocusnetError) else "error"


def plane_record(stack, plane) -> dict:
    """The record of one plane of a stack (:data:`~focusnet.contract.STACK_PLANE_COLUMNS`).

    Parameters
    ----------
    stack : focusnet.stacks.StackResult
    plane : focusnet.stacks.PlaneResult
    """
    columns = contract.STACK_PLANE_COLUMNS
    record = dict.fromkeys(columns, NAN)
    record.update(stack=stack.path, time=stack.time, channel=stack.channel_name, plane=plane.plane,
                  z_um=float(plane.z_um), best=plane.plane == stack.best_plane)
    prediction = plane.prediction
    if prediction is None:
        _, record["content_fraction"], record["judged_fraction"] = failure_counts(plane.error)
        record["reason"] = failure_reason(plane.error)
        return record
    record["expected_level"] = plane.expected_level
    for column in columns:
        if record[column] is NAN and hasattr(prediction, column):
            record[column] = _plain(getattr(prediction, column))
    record["reason"] = ""
    return record


def stack_record(stack) -> dict:
    """The record of one stack and time point, with its best plane (:data:`~focusnet.contract.STACK_COLUMNS`)."""
    record = failed_stack_record(stack.path)
    record.update(time=stack.time, channel=stack.channel_name, planes=len(stack.planes),
                  measured_planes=len(stack.measured), z_step_um=_float(stack.z_step_um),
                  pixel_size_um=_float(stack.pixel_size_um), pixel_size_source=stack.pixel_size_source)
    if stack.best_plane is not None:
        best = stack.planes[stack.best_plane]
        record.update(best_plane=stack.best_plane, best_plane_fit=stack.best_plane_fit, best_plane_z_um=best.z_um,
                      best_z_um=stack.best_z_um, best_defocus_level=best.prediction.defocus_level,
                      best_defocus_um=_plain(best.prediction.defocus_um),
                      best_plane_certainty=stack.best_plane_certainty)
    return record


def failed_stack_record(path) -> dict:
    """The record of a stack that could not be read: no planes, everything else NaN."""
    record = dict.fromkeys(contract.STACK_COLUMNS, NAN)
    record.update(stack=str(path), planes=0, measured_planes=0)
    return record


def well_record(well) -> dict:
    """The record of one well of a plate (:data:`~focusnet.contract.WELL_COLUMNS`).

    Parameters
    ----------
    well : focusnet.plate.WellSummary
    """
    values = {"well": well.well, "row": well.row, "column": well.col, "sites": well.sites,
              "measured_sites": well.measured, "worst_level": well.worst_level, "mean_level": well.mean_level,
              "mean_aggregate_certainty": well.mean_certainty}
    return {column: _plain(values[column]) for column in contract.WELL_COLUMNS}


def _float(value) -> float:
    return NAN if value is None else float(value)


def cell(value) -> str:
    """One CSV cell: integers and text as they are, booleans as 0/1, floats with 9 significant digits.

    Nine digits are enough for a value read back to equal the float32 result.
    """
    value = _plain(value)
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.9g}"
    return "nan" if value is None else str(value)


def cells(record: dict, columns) -> list:
    """A record's CSV row in the order of ``columns``."""
    return [cell(record[column]) for column in columns]


def write_csv(path, columns, records) -> Path:
    """Write a table whole (a temporary file renamed into place): a header, then one row per record."""
    import csv

    from .files import replacing

    with replacing(path) as temporary, open(temporary, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(cells(record, columns) for record in records)
    return Path(path)


def image_features(record: dict) -> dict:
    """An image record as the CellProfiler module's measurements: feature name to value.

    The patch count stays a whole number; everything else is a float (NaN unknown).
    """
    return {feature: int(record[column]) if column == "patches" else float(_plain(record[column]))
            for column, feature in contract.FEATURE_OF_IMAGE_COLUMN.items()}
