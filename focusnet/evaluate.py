"""Evaluation on simulated defocus series of in-focus images.

Every level 0-10 is synthesised from each in-focus image (fixed seed) and
predicted as a whole image; the same is repeated with the camera changed
(gain x0.2 and x5, offset +100 and +1000 counts) to show robustness.
"""

from __future__ import annotations

import numpy as np

from .images import find_images, read_image
from .inference import predict_image
from .network import NUM_LEVELS
from .optics import Optics
from .simulate import Sensor, apply_sensor, blur_levels

#: Camera variants: (gain, offset added to the source's dark level).
VARIANTS = ((0.2, 0.0), (5.0, 0.0), (1.0, 100.0), (1.0, 1000.0))
PATCH_CERTAINTY_THRESHOLD = 0.5


def _accuracies(true, predicted):
    true, predicted = np.asarray(true), np.asarray(predicted)
    return float(np.mean(true == predicted)), float(np.mean(np.abs(true - predicted) <= 1))


def evaluate(paths, model=None, seed: int = 0, optics: Optics | None = None, progress: bool = True) -> dict:
    """Accuracy of a model on simulated defocus series of in-focus images.

    Parameters
    ----------
    paths : sequence of path-like
        In-focus images (files, folders, globs).
    model : FocusModel or path, optional
        Default: the shipped model.
    seed : int
        Seeds the simulated noise.
    optics : Optics, optional
        Simulator parameters; default: those the model was trained with.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        ``exact_accuracy``, ``within_one_accuracy``, ``confusion`` (11x11,
        rows true level, columns predicted), ``patch_within_one_accuracy``,
        ``variants``, and per-prediction ``records`` for plots.
    """
    from tqdm import tqdm

    from .model import load_model

    model = load_model(model)
    if optics is None:
        optics = Optics(**model.config["simulator"]["optics"])
    files = find_images(paths)
    conditions = [(1.0, 0.0)] + list(VARIANTS)
    records = []
    patch_hits = patch_total = 0
    for image_index, path in enumerate(tqdm(files, desc="evaluate", unit="image", disable=not progress)):
        image = read_image(path)
        counts = image.astype(np.float64)
        dark = float(counts.min())
        blurred = blur_levels(counts, range(NUM_LEVELS), optics)
        for condition_index, (gain, added_offset) in enumerate(conditions):
            rng = np.random.default_rng([seed, image_index, condition_index])
            sensor = Sensor(gain=gain, offset=dark + added_offset)
            for level in range(NUM_LEVELS):
                simulated = apply_sensor(blurred[level], sensor, rng, source_offset=dark)
                prediction = predict_image(simulated, model, name=f"{path} level {level}")
                records.append({"image": str(path), "gain": gain, "offset": added_offset, "level": level,
                                "predicted": prediction.defocus_level,
                                "aggregate_certainty": prediction.aggregate_certainty,
                                "mean_certainty": prediction.mean_certainty})
                if condition_index == 0:
                    confident = prediction.patch_certainty >= PATCH_CERTAINTY_THRESHOLD
                    patch_hits += int(np.sum(np.abs(prediction.patch_levels - level)[confident] <= 1))
                    patch_total += int(confident.sum())
    base = [r for r in records if r["gain"] == 1.0 and r["offset"] == 0.0]
    confusion = np.zeros((NUM_LEVELS, NUM_LEVELS), dtype=int)
    for r in base:
        confusion[r["level"], r["predicted"]] += 1
    exact, within_one = _accuracies([r["level"] for r in base], [r["predicted"] for r in base])
    variants = []
    for gain, added_offset in VARIANTS:
        chosen = [r for r in records if r["gain"] == gain and r["offset"] == added_offset]
        variant_exact, variant_within = _accuracies([r["level"] for r in chosen], [r["predicted"] for r in chosen])
        variants.append({"gain": gain, "offset": added_offset, "exact_accuracy": variant_exact,
                         "within_one_accuracy": variant_within})
    return {
        "model": str(model.directory),
        "images": [str(p) for p in files],
        "seed": seed,
        "num_predictions": len(base),
        "exact_accuracy": exact,
        "within_one_accuracy": within_one,
        "confusion": confusion.tolist(),
        "patch_within_one_accuracy": patch_hits / patch_total if patch_total else float("nan"),
        "patch_certainty_threshold": PATCH_CERTAINTY_THRESHOLD,
        "confident_patches": patch_total,
        "variants": variants,
        "records": records,
    }


def save_evaluation_plots(result: dict, directory) -> list:
    """Confusion matrix (as Figure 4 of the paper) and mean vs aggregate certainty (Figure 2c)."""
    from pathlib import Path

    from .figures import pyplot

    plt = pyplot()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    confusion = np.asarray(result["confusion"], dtype=float)
    rows = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    figure, axis = plt.subplots(figsize=(5.5, 4.8))
    shown = axis.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    for (true, predicted), count in np.ndenumerate(confusion):
        if count:
            axis.text(predicted, true, f"{int(count)}", ha="center", va="center", fontsize=7,
                      color="white" if rows[true, predicted] > 0.5 else "black")
    axis.set_xlabel("predicted defocus level")
    axis.set_ylabel("true defocus level")
    axis.set_xticks(range(NUM_LEVELS))
    axis.set_yticks(range(NUM_LEVELS))
    axis.set_title(f"exact {result['exact_accuracy']:.1%}, within one {result['within_one_accuracy']:.1%}",
                   fontsize=9)
    figure.colorbar(shown, label="fraction of true level")
    figure.tight_layout()
    confusion_path = directory / "confusion.png"
    figure.savefig(confusion_path, dpi=110)
    plt.close(figure)

    base = [r for r in result["records"] if r["gain"] == 1.0 and r["offset"] == 0.0]
    figure, axis = plt.subplots(figsize=(5, 4.5))
    correct = np.array([abs(r["level"] - r["predicted"]) <= 1 for r in base])
    mean_c = np.array([r["mean_certainty"] for r in base])
    aggregate_c = np.array([r["aggregate_certainty"] for r in base])
    axis.scatter(mean_c[correct], aggregate_c[correct], s=12, label="within one level")
    axis.scatter(mean_c[~correct], aggregate_c[~correct], s=18, marker="x", color="red", label="off by 2 or more")
    axis.set_xlabel("mean patch certainty")
    axis.set_ylabel("aggregate certainty")
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
    axis.legend(fontsize=8)
    figure.tight_layout()
    certainty_path = directory / "certainty.png"
    figure.savefig(certainty_path, dpi=110)
    plt.close(figure)
    return [confusion_path, certainty_path]
