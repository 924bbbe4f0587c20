"""Compare the `default` and `paper` architectures trained the same way.

Both are trained with identical data, seed, batch size, learning-rate schedule
and number of steps, then evaluated on the same held-out images
(``focusnet evaluate``) and timed per image on this machine's CPU.

Usage::

    python benchmarks/architectures.py --out DIR --steps N --images IMG... --validation IMG...
        [--architectures default paper] [--learning-rate LR] [--resume]

Writes ``DIR/<architecture>_lr<LR>/`` model folders, and adds each run's
figures to ``DIR/comparison.json`` and ``DIR/comparison.md`` (runs made by
earlier invocations are kept; every run whose weights are present is re-timed, all in
turn in one process, so their times compare fairly).
A finished run is not retrained; an interrupted one continues with
``--resume``.
"""

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

from focusnet.evaluate import evaluate
from focusnet.images import read_image
from focusnet.inference import predict_image
from focusnet.loader import load_model
from focusnet.train import TrainingSettings, train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median_seconds_each  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", nargs="+", required=True)
    parser.add_argument("--validation", nargs="+", required=True)
    parser.add_argument("--architectures", nargs="+", default=["default", "paper"])
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--resume", action="store_true")
    arguments = parser.parse_args()

    out = Path(arguments.out)
    timing_image = read_image(arguments.validation[0])
    report_path = out / "comparison.json"
    new_results = {}
    for name in arguments.architectures:
        run = f"{name}_lr{arguments.learning_rate:g}"
        folder = out / run
        settings = TrainingSettings(architecture=name, steps=arguments.steps, batch_size=arguments.batch_size,
                                    seed=arguments.seed, learning_rate=arguments.learning_rate)
        finished = (folder / "config.json").is_file() and json.loads((folder / "config.json").read_text())[
            "training"].get("completed_steps") == arguments.steps
        if not finished:
            resume = arguments.resume and (folder / "checkpoint" / "state.npz").is_file()
            train(arguments.images, folder, settings, validation_images=arguments.validation, resume=resume,
                  command=f"python benchmarks/architectures.py --out {arguments.out} --steps {arguments.steps} "
                          f"--architectures {name} --learning-rate {arguments.learning_rate:g}")
        model = load_model(folder)
        evaluation = evaluate(arguments.validation, model=model, seed=arguments.seed)
        parameters = sum(int(np.prod(w.shape)) for w in model.weights.values())
        new_results[run] = {
            "architecture": name,
            "learning_rate": arguments.learning_rate,
            "parameters": parameters,
            "weights_mb": os.path.getsize(folder / "weights.npz") / 1e6,
            "exact_accuracy": evaluation["exact_accuracy"],
            "within_one_accuracy": evaluation["within_one_accuracy"],
            "patch_within_one_accuracy": evaluation["patch_within_one_accuracy"],
            "variants": evaluation["variants"],
        }
    # Read earlier runs only now: another invocation may have finished while this one trained.
    results = json.loads(report_path.read_text())["results"] if report_path.is_file() else {}
    results.update(new_results)
    # Time every run whose weights are here in this one process, so the speed ratio compares
    # figures taken under the same conditions.
    timed = {run: (lambda model=load_model(out / run): predict_image(timing_image, model))
             for run in results if (out / run / "weights.npz").is_file()}
    measured = median_seconds_each(timed, repeats=9)
    for run, seconds in measured.items():
        results[run]["seconds_per_image"] = seconds
    report = {
        "steps": arguments.steps,
        "batch_size": arguments.batch_size,
        "seed": arguments.seed,
        "image_for_timing": f"{timing_image.shape[1]}x{timing_image.shape[0]}",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
                   f"{platform.python_version()}",
        "results": results,
    }
    seconds = {}
    for run, value in measured.items():
        seconds.setdefault(results[run]["architecture"], []).append(value)
    seconds = {name: float(np.mean(values)) for name, values in seconds.items()}
    if {"default", "paper"} <= set(seconds):
        report["speedup_default_over_paper"] = seconds["paper"] / seconds["default"]
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"Trained the same way: {arguments.steps} steps of {arguments.batch_size} patches, seed "
             f"{arguments.seed}; evaluated on {len(arguments.validation)} held-out images; timed on one "
             f"{report['image_for_timing']} image ({report['machine']}).", "",
             "| architecture | learning rate | parameters | weights | s / image | exact | within one | "
             "worst camera variant, within one |",
             "|---|---|---|---|---|---|---|---|"]
    for _, r in sorted(results.items()):
        worst = min(v["within_one_accuracy"] for v in r["variants"])
        lines.append(f"| `{r['architecture']}` | {r['learning_rate']:g} | {r['parameters']:,} | "
                     f"{r['weights_mb']:.2f} MB | {r['seconds_per_image']:.4f} | {r['exact_accuracy']:.1%} | "
                     f"{r['within_one_accuracy']:.1%} | {worst:.1%} |")
    if "speedup_default_over_paper" in report:
        lines += ["", f"`default` is {report['speedup_default_over_paper']:.1f}x faster per image than `paper`."]
    (out / "comparison.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
