"""``focusnet stack``: the best plane of z-stacks, each plane's level, and focus curves, in a resumable batch."""

from __future__ import annotations

import sys

from .. import contract
from .arguments import add_measuring, add_resume, objective_from_arguments, positive_float
from .common import keeps_results, warn


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "stack",
        help="pick the best plane of z-stacks, with each plane's level and focus curves",
        description="Measure every plane of z-stacks (multi-page TIFF, ImageJ hyperstacks, OME-TIFF; several "
        "channels and time points) with one model load: per plane the level, expected level, defocus_um, "
        "certainties and content; per stack and time point the best plane (lowest expected level, ties to the "
        "higher certainty), a sub-plane fit, and its certainty. Stacks that cannot be read get a NaN row and "
        "a warning.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="z-stack TIFFs, folders or glob patterns")
    parser.add_argument("--csv", required=True, metavar="OUT.csv",
                        help="one row per plane: " + ", ".join(contract.STACK_PLANE_COLUMNS))
    parser.add_argument("--summary-csv", metavar="OUT.csv",
                        help="one row per stack and time point: " + ", ".join(contract.STACK_COLUMNS[:9]) + ", ... "
                             "(default: <csv stem>_stacks.csv beside --csv)")
    parser.add_argument("--channel", metavar="C",
                        help="the channel to judge focus by: index or name (default: the first)")
    parser.add_argument("--axes", metavar="AXES",
                        help="the data's axes, overriding the file's metadata (e.g. ZYX, CZYX, TZCYX)")
    parser.add_argument("--best-dir", metavar="DIR",
                        help="write <stack>_best.tif: the best plane of every channel, with the source's pixel size")
    parser.add_argument("--plots", metavar="DIR",
                        help="write <stack>_focus_curve.png: level and defocus_um against z with a certainty band")
    parser.add_argument("--z-step", dest="z_step_um", type=positive_float, metavar="UM",
                        help="plane spacing in um (default: the file's)")
    add_resume(parser, "stacks")
    add_measuring(parser, "stacks")
    parser.set_defaults(run=run)


def run(arguments) -> int:
    from ..loader import load_model
    from ..stacks.batch import plan_stacks, run_stacks

    plan = plan_stacks(arguments.paths, arguments.csv, arguments.summary_csv, arguments.best_dir, arguments.plots)
    model = load_model(arguments.model)
    objective = objective_from_arguments(model, arguments)

    def on_entry(entry):
        from tqdm import tqdm

        for line in entry["lines"]:
            tqdm.write(line)
        for warning in entry["warnings"]:
            warn("stack", warning)

    with keeps_results(plan.journal, "stacks"):
        entries = run_stacks(plan, model, channel=arguments.channel, axes=arguments.axes,
                             z_step_um=arguments.z_step_um, pixel_size_um=arguments.pixel_size_um,
                             objective=objective, scale=arguments.scale, resume=arguments.resume, progress=True,
                             on_entry=on_entry, on_note=lambda message: warn("stack", message))
    notes = []
    for entry in entries:
        notes += [note for note in entry["notes"] if note not in notes]
    for note in notes:
        print(f"focusnet stack: warning: {note}", file=sys.stderr)
    measured = sum(entry["measured"] for entry in entries)
    failed = sum(len(entry["stacks"]) - entry["measured"] for entry in entries)
    print(f"{measured} stack(s) with a best plane, {failed} without, with {model.name}: planes {plan.csv}, "
          f"stacks {plan.summary_csv}" + (f", best planes {plan.best_dir}" if plan.best_dir else "")
          + (f", focus curves {plan.plots}" if plan.plots else ""))
    return 0
