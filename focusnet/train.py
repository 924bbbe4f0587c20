"""Training: simulated patches, RPS loss, Adam, checkpoints and resume.

Batch ``i`` is drawn from a generator seeded with ``(seed, i)``, so a run is
reproducible and a resumed run continues exactly where it stopped. A
checkpoint (every ``checkpoint_every`` steps) writes the full training state
to ``MODEL_DIR/checkpoint/`` and the current inference model to ``MODEL_DIR``
itself, so the folder is a usable model at any time.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .data import fixed_validation_set, prepare_source, sample_batch
from .images import find_images, read_image
from .model import CARD_FILE, make_config, save_model
from .network import build_trainable, fold_inference_weights, get_architecture, ranked_probability_score
from .optics import Optics
from .simulate import GAIN_RANGE, OFFSET_RANGE
from .tf import import_tensorflow

CHECKPOINT_DIR = "checkpoint"
LOG_FILE = "training_log.csv"
PLOT_FILE = "training.png"
LOG_COLUMNS = ["step", "train_rps", "train_accuracy", "val_rps", "val_accuracy", "val_within_one",
               "steps_per_second", "elapsed_seconds"]


@dataclasses.dataclass
class TrainingSettings:
    """Everything that defines a training run (recorded in ``config.json``)."""

    architecture: str = "default"
    steps: int = 20000
    batch_size: int = 64
    learning_rate: float = 1e-3
    final_learning_rate_fraction: float = 0.05
    seed: int = 0
    validate_every: int = 500
    checkpoint_every: int = 500
    validation_patches_per_level: int = 60

    def __post_init__(self):
        get_architecture(self.architecture)
        for name in ("steps", "batch_size", "validate_every", "checkpoint_every", "validation_patches_per_level"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")


def _load_sources(paths, optics, role):
    sources = []
    for path in paths:
        sources.append(prepare_source(read_image(path), str(path), optics))
    if not sources:
        raise ValueError(f"no {role} images")
    return sources


def _evaluate_patches(model, patches, levels):
    probabilities = model(patches, training=False).numpy()
    tf = import_tensorflow()

    rps = float(ranked_probability_score(tf.constant(levels), tf.constant(probabilities)))
    predicted = probabilities.argmax(axis=1)
    return rps, float(np.mean(predicted == levels)), float(np.mean(np.abs(predicted - levels) <= 1))


def _save_checkpoint(directory: Path, model, optimizer, step: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {f"model_{i}": w for i, w in enumerate(model.get_weights())}
    arrays.update({f"optimizer_{i}": v.numpy() for i, v in enumerate(optimizer.variables)})
    temporary = directory / "state.tmp.npz"
    np.savez(temporary, step=np.array(step), **arrays)
    os.replace(temporary, directory / "state.npz")


def _restore_checkpoint(directory: Path, model, optimizer) -> int:
    with np.load(directory / "state.npz") as state:
        model_weights = [state[f"model_{i}"] for i in range(len(model.get_weights()))]
        model.set_weights(model_weights)
        optimizer.build(model.trainable_variables)
        for i, variable in enumerate(optimizer.variables):
            variable.assign(state[f"optimizer_{i}"])
        return int(state["step"])


def write_training_plot(log_path, plot_path) -> None:
    """Plot RPS loss and accuracy against step from the training log."""
    from .figures import pyplot

    with open(log_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return
    plt = pyplot()
    step = [int(r["step"]) for r in rows]
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 3.8))
    loss_axis.plot(step, [float(r["train_rps"]) for r in rows], label="training")
    loss_axis.plot(step, [float(r["val_rps"]) for r in rows], label="validation (held-out images)")
    loss_axis.set_xlabel("step")
    loss_axis.set_ylabel("ranked probability score")
    loss_axis.set_yscale("log")
    loss_axis.legend()
    accuracy_axis.plot(step, [float(r["train_accuracy"]) for r in rows], label="training, exact")
    accuracy_axis.plot(step, [float(r["val_accuracy"]) for r in rows], label="validation, exact")
    accuracy_axis.plot(step, [float(r["val_within_one"]) for r in rows], label="validation, within one")
    accuracy_axis.set_xlabel("step")
    accuracy_axis.set_ylabel("patch accuracy")
    accuracy_axis.set_ylim(0, 1)
    accuracy_axis.legend()
    figure.tight_layout()
    figure.savefig(plot_path, dpi=100)
    plt.close(figure)


def train(images, out, settings: TrainingSettings, validation_images=(), optics: Optics = Optics(),
          resume: bool = False, command: str = "", progress: bool = True, stop_after: int | None = None) -> Path:
    """Train a classifier on simulated defocus of in-focus images.

    Parameters
    ----------
    images : sequence of path-like
        In-focus training images (files, folders or globs). Never train on
        out-of-focus images: every image is treated as level 0.
    out : path-like
        Model folder to write (config, weights, card, log, plot, checkpoint).
    settings : TrainingSettings
    validation_images : sequence of path-like
        In-focus images held out from training for periodic validation. If
        empty, the last training image (in sorted order) is held out.
    optics : Optics
        Simulator parameters.
    resume : bool
        Continue from ``out/checkpoint`` (settings must match the checkpoint's).
    command : str
        The command line, recorded in the model card.
    progress : bool
        Show a progress bar.
    stop_after : int, optional
        Stop after this many steps of this run (with a checkpoint), to be
        continued later with ``resume=True``: training in chunks gives the
        same model as one uninterrupted run.

    Returns
    -------
    Path
        The model folder.
    """
    tf = import_tensorflow()
    from tqdm import tqdm

    out = Path(out)
    train_paths = find_images(images)
    validation_paths = find_images(validation_images) if validation_images else []
    if not validation_paths:
        if len(train_paths) < 2:
            raise ValueError("need at least two images (one is held out for validation) or --validation images")
        validation_paths = [train_paths[-1]]
    train_paths = [p for p in train_paths if p not in validation_paths]
    if not train_paths:
        raise ValueError("every training image is also a validation image")

    checkpoint_dir = out / CHECKPOINT_DIR
    settings_path = checkpoint_dir / "settings.json"
    recorded = {"settings": dataclasses.asdict(settings), "optics": optics.to_dict(),
                "images": train_paths, "validation_images": validation_paths}
    if resume:
        if not (checkpoint_dir / "state.npz").is_file():
            raise ValueError(f"{checkpoint_dir}: no checkpoint to resume from")
        previous = json.loads(settings_path.read_text())
        if previous != recorded:
            changed = sorted(k for k in recorded if previous.get(k) != recorded[k])
            raise ValueError(f"cannot resume {out}: the run differs from the checkpoint's in {changed}")
    elif (checkpoint_dir / "state.npz").exists():
        raise ValueError(f"{out} already holds a training run: use --resume to continue it, or another --out")

    train_sources = _load_sources(train_paths, optics, "training")
    validation_sources = _load_sources(validation_paths, optics, "validation")
    val_patches, val_levels = fixed_validation_set(validation_sources, settings.validation_patches_per_level,
                                                   seed=settings.seed + 1_000_003)

    architecture = get_architecture(settings.architecture)
    tf.keras.utils.set_random_seed(settings.seed)
    model = build_trainable(architecture, seed=settings.seed)
    schedule = tf.keras.optimizers.schedules.CosineDecay(settings.learning_rate, settings.steps,
                                                         alpha=settings.final_learning_rate_fraction)
    optimizer = tf.keras.optimizers.Adam(schedule)

    start_step = 0
    if resume:
        start_step = _restore_checkpoint(checkpoint_dir, model, optimizer)
    else:
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        settings_path.write_text(json.dumps(recorded, indent=2))
        with open(out / LOG_FILE, "w", newline="") as handle:
            csv.writer(handle).writerow(LOG_COLUMNS)
    end_step = settings.steps if stop_after is None else min(settings.steps, start_step + stop_after)

    @tf.function
    def train_step(patches, levels):
        with tf.GradientTape() as tape:
            probabilities = model(patches, training=True)
            loss = ranked_probability_score(levels, probabilities)
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        correct = tf.equal(tf.argmax(probabilities, axis=1, output_type=tf.int32), levels)
        return loss, tf.reduce_mean(tf.cast(correct, tf.float32))

    def batch_for(step):
        return sample_batch(train_sources, settings.batch_size, np.random.default_rng([settings.seed, step]))

    config = make_config(
        settings.architecture,
        optics=optics.to_dict(),
        augmentation={"gain_range": list(GAIN_RANGE), "offset_range": list(OFFSET_RANGE),
                      "poisson_noise": True, "flips_and_rotations": True, "levels": "uniform"},
        training=dict(dataclasses.asdict(settings), images=[str(p) for p in train_paths],
                      validation_images=[str(p) for p in validation_paths], command=command),
    )

    def export(step, last_row):
        config["training"]["completed_steps"] = step
        config["training"]["last_validation"] = last_row
        save_model(out, config, fold_inference_weights(model, architecture))

    running_loss, running_accuracy, count = 0.0, 0.0, 0
    interval_start, run_start = time.perf_counter(), time.perf_counter()
    last_row = None
    bar = tqdm(total=settings.steps, initial=start_step, disable=not progress, unit="step",
               dynamic_ncols=True, file=sys.stderr)
    with ThreadPoolExecutor(max_workers=1) as prefetch:
        upcoming = prefetch.submit(batch_for, start_step) if start_step < end_step else None
        for step in range(start_step, end_step):
            patches, levels = upcoming.result()
            if step + 1 < end_step:
                upcoming = prefetch.submit(batch_for, step + 1)
            loss, accuracy = train_step(tf.constant(patches), tf.constant(levels))
            running_loss += float(loss)
            running_accuracy += float(accuracy)
            count += 1
            done = step + 1
            bar.update(1)
            bar.set_postfix(rps=f"{running_loss / count:.4f}", acc=f"{running_accuracy / count:.2f}")
            if done % settings.validate_every == 0 or done == end_step:
                val_rps, val_accuracy, val_within_one = _evaluate_patches(model, val_patches, val_levels)
                now = time.perf_counter()
                last_row = {"step": done, "train_rps": running_loss / count,
                            "train_accuracy": running_accuracy / count, "val_rps": val_rps,
                            "val_accuracy": val_accuracy, "val_within_one": val_within_one,
                            "steps_per_second": count / (now - interval_start),
                            "elapsed_seconds": now - run_start}
                with open(out / LOG_FILE, "a", newline="") as handle:
                    csv.writer(handle).writerow([f"{last_row[c]:.6g}" for c in LOG_COLUMNS])
                bar.write(f"step {done}: train RPS {last_row['train_rps']:.4f}, validation RPS {val_rps:.4f}, "
                          f"accuracy {val_accuracy:.3f}, within one {val_within_one:.3f}")
                running_loss, running_accuracy, count = 0.0, 0.0, 0
                interval_start = time.perf_counter()
            if done % settings.checkpoint_every == 0 or done == end_step:
                _save_checkpoint(checkpoint_dir, model, optimizer, done)
                export(done, last_row)
                write_training_plot(out / LOG_FILE, out / PLOT_FILE)
    bar.close()
    if start_step >= end_step:
        raise ValueError(f"{out}: training already completed {start_step} of {settings.steps} steps")
    write_model_card(out)
    return out


def write_model_card(directory, evaluation_markdown: str = "") -> Path:
    """Write ``README.md`` of a model folder from its config (and evaluation, if given).

    An existing evaluation section is kept unless a new one is given.
    """
    directory = Path(directory)
    config = json.loads((directory / "config.json").read_text())
    training = config["training"]
    optics = config["simulator"]["optics"]
    card_path = directory / CARD_FILE
    marker = "## Evaluation"
    if not evaluation_markdown and card_path.is_file() and marker in card_path.read_text():
        evaluation_markdown = card_path.read_text().split(marker, 1)[1].split("\n## Known limits", 1)[0]
        evaluation_markdown = marker + evaluation_markdown.rstrip() + "\n"
    if not evaluation_markdown:
        evaluation_markdown = f"{marker}\n\nNot evaluated yet: run `focusnet evaluate IMAGES --model {directory}`.\n"
    parameters = sum(int(np.prod(v.shape)) for v in np.load(directory / "weights.npz").values())
    lines = [
        f"# focusnet model: {directory.name}",
        "",
        f"Architecture `{config['architecture']}` ({parameters:,} parameters, "
        f"{(directory / 'weights.npz').stat().st_size / 1e6:.2f} MB of weights), model format "
        f"{config['format_version']}, focusnet {config['focusnet_version']}. Input: {config['patch_size']}x"
        f"{config['patch_size']} patches of raw counts / {config['input_scale']:g}; output: probabilities of "
        f"{config['num_levels']} defocus levels (level L = {optics['z_step_um']:g} L um from focus).",
        "",
        "## Training data",
        "",
        "In-focus images only, degraded on the fly by the focusnet simulator (Born & Wolf PSF, wavelength "
        f"{optics['wavelength_um']} um, NA {optics['numerical_aperture']}, n {optics['refractive_index']}, "
        f"{optics['pixel_size_um']} um pixels), with gain log-uniform in "
        f"{config['simulator']['augmentation']['gain_range']} and offset log-uniform in "
        f"{config['simulator']['augmentation']['offset_range']} counts, Poisson noise, flips and rotations.",
        "",
        "Training images:",
        "",
        *[f"- `{Path(p).name}`" for p in training["images"]],
        "",
        "Held out (validation during training, and evaluation):",
        "",
        *[f"- `{Path(p).name}`" for p in training["validation_images"]],
        "",
        f"{training.get('completed_steps', 0)} of {training['steps']} steps, batch {training['batch_size']}, "
        f"Adam, learning rate {training['learning_rate']:g} with cosine decay, seed {training['seed']}. "
        f"Log: `{LOG_FILE}`, curves: `{PLOT_FILE}`.",
        "",
        "## Reproduce",
        "",
        "From the repository root, in the environment `make env` builds (relative paths are as given):",
        "",
        "```bash",
        training.get("command") or "(command not recorded)",
        "```",
        "",
        evaluation_markdown.rstrip(),
        "",
        "## Known limits",
        "",
        "- Trained on simulated defocus of nuclear stains (Hoechst/DAPI) at about 0.65 um per pixel; other "
        "magnifications, stains or textures may be measured less accurately.",
        "- Levels are absolute only for optics similar to the simulated ones (NA 0.5, 500 nm emission); "
        "a higher NA blurs faster per micrometre of defocus.",
        "- Patches showing only background carry little information: they get low certainty and little "
        "weight in the whole-image answer, and an image with no structure at all is uncertain.",
        "",
    ]
    card_path.write_text("\n".join(lines))
    return card_path
