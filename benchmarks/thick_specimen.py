"""Does a thick specimen change what defocus_um reads? Nuclei as domes against a thin layer.

The held-out example (examples/images/BBBC006_z_aligned__a07__s1__w1_10.tif, never trained on)
becomes a 3-D specimen: each nucleus (Otsu's threshold) a dome up to ``--height`` um tall at its
centre (half an ellipse over the distance to its edge, ``R`` = 5 um; or, ``--profile slab``, that
height everywhere inside it), its light spread evenly
over the depths inside it, and each depth blurred by the widefield PSF of its own distance
from the plane in focus (:func:`focusnet.optics.psf_kernels_at`, the objective as
:func:`focusnet.inference.objective_optics` models it), Poisson noise on the sum. A stack of
such planes, 8 um each side of the dome's middle, is measured with the shipped model by
:func:`focusnet.stacks.check.check_stack`; a thin layer (height 0) is the reference. Reported per
height: Spearman(level, |dz|) and the geometric mean of ``defocus_um / |dz|``.

Usage::

    python benchmarks/thick_specimen.py [--heights 0 6 10] [--profile dome|slab]
        [--na NA --refractive-index N --wavelength UM] [--step UM] [--json OUT.json]
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, machine, write_zstack  # noqa: E402

IMAGE = REPO / "examples" / "images" / "BBBC006_z_aligned__a07__s1__w1_10.tif"
#: Depth step of the specimen's layers (um).
LAYER_UM = 0.5
#: A nucleus's half width (um): the dome reaches its full height this far inside the edge.
NUCLEUS_RADIUS_UM = 5.0


def dome_layers(signal, mask, pixel_size_um, height_um, profile="dome"):
    """The specimen's depths (um) and each one's share of every pixel's light (summing to 1 per pixel).

    ``profile`` "dome": half an ellipse over the distance to the nucleus's edge; "slab": the full
    height everywhere inside it (steep sides, as a nucleus flattened on glass).
    """
    from scipy.ndimage import distance_transform_edt

    if height_um <= 0:
        return np.array([0.0]), np.ones((1,) + signal.shape)
    inside_edge = distance_transform_edt(mask) * pixel_size_um
    rise = 1.0 if profile == "slab" else np.sqrt(1 - (1 - np.minimum(inside_edge / NUCLEUS_RADIUS_UM, 1)) ** 2)
    heights = np.where(mask, height_um * rise, LAYER_UM)
    depths = np.arange(-height_um / 2, height_um / 2 + 1e-9, LAYER_UM)
    shares = np.stack([np.abs(depth) <= heights / 2 for depth in depths]).astype(float)
    return depths, shares / np.maximum(shares.sum(axis=0), 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--heights", type=float, nargs="+", default=[0.0, 6.0, 10.0])
    parser.add_argument("--na", type=float)
    parser.add_argument("--refractive-index", type=float)
    parser.add_argument("--wavelength", type=float)
    parser.add_argument("--step", type=float, default=1.0, help="plane spacing of the stack (um)")
    parser.add_argument("--profile", choices=("dome", "slab"), default="dome",
                        help="a nucleus's shape in depth: a dome, or a slab with steep sides")
    parser.add_argument("--json")
    arguments = parser.parse_args()

    from scipy.signal import fftconvolve
    from skimage.filters import threshold_otsu

    from focusnet.images import read_image
    from focusnet.inference import objective_optics
    from focusnet.loader import load_model
    from focusnet.optics import psf_kernels_at
    from focusnet.stacks.check import check_stack

    model = load_model()
    optics = objective_optics(model, arguments.wavelength, arguments.na, arguments.refractive_index)
    image = read_image(IMAGE).astype(np.float64)
    dark = float(np.percentile(image, 5))
    signal = np.maximum(image - dark, 0.0)
    mask = signal > threshold_otsu(signal)
    planes_um = np.arange(0.0, 8.0 + 1e-9, arguments.step)
    rng = np.random.default_rng(0)
    rows = []
    for height in arguments.heights:
        depths, shares = dome_layers(signal, mask, optics.pixel_size_um, height, arguments.profile)
        distances = sorted({round(abs(z - depth), 3) for z in planes_um for depth in depths})
        kernels = psf_kernels_at(distances, optics)
        which = {distance: index for index, distance in enumerate(distances)}
        pad = kernels.radius_px
        planes = []
        for z in planes_um:
            total = np.zeros_like(signal)
            for depth, share in zip(depths, shares):
                layer = np.pad(signal * share, pad, mode="reflect")
                total += fftconvolve(layer, kernels.kernels[which[round(abs(z - depth), 3)]], mode="valid")
            planes.append(rng.poisson(np.maximum(total, 0.0)) + dark)
        stack = np.stack(planes[:0:-1] + planes).astype(np.uint16)  # -8 .. 8 um
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "stack.tif"
            write_zstack(path, stack, optics.pixel_size_um, arguments.step)
            check = check_stack(path, model, objective=optics, progress=False)
        rows.append({"height_um": height, "spearman_level": check.spearman_level,
                     "defocus_ratio": check.defocus_ratio, "ratio_planes": check.ratio_planes,
                     "levels_from_focus": [row.get("defocus_level") for row in check.plane_dicts()][len(planes) - 1:]})
        print(f"height {height:g} um: Spearman(level, |dz|) {check.spearman_level:.2f}, defocus_um / |dz| "
              f"{check.defocus_ratio:.2f} ({check.ratio_planes} planes); levels from focus out: "
              f"{rows[-1]['levels_from_focus']}")
    if arguments.json:
        Path(arguments.json).write_text(json.dumps({
            "machine": machine(), "image": IMAGE.name, "optics": optics.to_dict(), "step_um": arguments.step,
            "profile": arguments.profile,
            "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
