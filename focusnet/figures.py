"""Figures for people to look at (matplotlib, no display needed)."""

from __future__ import annotations

import math

import numpy as np


def _pyplot():
    # Headless-safe: select a non-interactive backend before pyplot loads,
    # unless one was chosen already (e.g. inside a GUI).
    import matplotlib

    if "matplotlib.pyplot" not in __import__("sys").modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_montage(images, titles, path, suptitle: str = "", columns: int = 4) -> None:
    """Save images side by side in a grid, sharing one display range.

    A shared range (0.1-99.9 percentiles of the first image) keeps brightness
    comparable, so blur shows as loss of contrast as well as of detail.

    Parameters
    ----------
    images : sequence of 2-D arrays
    titles : sequence of str
        One per image.
    path : str or Path
        Output PNG.
    suptitle : str
        Figure title.
    columns : int
        Panels per row.
    """
    plt = _pyplot()
    images = [np.asarray(image) for image in images]
    low, high = np.percentile(images[0], [0.1, 99.9])
    columns = min(columns, len(images))
    rows = math.ceil(len(images) / columns)
    height, width = images[0].shape
    panel = 3.2
    figure, axes = plt.subplots(
        rows, columns, figsize=(panel * columns, panel * rows * height / width + 0.6), squeeze=False
    )
    for axis in axes.ravel():
        axis.set_axis_off()
    for axis, image, title in zip(axes.ravel(), images, titles):
        axis.imshow(image, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
        axis.set_title(title, fontsize=9)
    if suptitle:
        figure.suptitle(suptitle, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
