"""Evaluate a model folder and write the figures into its model card.

Usage::

    python scripts/evaluate_model.py MODEL_DIR --held-out IMG... \
        [--sharp DIR] [--out-of-focus DIR] [--json OUT.json] [--plots DIR]

* simulated defocus series of the held-out in-focus images (``focusnet
  evaluate``): exact and within-one accuracy, camera variants;
* real images: every sharp image should get level <= 1 and every real
  out-of-focus image level >= 3, with no tuning.

The result replaces the "Evaluation" section of ``MODEL_DIR/README.md``.
"""

import argparse
import json
import platform
from pathlib import Path

import numpy as np

from focusnet.evaluate import evaluate, save_evaluation_plots
from focusnet.images import find_images, read_image
from focusnet.inference import predict_image
from focusnet.model import load_model
from focusnet.train import write_model_card


def real_image_levels(model, folder):
    rows = []
    for path in find_images([folder]):
        prediction = predict_image(read_image(path), model, name=path)
        rows.append((Path(path).name, prediction.defocus_level, prediction.aggregate_certainty))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--held-out", nargs="+", required=True, help="in-focus images not used in training")
    parser.add_argument("--sharp", help="folder of real in-focus images (expected level <= 1)")
    parser.add_argument("--out-of-focus", help="folder of real out-of-focus images (expected level >= 3)")
    parser.add_argument("--json", help="also write the figures as JSON")
    parser.add_argument("--plots", help="folder for confusion.png and certainty.png (default MODEL/evaluation)")
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()

    model = load_model(arguments.model)
    result = evaluate(arguments.held_out, model=model, seed=arguments.seed)
    plots = save_evaluation_plots(result, arguments.plots or Path(arguments.model) / "evaluation")
    summary = {k: v for k, v in result.items() if k != "records"}
    lines = [
        "## Evaluation",
        "",
        f"Simulated defocus series (levels 0-10, seed {arguments.seed}) of {len(result['images'])} in-focus "
        f"images held out from training ({', '.join(f'`{Path(p).name}`' for p in result['images'])}), "
        f"{result['num_predictions']} whole-image predictions:",
        "",
        "| condition | exact | within one |",
        "|---|---|---|",
        f"| as imaged | {result['exact_accuracy']:.1%} | {result['within_one_accuracy']:.1%} |",
    ]
    for variant in result["variants"]:
        lines.append(f"| gain x{variant['gain']:g}, offset +{variant['offset']:g} | "
                     f"{variant['exact_accuracy']:.1%} | {variant['within_one_accuracy']:.1%} |")
    worst = min(v["within_one_accuracy"] for v in result["variants"])
    lines += [
        "",
        f"Largest loss of within-one accuracy under a camera change: "
        f"{(result['within_one_accuracy'] - worst) * 100:.1f} points. Patches with certainty >= 0.5: "
        f"{result['patch_within_one_accuracy']:.1%} within one level ({result['confident_patches']} patches).",
        "",
        f"Plots: {', '.join(f'`evaluation/{Path(p).name}`' for p in plots)}.",
        "",
        "Confusion matrix (rows: true level, columns: predicted level):",
        "",
        "```",
        *[" ".join(f"{count:2d}" for count in row) for row in result["confusion"]],
        "```",
    ]
    for title, folder, expectation in (("Real in-focus images", arguments.sharp, "<= 1"),
                                       ("Real out-of-focus images", arguments.out_of_focus, ">= 3")):
        if not folder:
            continue
        rows = real_image_levels(model, folder)
        summary[title] = [{"image": name, "defocus_level": level, "aggregate_certainty": certainty}
                          for name, level, certainty in rows]
        limit = 1 if expectation == "<= 1" else 3
        passed = sum((level <= limit) if expectation == "<= 1" else (level >= limit) for _, level, _ in rows)
        lines += ["", f"{title} (`{folder}`), expected level {expectation}: {passed} of {len(rows)} as expected.",
                  "", "| image | level | aggregate certainty |", "|---|---|---|"]
        lines += [f"| `{name[:48]}` | {level} | {certainty:.2f} |" for name, level, certainty in rows]
    lines += ["", f"Measured with focusnet on Python {platform.python_version()}, {platform.machine()}.", ""]
    write_model_card(arguments.model, "\n".join(lines))
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(summary, indent=2, default=float) + "\n")
    print("\n".join(lines))
    return 0 if np.isfinite(result["exact_accuracy"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
