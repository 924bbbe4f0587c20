"""Training: simulated patches, RPS loss, Adam, checkpoints and resume.

Batch ``i`` is drawn from a generator seeded with ``(seed, i)``, so a run is
reproducible and a resumed run continues exactly where it stopped. A
checkpoint (every ``checkpoint_every`` steps) writes the current inference
model to ``MODEL_DIR`` itself, so the folder is a usable model at any time,
and then the full training state to ``MODEL_DIR/checkpoint/``. The run's
settings are recorded once, in ``config.json`` (``training.settings``,
``training.images``, ``simulator.optics``); a resumed run checks against them.

:func:`run_settings` and :func:`training_optics` hold the rules for what is
not given: a run from scratch and a fine-tuning run (from an initial model)
have their own defaults.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import shlex
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .classifier import make_config
from .contract import (
    CHECKPOINT_DIR,
    CHECKPOINT_STATE_FILE,
    CONFIG_FILE,
    PATCH_SIZE,
    TRAINING_LOG_FILE,
    TRAINING_PLOT_FILE,
)
from .data import fixed_validation_set, prepare_source, sample_batch
from .errors import InvalidParameterError, ModelError, TrainingError
from .images import find_images, read_image
from .model import read_config, save_model
from .network import (
    build_trainable,
    fold_inference_weights,
    get_architecture,
    load_inference_weights,
    ranked_probability_score,
)
from .optics import DEFOCUS_PHASES, Optics
from .photons import photon_limited_augmentation
from .simulate import GAIN_RANGE, OFFSET_RANGE
from .tf import import_tensorflow

LOG_COLUMNS = ["step", "train_rps", "train_accuracy", "val_rps", "val_accuracy", "val_within_one",
               "steps_per_second", "elapsed_seconds"]


@dataclasses.dataclass
class TrainingSettings:
    """The numbers that define a training run (recorded in ``config.json``)."""

    architecture: str = "default"
    steps: int = 20000
    batch_size: int = 64
    learning_rate: float = 1e-3
    final_learning_rate_fraction: float = 0.05
    seed: int = 0
    validate_every: int = 500
    checkpoint_every: int = 500
    validation_patches_per_level: int = 60
    #: A model folder to fine-tune from (its architecture; batch normalisation frozen), ``shipped``
    #: for the model shipped with focusnet, or None.
    init_model: str | None = None
    #: Share of patches recorded in dim light by a random camera or EMCCD (:mod:`focusnet.data`).
    photon_limited_fraction: float = 0.35
    #: Share of patches seen by a point-scanning confocal and recorded in dim light by a PMT.
    confocal_fraction: float = 0.15

    def __post_init__(self):
        get_architecture(self.architecture)
        for name in ("steps", "batch_size", "validate_every", "checkpoint_every", "validation_patches_per_level"):
            if getattr(self, name) < 1:
                raise InvalidParameterError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise InvalidParameterError(f"learning_rate must be > 0, got {self.learning_rate}")
        dim = (self.photon_limited_fraction, self.confocal_fraction)
        if not (min(dim) >= 0 and sum(dim) <= 1):
            raise InvalidParameterError(f"photon_limited_fraction and confocal_fraction must be >= 0 and add up to "
                                        f"at most 1, got {dim}")


@dataclasses.dataclass
class TrainingRun:
    """Everything a resumed run must share with the run it continues."""

    settings: TrainingSettings
    optics: Optics
    images: list
    validation_images: list
    #: The single image split into ``images`` and ``validation_images`` (None when not split).
    source: str | None = None

    def record(self) -> dict:
        """The run as ``config.json`` keeps it: ``training`` entries and the optics."""
        record = {"settings": dataclasses.asdict(self.settings), "images": [str(p) for p in self.images],
                  "validation_images": [str(p) for p in self.validation_images], "optics": self.optics.to_dict()}
        if self.source is not None:
            record["split_from"] = str(self.source)
        return record


def split_single_image(run: TrainingRun) -> None:
    """Write the two parts of a split run's single image: the upper (left) part to train on, the rest held out."""
    from .images import write_tiff

    image = read_image(run.source)
    height, width = image.shape
    if height >= 2 * PATCH_SIZE:
        parts = image[:height - height // 2], image[height - height // 2:]
    elif width >= 2 * PATCH_SIZE:
        parts = image[:, :width - width // 2], image[:, width - width // 2:]
    else:
        raise TrainingError(f"{run.source}: {width}x{height} pixels cannot be split into two parts of at least "
                            f"{PATCH_SIZE}x{PATCH_SIZE} (one to train on, one held out); give validation images",
                            setting="validation_images")
    Path(run.images[0]).parent.mkdir(parents=True, exist_ok=True)
    for path, part in zip(run.images + run.validation_images, parts):
        write_tiff(path, part)


#: Where a single training image is split into a part to train on and a part held out.
SPLIT_DIR = "split"


def plan_run(images, settings: TrainingSettings, validation_images=(), optics: Optics = Optics(),
             out=None) -> TrainingRun:
    """Expand the image arguments and hold out validation images.

    By default the last training image is held out; a single image is split
    instead (its lower or right half held out, written to ``out/split/`` by
    :func:`split_single_image`), so a model can be made from the one in-focus
    plane of a z-stack.
    """
    train_paths = find_images(images)
    validation_paths = find_images(validation_images) if validation_images else []
    if not validation_paths and len(train_paths) == 1 and out is not None:
        return TrainingRun(settings, optics, [str(Path(out) / SPLIT_DIR / "train.tif")],
                           [str(Path(out) / SPLIT_DIR / "validation.tif")], source=train_paths[0])
    if not validation_paths:
        if len(train_paths) < 2:
            raise TrainingError("need at least two images (one is held out for validation) or validation images",
                                setting="validation_images")
        validation_paths = [train_paths[-1]]
    train_paths = [p for p in train_paths if p not in validation_paths]
    if not train_paths:
        raise TrainingError("every training image is also a validation image")
    return TrainingRun(settings, optics, train_paths, validation_paths)


#: Where format-1 folders kept a copy of the run (read only when their config.json is missing).
_FORMAT_1_RUN_FILE = Path(CHECKPOINT_DIR) / "settings.json"


def recorded_run(out) -> dict:
    """The run recorded in a model folder's ``config.json``, in :meth:`TrainingRun.record`'s form."""
    out = Path(out)
    if not (out / CONFIG_FILE).is_file() and (out / _FORMAT_1_RUN_FILE).is_file():
        # A format-1 run stopped between its first checkpoint and its first config.
        import json

        record = json.loads((out / _FORMAT_1_RUN_FILE).read_text())
        if isinstance(record.get("optics"), dict):  # format 1 knew only the paraxial phase
            record["optics"] = {"defocus_phase": "paraxial", **record["optics"]}
        return record
    try:
        config = read_config(out)
    except ModelError as error:
        raise TrainingError(f"cannot resume {out}: {error}") from None
    training = config.get("training", {})
    # Settings added since a run was recorded take their defaults; runs from before photon-limited
    # training had none.
    settings = {**dataclasses.asdict(TrainingSettings()), **_BEFORE_PHOTON_LIMITED, **(training.get("settings") or {})}
    record = {"settings": settings, "images": training.get("images"),
              "validation_images": training.get("validation_images"), "optics": config["simulator"].get("optics")}
    if "split_from" in training:
        record["split_from"] = training["split_from"]
    return record


#: What runs recorded before photon-limited training did.
_BEFORE_PHOTON_LIMITED = {"photon_limited_fraction": 0.0, "confocal_fraction": 0.0}


def checkpoint_step(out) -> int | None:
    """The step of ``out``'s checkpoint, or None when it has none."""
    path = Path(out) / CHECKPOINT_DIR / CHECKPOINT_STATE_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path) as state:
            return int(state["step"])
    except Exception as error:  # numpy raises several types for damaged archives
        raise TrainingError(f"{path}: damaged checkpoint ({type(error).__name__}: {error}); start a new run in "
                            "another model folder", setting="out") from None


def check_run_state(out, run: TrainingRun, resume: bool) -> int:
    """The step to start from, after checking the folder against the run; nothing is loaded or built yet.

    Raises
    ------
    TrainingError
        Resuming without a checkpoint, with other settings, or a completed
        run; or starting a new run over an existing one.
    """
    out = Path(out)
    step = checkpoint_step(out)
    if not resume:
        if step is not None:
            raise TrainingError(f"{out} already holds a training run: resume it, or write to another model folder",
                                setting="resume")
        return 0
    if step is None:
        raise TrainingError(f"{out / CHECKPOINT_DIR}: no checkpoint to resume from")
    previous, current = recorded_run(out), run.record()
    changed = sorted(key for key in set(current) | set(previous) if previous.get(key) != current.get(key))
    if changed:
        raise TrainingError(f"cannot resume {out}: the run differs from the checkpoint's in {changed}")
    if step >= run.settings.steps:
        raise TrainingError(f"{out}: training already completed {step} of {run.settings.steps} steps")
    return step


class TrainingLog:
    """``training_log.csv`` (one row per validation) and its plot ``training.png``."""

    def __init__(self, directory):
        self.path = Path(directory) / TRAINING_LOG_FILE
        self.plot_path = Path(directory) / TRAINING_PLOT_FILE

    def start(self) -> None:
        with open(self.path, "w", newline="") as handle:
            csv.writer(handle).writerow(LOG_COLUMNS)

    def append(self, row: dict) -> None:
        with open(self.path, "a", newline="") as handle:
            csv.writer(handle).writerow([f"{row[column]:.6g}" for column in LOG_COLUMNS])

    def plot(self) -> None:
        write_training_plot(self.path, self.plot_path)


class RunningMean:
    """Mean training loss and accuracy since the last validation, and its pace."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.loss, self.accuracy, self.count, self.since = 0.0, 0.0, 0, time.perf_counter()

    def add(self, loss, accuracy):
        self.loss += float(loss)
        self.accuracy += float(accuracy)
        self.count += 1

    def summary(self) -> dict:
        return {"train_rps": self.loss / self.count, "train_accuracy": self.accuracy / self.count,
                "steps_per_second": self.count / (time.perf_counter() - self.since)}


class Trainer:
    """The trainable network, its optimizer and one compiled training step."""

    def __init__(self, settings: TrainingSettings, init_weights: dict | None = None):
        tf = import_tensorflow()
        self.tf = tf
        self.architecture = get_architecture(settings.architecture)
        tf.keras.utils.set_random_seed(settings.seed)
        self.model = build_trainable(self.architecture, seed=settings.seed)
        if init_weights is not None:
            load_inference_weights(self.model, self.architecture, init_weights)
        schedule = tf.keras.optimizers.schedules.CosineDecay(settings.learning_rate, settings.steps,
                                                             alpha=settings.final_learning_rate_fraction)
        self.optimizer = tf.keras.optimizers.Adam(schedule)
        self._step = tf.function(self._train_step)

    def _train_step(self, patches, levels):
        tf = self.tf
        with tf.GradientTape() as tape:
            probabilities = self.model(patches, training=True)
            loss = ranked_probability_score(levels, probabilities)
        gradients = tape.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.model.trainable_variables))
        correct = tf.equal(tf.argmax(probabilities, axis=1, output_type=tf.int32), levels)
        return loss, tf.reduce_mean(tf.cast(correct, tf.float32))

    def step(self, patches, levels):
        """One optimisation step; returns the batch's RPS loss and accuracy."""
        return self._step(self.tf.constant(patches), self.tf.constant(levels))

    def validate(self, patches, levels) -> dict:
        """RPS, exact and within-one accuracy on a fixed validation set."""
        probabilities = self.model(patches, training=False).numpy()
        rps = float(ranked_probability_score(self.tf.constant(levels), self.tf.constant(probabilities)))
        predicted = probabilities.argmax(axis=1)
        return {"val_rps": rps, "val_accuracy": float(np.mean(predicted == levels)),
                "val_within_one": float(np.mean(np.abs(predicted - levels) <= 1))}

    def inference_weights(self) -> dict:
        return fold_inference_weights(self.model, self.architecture)

    def save_checkpoint(self, directory: Path, step: int) -> None:
        save_training_state(self.model, self.optimizer, directory, step)

    def restore_checkpoint(self, directory: Path) -> int:
        return restore_training_state(self.model, self.optimizer, directory)


def save_training_state(model, optimizer, directory: Path, step: int) -> None:
    """A Keras model's weights, its optimizer's state and the step, in ``directory``, replaced atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {f"model_{i}": w for i, w in enumerate(model.get_weights())}
    arrays.update({f"optimizer_{i}": v.numpy() for i, v in enumerate(optimizer.variables)})
    temporary = directory / "state.tmp.npz"
    np.savez(temporary, step=np.array(step), **arrays)
    os.replace(temporary, directory / CHECKPOINT_STATE_FILE)


def restore_training_state(model, optimizer, directory: Path) -> int:
    """Load what :func:`save_training_state` wrote; returns the step."""
    with np.load(directory / CHECKPOINT_STATE_FILE) as state:
        model.set_weights([state[f"model_{i}"] for i in range(len(model.get_weights()))])
        optimizer.build(model.trainable_variables)
        for i, variable in enumerate(optimizer.variables):
            variable.assign(state[f"optimizer_{i}"])
        return int(state["step"])


def _load_sources(paths, optics, role, confocal=False):
    sources = [prepare_source(read_image(path), str(path), optics, confocal) for path in paths]
    if not sources:
        raise TrainingError(f"no {role} images")
    return sources


def write_training_plot(log_path, plot_path) -> None:
    """Plot RPS loss and accuracy against step from the training log."""
    from .figures import pyplot, save_figure

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
    save_figure(figure, plot_path, dpi=100)


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
        Continue from ``out/checkpoint`` (the run must match the one recorded).
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

    Raises
    ------
    TrainingError
        Found before any image is loaded or the network is built: see
        :func:`check_run_state` and :func:`plan_run`.
    """
    from tqdm import tqdm

    from .card import evaluate_model_folder, write_model_card

    if stop_after is not None and stop_after < 1:
        raise InvalidParameterError(f"stop_after must be >= 1, got {stop_after}")
    out = Path(out)
    initial = _initial_model(settings)
    if resume and checkpoint_step(out) is not None:
        # A run goes on with the defocus phase it began with (paraxial before model format 3).
        recorded = recorded_run(out)
        phase = (recorded.get("optics") or {}).get("defocus_phase")
        if phase in DEFOCUS_PHASES:
            optics = dataclasses.replace(optics, defocus_phase=phase)
        # ... and with its photon-limited shares (none before they existed).
        settings = dataclasses.replace(settings, **{name: recorded["settings"][name]
                                                    for name in _BEFORE_PHOTON_LIMITED})
    run = plan_run(images, settings, validation_images, optics, out)
    start_step = check_run_state(out, run, resume)
    end_step = settings.steps if stop_after is None else min(settings.steps, start_step + stop_after)
    if run.source is not None and not resume:
        split_single_image(run)

    confocal = settings.confocal_fraction > 0
    train_sources = _load_sources(run.images, optics, "training", confocal)
    validation_sources = _load_sources(run.validation_images, optics, "validation", confocal)
    dim = {"photon_limited_fraction": settings.photon_limited_fraction,
           "confocal_fraction": settings.confocal_fraction}
    val_patches, val_levels = fixed_validation_set(validation_sources, settings.validation_patches_per_level,
                                                   seed=settings.seed + 1_000_003, **dim)
    trainer = Trainer(settings, initial.weights if initial else None)
    log = TrainingLog(out)
    checkpoint_dir = out / CHECKPOINT_DIR
    if resume:
        trainer.restore_checkpoint(checkpoint_dir)
    else:
        out.mkdir(parents=True, exist_ok=True)
        log.start()
    record = run.record()
    config = make_config(
        settings.architecture,
        optics=record.pop("optics"),
        augmentation={"gain_range": list(GAIN_RANGE), "offset_range": list(OFFSET_RANGE),
                      "poisson_noise": True, "flips_and_rotations": True, "levels": "uniform",
                      **({"photon_limited": photon_limited_augmentation(settings.photon_limited_fraction,
                                                                        settings.confocal_fraction)}
                         if sum(dim.values()) > 0 else {})},
        training=dict(record, command=command),
    )
    if initial is not None:
        config["training"]["init_weights_sha256"] = initial.config["weights"]["sha256"]

    def batch_for(step):
        return sample_batch(train_sources, settings.batch_size, np.random.default_rng([settings.seed, step]), **dim)

    running, run_start, last_row = RunningMean(), time.perf_counter(), None
    bar = tqdm(total=settings.steps, initial=start_step, disable=not progress, unit="step", dynamic_ncols=True,
               file=sys.stderr)
    with ThreadPoolExecutor(max_workers=1) as prefetch:
        upcoming = prefetch.submit(batch_for, start_step)
        for step in range(start_step, end_step):
            patches, levels = upcoming.result()
            if step + 1 < end_step:
                upcoming = prefetch.submit(batch_for, step + 1)
            running.add(*trainer.step(patches, levels))
            done = step + 1
            bar.update(1)
            bar.set_postfix(rps=f"{running.loss / running.count:.4f}", acc=f"{running.accuracy / running.count:.2f}")
            if done % settings.validate_every == 0 or done == end_step:
                last_row = {"step": done, **running.summary(), **trainer.validate(val_patches, val_levels),
                            "elapsed_seconds": time.perf_counter() - run_start}
                log.append(last_row)
                bar.write(f"step {done}: train RPS {last_row['train_rps']:.4f}, validation RPS "
                          f"{last_row['val_rps']:.4f}, accuracy {last_row['val_accuracy']:.3f}, within one "
                          f"{last_row['val_within_one']:.3f}")
                running.reset()
            if done % settings.checkpoint_every == 0 or done == end_step:
                # The model first, then the state: a state on disk always has its config beside it.
                config["training"].update(completed_steps=done, last_validation=last_row)
                save_model(out, config, trainer.inference_weights())
                trainer.save_checkpoint(checkpoint_dir, done)
                log.plot()
    bar.close()
    if end_step == settings.steps:
        # A finished run is evaluated on its held-out images, as 'focusnet evaluate --write-card' would.
        held_out = " ".join(shlex.quote(str(p)) for p in run.validation_images)
        evaluate_model_folder(out, run.validation_images, seed=settings.seed, progress=progress,
                              command=f"focusnet evaluate {held_out} --model {shlex.quote(str(out))} --seed "
                                      f"{settings.seed} --write-card")
    else:
        write_model_card(out)
    return out


#: ``init_model`` naming the model shipped with focusnet (recorded by name: no installation path).
SHIPPED = "shipped"


def initial_model_folder(init_model: str) -> Path:
    """The folder an ``init_model`` setting names."""
    from .contract import SHIPPED_MODEL_DIR

    return SHIPPED_MODEL_DIR if init_model == SHIPPED else Path(init_model)


def _initial_model(settings: TrainingSettings):
    """The model folder a fine-tuning run starts from (checked against the settings), or None."""
    if settings.init_model is None:
        return None
    from .model import load_model_folder

    initial = load_model_folder(initial_model_folder(settings.init_model))
    if initial.architecture.name != settings.architecture:
        raise TrainingError(f"the initial model {settings.init_model} is a {initial.architecture.name!r} model; it "
                            f"cannot start a {settings.architecture!r} one (leave the architecture unset)",
                            setting="architecture")
    return initial


def fine_tuning_z_step(initial_optics: Optics, optics: Optics) -> float:
    """Defocus per level for a model fine-tuned to other optics: each level keeps its blur in micrometres.

    Level L of the new model is blurred as much, in micrometres in the sample
    plane, as level L of the initial one (:mod:`focusnet.defocus`, matched
    at level 10; levels follow linearly in z, as in every focusnet model).
    So a level means the same blur on every microscope, thresholds such as
    the QC pipeline's "level > 2" keep their meaning, and ``defocus_um`` is
    the same conversion the initial model's users get.
    """
    from .defocus import defocus_scale

    return defocus_scale(initial_optics, optics).level_step_um


#: Fine-tuning defaults (a run from an initial model): minutes on a laptop CPU.
FINE_TUNING_STEPS = 3000
FINE_TUNING_LEARNING_RATE = 3e-4


def run_settings(init_model: str | None = None, architecture: str | None = None, steps: int | None = None,
                 learning_rate: float | None = None, **others) -> TrainingSettings:
    """A run's settings: those given, else the defaults of a run from scratch or of fine-tuning.

    Parameters
    ----------
    init_model : str, optional
        The model to fine-tune (a folder, or :data:`SHIPPED`).
    architecture : str, optional
        Default: the initial model's, else ``default``.
    steps, learning_rate : optional
        Default: :data:`FINE_TUNING_STEPS` and :data:`FINE_TUNING_LEARNING_RATE`
        when fine-tuning, else :class:`TrainingSettings`'s.
    **others
        The other fields of :class:`TrainingSettings`.
    """
    fresh = TrainingSettings()
    if init_model is not None and architecture is None:
        from .model import load_model_folder

        architecture = load_model_folder(initial_model_folder(init_model)).architecture.name
    fine_tuning = init_model is not None
    return TrainingSettings(
        architecture=architecture or fresh.architecture,
        steps=steps if steps is not None else FINE_TUNING_STEPS if fine_tuning else fresh.steps,
        learning_rate=learning_rate if learning_rate is not None else
        FINE_TUNING_LEARNING_RATE if fine_tuning else fresh.learning_rate,
        init_model=init_model, **others)


def stated_pixel_size(images) -> float | None:
    """The pixel size the training images state (None if none does).

    Raises
    ------
    InvalidParameterError
        When they state different ones.
    """
    from .images import read_image_file

    stated = {path: read_image_file(path).pixel_size_um for path in find_images(images)}
    sizes = sorted({round(size, 6) for size in stated.values() if size is not None})
    if len(sizes) > 1:
        raise InvalidParameterError(f"the training images state different pixel sizes ({sizes} um); give the pixel "
                                    "size or train on images of one pixel size", setting="pixel_size_um")
    return sizes[0] if sizes else None


def training_optics(init_model: str | None = None, images=(), wavelength_um=None, numerical_aperture=None,
                    refractive_index=None, pixel_size_um=None, z_step_um=None, defocus_phase=None) -> Optics:
    """The simulator's optics for a run: what is given, else what the images state, else the initial model's.

    Without an initial model the defaults are BBBC006's (:class:`Optics`).
    Optics that differ from the initial model's are simulated with the
    exact defocus phase, and each level keeps the initial model's blur in
    micrometres (:func:`fine_tuning_z_step`) unless ``z_step_um`` is given;
    the initial model's own optics keep its phase, so its levels keep their
    meaning. ``defocus_phase`` overrides the phase either way.
    """
    from .inference import model_optics
    from .model import load_model_folder

    initial = load_model_folder(initial_model_folder(init_model)) if init_model is not None else None
    base = model_optics(initial) if initial is not None else Optics()
    return derived_optics(base, initial is not None, images, wavelength_um, numerical_aperture, refractive_index,
                          pixel_size_um, z_step_um, defocus_phase)


def derived_optics(base: Optics, keep_levels: bool, images=(), wavelength_um=None, numerical_aperture=None,
                   refractive_index=None, pixel_size_um=None, z_step_um=None, defocus_phase=None) -> Optics:
    """``base`` with what is given, else what the images state (pixel size); see :func:`training_optics`.

    With ``keep_levels``, optics that differ from ``base`` get the z step at
    which each level blurs as much, in micrometres, as ``base``'s level
    (:func:`fine_tuning_z_step`), unless ``z_step_um`` is given.
    """
    if pixel_size_um is None:
        pixel_size_um = stated_pixel_size(images) if images else None
    given = {"wavelength_um": wavelength_um, "numerical_aperture": numerical_aperture,
             "refractive_index": refractive_index, "pixel_size_um": pixel_size_um}
    given = {key: value for key, value in given.items() if value is not None}
    optics = dataclasses.replace(base, **given, **({"defocus_phase": "exact"} if given else {}))
    if defocus_phase is not None:
        optics = dataclasses.replace(optics, defocus_phase=defocus_phase)
    if z_step_um is not None:
        return dataclasses.replace(optics, z_step_um=z_step_um)
    if keep_levels and optics != base:
        return dataclasses.replace(optics, z_step_um=fine_tuning_z_step(base, optics))
    return optics


__all__ = ["FINE_TUNING_LEARNING_RATE", "FINE_TUNING_STEPS", "TrainingLog", "TrainingRun", "TrainingSettings",
           "Trainer", "check_run_state", "plan_run", "run_settings", "stated_pixel_size", "train",
           "training_optics", "write_training_plot"]
