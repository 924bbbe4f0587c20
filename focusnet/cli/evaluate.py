"""``focusnet evaluate``: a model's accuracy on simulated defocus series of in-focus images."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .. import contract
from ..errors import InvalidParameterError
from .arguments import add_model


def add_parser(commands) -> None:
    from ..evaluate import PATCH_CERTAINTY_THRESHOLD
    from ..simulate import CAMERA_VARIANTS

    parser = commands.add_parser(
        "evaluate",
        help="accuracy on simulated defocus series of in-focus images",
        description="Synthesise every level 0-10 from each in-focus image (fixed seed), predict, and report "
        "image-level exact and within-one accuracy, the confusion matrix, patch-level within-one accuracy "
        f"(patches with certainty >= {PATCH_CERTAINTY_THRESHOLD:g}), and the same under each camera change: "
        + ", ".join(camera.name for camera in CAMERA_VARIANTS) + ". "
        "Only give images the model was not trained on.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="in-focus images, folders or globs")
    add_model(parser, "evaluate")
    parser.add_argument("--json", metavar="OUT.json", help="write the results as JSON ('-': standard output)")
    parser.add_argument("--plots", metavar="DIR", help="write confusion.png and certainty.png (with "
                        "--write-card they go to MODEL_DIR/evaluation)")
    parser.add_argument("--sharp", metavar="DIR", help="also measure real in-focus images (expected level <= 1)")
    parser.add_argument("--out-of-focus", metavar="DIR",
                        help="also measure real out-of-focus images (expected level >= 3)")
    parser.add_argument("--write-card", action="store_true",
                        help="write the figures to MODEL_DIR/evaluation.json and render its model card "
                             "(README.md) from config.json and evaluation.json")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="noise seed (default %(default)s)")
    parser.set_defaults(run=run)


def run(arguments) -> int:
    from ..card import evaluate_model_folder
    from ..evaluate import check_real_images, evaluate, save_evaluation_plots
    from ..files import write_text

    if arguments.write_card:
        if not (arguments.model and (Path(arguments.model) / contract.CONFIG_FILE).is_file()):
            raise InvalidParameterError("--write-card needs --model MODEL_DIR, a model folder (the card is its "
                                        "README.md)")
        from .train import recorded_command

        record = evaluate_model_folder(arguments.model, arguments.paths, arguments.sharp, arguments.out_of_focus,
                                       seed=arguments.seed, command=recorded_command(arguments.argv))
        result, checks = record["simulated"], record["real_images"]
        plots = [Path(arguments.model) / plot for plot in record["plots"]]
    else:
        result = evaluate(arguments.paths, model=arguments.model, seed=arguments.seed)
        if result["unmeasurable"] == result["num_predictions"]:
            raise InvalidParameterError(f"none of the {result['num_predictions']} simulated images could be measured "
                                        "(no content, or too noisy): there is no accuracy to give; evaluate with "
                                        "in-focus images that hold content")
        checks = [check_real_images([folder], kind, arguments.model) for kind, folder in
                  (("in_focus", arguments.sharp), ("out_of_focus", arguments.out_of_focus)) if folder]
        plots = save_evaluation_plots(result, arguments.plots) if arguments.plots else []
    summary = {key: value for key, value in result.items() if key != "records"}
    text = json.dumps(dict(summary, real_images=checks), indent=2)
    out = sys.stderr if arguments.json == "-" else sys.stdout
    if arguments.json == "-":
        print(text)
    else:
        if arguments.json:
            write_text(arguments.json, text + "\n")
        unmeasurable = (f" ({result['unmeasurable']} not measurable: no content or too noisy, counted as misses)"
                        if result["unmeasurable"] else "")
        print(f"{result['num_predictions']} predictions on {len(result['images'])} images{unmeasurable}: "
              f"exact {result['exact_accuracy']:.1%}, within one {result['within_one_accuracy']:.1%}, "
              f"confident patches within one {result['patch_within_one_accuracy']:.1%}")
        for variant in result["variants"]:
            print(f"  {variant['name']}: exact {variant['exact_accuracy']:.1%}, "
                  f"within one {variant['within_one_accuracy']:.1%}")
        for check in checks:
            passed = sum(row["as_expected"] for row in check["images"])
            print(f"  real {check['kind'].replace('_', '-')} images ({check['folder']}): {passed} of "
                  f"{len(check['images'])} as expected")
    for path in plots:
        print(f"plot: {path}", file=out)
    if arguments.write_card:
        print(f"model card: {Path(arguments.model) / contract.CARD_FILE} (from "
              f"{Path(arguments.model) / contract.EVALUATION_FILE})", file=out)
    return 0
