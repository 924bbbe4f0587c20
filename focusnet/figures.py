"""Figures for people to look at (matplotlib, no display needed)."""

from __future__ import annotations

import math
import sys

import numpy as np

from .contract import LEVELS, PATCH_SIZE


def pyplot():
    """matplotlib.pyplot, headless-safe.

    Selects the non-interactive Agg backend before pyplot loads, unless pyplot
    was loaded already (e.g. inside a GUI that chose its own backend).
    """
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path, **options) -> None:
    """Save a matplotlib figure whole (a temporary file renamed into place) and close it."""
    from .files import replacing

    with replacing(path) as temporary:
        figure.savefig(temporary, **options)
    pyplot().close(figure)


def save_montage(images, titles, path, suptitle: str = "", columns: int = 4) -> None:
    """Save images side by side in a grid, sharing one display range.

    A shared range (0.1-99.9 percentiles of the first image) keeps brightness
    comparable, so blur shows as loss of contrast as well as of detail.

    Parameters
    ----------
    images : sequence of 2-D arrays, or of (H, W, 3) RGB arrays in [0, 1]
    titles : sequence of str
        One per image.
    path : str or Path
        Output PNG.
    suptitle : str
        Figure title.
    columns : int
        Panels per row.
    """
    plt = pyplot()
    images = [np.asarray(image) for image in images]
    # Colour images (H, W, 3) are shown as they are; grey ones share a display range.
    low, high = np.percentile(images[0], [0.1, 99.9]) if images[0].ndim == 2 else (None, None)
    columns = min(columns, len(images))
    rows = math.ceil(len(images) / columns)
    height, width = images[0].shape[:2]
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
    save_figure(figure, path, dpi=110)


#: Border colour of patches without content (blue: no level has it).
NO_CONTENT_COLOUR = (0.25, 0.45, 1.0)


def level_colours(levels, certainties) -> np.ndarray:
    """RGB colours (..., 3) in [0, 1]: hue by level, paleness by uncertainty.

    Level 0 is green, then yellow, orange, red, up to magenta at level 10;
    full certainty gives the saturated hue, zero certainty white (as in
    Figure 2b of Yang et al. 2018).
    """
    from matplotlib.colors import hsv_to_rgb

    levels = np.asarray(levels, dtype=float)
    hue = np.mod(1.0 / 3.0 - 0.5 * levels / LEVELS[-1], 1.0)
    saturation = np.clip(np.asarray(certainties, dtype=float), 0.0, 1.0)
    hsv = np.stack(np.broadcast_arrays(hue, saturation, np.ones_like(hue)), axis=-1)
    return hsv_to_rgb(hsv)


def display_range(image) -> tuple:
    """Robust display limits (0.5 and 99.5 percentiles) of an image."""
    low, high = np.percentile(np.asarray(image, dtype=np.float32), [0.5, 99.5])
    return float(low), float(high if high > low else low + 1)


#: Overlays of larger images are drawn at 1/k scale (k a whole number) to at most this many pixels a side:
#: a screen shows no more, and memory stays bounded whatever the image size.
MAX_OVERLAY_SIDE = 2048


def overlay_step(shape, max_side: int = MAX_OVERLAY_SIDE) -> int:
    """The subsampling step that brings an image of ``shape`` to at most ``max_side`` pixels a side."""
    return max(1, math.ceil(max(shape[:2]) / max_side))


