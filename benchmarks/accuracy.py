"""Accuracy: focusnet against CellProfiler's classic focus metrics.

After Bray et al. 2012 and Yang et al. 2018. From in-focus images the shipped model never
trained on, every defocus level 0-10 is synthesised (fixed seed; each image is cut into
crops, and each crop series gets its own noise), then:

* **Binary task**: in focus = levels 0-1, out of focus = levels >= 3 (level 2 left out as
  borderline; "positive" = out of focus). Each classic metric (FocusScore,
  LocalFocusScore, Correlation, PowerLogLogSlope), computed by CellProfiler's own
  MeasureImageQuality module, gets the threshold that maximises its F-score on a random
  10 % validation subset; its F-score on the other 90 % is reported. focusnet is not tuned
  at all: an image is out of focus when its absolute level is >= 3 (focusnet.plate.DEFOCUSED_LEVEL).
* **Real images**: the same rules (classic thresholds from the synthetic validation subset)
  on real sharp BBBC006 images against real, optically defocused MCF-7 images.
* **Level resolution**: per series, the Spearman correlation of each metric with the level
  (sign-corrected: 1 = orders the 11 levels perfectly); for focusnet, also the exact and
  within-one accuracy of its level.
* **Robustness**: gain x0.2, x5 and offset +1000 counts; classic metrics keep the
  thresholds tuned on unmodified images, as a user would.

Usage::

    python benchmarks/accuracy.py [--out DIR] [--seed N] [--smoke]

Writes ``DIR/accuracy.json``, ``DIR/accuracy.md``, ``DIR/fscore.png`` and
``DIR/metric_vs_level.png``.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    CLASSIC_METRICS,
    REPO,
    SHARED_DATA,
    SHARPER_IF_LARGER,
    classic_metrics,
    in_focus_sources,
    quality_module,
)
from focusnet.contract import LEVELS  # noqa: E402
from focusnet.simulate import AS_IMAGED, CAMERA_VARIANTS  # noqa: E402

# The shared camera variants, less offset +100 (offset +1000 is the harder case), to keep the run short.
CAMERAS = (AS_IMAGED,) + tuple(camera for camera in CAMERA_VARIANTS if camera.name != "offset +100")
CONDITIONS = tuple(camera.name for camera in CAMERAS)
FOCUSNET_OUT_OF_FOCUS_FROM = 3
METRIC_LABELS = {"FocusScore": "FocusScore", "LocalFocusScore_DNA_20": "LocalFocusScore",
                 "Correlation_DNA_20": "Correlation", "PowerLogLogSlope": "PowerLogLogSlope"}


def f_score(truth_out, predicted_out):
    truth_out, predicted_out = np.asarray(truth_out, bool), np.asarray(predicted_out, bool)
    true_positive = np.sum(truth_out & predicted_out)
    if true_positive == 0:
        return 0.0
    precision = true_positive / np.sum(predicted_out)
    recall = true_positive / np.sum(truth_out)
    return float(2 * precision * recall / (precision + recall))


def best_threshold(sharpness, truth_out):
    """Threshold on sign-corrected sharpness (out of focus if below) maximising F on these samples."""
    values = np.unique(sharpness)
    candidates = np.concatenate([[values[0] - 1], (values[:-1] + values[1:]) / 2, [values[-1] + 1]])
    scores = [f_score(truth_out, sharpness < t) for t in candidates]
    return float(candidates[int(np.argmax(scores))])


def crops_of(image, pieces):
    """``pieces`` x ``pieces`` equal crops of an image (each at least 84 px)."""
    height, width = image.shape[0] // pieces, image.shape[1] // pieces
    return [(slice(r * height, (r + 1) * height), slice(c * width, (c + 1) * width))
            for r in range(pieces) for c in range(pieces)]


def synthesise(sources, seeds, pieces, progress):
    """Measure every level of every crop under every condition: a list of records."""
    from tqdm import tqdm

    from focusnet.contract import LEVELS
    from focusnet.images import read_image
    from focusnet.inference import model_optics
    from focusnet.loader import load_model
    from focusnet.simulate import blur_levels

    model = load_model()
    module = quality_module()
    records = []
    jobs = [(path, seed) for path in sources for seed in seeds]
    for path, seed in tqdm(jobs, desc="simulate and measure", unit="series", disable=not progress):
        counts = read_image(path).astype(float)
        dark = counts.min()
        # The model's own simulated optics (its defocus phase too), as focusnet.evaluate uses.
        blurred = blur_levels(counts, LEVELS, model_optics(model))
        for camera_index, camera in enumerate(CAMERAS):
            rng = np.random.default_rng([seed, camera_index])
            for level in LEVELS:
                simulated = camera.apply(blurred[level], dark, rng)
                for crop_index, (rows, cols) in enumerate(crops_of(simulated, pieces)):
                    crop = simulated[rows, cols]
                    record = {"source": Path(path).name, "seed": seed, "crop": crop_index, "condition": camera.name,
                              "level": level, "focusnet_level": focusnet_level(crop, model)}
                    record.update(classic_metrics(module, crop))
                    records.append(record)
    return records


def focusnet_level(crop, model):
    """focusnet's level of a crop, or None where it gives none (no content, too noisy: counted as not flagged)."""
    from focusnet.errors import UnmeasurableImageError
    from focusnet.inference import predict_image

    try:
        return predict_image(crop, model).defocus_level
    except UnmeasurableImageError:
        return None


