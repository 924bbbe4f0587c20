"""A refocus model's evaluation (``evaluation.json``), its restorable levels, plots and model card.

The levels a model refocuses (``restorable_levels`` in its config) are set
from its evaluation on simulated defocus of held-out images: a level is
restorable when the mean PSNR gain over the unrestored image is at least
:data:`MIN_GAIN_DB` and no image loses more than :data:`MAX_LOSS_DB`.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..contract import CARD_FILE, EVALUATION_FILE
from ..files import write_text
from .validate import METHODS

MIN_GAIN_DB = 1.0
MAX_LOSS_DB = 0.5
METHOD_NAMES = {"unrestored": "unrestored", "refocused": "refocused (focusnet)",
                "rl_true_distance": "Richardson-Lucy, true distance (oracle)",
                "rl_estimated_distance": "Richardson-Lucy, classifier's distance"}


def restorable_levels(synthetic: dict) -> list:
    """The levels whose evaluation meets the restorable rule (see the module's description)."""
    return [int(level) for level, summary in synthetic["summary"]["by_level"].items()
            if summary["gain_db"] >= MIN_GAIN_DB and summary["worst_gain_db"] >= -MAX_LOSS_DB]


def save_synthetic_plot(synthetic: dict, path) -> None:
    """Mean PSNR of each method against the defocus level."""
    from ..figures import pyplot, save_figure

    plt = pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    levels = [int(level) for level in synthetic["summary"]["by_level"]]
    for method in METHODS:
        axis.plot(levels, [synthetic["summary"]["by_level"][str(level)][method]["psnr"] for level in levels],
                  marker="o", label=METHOD_NAMES[method])
    axis.set_xlabel("defocus level (simulated)")
    axis.set_ylabel("PSNR against the in-focus image (dB)")
    axis.legend(fontsize=8)
    figure.tight_layout()
    save_figure(figure, path, dpi=100)


def save_stack_plot(result: dict, path) -> None:
    """PSNR of each method against the distance from the best plane, for every evaluated plane."""
    from ..figures import pyplot, save_figure

    plt = pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    planes = [p for p in result["planes"] if "skipped" not in p]
    best = result["best_plane"]
    signed = [(p["plane"] - best) * result["z_step_um"] for p in planes]
    for method in METHODS:
        axis.plot(signed, [p[method]["psnr"] for p in planes], marker="o", linestyle="", label=METHOD_NAMES[method])
    axis.set_xlabel(f"distance from the best plane ({best}) in um")
    axis.set_ylabel("PSNR against the best plane (dB)")
    axis.set_title(Path(result["stack"]).name, fontsize=9)
    axis.legend(fontsize=8)
    figure.tight_layout()
    save_figure(figure, path, dpi=100)


def _psnr_table(rows: dict) -> list:
    lines = ["| | " + " | ".join(METHOD_NAMES[m] for m in METHODS) + " | gain | worst |",
             "|---" * (len(METHODS) + 3) + "|"]
    for label, summary in rows.items():
        cells = " | ".join(f"{summary[m]['psnr']:.2f} / {summary[m]['ssim']:.3f}" for m in METHODS)
        lines.append(f"| {label} | {cells} | {summary['gain_db']:+.2f} dB | {summary['worst_gain_db']:+.2f} dB |")
    return lines


def _minutes(training: dict) -> str:
    last = training.get("last_validation") or {}
    if "elapsed_seconds" not in last:
        return "not recorded"
    return (f"{last['elapsed_seconds'] / 60:.0f} min for the last run's steps ({last['steps_per_second']:.1f} steps/s "
            "at the end)")


def _cell(summary, key, form) -> str:
    return form.format(summary[key]) if summary and summary.get(key) is not None else "-"


def _comparison_table(compared) -> list:
    """The card's table of this model beside others evaluated alike (nothing when there are none)."""
    if len(compared) < 2:
        return []
    lines = ["## Compared", "",
             "The same evaluation of other models (e.g. another loss): mean PSNR gain over the unrestored images "
             "(simulated defocus; real stack planes) and the classifier's mean level after.", "",
             "| model | simulated: gain | level after | real stack: gain | worst | level after |",
             "|---|---|---|---|---|---|"]
    for other in compared:
        synthetic, stack = other["synthetic"], (other["stacks"] or [{}])[0].get("summary")
        lines.append(" | ".join([
            f"| {other['label'] or other['weights_sha256'][:12]}", _cell(synthetic, "gain_db", "{:+.2f} dB"),
            _cell(synthetic, "mean_level_after", "{:.2f}"), _cell(stack, "gain_db", "{:+.2f} dB"),
            _cell(stack, "worst_gain_db", "{:+.2f} dB"), _cell(stack, "mean_level_after", "{:.2f}")]) + " |")
    return lines + [""]


def render_refocus_card(directory) -> str:
    """The model card (Markdown) of a refocus model folder, from its config and evaluation."""
    from .model import read_refocus_config

    directory = Path(directory)
    config = read_refocus_config(directory)
    training, settings, optics = config["training"], config["training"]["settings"], config["simulator"]["optics"]
    loss = ("mean absolute error only" if settings["feature_network"] == "none" or not settings["feature_weight"] else
            f"mean absolute error + {settings['feature_weight']:g} x feature loss ({settings['feature_network']} "
            "network)")
    lines = [f"# Refocus model: {directory.name}", "",
             "A U-Net that restores out-of-focus fluorescence images (focusnet, `focusnet refocus`). Refocused images "
             "are for viewing and segmentation, not for intensity measurements unless validated.", "",
             "## Training", "",
             f"- Network: {config['network']}; trained levels 0-{config['max_level']}; loss: {loss}.",
             f"- Simulator optics: NA {optics['numerical_aperture']:g}, n {optics['refractive_index']:g}, "
             f"{optics['wavelength_um'] * 1000:g} nm, pixels {optics['pixel_size_um']:g} um, "
             f"{optics['z_step_um']:g} um per level ({optics['defocus_phase']} defocus phase).",
             f"- Steps: {training.get('completed_steps', 0)} of {settings['steps']} (batch {settings['batch_size']}, "
             f"{settings['patch_size']} px crops); images: {', '.join(Path(p).name for p in training['images'])}; "
             f"held out: {', '.join(Path(p).name for p in training['validation_images'])}.",
             f"- Training time: {_minutes(training)}; weights SHA-256: `{config['weights']['sha256']}`.",
             f"- Command: `{training.get('command', '')}`", "",
             f"Restores levels: {', '.join(map(str, config['restorable_levels']))} (others are not refocused).", ""]
    path = directory / EVALUATION_FILE
    if path.is_file():
        evaluation = json.loads(path.read_text())
        synthetic = evaluation.get("synthetic")
        if synthetic:
            lines += ["## Simulated defocus of held-out images", "",
                      f"Images: {', '.join(Path(p).name for p in synthetic['images'])}, every level through the camera "
                      f"as imaged and four camera variants (Poisson noise on). PSNR (dB) / SSIM after a least-squares "
                      f"intensity match; Richardson-Lucy: {synthetic['rl_iterations']} iterations with focusnet's PSF.",
                      ""]
            rows = {f"level {level}": s for level, s in synthetic["summary"]["by_level"].items()}
            rows["all"] = synthetic["summary"]
            lines += _psnr_table(rows) + [""]
            if "object_count_error_refocused" in synthetic["summary"]:
                lines += [f"Object count error against the in-focus image (Otsu segmentation): refocused "
                          f"{synthetic['summary']['object_count_error_refocused']:.1%}, unrestored "
                          f"{synthetic['summary']['object_count_error_unrestored']:.1%}.", ""]
        lines += _comparison_table(evaluation.get("compared") or [])
        for stack in evaluation.get("stacks", []):
            summary = stack["summary"]
            if not summary:
                continue
            lines += [f"## Real stack: {Path(stack['stack']).name}", "",
                      f"{summary['planes']} planes up to {stack['max_distance_um']:g} um from the best plane "
                      f"({stack['best_plane']}), each against it:", ""]
            lines += _psnr_table({"all planes": summary}) + [
                "", f"Planes losing more than 0.5 dB: {summary['planes_losing_over_half_db']}; classifier level "
                f"{summary['mean_level_before']:.2f} before, {_cell(summary, 'mean_level_after', '{:.2f}')} after "
                f"(mean; - where no refocused plane could be measured); object "
                f"count error against the best plane {summary['object_count_error']:.0%}.", ""]
    return "\n".join(lines)


def write_refocus_card(directory) -> Path:
    return write_text(Path(directory) / CARD_FILE, render_refocus_card(directory) + "\n")


def comparison(evaluation: dict) -> dict:
    """An evaluation's summaries (what a comparison table needs), without its rows."""
    return {"label": evaluation.get("label", ""), "weights_sha256": evaluation.get("weights_sha256"),
            "synthetic": evaluation["synthetic"]["summary"] if evaluation.get("synthetic") else None,
            "stacks": [{"stack": stack["stack"], "summary": stack["summary"]} for stack in evaluation["stacks"]]}


def read_comparison(path) -> dict:
    """The summaries of an evaluation written by ``focusnet evaluate-refocus --json``."""
    from ..errors import InvalidParameterError

    try:
        return comparison(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InvalidParameterError(f"{path}: not an evaluation written by evaluate-refocus ({error})") from None


def store_evaluation(directory, evaluation: dict, compared=()) -> None:
    """Write ``evaluation.json`` (with ``compared`` models' summaries), set the restorable levels, render the card."""
    from .model import read_refocus_config, write_refocus_config

    directory = Path(directory)
    evaluation = dict(evaluation, compared=[comparison(evaluation), *compared])
    levels = restorable_levels(evaluation["synthetic"])
    write_text(directory / EVALUATION_FILE, json.dumps(evaluation, indent=1, default=float) + "\n")
    config = read_refocus_config(directory)
    config["restorable_levels"] = levels
    write_refocus_config(directory, config)
    write_refocus_card(directory)
