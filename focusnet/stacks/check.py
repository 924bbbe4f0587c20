"""Checking a model on a real through-focus stack of your own microscope.

:func:`check_stack` measures every plane of a z-stack, picks the sharpest
plane with a classic metric (normalised variance, which ranks the planes of
a through-focus series well; Groen et al. 1985), and reports how well
focusnet's level and ``defocus_um`` follow the distance from that plane.
That is how a user checks focusnet on their own optics before trusting it,
and how a model fine-tuned for those optics is judged.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..errors import ImageFormatError, InvalidParameterError
from ..images import Stack, read_stack
from ..loader import load_model
from .measure import PlaneResult, StackResult, predict_stack

__all__ = ["MIN_RATIO_DISTANCE_UM", "StackCheck", "check_stack", "normalized_variance", "to_json"]

#: Planes closer to the sharpest one than this are left out of the defocus_um ratio (focus itself).
MIN_RATIO_DISTANCE_UM = 0.5


def normalized_variance(planes) -> np.ndarray:
    """The classic sharpness of each plane: its variance over its mean (higher is sharper)."""
    flat = np.asarray(planes, dtype=np.float64).reshape(len(planes), -1)
    mean = flat.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mean > 0, flat.var(axis=1) / mean, np.nan)  # undefined without positive intensities


@dataclasses.dataclass
class StackCheck:
    """How well a model's answers follow the distance from a stack's sharpest plane (:func:`check_stack`).

    Attributes
    ----------
    result : StackResult
        Every plane as measured (``result.best_plane`` is focusnet's own pick).
    model : str
    sharpest_plane : int
        The sharpest plane by normalised variance: the reference.
    normalized_variance : ndarray
        Of each plane.
    spearman_level, spearman_defocus_um : float
        Spearman correlation of each plane's level and ``defocus_um`` with its
        distance from the sharpest plane (NaN with fewer than three planes).
    defocus_ratio : float
        Geometric mean of ``defocus_um / distance`` over planes from
        :data:`MIN_RATIO_DISTANCE_UM` out to where the last level is first reached.
    ratio_planes : int
        The planes that ratio is taken over.
    """

    result: StackResult
    model: str
    sharpest_plane: int
    normalized_variance: np.ndarray
    spearman_level: float = float("nan")
    spearman_defocus_um: float = float("nan")
    defocus_ratio: float = float("nan")
    ratio_planes: int = 0

    def distance_um(self, plane: PlaneResult) -> float:
        """A plane's distance from the sharpest plane."""
        return abs(plane.plane - self.sharpest_plane) * self.result.z_step_um

    def plane_dicts(self) -> list:
        """One dict per plane: position, distance, sharpness and focusnet's answer (or ``error``)."""
        rows = []
        for plane in self.result.planes:
            row = {"plane": plane.plane, "z_um": plane.z_um, "distance_um": self.distance_um(plane),
                   "normalized_variance": float(self.normalized_variance[plane.plane])}
            prediction = plane.prediction
            if prediction is None:
                row["error"] = str(plane.error)
            else:
                row.update(defocus_level=prediction.defocus_level, defocus_um=prediction.defocus_um,
                           defocus_um_lower_bound=prediction.defocus_um_lower_bound,
                           aggregate_certainty=prediction.aggregate_certainty,
                           mean_certainty=prediction.mean_certainty, content_fraction=prediction.content_fraction)
            rows.append(row)
        return rows

    def to_dict(self) -> dict:
        """Everything as plain values (what ``focusnet evaluate-stack --json`` writes)."""
        result = self.result
        return {"stack": result.path, "model": self.model, "planes": self.plane_dicts(),
                "z_step_um": result.z_step_um, "pixel_size_um": result.pixel_size_um,
                "pixel_size_source": result.pixel_size_source, "sharpness_metric": "normalized variance",
                "sharpest_plane": self.sharpest_plane, "measured_planes": len(result.measured),
                "notes": sorted(result.notes), "spearman_level": self.spearman_level,
                "spearman_defocus_um": self.spearman_defocus_um, "defocus_ratio": self.defocus_ratio,
                "ratio_planes": self.ratio_planes}


def check_stack(path, model=None, channel=None, z_step_um=None, pixel_size_um=None, objective=None, scale=None,
                progress: bool = True, stack: Stack | None = None) -> StackCheck:
    """Measure every plane of a z-stack and compare with the distance from its sharpest plane.

    Parameters
    ----------
    path : path-like
        A z-stack (multi-page TIFF, ImageJ hyperstack, OME-TIFF) of one time point.
    model : optional
        Default: the shipped model.
    channel : int or str, optional
        The channel to check on (default: the only one; a stack of several
        channels needs it).
    z_step_um : float, optional
        Plane spacing; default: what the file states.
    pixel_size_um : float, optional
        Default: what the file states, else the model's (assumed).
    objective : Optics, optional
        The objective, for ``defocus_um``; default: the model's optics.
    scale : float, optional
        For floating-point stacks in [0, 1]: the count 1.0 stands for.
    progress : bool
    stack : Stack, optional
        The stack at ``path``, when the caller has read it already.

    Raises
    ------
    InvalidParameterError
        No z step given or stated by the file; several channels and none
        chosen; no plane with a positive mean intensity.
    ImageFormatError
        Several time points, or a file that cannot be read as a stack.
    """
    from scipy.stats import spearmanr

    model = load_model(model)
    stack = read_stack(path) if stack is None else stack
    times, channels = stack.data.shape[:2]
    if times > 1:
        raise ImageFormatError(f"{path}: a stack with axes {stack.axes} and {times} time points; give a stack of "
                               "one time point")
    if channels > 1 and channel is None:
        raise InvalidParameterError(f"{path}: a stack with axes {stack.axes} and {channels} channels; choose the "
                                    "channel to check on", setting="channel")
    if (z_step_um if z_step_um is not None else stack.z_step_um) is None:
        raise InvalidParameterError(f"{path}: the file states no z spacing; give the plane spacing",
                                    setting="z_step_um")
    planes = stack.data[0, stack.channel_index(channel)]
    sharpness = normalized_variance(planes)
    if np.all(np.isnan(sharpness)):
        raise InvalidParameterError(f"{path}: no plane has a positive mean intensity; raw counts are needed")
    (result,) = predict_stack(path, model, channel=channel, z_step_um=z_step_um, pixel_size_um=pixel_size_um,
                              objective=objective, scale=scale, progress=progress, stack=stack)
    check = StackCheck(result, getattr(model, "name", str(model)), int(np.nanargmax(sharpness)), sharpness)
    measured = result.measured
    distance = np.array([check.distance_um(plane) for plane in measured])
    if len(measured) >= 3 and np.ptp(distance) > 0:
        levels = np.array([plane.prediction.defocus_level for plane in measured], dtype=float)
        micrometres = np.array([plane.prediction.defocus_um for plane in measured])
        check.spearman_level = float(spearmanr(levels, distance).correlation)
        check.spearman_defocus_um = float(spearmanr(micrometres, distance).correlation)
    check.defocus_ratio, check.ratio_planes = _defocus_ratio([row for row in check.plane_dicts() if "error" not in row])
    return check


def _defocus_ratio(measured) -> tuple:
    """Geometric mean of defocus_um / distance from 0.5 um out to where level 10 is first reached (each side)."""
    ratios = []
    sharpest_z = min(measured, key=lambda row: row["distance_um"])["z_um"] if measured else 0.0
    for side in (1, -1):
        for row in sorted((r for r in measured if (r["z_um"] - sharpest_z) * side > 0), key=lambda r: r["distance_um"]):
            if row["distance_um"] >= MIN_RATIO_DISTANCE_UM and row["defocus_um"] > 0:
                ratios.append(row["defocus_um"] / row["distance_um"])
            if row["defocus_um_lower_bound"]:  # the last level: beyond it, only a lower bound
                break
    if not ratios:
        return float("nan"), 0
    return float(math.exp(np.mean(np.log(ratios)))), len(ratios)


def to_json(result: dict) -> str:
    """The result as JSON, NaN written as null (JSON has no NaN)."""
    import json

    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, list):
            return [clean(item) for item in value]
        return value

    return json.dumps(clean(result), indent=2, allow_nan=False)
