"""``focusnet evaluate-stack``: check a model on a real through-focus stack of your microscope."""

from __future__ import annotations

import sys
from pathlib import Path

from .arguments import add_measuring, objective_from_arguments, positive_float


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "evaluate-stack",
        help="check focusnet on a real through-focus stack of your microscope",
        description="Measure every plane of a real z-stack (multi-page TIFF, ImageJ hyperstack or OME-TIFF; z step "
        "and pixel size from the file or the options), pick the sharpest plane by normalised variance (a classic "
        "sharpness metric), and report the Spearman correlation of the level and of defocus_um with the distance "
        "from it, and how defocus_um compares with that distance. Run this on your own stacks before trusting "
        "focusnet's absolute answers for your optics.",
    )
    parser.add_argument("stack", metavar="STACK", help="a z-stack of one time point")
    parser.add_argument("--channel", metavar="C", help="the channel to check on: index or name (needed when the "
                                                       "stack has several)")
    parser.add_argument("--z-step", dest="z_step_um", type=positive_float, metavar="UM",
                        help="plane spacing in um (default: the file's)")
    add_measuring(parser, "stacks")
    parser.add_argument("--plots", metavar="DIR", help="write <stack>_focus_curve.png: level and defocus_um against "
                                                       "z, with the distance from the sharpest plane")
    parser.add_argument("--json", metavar="OUT.json", help="write the results as JSON ('-': standard output)")
    parser.add_argument("--sharpest-out", metavar="FILE.tif",
                        help="write the sharpest plane as a TIFF stating its pixel size (to train --init from it)")
    parser.set_defaults(run=run)


def _print_planes(result: dict) -> None:
    print(" plane   z um  dist um  level  defocus um  aggregate  content")
    for row in result["planes"]:
        if "error" in row:
            print(f"{row['plane']:6d} {row['z_um']:6.2f} {row['distance_um']:8.2f}  not measured: {row['error']}")
            continue
        bound = ">=" if row["defocus_um_lower_bound"] else "  "
        print(f"{row['plane']:6d} {row['z_um']:6.2f} {row['distance_um']:8.2f} {row['defocus_level']:6d} "
              f"{bound}{row['defocus_um']:8.2f} {row['aggregate_certainty']:10.2f} {row['content_fraction']:7.0%}")
    print(f"sharpest plane by {result['sharpness_metric']}: {result['sharpest_plane']}; Spearman with the "
          f"distance from it: level {result['spearman_level']:.3f}, defocus_um {result['spearman_defocus_um']:.3f}; "
          f"defocus_um / distance (geometric mean over {result['ratio_planes']} planes from 0.5 um to the first "
          f"level 10): {result['defocus_ratio']:.2f}; pixel size {result['pixel_size_um']:g} um "
          f"({result['pixel_size_source']}), z step {result['z_step_um']:g} um")


def run(arguments) -> int:
    from ..defocus import defocus_scale
    from ..files import check_output_file, check_output_folder, refuse_inputs_as_outputs, write_text
    from ..images import read_stack
    from ..inference import model_optics
    from ..loader import load_model
    from ..stacks import check_stack, save_focus_curve, write_planes
    from ..stacks.check import to_json
    from ..stacks.measure import output_stem

    plot = Path(arguments.plots) / f"{output_stem(arguments.stack)}_focus_curve.png" if arguments.plots else None
    json_out = arguments.json if arguments.json != "-" else None
    refuse_inputs_as_outputs([arguments.stack], [plot, json_out, arguments.sharpest_out])
    # Before measuring: an output that could not be written is refused now, not after the work (missing folders
    # are created).
    for output, setting in ((json_out, "json"), (arguments.sharpest_out, "sharpest_out")):
        if output:
            check_output_file(Path(output), setting, create_folder=True)
    if arguments.plots:
        check_output_folder(arguments.plots, "plots")
    model = load_model(arguments.model)
    objective = objective_from_arguments(model, arguments)
    stack = read_stack(arguments.stack)
    check = check_stack(arguments.stack, model, channel=arguments.channel, z_step_um=arguments.z_step_um,
                        pixel_size_um=arguments.pixel_size_um, objective=objective, scale=arguments.scale,
                        stack=stack)
    result = check.to_dict()
    out = sys.stderr if arguments.json == "-" else sys.stdout
    for note in result["notes"]:
        print(f"focusnet evaluate-stack: warning: {note}", file=sys.stderr)
    if arguments.json == "-":
        print(to_json(result))
    else:
        if json_out:
            Path(json_out).parent.mkdir(parents=True, exist_ok=True)
            write_text(json_out, to_json(result) + "\n")
        _print_planes(result)
    if plot:
        plot.parent.mkdir(parents=True, exist_ok=True)
        title = (f"{Path(arguments.stack).name}: Spearman with distance: level {check.spearman_level:.2f}, "
                 f"defocus_um {check.spearman_defocus_um:.2f}")
        save_focus_curve(check.result, plot, defocus=defocus_scale(model_optics(model), objective),
                         sharpest_plane=check.sharpest_plane, title=title)
        print(f"plot: {plot}", file=out)
    if arguments.sharpest_out:
        channel = stack.channel_index(arguments.channel)
        # Only a pixel size that was given or stated travels with the plane, never an assumed one.
        known = result["pixel_size_um"] if result["pixel_size_source"] != "assumed" else None
        Path(arguments.sharpest_out).parent.mkdir(parents=True, exist_ok=True)
        written = write_planes(arguments.sharpest_out, stack.data[0, channel, check.sharpest_plane], known)
        print(f"sharpest plane ({check.sharpest_plane}) written to {written}", file=out)
    return 0
