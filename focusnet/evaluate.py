"""Evaluation on simulated defocus series of in-focus images.

Every level 0-10 is synthesised from each in-focus image (fixed seed) and
predicted as a whole image; the same is repeated with the camera changed
(gain x0.2 and x5, offset +100 and +1000 counts) to show robustness.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .contract import NUM_LEVELS
from .errors import UnmeasurableImageError
from .images import find_images, read_image
from .inference import predict_image
from .loader import load_model
from .optics import Optics
from .simulate import AS_IMAGED, CAMERA_VARIANTS, blur_levels

PATCH_CERTAINTY_THRESHOLD = 0.5


def _accuracies(true, predicted):
    # An image that could not be measured (None) counts as a miss; with none measured there is no accuracy (NaN).
    if all(p is None for p in predicted):
        return float("nan"), float("nan")
    hits = [p is not None and p == t for t, p in zip(true, predicted)]
    near = [p is not None and abs(p - t) <= 1 for t, p in zip(true, predicted)]
    return float(np.mean(hits)), float(np.mean(near))


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
        ``variants``, ``unmeasurable`` (images counted as misses) and per-prediction
        ``records`` for plots. Accuracies are NaN where no image could be measured (an
        accuracy of nothing is not 0 %).
    """
    from tqdm import tqdm

    model = load_model(model)
    if optics is None:
        optics = Optics(**model.config["simulator"]["optics"])
    files = find_images(paths)
    cameras = (AS_IMAGED,) + CAMERA_VARIANTS
    records = []
    patch_hits = patch_total = 0
    for image_index, path in enumerate(tqdm(files, desc="evaluate", unit="image", disable=not progress)):
        image = read_image(path)
        counts = image.astype(np.float64)
        dark = float(counts.min())
        blurred = blur_levels(counts, range(NUM_LEVELS), optics)
        for camera_index, camera in enumerate(cameras):
            rng = np.random.default_rng([seed, image_index, camera_index])
            for level in range(NUM_LEVELS):
                simulated = camera.apply(blurred[level], dark, rng)
                record = {"image": str(path), "camera": camera.name, "gain": camera.gain,
                          "offset": camera.added_offset, "level": level}
                try:
                    prediction = predict_image(simulated, model, name=f"{path} level {level}")
                except UnmeasurableImageError:  # e.g. an empty held-out field: counted as a miss
                    records.append(dict(record, predicted=None, aggregate_certainty=0.0, mean_certainty=0.0))
                    continue
                records.append(dict(record, predicted=prediction.defocus_level,
                                    aggregate_certainty=prediction.aggregate_certainty,
                                    mean_certainty=prediction.mean_certainty))
                if camera is AS_IMAGED:
                    confident = (prediction.patch_certainty >= PATCH_CERTAINTY_THRESHOLD) & prediction.judged_patches
                    patch_hits += int(np.sum(np.abs(prediction.patch_levels - level)[confident] <= 1))
                    patch_total += int(confident.sum())
    base = [r for r in records if r["camera"] == AS_IMAGED.name]
    confusion = np.zeros((NUM_LEVELS, NUM_LEVELS), dtype=int)
    for r in base:
        if r["predicted"] is not None:
            confusion[r["level"], r["predicted"]] += 1
    exact, within_one = _accuracies([r["level"] for r in base], [r["predicted"] for r in base])
    variants = []
    for camera in CAMERA_VARIANTS:
        chosen = [r for r in records if r["camera"] == camera.name]
        variant_exact, variant_within = _accuracies([r["level"] for r in chosen], [r["predicted"] for r in chosen])
        variants.append({"name": camera.name, "gain": camera.gain, "offset": camera.added_offset,
                         "exact_accuracy": variant_exact, "within_one_accuracy": variant_within})
    return {
        "model": str(model.directory),
        "images": [str(p) for p in files],
        "seed": seed,
        "num_predictions": len(base),
        "unmeasurable": sum(r["predicted"] is None for r in base),
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
    from .figures import pyplot, save_figure

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
    save_figure(figure, confusion_path, dpi=110)

    base = [r for r in result["records"] if r["camera"] == AS_IMAGED.name]
    figure, axis = plt.subplots(figsize=(5, 4.5))
    correct = np.array([r["predicted"] is not None and abs(r["level"] - r["predicted"]) <= 1 for r in base])
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
    save_figure(figure, certainty_path, dpi=110)
    return [confusion_path, certainty_path]


#: Real images whose focus is known only roughly: the level each kind must have.
REAL_IMAGE_EXPECTATIONS = {"in_focus": ("<=", 1), "out_of_focus": (">=", 3)}


def check_real_images(paths, kind: str, model=None) -> dict:
    """Whole-image levels of real images whose focus is known only roughly, with no tuning.

    Parameters
    ----------
    paths : sequence of path-like
        Files, folders or globs of real images.
    kind : {'in_focus', 'out_of_focus'}
        Sharp images are expected at level <= 1, real out-of-focus images at
        level >= 3 (:data:`REAL_IMAGE_EXPECTATIONS`).
    model : optional
        Default: the shipped model.

    Returns
    -------
    dict
        ``kind``, ``folder`` (the arguments as given) and ``images``: one
        ``{image, defocus_level, aggregate_certainty, as_expected}`` each.
    """
    comparison, limit = REAL_IMAGE_EXPECTATIONS[kind]

    def expected(level):
        return level <= limit if comparison == "<=" else level >= limit

    from .batch import predict_paths

    rows = []
    for result in predict_paths(paths, model):  # pixel sizes from the files, as focusnet predict reads them
        if result.prediction is None:  # e.g. an empty field: not as expected
            rows.append({"image": Path(result.path).name, "defocus_level": None, "aggregate_certainty": float("nan"),
                         "as_expected": False, "reason": result.reason})
            continue
        rows.append({"image": Path(result.path).name, "defocus_level": result.prediction.defocus_level,
                     "aggregate_certainty": result.prediction.aggregate_certainty,
                     "as_expected": bool(expected(result.prediction.defocus_level))})
    return {"kind": kind, "folder": " ".join(str(p) for p in paths), "images": rows}


def evaluation_record(result: dict, real_image_checks=(), plots=(), command: str = "", weights_sha256=None) -> dict:
    """What a model folder's ``evaluation.json`` holds: the figures its card is rendered from.

    ``weights_sha256`` ties the figures to the weights they were measured with.
    """
    import platform

    from . import __version__

    return {"command": command, "focusnet_version": __version__,
            "platform": f"Python {platform.python_version()}, {platform.machine()}",
            "weights_sha256": weights_sha256,
            "simulated": {key: value for key, value in result.items() if key not in ("records", "model")},
            "real_images": list(real_image_checks), "plots": [str(p) for p in plots]}
