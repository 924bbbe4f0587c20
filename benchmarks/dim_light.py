"""Real stacks in dim light: binomial thinning of their raw counts, then focusnet on every plane.

For each stack and each fraction of its light (1, 1/10, 1/100, 1/1000), the stack's raw counts
are thinned (:func:`focusnet.photons.binomial_thinning`, the camera's gain and offset from
:func:`focusnet.photons.photon_transfer` on the whole stack) and measured with
:func:`focusnet.stacks.check.check_stack`. Reported per fraction:

* the best plane focusnet picks and the sharpest plane of the full-light stack (normalised variance);
* Spearman(level, |dz|) from that full-light reference;
* confident misses: planes more than 2 um from focus that read level <= 1 with aggregate certainty >= 0.5
  (issue "dim light": there must be none);
* planes not measured (no content, or too noisy once focusnet says so).

Usage::

    python benchmarks/dim_light.py STACK [--model MODEL] [--na NA --refractive-index N --wavelength UM]
        [--json OUT.json]

Default stack: the development set's real 100x stack with a model fine-tuned to it (give ``--model``:
the shipped model cannot measure 0.13 um pixels at that field size).
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, write_zstack  # noqa: E402

FRACTIONS = (1.0, 0.1, 0.01, 0.001)
FAR_UM = 2.0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stack")
    parser.add_argument("--model")
    parser.add_argument("--na", type=float)
    parser.add_argument("--refractive-index", type=float)
    parser.add_argument("--wavelength", type=float)
    parser.add_argument("--json")
    arguments = parser.parse_args()

    from scipy.stats import spearmanr

    from focusnet.images import read_stack
    from focusnet.inference import objective_optics
    from focusnet.loader import load_model
    from focusnet.photons import binomial_thinning, photon_transfer
    from focusnet.stacks.check import check_stack, normalized_variance

    model = load_model(arguments.model)
    objective = objective_optics(model, arguments.wavelength, arguments.na, arguments.refractive_index)
    stack = read_stack(arguments.stack)
    planes = stack.data[0, 0]
    gain, offset = photon_transfer(planes.reshape(-1, planes.shape[-1]))
    reference = int(np.nanargmax(normalized_variance(planes)))
    rng = np.random.default_rng(0)
    data = {"machine": machine(), "stack": arguments.stack, "model": str(arguments.model or "shipped"),
            "gain": gain, "offset": offset, "full_light_sharpest_plane": reference, "fractions": {}}
    print(f"{Path(arguments.stack).name}: gain {gain:.2f} counts/e-, offset {offset:.0f} (photon transfer); "
          f"sharpest plane at full light: {reference}")
    print("| light | peak photoelectrons | best plane | Spearman(level, |dz|) | confident misses beyond 2 um | "
          "not measured |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for fraction in FRACTIONS:
            thinned = planes if fraction == 1 else binomial_thinning(planes, fraction, offset, gain, rng)
            path = Path(scratch) / f"thinned_{fraction:g}.tif"
            write_zstack(path, thinned, stack.pixel_size_um, stack.z_step_um)
            check = check_stack(path, model, objective=objective, progress=False)
            rows = check.plane_dicts()
            distance = {row["plane"]: abs(row["plane"] - reference) * stack.z_step_um for row in rows}
            measured = [row for row in rows if "error" not in row]
            misses = [row["plane"] for row in measured if distance[row["plane"]] > FAR_UM
                      and row["defocus_level"] <= 1 and row["aggregate_certainty"] >= 0.5]
            rho = spearmanr([row["defocus_level"] for row in measured],
                            [distance[row["plane"]] for row in measured]).correlation if len(measured) > 2 else None
            peak = float(np.percentile((thinned.astype(float) - offset) / gain, 99.9))
            data["fractions"][f"{fraction:g}"] = {
                "peak_photoelectrons": peak, "best_plane": check.result.best_plane, "spearman_level": rho,
                "confident_misses": misses, "not_measured": len(rows) - len(measured)}
            print(f"| {fraction:g} | {peak:.0f} | {check.result.best_plane} | "
                  f"{'n/a' if rho is None else f'{rho:.2f}'} | {len(misses)} {misses[:6]} | "
                  f"{len(rows) - len(measured)} |")
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
