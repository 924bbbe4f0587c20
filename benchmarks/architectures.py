"""Compare the `default` and `paper` architectures trained the same way.

Both are trained with identical data, seed, batch size, learning-rate schedule
and number of steps, then evaluated on the same held-out images
(``focusnet evaluate``) and timed per image on this machine's CPU.

Usage::

    python benchmarks/architectures.py --out DIR --steps N --images IMG... --validation IMG...
        [--architectures default paper] [--resume]

Writes ``DIR/<architecture>/`` model folders and ``DIR/comparison.json`` and
``DIR/comparison.md``. Training runs checkpoint and can be resumed
(``--resume``) after an interruption.
"""

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from focusnet.evaluate import evaluate
from focusnet.images import read_image
from focusnet.inference import predict_image
from focusnet.model import load_model
from focusnet.train import TrainingSettings, train


def seconds_per_image(model, image, repeats=9):
    predict_image(image, model)  # warm-up: graph tracing
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict_image(image, model)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", nargs="+", required=True)
    parser.add_argument("--validation", nargs="+", required=True)
    parser.add_argument("--architectures", nargs="+", default=["default", "paper"])
    parser.add_argument("--resume", action="store_true")
    arguments = parser.parse_args()

    out = Path(arguments.out)
    timing_image = read_image(arguments.validation[0])
    results = {}
    for name in arguments.architectures:
        folder = out / name
        settings = TrainingSettings(architecture=name, steps=arguments.steps, batch_size=arguments.batch_size,
                                    seed=arguments.seed)
        finished = (folder / "config.json").is_file() and json.loads((folder / "config.json").read_text())[
            "training"].get("completed_steps") == arguments.steps
        if not finished:
            resume = arguments.resume and (folder / "checkpoint" / "state.npz").is_file()
            train(arguments.images, folder, settings, validation_images=arguments.validation, resume=resume,
                  command=f"python benchmarks/architectures.py --out {arguments.out} --steps {arguments.steps}")
        model = load_model(folder)
        evaluation = evaluate(arguments.validation, model=model, seed=arguments.seed)
        parameters = sum(int(np.prod(w.shape)) for w in model.weights.values())
        results[name] = {
            "parameters": parameters,
            "weights_mb": os.path.getsize(folder / "weights.npz") / 1e6,
            "seconds_per_image": seconds_per_image(model, timing_image),
            "exact_accuracy": evaluation["exact_accuracy"],
            "within_one_accuracy": evaluation["within_one_accuracy"],
            "patch_within_one_accuracy": evaluation["patch_within_one_accuracy"],
            "variants": evaluation["variants"],
        }
    report = {
        "steps": arguments.steps,
        "batch_size": arguments.batch_size,
        "seed": arguments.seed,
        "image_for_timing": f"{timing_image.shape[1]}x{timing_image.shape[0]}",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
                   f"{platform.python_version()}",
        "results": results,
    }
    if {"default", "paper"} <= set(results):
        report["speedup_default_over_paper"] = (results["paper"]["seconds_per_image"]
                                               / results["default"]["seconds_per_image"])
    (out / "comparison.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"Trained the same way: {arguments.steps} steps of {arguments.batch_size} patches, seed "
             f"{arguments.seed}; evaluated on {len(arguments.validation)} held-out images; timed on one "
             f"{report['image_for_timing']} image ({report['machine']}).", "",
             "| architecture | parameters | weights | s / image | exact | within one | worst camera variant, within one |",
             "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        worst = min(v["within_one_accuracy"] for v in r["variants"])
        lines.append(f"| `{name}` | {r['parameters']:,} | {r['weights_mb']:.2f} MB | {r['seconds_per_image']:.4f} | "
                     f"{r['exact_accuracy']:.1%} | {r['within_one_accuracy']:.1%} | {worst:.1%} |")
    if "speedup_default_over_paper" in report:
        lines += ["", f"`default` is {report['speedup_default_over_paper']:.1f}x faster per image than `paper`."]
    (out / "comparison.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
