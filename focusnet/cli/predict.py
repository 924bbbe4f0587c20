"""``focusnet predict``: the focus of images, per image and per patch, in a resumable batch."""

from __future__ import annotations

import sys
from pathlib import Path

from .. import contract
from .arguments import add_measuring, add_resume, objective_from_arguments
from .common import keeps_results, warn

#: Up to this many images, each one's answer is printed.
PRINTED_IMAGES = 20


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "predict",
        help="measure the focus of images (per image and per patch)",
        description="Measure how far each 84x84 region of each image is from focus (defocus level 0-10, "
        "0 = in focus, and the distance in um for your objective), how certain that is, and the answer for the "
        "whole image. Regions without structure above their noise are marked and left out. Images that cannot "
        "be measured (too small, constant, no content, colour, stacks) get a NaN row and a warning.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="images, folders or glob patterns")
    parser.add_argument("--csv", required=True, metavar="OUT.csv",
                        help="one row per image: " + ", ".join(contract.IMAGE_COLUMNS[:5]) + ", ..., patches")
    parser.add_argument("--patches-csv", metavar="OUT.csv",
                        help="one row per patch: " + ", ".join(contract.PATCH_COLUMNS[:8]) + ", ...")
    parser.add_argument("--overlay-dir", metavar="DIR",
                        help="write <stem>_focus.png: patch borders coloured by level (hue) and certainty "
                             "(pale = uncertain); created if needed")
    cluster = parser.add_mutually_exclusive_group()
    cluster.add_argument("--workers", type=int, metavar="N",  # the library says what counts are valid
                         help="measure on a local Dask cluster of N processes (each loads the model once)")
    cluster.add_argument("--scheduler", metavar="ADDRESS",
                         help="measure on a running dask.distributed scheduler, e.g. tcp://10.0.0.5:8786 (its workers "
                              "must see the images, the model and the overlay folder at the same paths)")
    add_resume(parser, "images")
    add_measuring(parser)
    parser.set_defaults(run=run)


def run(arguments) -> int:
    from ..batch import plan_batch, run_batch
    from ..inference import model_optics
    from ..loader import load_model

    plan = plan_batch(arguments.paths, arguments.csv, arguments.patches_csv, arguments.overlay_dir)
    model = load_model(arguments.model)
    objective = objective_from_arguments(model, arguments)
    for note in plan.notes:
        print(f"focusnet predict: {note}", file=sys.stderr)

    def on_result(entry):
        if entry["warning"]:
            warn("predict", f"{entry['warning']} (measurements set to NaN)")

    with keeps_results(plan.journal, "images"):
        entries = run_batch(plan, model, scale=arguments.scale, pixel_size_um=arguments.pixel_size_um,
                            objective=objective, resume=arguments.resume, progress=True, on_result=on_result,
                            workers=arguments.workers, scheduler=arguments.scheduler,
                            on_note=lambda message: warn("predict", message))
    notes = []
    for entry in entries.values():
        notes += [note for note in entry["notes"] if note not in notes]
    for note in notes:
        print(f"focusnet predict: warning: {note}", file=sys.stderr)
    failed = sum(entry["summary"] is None for entry in entries.values())
    if len(entries) <= PRINTED_IMAGES:
        width = max(len(Path(path).name) for path in entries)
        for path, entry in entries.items():
            print(f"{Path(path).name:<{width}}  {entry['summary'] or 'not measured'}")
    print(f"measured {len(entries) - failed} of {len(entries)} images with {model.name}: {plan.csv}"
          + (f", patches: {plan.patches_csv}" if plan.patches_csv else "")
          + (f", overlays: {plan.overlay_dir}" if plan.overlay_dir else ""))
    assumed = sum(entry["record"]["pixel_size_source"] == "assumed" for entry in entries.values())
    if assumed:
        print(f"pixel size: {assumed} image(s) state none, so the model's {model_optics(model).pixel_size_um:g} um "
              "was assumed (give --pixel-size if yours differ); defocus_um is for "
              f"NA {objective.numerical_aperture:g}, n {objective.refractive_index:g}, "
              f"{objective.wavelength_um * 1000:g} nm"
              + ("" if objective.modality == "widefield" else f", {objective.modality} ({objective.pinhole_au:g} AU)"))
    if failed:
        print(f"{failed} image(s) could not be measured (NaN rows, see warnings above)", file=sys.stderr)
    return 0
