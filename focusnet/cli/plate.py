"""``focusnet plate``: plate maps of focus from focusnet's or CellProfiler's results."""

from __future__ import annotations

import sys
from pathlib import Path

from ..plate import DEFOCUSED_LEVEL
from .arguments import add_model, non_negative_int


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "plate",
        help="plate maps of focus from focusnet's or CellProfiler's results",
        description="Draw a plate map (96, 384 or 1536 wells, chosen from the wells present) of each well's "
        "defocus level (its worst site, and the mean) and certainty, from focusnet predict's CSV or CellProfiler's "
        "Image.csv (ImageFocus_* columns). Wells and sites come from Metadata_Well/Metadata_Site columns or from "
        "file names (A01, a01, r01c01f01, _A01_s1_w1; --pattern for others). Also writes wells.csv, a summary "
        f"(images per level, wells with any site at level >= {DEFOCUSED_LEVEL}) and a montage of the most defocused "
        "images with their overlays.",
    )
    parser.add_argument("results", metavar="RESULTS.csv", help="focusnet predict --csv output, or CellProfiler's "
                        "Image.csv")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="writes plate_map.png, wells.csv, summary.txt and most_defocused.png")
    parser.add_argument("--pattern", metavar="REGEX",
                        help="regular expression for file names with named groups well (or row and col) and site, "
                             r"e.g. '(?P<well>[A-P]\d\d)_site(?P<site>\d+)'")
    parser.add_argument("--image-name", metavar="NAME",
                        help="CellProfiler tables measuring several images: which one (default: the first)")
    parser.add_argument("--montage", type=non_negative_int, default=12, metavar="N",
                        help=f"overlays of up to N most defocused images, level >= {DEFOCUSED_LEVEL} (measured again; "
                             "0: none; default %(default)s)")
    add_model(parser, "draw the montage's overlays with")
    parser.set_defaults(run=run)


def run(arguments) -> int:
    from ..files import check_output_folder, refuse_inputs_as_outputs, write_text
    from ..plate import (
        most_defocused,
        plate_format,
        read_results,
        save_defocused_montage,
        save_plate_map,
        summarise_wells,
        summary_text,
        write_wells_csv,
    )

    out = Path(arguments.out)
    names = {"map": "plate_map.png", "montage": "most_defocused.png", "wells": "wells.csv", "summary": "summary.txt"}
    paths = {key: out / name for key, name in names.items()}
    refuse_inputs_as_outputs([arguments.results], paths.values())
    check_output_folder(out, "out")
    notes = []
    results = read_results(arguments.results, arguments.pattern, arguments.image_name, notes=notes)
    for note in notes:
        print(f"focusnet plate: warning: {note}", file=sys.stderr)
    wells = plate_format(results)
    summaries = summarise_wells(results)
    out.mkdir(parents=True, exist_ok=True)
    save_plate_map(summaries, wells, paths["map"], title=f"{Path(arguments.results).name}: {len(results)} images, "
                   f"{len(summaries)} wells")
    write_wells_csv(summaries, paths["wells"])
    text = summary_text(results, summaries, wells)
    write_text(paths["summary"], text)
    print(text, end="")
    written = [paths["map"], paths["wells"], paths["summary"]]
    defocused = most_defocused(results, arguments.montage)
    if arguments.montage and not defocused:
        print(f"no image at level >= {DEFOCUSED_LEVEL}: no montage")
    elif defocused:
        montage, notes = save_defocused_montage(defocused, paths["montage"], arguments.model)
        for note in notes:
            print(f"focusnet plate: warning: {note}", file=sys.stderr)
        if montage:
            written.append(montage)
        else:
            print("focusnet plate: warning: no montage: none of the most defocused images could be read",
                  file=sys.stderr)
    print("written: " + ", ".join(str(path) for path in written))
    return 0