def overlay_rgb(image, prediction, border: int = 2, max_side: int = MAX_OVERLAY_SIDE) -> np.ndarray:
    """The image in grey with each patch's border coloured by level and certainty.

    Parameters
    ----------
    image : array_like, 2-D
        The measured image (any intensity scale).
    prediction : focusnet.inference.FocusPrediction
    border : int
        Border width in pixels (of the drawn overlay).
    max_side : int
        Larger images are drawn from every k-th pixel (k = :func:`overlay_step`),
        so no full-size copy is made.

    Returns
    -------
    ndarray, shape (ceil(H/k), ceil(W/k), 3), float32 in [0, 1]
    """
    step = overlay_step(np.shape(image), max_side)
    shown = np.asarray(image)[::step, ::step].astype(np.float32)  # a view is subsampled, then copied small
    low, high = display_range(shown)
    shown -= low
    shown *= np.float32(1.0 / (high - low))
    np.clip(shown, 0, 1, out=shown)
    rgb = np.repeat(shown[..., None], 3, axis=-1)
    del shown
    colours = level_colours(prediction.patch_levels, prediction.patch_certainty)
    content = prediction.judged_patches
    size = max(1, round(getattr(prediction, "patch_size", PATCH_SIZE) / step))
    for row, y in enumerate(prediction.y):
        for col, x in enumerate(prediction.x):
            window = rgb[y // step:y // step + size, x // step:x // step + size]
            if content[row, col]:
                colour, width, dots = colours[row, col], min(border, max(1, size // 8)), 1
            else:  # not judged: a thin dotted border of its own colour
                colour, width, dots = NO_CONTENT_COLOUR, 1, 3
            window[:width, ::dots] = colour
            window[-width:, ::dots] = colour
            window[::dots, :width] = colour
            window[::dots, -width:] = colour
    return rgb


def save_overlay(path, image, prediction, title: str = "") -> str | None:
    """Save the overlay with a legend of levels and certainty as a PNG.

    Returns
    -------
    str or None
        A note when the image was too large to draw at full size (see
        :data:`MAX_OVERLAY_SIDE`), else None.
    """
    plt = pyplot()
    rgb = overlay_rgb(image, prediction)
    step = overlay_step(np.shape(image))
    height, width = rgb.shape[:2]
    figure = plt.figure(figsize=(8.5, 8.5 * height / width * 0.82 + 1.3))
    grid = figure.add_gridspec(2, 2, width_ratios=[30, 1], height_ratios=[12, 1], wspace=0.05, hspace=0.25)
    axis = figure.add_subplot(grid[0, 0])
    axis.imshow(rgb, interpolation="nearest")
    axis.set_axis_off()
    axis.set_title(title or (f"defocus level {prediction.defocus_level}, aggregate certainty "
                             f"{prediction.aggregate_certainty:.2f}, mean certainty "
                             f"{prediction.mean_certainty:.2f}"), fontsize=9)
    levels = np.array(LEVELS)
    level_axis = figure.add_subplot(grid[0, 1])
    level_axis.imshow(level_colours(levels, 1.0)[:, None, :], aspect="auto", origin="lower",
                      extent=(0, 1, -0.5, LEVELS[-1] + 0.5))
    level_axis.set_xticks([])
    level_axis.yaxis.tick_right()
    level_axis.set_yticks(levels)
    level_axis.set_ylabel("defocus level (0 = in focus)", fontsize=8)
    level_axis.yaxis.set_label_position("right")
    certainty_axis = figure.add_subplot(grid[1, 0])
    ramp = np.linspace(0, 1, 101)
    shown = (LEVELS[0], LEVELS[len(LEVELS) // 2], LEVELS[-1])
    strip = np.concatenate([level_colours(np.full_like(ramp, level), ramp)[None] for level in shown])
    certainty_axis.imshow(strip, aspect="auto", extent=(0, 1, 0, 3))
    certainty_axis.set_yticks([0.5, 1.5, 2.5])
    certainty_axis.set_yticklabels([str(level) for level in shown[::-1]], fontsize=7)
    certainty_axis.set_xlabel("certainty (pale = uncertain); dotted blue border: not judged (no content, or too "
                              "noisy)", fontsize=8)
    figure.savefig(path, dpi=100, bbox_inches="tight", metadata={"Description": OVERLAY_DESCRIPTION})
    plt.close(figure)
    if step > 1:
        height, width = np.shape(image)[:2]
        return (f"overlay of a {width}x{height} image drawn at 1/{step} scale (every {step}th pixel; at most "
                f"{MAX_OVERLAY_SIDE} pixels a side)")
    return None


#: The PNG text that marks focusnet's overlays, so that a later run can tell them from images.
OVERLAY_DESCRIPTION = "focusnet overlay: patch borders coloured by defocus level and certainty"


def write_overlay_png(path, rgb) -> None:
    """Write an overlay image (:func:`overlay_rgb`, floats in [0, 1]) as an 8-bit PNG marked as focusnet's.

    No legend and no figure: the overlay's own pixels, fast enough for every image of a batch.
    Written where ``path`` says (callers write to a temporary file renamed into place).
    """
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Description", OVERLAY_DESCRIPTION)
    pixels = np.clip(np.round(np.asarray(rgb, dtype=np.float64) * 255), 0, 255).astype(np.uint8)
    Image.fromarray(pixels, "RGB").save(path, format="PNG", pnginfo=info)


def is_focusnet_overlay(path) -> bool:
    """Whether an image file is an overlay focusnet wrote (by its PNG text)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return getattr(image, "text", {}).get("Description") == OVERLAY_DESCRIPTION
    except Exception:  # not an image PIL reads: not ours
        return False
