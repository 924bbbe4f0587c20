"""The focus curve of a stack: level and distance from focus against z, with the model's certainty."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..contract import LEVELS
from ..files import replacing

__all__ = ["draw_focus_curve", "save_focus_curve"]


def save_focus_curve(result, path, defocus=None, sharpest_plane: int | None = None, title: str | None = None) -> Path:
    """Level and ``defocus_um`` against z, with a certainty band, the best plane and its sub-plane estimate.

    Parameters
    ----------
    result : focusnet.stacks.StackResult
    path : path-like
        The PNG to write (whole: a temporary file renamed into place).
    defocus, sharpest_plane, title
        As :func:`draw_focus_curve`.
    """
    from ..figures import pyplot

    plt = pyplot()
    figure = plt.figure(figsize=(7, 6.5))
    draw_focus_curve(figure, result, defocus, sharpest_plane, title)
    with replacing(path) as temporary:
        figure.savefig(temporary, dpi=110)
    plt.close(figure)
    return Path(path)


def draw_focus_curve(figure, result, defocus=None, sharpest_plane: int | None = None, title: str | None = None):
    """Draw a stack's focus curve on a matplotlib figure (cleared first): the PNG's and napari's one drawing.

    The band is the expected level plus and minus the spread (standard
    deviation) of each plane's level distribution: narrow where the model is
    sure. Points are coloured by aggregate certainty; the most probable level
    is drawn as small crosses. Without a z step the x axis is the plane index.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
    result : focusnet.stacks.StackResult
    defocus : DefocusScale, optional
        Converts the band to micrometres (default: the planes' own
        ``defocus_um`` without a band).
    sharpest_plane : int, optional
        A reference plane found otherwise (checking a model on a stack: the
        sharpest plane by a classic metric): drawn, with the distance from it.
    title : str, optional
        Default: the stack, channel, time point and best plane.

    Returns
    -------
    (level_axis, um_axis)
    """
    figure.clear()
    level_axis, um_axis = figure.subplots(2, 1, sharex=True)
    planes = result.measured
    by_z = bool(result.z_step_um)

    def position(plane_index):
        return result.planes[plane_index].z_um if by_z else float(plane_index)

    if planes:
        z = np.array([position(plane.plane) for plane in planes])
        expected = np.array([plane.expected_level for plane in planes])
        spread = np.array([plane.level_spread for plane in planes])
        certainty = np.array([plane.prediction.aggregate_certainty for plane in planes])
        low, high = np.clip(expected - spread, 0, LEVELS[-1]), np.clip(expected + spread, 0, LEVELS[-1])
        level_axis.fill_between(z, low, high, color="C0", alpha=0.18, lw=0, label="expected level +- spread")
        level_axis.plot(z, expected, color="C0", lw=1)
        points = level_axis.scatter(z, expected, c=certainty, cmap="viridis", vmin=0, vmax=1, s=22, zorder=3)
        level_axis.plot(z, [plane.prediction.defocus_level for plane in planes], "x", color="grey", ms=4,
                        label="most probable level")
        colour_bar = figure.colorbar(points, ax=[level_axis, um_axis])  # both axes keep one width
        colour_bar.set_label("aggregate certainty")
        micrometres = np.array([plane.prediction.defocus_um for plane in planes])
        if defocus is not None:
            um_axis.fill_between(z, defocus(low), defocus(high), color="C1", alpha=0.18, lw=0)
        um_axis.plot(z, micrometres, "o-", color="C1", ms=4, label="defocus_um")
        bound = np.array([plane.prediction.defocus_um_lower_bound for plane in planes])
        if bound.any():
            um_axis.scatter(z[bound], micrometres[bound], marker="^", s=40, color="C3", zorder=3,
                            label="lower bound (beyond the last level)")
        if sharpest_plane is not None:
            um_axis.plot(z, np.abs(z - position(sharpest_plane)), "--", color="black",
                         label="distance from sharpest plane")
    for axis in (level_axis, um_axis):
        if result.best_plane is not None:
            axis.axvline(position(result.best_plane), color="C2", lw=0.8)
            fitted = result.best_z_um if by_z else result.best_plane_fit
            axis.axvline(fitted, color="C2", lw=0.8, ls="--")
        if sharpest_plane is not None:
            axis.axvline(position(sharpest_plane), color="black", lw=0.8, ls=":")
    level_axis.set_ylabel("defocus level")
    level_axis.set_ylim(-0.5, LEVELS[-1] + 0.5)
    level_axis.legend(fontsize=8, loc="upper center")
    um_axis.set_xlabel("z (um)" if by_z else "plane")
    um_axis.set_ylabel("distance from focus (um)")
    if planes:
        um_axis.legend(fontsize=8, loc="upper center")
    if title is None:
        where = f"z {result.best_z_um:.2f} um" if by_z else f"plane {result.best_plane_fit:.2f}"
        best = (f"best plane {result.best_plane} ({where} fitted), certainty "
                f"{result.best_plane_certainty:.2f}" if result.best_plane is not None else "no plane measured")
        title = (f"{Path(result.path).name}, channel {result.channel_name}"
                 + (f", time {result.time}" if result.time else "") + f": {best}")
    level_axis.set_title(title, fontsize=9)
    return level_axis, um_axis
