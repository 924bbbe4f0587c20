"""The model card (``README.md`` of a model folder), rendered from data.

The card is made from two files and nothing else: ``config.json`` (what the
model is and how it was trained) and, once the model is evaluated,
``evaluation.json`` (written by :func:`evaluate_model_folder`, which
``focusnet evaluate --model DIR --write-card`` runs). Re-rendering never
parses a previous card.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .contract import CARD_FILE, CONFIG_FILE, EVALUATION_FILE, TRAINING_LOG_FILE, TRAINING_PLOT_FILE, WEIGHTS_FILE
from .files import write_text
from .model import read_config

#: How each real-image check is titled in the card.
REAL_IMAGE_TITLES = {"in_focus": "Real in-focus images", "out_of_focus": "Real out-of-focus images"}


def read_evaluation(directory):
    """The model folder's ``evaluation.json``, or None when it has not been evaluated."""
    path = Path(directory) / EVALUATION_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def write_evaluation(directory, evaluation: dict) -> Path:
    """Write ``evaluation.json`` into a model folder and render its card again."""
    path = write_text(Path(directory) / EVALUATION_FILE, json.dumps(evaluation, indent=2, default=float) + "\n")
    write_model_card(directory)
    return path


def _level(level) -> str:
    return "not measured" if level is None else str(level)


def _percent(value) -> str:
    return f"{value:.1%}"


def _evaluation_section(evaluation, directory, weights_sha256, trained=()) -> list:
    from .evaluate import REAL_IMAGE_EXPECTATIONS

    if evaluation is None:
        return ["## Evaluation", "",
                "Not evaluated yet. To evaluate it and write the figures into this card, run from the repository "
                "root:", "", "```bash",
                f"focusnet evaluate HELD_OUT_IN_FOCUS_IMAGES --model {directory} --write-card "
                "[--sharp REAL_SHARP_DIR] [--out-of-focus REAL_BLURRED_DIR]", "```"]
    simulated = evaluation["simulated"]
    lines = ["## Evaluation", ""]
    if evaluation.get("weights_sha256") != weights_sha256:
        lines += ["**Stale: these figures were measured on other weights than this folder holds now.** Run the "
                  "command at the end of this section again.", ""]
    lines += [
        f"Simulated defocus series (levels 0-10, seed {simulated['seed']}) of {len(simulated['images'])} in-focus "
        f"images held out from training ({', '.join(f'`{Path(p).name}`' for p in simulated['images'])}), "
        f"{simulated['num_predictions']} whole-image predictions"
        + (f" ({simulated['unmeasurable']} of them not measurable: no content, counted as misses)"
           if simulated.get("unmeasurable") else "") + ":",
        "",
        "| condition | exact | within one |",
        "|---|---|---|",
        f"| as imaged | {_percent(simulated['exact_accuracy'])} | {_percent(simulated['within_one_accuracy'])} |",
    ]
    lines += [f"| {variant['name']} | {_percent(variant['exact_accuracy'])} | "
              f"{_percent(variant['within_one_accuracy'])} |" for variant in simulated["variants"]]
    worst = min(variant["within_one_accuracy"] for variant in simulated["variants"])
    lines += [
        "",
        f"Largest loss of within-one accuracy under a camera change: "
        f"{(simulated['within_one_accuracy'] - worst) * 100:.1f} points. Patches with certainty >= "
        f"{simulated['patch_certainty_threshold']:g}: {_percent(simulated['patch_within_one_accuracy'])} within one "
        f"level ({simulated['confident_patches']} patches).",
        "",
        f"Plots: {', '.join(f'`{plot}`' for plot in evaluation.get('plots', []))}.",
        "",
        "Confusion matrix (rows: true level, columns: predicted level):",
        "",
        "```",
        *[" ".join(f"{count:2d}" for count in row) for row in simulated["confusion"]],
        "```",
    ]
    for check in evaluation.get("real_images", []):
        title = REAL_IMAGE_TITLES[check["kind"]]
        expectation = " ".join(str(part) for part in REAL_IMAGE_EXPECTATIONS[check["kind"]])
        rows = check["images"]
        passed = sum(row["as_expected"] for row in rows)
        seen = [row["image"] for row in rows if row["image"] in trained]
        lines += ["", f"{title} (`{check['folder']}`), expected level {expectation}: {passed} of {len(rows)} as "
                      "expected." + (f" {len(seen)} of them were training images (marked *trained*)." if seen else ""),
                  "", "| image | level | aggregate certainty |", "|---|---|---|"]
        lines += [f"| `{row['image'][:48]}`{' (*trained*)' if row['image'] in trained else ''} | "
                  f"{_level(row['defocus_level'])} | {row['aggregate_certainty']:.2f} |" for row in rows]
    lines += ["", f"Measured with focusnet {evaluation['focusnet_version']} on {evaluation['platform']}, with:", "",
              "```bash", evaluation["command"], "```"]
    return lines