def flagged(record) -> bool:
    """focusnet's binary answer: out of focus; an image without a level is not flagged."""
    return record["focusnet_level"] is not None and record["focusnet_level"] >= FOCUSNET_OUT_OF_FOCUS_FROM


def real_records():
    from pathlib import Path

    from focusnet.batch import predict_paths

    module = quality_module()
    records = []
    for folder, out_of_focus in (("bbbc006_in_focus", False), ("mcf7_out_of_focus", True)):
        # The batch path focusnet predict takes: read, measure, a reason for anything unmeasurable.
        for result in predict_paths([SHARED_DATA / folder]):
            if not result.measured:
                raise SystemExit(f"accuracy benchmark: {result.reason}")
            record = {"image": Path(result.path).name, "out_of_focus": out_of_focus,
                      "focusnet_level": result.prediction.defocus_level}
            record.update(classic_metrics(module, result.image))
            records.append(record)
    return records


def sharpness(records, metric):
    return np.array([SHARPER_IF_LARGER[metric] * r[metric] for r in records])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"), help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="one image, one seed (a check that it runs)")
    arguments = parser.parse_args()
    out = Path(arguments.out)
    out.mkdir(parents=True, exist_ok=True)

    sources = in_focus_sources()
    seeds = [arguments.seed] if arguments.smoke else [arguments.seed + k for k in range(3)]
    if arguments.smoke:
        sources = sources[:1]
    records = synthesise(sources, seeds, pieces=1 if arguments.smoke else 2, progress=not arguments.smoke)

    # Binary task: levels 0-1 vs >= 3, a fixed random 10 % validation subset of the unmodified samples.
    binary = [r for r in records if r["level"] != 2]
    base = [r for r in binary if r["condition"] == "as imaged"]
    rng = np.random.default_rng(arguments.seed)
    validation_mask = np.zeros(len(base), bool)
    validation_mask[rng.choice(len(base), size=max(2, len(base) // 10), replace=False)] = True
    validation = [r for r, v in zip(base, validation_mask) if v]
    thresholds = {m: best_threshold(sharpness(validation, m), [r["level"] >= 3 for r in validation])
                  for m in CLASSIC_METRICS}
    keys_in_validation = {(r["source"], r["seed"], r["crop"], r["level"]) for r in validation}

    def held_out(condition):
        return [r for r in binary if r["condition"] == condition
                and (r["source"], r["seed"], r["crop"], r["level"]) not in keys_in_validation]

    fscores = {}
    for condition in CONDITIONS:
        test = held_out(condition)
        truth = [r["level"] >= 3 for r in test]
        fscores[condition] = {METRIC_LABELS[m]: f_score(truth, sharpness(test, m) < thresholds[m])
                              for m in CLASSIC_METRICS}
        fscores[condition]["focusnet"] = f_score(truth, [flagged(r) for r in test])

    # Real images, same rules.
    real = real_records()
    real_truth = [r["out_of_focus"] for r in real]
    real_fscores = {METRIC_LABELS[m]: f_score(real_truth, sharpness(real, m) < thresholds[m]) for m in CLASSIC_METRICS}
    real_fscores["focusnet"] = f_score(real_truth, [flagged(r) for r in real])

    # Level resolution on unmodified series.
    series = {}
    for r in records:
        if r["condition"] == "as imaged":
            series.setdefault((r["source"], r["seed"], r["crop"]), []).append(r)
    ordering = {METRIC_LABELS[m]: float(np.nanmean([spearmanr([r["level"] for r in s], -sharpness(s, m)).correlation
                                                    for s in series.values()]))
                for m in CLASSIC_METRICS}
    ordering["focusnet"] = float(np.nanmean([spearmanr(*zip(*[(r["level"], r["focusnet_level"]) for r in s
                                                             if r["focusnet_level"] is not None])).correlation
                                             for s in series.values()]))
    as_imaged = [r for r in records if r["condition"] == "as imaged"]
    # An image without a level (too noisy, no content) counts as a miss.
    focusnet_levels = {
        "exact_accuracy": float(np.mean([r["focusnet_level"] == r["level"] for r in as_imaged])),
        "within_one_accuracy": float(np.mean([r["focusnet_level"] is not None and abs(r["focusnet_level"] - r["level"])
                                              <= 1 for r in as_imaged])),
        "without_a_level": {condition: sum(r["focusnet_level"] is None for r in records if r["condition"] == condition)
                            for condition in CONDITIONS},
    }

    report = {
        "sources": [Path(p).name for p in sources], "seeds": seeds, "samples": len(records),
        "binary_samples_per_condition": len(base), "validation_samples": len(validation),
        "thresholds": {METRIC_LABELS[m]: t for m, t in thresholds.items()},
        "focusnet_rule": f"out of focus if level >= {FOCUSNET_OUT_OF_FOCUS_FROM}",
        "fscore": fscores, "real_images_fscore": real_fscores,
        "real_images": real, "level_ordering_spearman": ordering, "focusnet_levels": focusnet_levels,
    }
    (out / "accuracy.json").write_text(json.dumps(report, indent=2, default=float) + "\n")

    methods = list(METRIC_LABELS.values()) + ["focusnet"]
    lines = [
        f"Synthetic defocus of {len(sources)} held-out in-focus images ({', '.join(report['sources'])}), "
        f"{len(seeds)} noise seed(s), {len(records) // len(CONDITIONS)} images per condition; binary task on "
        f"{len(base)} images per condition (classic thresholds tuned on {len(validation)}, F-score on the rest; "
        f"positive = out of focus). focusnet: no tuning, out of focus if level >= {FOCUSNET_OUT_OF_FOCUS_FROM}.",
        "",
        "| F-score | " + " | ".join(methods) + " |",
        "|---|" + "---|" * len(methods),
    ]
    for condition in CONDITIONS:
        lines.append(f"| {condition} | " + " | ".join(f"{fscores[condition][m]:.3f}" for m in methods) + " |")
    lines.append(f"| real images ({sum(real_truth)} MCF-7 out of focus, {len(real_truth) - sum(real_truth)} sharp "
                 "BBBC006) | " + " | ".join(f"{real_fscores[m]:.3f}" for m in methods) + " |")
    lines += ["", "| ordering of the 11 levels (mean Spearman, 1 = perfect) | " + " | ".join(methods) + " |",
              "|---|" + "---|" * len(methods),
              "| as imaged | " + " | ".join(f"{ordering[m]:.3f}" for m in methods) + " |",
              "", f"focusnet's absolute level on the same series: exact {focusnet_levels['exact_accuracy']:.1%}, "
                  f"within one {focusnet_levels['within_one_accuracy']:.1%}. Images it gave no level (too noisy to "
                  "judge, or no content; counted as not flagged and as misses): " + ", ".join(
                      f"{condition} {count}" for condition, count in focusnet_levels["without_a_level"].items()) + "."]
    text = "\n".join(lines)
    (out / "accuracy.md").write_text(text + "\n")
    save_plots(records, fscores, real_fscores, methods, out)
    print(text)


def save_plots(records, fscores, real_fscores, methods, out):
    from focusnet.figures import pyplot

    plt = pyplot()
    figure, axis = plt.subplots(figsize=(9, 4))
    groups = list(CONDITIONS) + ["real images"]
    width = 0.8 / len(methods)
    for index, method in enumerate(methods):
        values = [fscores[g][method] for g in groups[:-1]] + [real_fscores[method]]
        axis.bar(np.arange(len(groups)) + index * width, values, width, label=method)
    axis.set_xticks(np.arange(len(groups)) + 0.4 - width / 2)
    axis.set_xticklabels(groups)
    axis.set_ylabel("F-score (out of focus)")
    axis.set_ylim(0, 1.05)
    axis.legend(fontsize=8, ncol=3)
    figure.tight_layout()
    figure.savefig(out / "fscore.png", dpi=110)
    plt.close(figure)

    figure, axes = plt.subplots(1, len(CLASSIC_METRICS) + 1, figsize=(15, 3.2))
    base = [r for r in records if r["condition"] == "as imaged"]
    levels = np.array(LEVELS)
    for axis, metric in zip(axes, list(CLASSIC_METRICS) + ["focusnet_level"]):
        by_series = {}
        for r in base:
            by_series.setdefault((r["source"], r["seed"], r["crop"]), {})[r["level"]] = r[metric]
        for values in by_series.values():
            axis.plot(levels, [values[level] for level in levels], color="C0", alpha=0.4, lw=1)
        axis.set_title(METRIC_LABELS.get(metric, "focusnet level"), fontsize=9)
        axis.set_xlabel("true defocus level")
    figure.tight_layout()
    figure.savefig(out / "metric_vs_level.png", dpi=110)
    plt.close(figure)


if __name__ == "__main__":
    main()
