"""The focus curve of a stack: level and distance from focus against z, with the model's certainty."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..contract import LEVELS
from ..files import replacing

__all__ = ["save_focus_curve"]


def save_focus_curve(result, path, defocus=None, sharpest_plane: int | None = None, title: str | None = None) -> Path:
    """Level and ``defocus_um`` against z, with a certainty band, the best plane and its sub-plane estimate.

    The band is the expected level plus and minus the spread (standard
    deviation) of each plane's level distribution: narrow where the model is
    sure. Points are coloured by aggregate certainty; the most probable level
    is drawn as small crosses.

    Parameters
    ----------
    result : focusnet.stacks.StackResult
    path : path-like
        The PNG to write (whole: a temporary file renamed into place).
    defocus : DefocusScale, optional
        Converts the band to micrometres (default: the planes' own
        ``defocus_um`` without a band).
    sharpest_plane : int, optional
        A reference plane found otherwise (checking a model on a stack: the
        sharpest plane by a classic metric): drawn, with the distance from it.
    title : str, optional
        Default: the stack, channel, time point and best plane.
    """
    from ..figures import pyplot

    plt = pyplot()
    planes = result.measured
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
            sharpest_z = result.planes[sharpest_plane].z_um
            um_axis.plot(z, np.abs(z - sharpest_z), "--", color="black", label="distance from sharpest plane")
    for axis in (level_axis, um_axis):
        if result.best_plane is not None:
            axis.axvline(result.planes[result.best_plane].z_um, color="C2", lw=0.8)
            axis.axvline(result.best_z_um, color="C2", lw=0.8, ls="--")
        if sharpest_plane is not None:
            axis.axvline(result.planes[sharpest_plane].z_um, color="black", lw=0.8, ls=":")
    level_axis.set_ylabel("defocus level")
    level_axis.set_ylim(-0.5, LEVELS[-1] + 0.5)
    level_axis.legend(fontsize=8, loc="upper center")
    um_axis.set_xlabel("z (um)")
    um_axis.set_ylabel("distance from focus (um)")
    if planes:
        um_axis.legend(fontsize=8, loc="upper center")
    if title is None:
        best = (f"best plane {result.best_plane} (z {result.best_z_um:.2f} um fitted), certainty "
                f"{result.best_plane_certainty:.2f}" if result.best_plane is not None else "no plane measured")
        title = (f"{Path(result.path).name}, channel {result.channel_name}"
                 + (f", time {result.time}" if result.time else "") + f": {best}")
    level_axis.set_title(title, fontsize=9)
    with replacing(path) as temporary:
        figure.savefig(temporary, dpi=110)
    plt.close(figure)
    return Path(path)