def _origin(training: dict, settings: dict) -> list:
    lines = []
    if settings.get("init_model"):
        source = "the shipped model" if settings["init_model"] == "shipped" else f"`{settings['init_model']}`"
        lines += [f"Fine-tuned from {source} (weights SHA-256 "
                  f"`{str(training.get('init_weights_sha256', '?'))[:12]}...`), its batch normalisation (with the "
                  "convolutions' folded biases) frozen.", ""]
    if training.get("split_from"):
        lines += [f"From one in-focus image, `{Path(training['split_from']).name}`, split in two: the upper (or left) "
                  "part trained on, the rest held out (both in `split/`).", ""]
    return lines


def _run_summary(training: dict, settings: dict) -> str:
    if not {"steps", "batch_size", "learning_rate", "seed"} <= set(settings):
        return f"Training settings not recorded (completed steps: {training.get('completed_steps', 0)})."
    return (f"{training.get('completed_steps', 0)} of {settings['steps']} steps, batch {settings['batch_size']}, "
            f"Adam, learning rate {settings['learning_rate']:g} with cosine decay, seed {settings['seed']}. "
            f"Log: `{TRAINING_LOG_FILE}`, curves: `{TRAINING_PLOT_FILE}`.")


def _training_command(training: dict, optics: dict) -> str:
    """The recorded training command, stating the defocus phase the model was simulated with.

    ``focusnet train`` simulates with the exact phase unless ``--defocus-phase`` says
    otherwise, and models of format 2 and earlier were simulated with the paraxial one
    without recording it: the phase is added to a command that lacks it, so the command
    reproduces the model whatever the default.
    """
    command = training.get("command")
    if not command:
        return "(command not recorded)"
    phase = optics.get("defocus_phase")
    if phase and command.startswith("focusnet train ") and "--defocus-phase" not in command.split():
        command += f" --defocus-phase {phase}"
    return command


