"""Sample data for "File > Open Sample > focusnet": two real images and a through-focus stack of focusnet's making.

The images are the repository's examples (``examples/README.md``: BBBC006 U2OS nuclei in focus
and optically defocused MCF-7 cells, 20x, about 0.65 µm pixels, redistributed under Apache-2.0).
The stack is simulated from the in-focus image by focusnet's own defocus simulator, so its
true focus is known: plane 10 of 21, 2 µm apart.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data"
#: The examples' pixel size (20x objective, 2x binning), in micrometres.
PIXEL_SIZE_UM = 0.65
#: Planes of the simulated stack and its plane of focus.
STACK_PLANES = 21
STACK_FOCUS = 10


def _image(file_name: str, name: str) -> list:
    from ..images import read_image

    return [(read_image(DATA / file_name), {"name": name, "scale": (PIXEL_SIZE_UM, PIXEL_SIZE_UM)}, "image")]


def in_focus_image() -> list:
    """BBBC006 U2OS nuclei, in focus (696 x 520, 16-bit)."""
    return _image("BBBC006_z_aligned__a07__s1__w1_10.tif", "in focus (BBBC006)")


def out_of_focus_image() -> list:
    """MCF-7 cells, optically out of focus (696 x 520, 16-bit)."""
    return _image("MCF7_out_of_focus_a19_s2.tif", "out of focus (MCF-7)")


@functools.lru_cache(maxsize=1)
def _simulated_stack() -> np.ndarray:
    from ..contract import NUM_LEVELS
    from ..images import read_image
    from ..optics import Optics
    from ..simulate import AS_IMAGED, blur_levels

    image = read_image(DATA / "BBBC006_z_aligned__a07__s1__w1_10.tif")[:336, :420].astype(float)
    levels = [min(abs(plane - STACK_FOCUS), NUM_LEVELS - 1) for plane in range(STACK_PLANES)]
    blurred = blur_levels(image, sorted(set(levels)), Optics(defocus_phase="paraxial"))
    by_level = dict(zip(sorted(set(levels)), blurred))
    rng = np.random.default_rng(0)
    return np.stack([AS_IMAGED.apply(by_level[level], image.min(), rng) for level in levels])


def through_focus_stack() -> list:
    """21 planes 2 µm apart (focus at plane 10) simulated from the in-focus image with camera noise."""
    from ..optics import Optics

    z_step = Optics().z_step_um  # the simulator's level spacing: one level per plane from focus
    return [(_simulated_stack(), {"name": f"through-focus stack (focus at plane {STACK_FOCUS})",
                                  "scale": (z_step, PIXEL_SIZE_UM, PIXEL_SIZE_UM)}, "image")]
