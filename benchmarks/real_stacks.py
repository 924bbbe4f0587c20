"""Defocus in micrometres on a real through-focus stack, with and without fine-tuning.

For a real z-stack of known optics, ``defocus_um`` is compared with each plane's distance from
the sharpest plane (normalised variance) by :func:`focusnet.stacks.check.check_stack`: Spearman
of level and of ``defocus_um`` with the distance, and the geometric mean of
``defocus_um / |dz|`` from 0.5 um out to the first plane at the last level. Two models:

* the shipped model, without fine-tuning. A small high-magnification field is smaller than one
  patch at the model's 0.65 um pixels, so each plane is first mirror-tiled (``--tiles``, 5 x 5
  by default): every patch then holds the plane's real blur, several times over;
* a model fine-tuned from the stack's sharpest plane alone (``focusnet train --init`` with the
  stack's optics, the command of docs/model.md).

Each is converted to micrometres with the uniform pupil (the default) and with the sine
condition's (:mod:`focusnet.optics`), to measure what the lens model changes; and, where the
specimen's refractive index (``--sample-index``, default 1.33: aqueous) is below the objective's
NA, again at an aperture cut to that index (fine-tuned again with it): an oil objective cannot
collect light a point in water sends beyond NA 1.33 (it is reflected at the coverslip), and the
stage's defocus then blurs as an oil objective of that aperture does. Each row keeps every
plane's reading (``per_plane``).

Usage::

    python benchmarks/real_stacks.py [STACK --na NA --refractive-index N --wavelength UM]
        [--sample-index N] [--tiles N] [--json OUT.json]

Default: the development set's real 100x/1.45 oil stack (461 nm).
"""

import argparse
import contextlib
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SHARED_DATA, machine, write_zstack  # noqa: E402

DEFAULT_STACK = SHARED_DATA / "zstacks" / "deconwolf_dapi_100x_widefield.tif"
DEFAULT_OPTICS = {"na": 1.45, "refractive_index": 1.512, "wavelength": 0.461}


def tiled_stack(stack, tiles: int, path: Path) -> Path:
    """The stack with each plane mirror-tiled ``tiles`` x ``tiles``, saved with its pixel size and z step."""
    planes = stack.data[0, 0]
    height, width = planes.shape[1:]
    big = np.stack([np.pad(plane, ((0, (tiles - 1) * height), (0, (tiles - 1) * width)), mode="symmetric")
                    for plane in planes])
    return write_zstack(path, big, stack.pixel_size_um, stack.z_step_um)


def summary(check) -> dict:
    return {"sharpest_plane": check.sharpest_plane, "measured_planes": len(check.result.measured),
            "spearman_level": check.spearman_level, "spearman_defocus_um": check.spearman_defocus_um,
            "defocus_ratio": check.defocus_ratio, "ratio_planes": check.ratio_planes,
            "per_plane": [{key: row.get(key) for key in ("plane", "distance_um", "normalized_variance", "defocus_level",
                                                     "defocus_um", "aggregate_certainty")}
                       for row in check.plane_dicts()]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stack", nargs="?", default=str(DEFAULT_STACK))
    parser.add_argument("--na", type=float, default=DEFAULT_OPTICS["na"])
    parser.add_argument("--refractive-index", type=float, default=DEFAULT_OPTICS["refractive_index"])
    parser.add_argument("--wavelength", type=float, default=DEFAULT_OPTICS["wavelength"])
    parser.add_argument("--sample-index", type=float, default=1.33,
                        help="the specimen's refractive index (default: aqueous); when below the NA, every model is "
                             "also measured at an aperture cut to it (0: do not)")
    parser.add_argument("--tiles", type=int, default=5)
    parser.add_argument("--json")
    arguments = parser.parse_args()

    from focusnet.cli import main as focusnet
    from focusnet.images import read_stack
    from focusnet.inference import objective_optics
    from focusnet.loader import load_model
    from focusnet.stacks.check import check_stack

    stack = read_stack(arguments.stack)
    # The light a point in the specimen sends beyond the specimen's own index does not leave it (total internal
    # reflection at the coverslip), so an oil objective looking into an aqueous sample works at that aperture.
    apertures = [arguments.na] + ([arguments.sample_index] if 0 < arguments.sample_index < arguments.na else [])
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        sharpest = scratch / "sharpest.tif"
        with contextlib.redirect_stdout(sys.stderr):  # the commands' own tables are not this report
            focusnet(["evaluate-stack", arguments.stack, "--sharpest-out", str(sharpest)])
        tiled = tiled_stack(stack, arguments.tiles, scratch / "tiled.tif")
        for aperture in apertures:
            optics = (arguments.wavelength, aperture, arguments.refractive_index)
            tuned = scratch / f"fine-tuned-{aperture:g}"
            with contextlib.redirect_stdout(sys.stderr):
                focusnet(["train", "--init", "--images", str(sharpest), "--out", str(tuned), "--wavelength",
                          str(optics[0]), "--na", str(optics[1]), "--refractive-index", str(optics[2])])
            cases = [("shipped", f"mirror-tiled {arguments.tiles} x {arguments.tiles}", load_model(None), tiled),
                     ("fine-tuned from the sharpest plane", "as it is", load_model(tuned), Path(arguments.stack))]
            for name, planes, model, path in cases:
                objective = objective_optics(model, *optics)
                for pupil in ("none", "sine-condition"):
                    check = check_stack(path, model, objective=dataclasses.replace(objective, apodization=pupil),
                                        progress=False)
                    rows.append({"model": name, "planes": planes, "aperture": aperture, "pupil": pupil,
                                 **summary(check)})
    print(f"{Path(arguments.stack).name} ({machine()}): NA {arguments.na:g}, n {arguments.refractive_index:g}, "
          f"{arguments.wavelength:g} um; {stack.data.shape[2]} planes, {stack.z_step_um:g} um apart, "
          f"{stack.pixel_size_um:.3g} um pixels\n")
    print("| model | planes | NA for defocus_um | pupil | Spearman(level, |dz|) | Spearman(defocus_um, |dz|) | "
          "defocus_um / |dz| (geometric mean) |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['model']} | {row['planes']} | {row['aperture']:g} | {row['pupil']} | "
              f"{row['spearman_level']:.3f} | {row['spearman_defocus_um']:.3f} | {row['defocus_ratio']:.2f} "
              f"({row['ratio_planes']} planes) |")
    if arguments.json:
        Path(arguments.json).write_text(json.dumps({"machine": machine(), "stack": Path(arguments.stack).name,
                                                    "optics": {"wavelength_um": arguments.wavelength,
                                                               "na": arguments.na,
                                                               "refractive_index": arguments.refractive_index,
                                                               "sample_index": arguments.sample_index},
                                                    "tiles": arguments.tiles, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