def render_card(directory) -> str:
    """The model card's markdown, from the folder's ``config.json`` and ``evaluation.json``."""
    directory = Path(directory)
    config = read_config(directory)  # upgraded in memory; the card states the version on disk
    on_disk_version = json.loads((directory / CONFIG_FILE).read_text()).get("format_version")
    training = config["training"]
    settings = training.get("settings", {})
    optics = config["simulator"]["optics"]
    augmentation = config["simulator"].get("augmentation", {})
    with np.load(directory / WEIGHTS_FILE) as weights:
        parameters = sum(int(np.prod(weights[name].shape)) for name in weights.files)
    lines = [
        f"# focusnet model: {directory.name}",
        "",
        f"Architecture `{config['architecture']}` ({parameters:,} parameters, "
        f"{(directory / WEIGHTS_FILE).stat().st_size / 1e6:.2f} MB of weights), model format "
        f"{on_disk_version}, focusnet {config['focusnet_version']}. Input: {config['patch_size']}x"
        f"{config['patch_size']} patches of raw counts / {config['input_scale']:g}; output: probabilities of "
        f"{config['num_levels']} defocus levels (level L = {optics['z_step_um']:g} L um from focus in the "
        f"simulation; `defocus_um` converts to a real objective's micrometres).",
        "",
        "## Training data",
        "",
        f"In-focus images only, degraded on the fly by the focusnet simulator (PSF with the "
        f"{optics.get('defocus_phase', 'exact')} defocus phase, wavelength "
        f"{optics['wavelength_um']} um, NA {optics['numerical_aperture']}, n {optics['refractive_index']}, "
        f"{optics['pixel_size_um']} um pixels), with gain log-uniform in {augmentation.get('gain_range')} and offset "
        f"log-uniform in {augmentation.get('offset_range')} counts, Poisson noise, flips and rotations.",
        "",
        *_origin(training, settings),
        "Training images:",
        "",
        *[f"- `{Path(p).name}`" for p in training.get("images", [])],
        "",
        "Held out (validation during training, and evaluation):",
        "",
        *[f"- `{Path(p).name}`" for p in training.get("validation_images", [])],
        "",
        _run_summary(training, settings),
        "",
        "## Reproduce",
        "",
        "From the repository root, in the environment `make env` builds (relative paths are as given), training:",
        "",
        "```bash",
        _training_command(training, optics),
        "```",
        "",
        *_evaluation_section(read_evaluation(directory), directory, config["weights"]["sha256"],
                             {Path(p).name for p in training.get("images", [])}),
        "",
        "## Known limits",
        "",
        f"- Trained on simulated defocus of nuclear stains (Hoechst/DAPI) at about {optics['pixel_size_um']} um per "
        "pixel; other magnifications, stains or textures may be measured less accurately.",
        f"- Levels are absolute only for optics similar to the simulated ones (NA {optics['numerical_aperture']}, "
        f"{optics['wavelength_um'] * 1000:g} nm emission); a higher NA blurs faster per micrometre of defocus.",
        "- Patches without structure above their noise (empty background, dark frames) are not judged: they are "
        "marked (`content` 0) and left out of the whole-image answer, and an image without any such structure "
        "gets no level (\"no content\").",
        "- Levels are distances from focus: above and below focus look the same.",
        "",
    ]
    return "\n".join(lines)


def write_model_card(directory) -> Path:
    """Render ``README.md`` of a model folder from its data (see :func:`render_card`)."""
    return write_text(Path(directory) / CARD_FILE, render_card(directory))


def evaluate_model_folder(model_dir, paths, sharp=None, out_of_focus=None, seed: int = 0, command: str = "",
                          progress: bool = True) -> dict:
    """Evaluate a model folder, write ``evaluation.json`` and its plots into it, and render its card.

    Parameters
    ----------
    model_dir : path-like
        The model folder.
    paths : sequence of path-like
        In-focus images the model was not trained on.
    sharp, out_of_focus : path-like, optional
        Folders of real sharp and real out-of-focus images (see
        :func:`check_real_images`).
    seed : int
    command : str
        The command that runs this evaluation, recorded in the card.
    progress : bool

    Returns
    -------
    dict
        What was written to ``evaluation.json``.
    """
    from .evaluate import check_real_images, evaluate, evaluation_record, save_evaluation_plots
    from .model import load_model_folder

    model_dir = Path(model_dir)
    model = load_model_folder(model_dir)
    result = evaluate(paths, model=model, seed=seed, progress=progress)
    checks = [check_real_images([folder], kind, model) for kind, folder in
              (("in_focus", sharp), ("out_of_focus", out_of_focus)) if folder]
    plots = save_evaluation_plots(result, model_dir / "evaluation")
    record = evaluation_record(result, checks, [p.relative_to(model_dir).as_posix() for p in plots], command,
                               model.config["weights"]["sha256"])
    write_evaluation(model_dir, record)
    return record
