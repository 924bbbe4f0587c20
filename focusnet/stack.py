"""Checking focusnet on a real through-focus stack of your own microscope.

:func:`evaluate_stack` measures every plane of a z-stack, picks the sharpest
plane with a classic metric (normalised variance, which ranks the planes of
a through-focus series well; Groen et al. 1985), and reports how well
focusnet's level and ``defocus_um`` follow the distance from that plane.
That is how a user checks focusnet on their own optics before trusting it,
and how a model trained for those optics (``focusnet train --init``) is
judged.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .errors import InvalidParameterError
from .files import replacing
from .images import read_stack
from .inference import choose_pixel_size
from .loader import load_model
from .zstack import measure_planes

#: Planes closer to the sharpest one than this are left out of the defocus_um ratio (focus itself).
MIN_RATIO_DISTANCE_UM = 0.5


def normalized_variance(planes) -> np.ndarray:
    """The classic sharpness of each plane: its variance over its mean (higher is sharper)."""
    flat = np.asarray(planes, dtype=np.float64).reshape(len(planes), -1)
    mean = flat.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mean > 0, flat.var(axis=1) / mean, np.nan)  # undefined without positive intensities


def evaluate_stack(path, model=None, z_step_um=None, pixel_size_um=None, objective=None, scale=None,
                   progress: bool = True, stack=None) -> dict:
    """Measure every plane of a z-stack and compare with the distance from its sharpest plane.

    Parameters
    ----------
    path : path-like
        A single-channel z-stack (multi-page TIFF, ImageJ hyperstack, OME-TIFF).
    model : optional
        Default: the shipped model.
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

    Returns
    -------
    dict
        ``planes`` (one dict each: ``plane``, ``z_um``, ``distance_um``,
        ``defocus_level``, ``defocus_um``, ``defocus_um_lower_bound``,
        ``aggregate_certainty``, ``mean_certainty``, ``content_fraction``,
        ``normalized_variance``, or ``error``), the ``sharpest_plane`` by
        normalised variance, ``spearman_level`` and ``spearman_defocus_um``
        (with the distance from it), ``defocus_ratio`` (geometric mean of
        ``defocus_um / distance`` over planes from 0.5 um out to where level
        10 is first reached) and the settings used.

    Raises
    ------
    InvalidParameterError
        When no z step is given or stated by the file.
    """
    from scipy.stats import spearmanr
    from tqdm import tqdm

    model = load_model(model)
    stack = read_stack(path) if stack is None else stack
    z_step = z_step_um if z_step_um is not None else stack.z_step_um
    if z_step is None or not z_step > 0:
        raise InvalidParameterError(f"{path}: the file states no z spacing; give it (--z-step UM)")
    pixel_size, source = choose_pixel_size(model, pixel_size_um, stack.pixel_size_um)
    sharpness = normalized_variance(stack.planes)
    if np.all(np.isnan(sharpness)):
        raise InvalidParameterError(f"{path}: no plane has a positive mean intensity; raw counts are needed")
    sharpest = int(np.nanargmax(sharpness))
    rows, notes = [], set()
    with tqdm(total=len(stack.planes), desc="planes", unit="plane", disable=not progress) as bar:
        planes = measure_planes(stack.planes, model, Path(path).name, z_step, pixel_size, source,
                                objective=objective, scale=scale, bar=bar)
    for index, plane in enumerate(planes):
        row = {"plane": index, "z_um": index * z_step, "distance_um": abs(index - sharpest) * z_step,
               "normalized_variance": float(sharpness[index])}
        prediction = plane.prediction
        if prediction is None:
            row["error"] = str(plane.error)
        else:
            notes.update(prediction.notes)
            row.update(defocus_level=prediction.defocus_level, defocus_um=prediction.defocus_um,
                       defocus_um_lower_bound=prediction.defocus_um_lower_bound,
                       aggregate_certainty=prediction.aggregate_certainty,
                       mean_certainty=prediction.mean_certainty, content_fraction=prediction.content_fraction)
        rows.append(row)
    measured = [row for row in rows if "error" not in row]
    result = {"stack": str(path), "model": getattr(model, "name", str(model)), "planes": rows,
              "z_step_um": z_step, "pixel_size_um": pixel_size, "pixel_size_source": source,
              "sharpness_metric": "normalized variance", "sharpest_plane": sharpest,
              "measured_planes": len(measured), "notes": sorted(notes)}
    distance = np.array([row["distance_um"] for row in measured])
    levels = np.array([row["defocus_level"] for row in measured], dtype=float)
    micrometres = np.array([row["defocus_um"] for row in measured])
    enough = len(measured) >= 3 and np.ptp(distance) > 0
    result["spearman_level"] = float(spearmanr(levels, distance).correlation) if enough else float("nan")
    result["spearman_defocus_um"] = float(spearmanr(micrometres, distance).correlation) if enough else float("nan")
    result["defocus_ratio"], result["ratio_planes"] = _defocus_ratio(measured)
    return result


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


def save_stack_plot(result: dict, path) -> Path:
    """Level and defocus_um against z, with the aggregate certainty and the classic sharpest plane."""
    from .figures import pyplot

    plt = pyplot()
    rows = [row for row in result["planes"] if "error" not in row]
    z = np.array([row["z_um"] for row in rows])
    figure, (level_axis, um_axis) = plt.subplots(2, 1, figsize=(7, 6.5), sharex=True)
    level_axis.scatter(z, [row["defocus_level"] for row in rows], c=[row["aggregate_certainty"] for row in rows],
                       cmap="viridis", vmin=0, vmax=1, s=22, zorder=3)
    level_axis.plot(z, [row["defocus_level"] for row in rows], color="grey", lw=0.8)
    level_axis.set_ylabel("defocus level")
    level_axis.set_ylim(-0.5, 10.5)
    colour_bar = figure.colorbar(level_axis.collections[0], ax=[level_axis, um_axis])  # both keep one width
    colour_bar.set_label("aggregate certainty")
    um_axis.plot(z, [row["defocus_um"] for row in rows], "o-", ms=4, label="focusnet defocus_um")
    lower = [row for row in rows if row["defocus_um_lower_bound"]]
    if lower:
        um_axis.scatter([row["z_um"] for row in lower], [row["defocus_um"] for row in lower], marker="^", s=40,
                        color="C3", zorder=3, label="lower bound (beyond the last level)")
    um_axis.plot(z, [row["distance_um"] for row in rows], "--", color="black", label="distance from sharpest plane")
    um_axis.set_xlabel("z (um)")
    um_axis.set_ylabel("distance from focus (um)")
    um_axis.legend(fontsize=8)
    sharpest_z = result["sharpest_plane"] * result["z_step_um"]
    for axis in (level_axis, um_axis):
        axis.axvline(sharpest_z, color="C2", lw=0.8)
    level_axis.set_title(f"{Path(result['stack']).name}: Spearman with distance: level "
                         f"{result['spearman_level']:.2f}, defocus_um {result['spearman_defocus_um']:.2f}",
                         fontsize=9)
    with replacing(path) as temporary:
        figure.savefig(temporary, dpi=110)
    plt.close(figure)
    return Path(path)


def write_plane(path, plane, pixel_size_um: float | None) -> Path:
    """Write one plane as an ImageJ TIFF stating its pixel size when known (to train a model from it)."""
    import tifffile

    calibration = {} if pixel_size_um is None else {
        "resolution": (1 / pixel_size_um, 1 / pixel_size_um), "metadata": {"unit": "micron"}}
    with replacing(path) as temporary:
        tifffile.imwrite(temporary, np.asarray(plane), imagej=True, **calibration)
    return Path(path)
