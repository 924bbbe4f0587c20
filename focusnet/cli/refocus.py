"""``focusnet refocus``: restore out-of-focus images where they can be restored, measured before and after."""

from __future__ import annotations

import sys
from pathlib import Path

from ..refocus.batch import NOT_REFOCUSED_CHOICES, REFOCUS_COLUMNS, REFOCUSED_SUFFIX
from .arguments import add_measuring, add_resume, objective_from_arguments
from .common import keeps_results, warn


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "refocus",
        help="restore out-of-focus images with the refocus model, measured before and after",
        description="Measure each image's focus; refocus those the refocus model can restore (not in focus, with "
        "content, within the levels it was validated for) with a U-Net trained on the physical defocus simulator, "
        f"and write OUT/<stem>{REFOCUSED_SUFFIX}.tif (same pixel type and calibration). The refocused image is "
        "measured again; one whose level did not go down is flagged. Refocused images are for viewing and "
        "segmentation, not for intensity measurements.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="images, folders or glob patterns")
    parser.add_argument("--out", dest="out_dir", required=True, metavar="DIR",
                        help="folder for the refocused images (created if needed)")
    parser.add_argument("--csv", required=True, metavar="OUT.csv",
                        help="one row per image: " + ", ".join(REFOCUS_COLUMNS[:5]) + ", levels before and after, ...")
    parser.add_argument("--montage-dir", metavar="DIR",
                        help="write <stem>_refocus.png: input and refocused image side by side, with their levels")
    parser.add_argument("--not-refocused", dest="not_refocused", choices=NOT_REFOCUSED_CHOICES, default="copy",
                        help="images that are not refocused (no content, in focus, beyond the model's range): copy "
                             "them unchanged to the output name, or skip them (default %(default)s)")
    parser.add_argument("--refocus-model", metavar="MODEL_DIR",
                        help="a refocus model folder (default: the shipped one)")
    add_resume(parser, "images")
    add_measuring(parser)
    parser.set_defaults(run=run)


def run(arguments) -> int:
    from ..loader import load_model
    from ..refocus.batch import plan_refocus, refocus_batch
    from ..refocus.model import load_refocus_model

    plan = plan_refocus(arguments.paths, arguments.out_dir, arguments.csv, arguments.montage_dir)
    classifier = load_model(arguments.model)
    model = load_refocus_model(arguments.refocus_model)
    objective = objective_from_arguments(classifier, arguments)
    for note in plan.notes:
        print(f"focusnet refocus: {note}", file=sys.stderr)

    def on_result(entry):
        if entry["warning"]:
            warn("refocus", f"{entry['warning']} (not refocused)")

    with keeps_results(plan.journal, "images"):
        entries = refocus_batch(plan, model, classifier, arguments.not_refocused, arguments.scale,
                                arguments.pixel_size_um, objective, resume=arguments.resume, progress=True,
                                on_result=on_result, on_note=lambda message: warn("refocus", message))
    records = [entry["record"] for entry in entries]
    if len(records) <= 20:
        width = max(len(Path(r["image"]).name) for r in records)
        for r in records:
            if r["refocused"] == "yes":
                status = f"level {r['defocus_level_before']} -> {r['defocus_level_after']}" + \
                    ("" if r["improved"] == "yes" else f" (flagged: {r['reason']})")
            else:
                status = f"not refocused: {r['reason']}"
            print(f"{Path(r['image']).name:<{width}}  {status}")
    refocused = sum(r["refocused"] == "yes" for r in records)
    flagged = sum(r["refocused"] == "yes" and r["improved"] != "yes" for r in records)
    print(f"refocused {refocused} of {len(records)} images with {model.name} ({flagged} not improved): {plan.csv}, "
          f"images in {plan.out_dir}" + (f", montages in {plan.montage_dir}" if plan.montage_dir else ""))
    return 0
