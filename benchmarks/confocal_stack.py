"""A confocal through-focus stack simulated from a real in-focus image, measured by a model.

The held-out example image (examples/images/BBBC006_z_aligned__a07__s1__w1_10.tif, never trained on)
is blurred with the simulator's confocal PSF (:mod:`focusnet.optics`, ``modality``
confocal or spinning-disk) at every plane from -8 to 8 um (0.5 um steps) of the model's own
objective or the one given (``--na --refractive-index --wavelength``, at the model's pixel
size), the sample a thin layer, scaled to ``--peak`` photons at the in-focus plane's brightest nuclei and recorded
by a point scanner's detector (PMT: gain 20 counts per photon, pulse-height shape 2, dark
counts 0.05) or, for a spinning disk, a camera (sCMOS, read noise 1.5 e-). Then
:func:`focusnet.stacks.check.check_stack` measures every plane. Reported: Spearman(level, |dz|),
planes more than 2 um out read level <= 1 with aggregate certainty >= 0.5 (confident misses),
planes not measured (no content), and the geometric mean of ``defocus_um / |dz|`` (converted
with the modality's own axial scale) over planes 1 um or more from focus.

Usage::

    python benchmarks/confocal_stack.py [--modality confocal|spinning-disk] [--peak N] [--model MODEL]
        [--na NA --refractive-index N --wavelength UM] [--json OUT.json]
"""

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, machine, write_zstack  # noqa: E402

IMAGE = REPO / "examples" / "images" / "BBBC006_z_aligned__a07__s1__w1_10.tif"
STEP_UM = 0.5
HALF_RANGE_UM = 8.0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modality", choices=("confocal", "spinning-disk"), default="confocal")
    parser.add_argument("--peak", type=float, default=200.0, help="photons at the in-focus plane's peak")
    parser.add_argument("--model")
    parser.add_argument("--na", type=float, help="the objective's NA (default: the model's lens)")
    parser.add_argument("--refractive-index", type=float)
    parser.add_argument("--wavelength", type=float)
    parser.add_argument("--json")
    arguments = parser.parse_args()

    from focusnet.images import read_image
    from focusnet.inference import objective_optics
    from focusnet.loader import load_model
    from focusnet.photons import Detector
    from focusnet.simulate import blur_levels
    from focusnet.stacks.check import check_stack

    model = load_model(arguments.model)
    # The microscope: the given objective (else the model's lens) at the model's pixel size, a real lens.
    optics = dataclasses.replace(objective_optics(model, arguments.wavelength, arguments.na, arguments.refractive_index,
                                                  modality=arguments.modality), z_step_um=STEP_UM)
    image = read_image(IMAGE).astype(np.float64)
    signal = image - image.min()
    steps = int(HALF_RANGE_UM / STEP_UM)
    blurred = blur_levels(signal, range(steps + 1), optics)  # levels = |z| / step
    scale = arguments.peak / float(np.percentile(blurred[0], 99.9))
    detector = (Detector("pmt", gain=20.0, offset=10.0, pulse_shape=2.0, dark_counts=0.05)
                if arguments.modality == "confocal" else Detector("camera", gain=1.0, offset=100.0, read_noise=1.5))
    rng = np.random.default_rng(0)
    distances = np.arange(-steps, steps + 1) * STEP_UM
    planes = np.stack([detector.record(blurred[abs(k)] * scale, rng) for k in range(-steps, steps + 1)])
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "stack.tif"
        write_zstack(path, planes.astype(np.uint16), optics.pixel_size_um, STEP_UM)
        check = check_stack(path, model, objective=optics, progress=False)
    rows = check.plane_dicts()
    measured = [row for row in rows if "error" not in row]
    misses = [float(distances[row["plane"]]) for row in measured if abs(distances[row["plane"]]) > 2
              and row["defocus_level"] <= 1 and row["aggregate_certainty"] >= 0.5]
    from scipy.stats import spearmanr

    rho = spearmanr([row["defocus_level"] for row in measured],
                    [abs(distances[row["plane"]]) for row in measured]).correlation if len(measured) > 2 else None
    # defocus_um against the true distance, where both are at least 1 um and the distance is not a lower bound.
    ratios = [row["defocus_um"] / abs(distances[row["plane"]]) for row in measured
              if abs(distances[row["plane"]]) >= 1 and row["defocus_um"] >= 1 and not row["defocus_um_lower_bound"]]
    ratio = float(np.exp(np.mean(np.log(ratios)))) if ratios else None
    data = {"machine": machine(), "modality": arguments.modality, "peak_photons": arguments.peak,
            "objective": {"numerical_aperture": optics.numerical_aperture,
                          "refractive_index": optics.refractive_index, "wavelength_um": optics.wavelength_um},
            "defocus_ratio_geometric_mean": ratio, "defocus_ratio_planes": len(ratios),
            "model": str(arguments.model or "shipped"), "spearman_level": rho, "confident_misses_um": misses,
            "measured": len(measured), "planes": len(rows),
            "levels": {f"{distances[row['plane']]:+.1f}": row.get("defocus_level") for row in rows}}
    print(f"{arguments.modality}, {arguments.peak:g} photons at the peak in focus ({data['model']} model): "
          f"{len(measured)} of {len(rows)} planes measured; Spearman(level, |dz|) "
          f"{'n/a' if rho is None else f'{rho:.2f}'}; confident misses beyond 2 um: {len(misses)} {misses}; "
          f"defocus_um / |dz| {'n/a' if ratio is None else f'{ratio:.2f}'} (geometric mean of {len(ratios)} planes)")
    print("levels by z (um):", " ".join(f"{z}:{level if level is not None else '-'}"
                                         for z, level in data["levels"].items()))
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
