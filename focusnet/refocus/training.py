"""Training a refocus U-Net on simulator pairs: pixel loss plus an optional feature loss, resumable.

The loss is the mean absolute error between output and target (normalised
intensities) plus ``feature_weight`` times a *feature loss*: the squared
difference of a fixed network's activations on output and target, each
layer's divided by the target activations' mean square (Johnson et al.
2016's perceptual loss, with a network available offline). The fixed
network is the convolutional part of focusnet's shipped focus classifier,
whose features respond to blur by construction; ``feature_network="random"``
uses the same layers with fixed random weights instead, for the ablation.

As for the classifier (:mod:`focusnet.train`): batch ``i`` is drawn from a
generator seeded with ``(seed, i)``; a checkpoint writes the current model
to the folder (a usable model at any time) and then the training state to
``checkpoint/``; a resumed run must match the recorded one and continues
exactly where it stopped.
"""

from __future__ import annotations

import csv
import dataclasses
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..contract import CHECKPOINT_DIR, TRAINING_LOG_FILE
from ..errors import InvalidParameterError, TrainingError
from ..images import find_images, read_image
from ..optics import Optics
from ..train import checkpoint_step, restore_training_state, save_training_state
from .model import make_refocus_config, read_refocus_config, save_refocus_model
from .pairs import fixed_pairs, prepare_refocus_source, sample_pairs
from .unet import UNetSpec, build_trainable, set_trainable_weights, trainable_weights

FEATURE_NETWORKS = ("classifier", "random", "none")
LOG_COLUMNS = ["step", "train_loss", "val_psnr_input", "val_psnr_output", "val_psnr_gain", "steps_per_second",
               "elapsed_seconds"]
#: Fine-tuning defaults (a run from an initial refocus model).
FINE_TUNING_STEPS = 1500
FINE_TUNING_LEARNING_RATE = 2e-4


@dataclasses.dataclass
class RefocusSettings:
    """The numbers that define a refocus training run (recorded in ``config.json``)."""

    # The shipped model's run (its card): 16000 steps of 16 crops, pixel loss alone, measured best.
    steps: int = 16000
    batch_size: int = 16
    patch_size: int = 128
    learning_rate: float = 1e-3
    final_learning_rate_fraction: float = 0.05
    max_level: int = 6
    feature_network: str = "none"
    feature_weight: float = 0.02
    base_filters: int = 16
    depth: int = 3
    seed: int = 0
    validate_every: int = 250
    checkpoint_every: int = 250
    validation_pairs: int = 96
    #: A refocus model folder to fine-tune from, ``shipped`` for focusnet's own, or None.
    init_model: str | None = None

    def __post_init__(self):
        for name in ("steps", "batch_size", "patch_size", "max_level", "base_filters", "depth", "validate_every",
                     "checkpoint_every", "validation_pairs"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise InvalidParameterError(f"{name} must be an integer >= 1, got {value!r}")
        if self.patch_size % self.spec.multiple():
            raise InvalidParameterError(f"patch_size must be a multiple of {self.spec.multiple()}, "
                                        f"got {self.patch_size}")
        if self.feature_network not in FEATURE_NETWORKS:
            raise InvalidParameterError(f"feature_network must be one of {FEATURE_NETWORKS}, "
                                        f"got {self.feature_network!r}")
        if not (self.learning_rate > 0 and self.feature_weight >= 0):
            raise InvalidParameterError("learning_rate must be > 0 and feature_weight >= 0")

    @property
    def spec(self) -> UNetSpec:
        return UNetSpec(base_filters=self.base_filters, depth=self.depth)

    @property
    def uses_features(self) -> bool:
        return self.feature_network != "none" and self.feature_weight > 0


def _feature_extractor(tf, network: str, seed: int):
    """Activations of the classifier's convolutions on counts ``(N, H, W, 1)`` (fully convolutional)."""
    from ..loader import load_model

    classifier = load_model()
    weights = {name: np.asarray(value) for name, value in classifier.weights.items()}
    if network == "random":
        rng = np.random.default_rng(seed + 31)
        weights = {name: (rng.normal(0, np.sqrt(2.0 / np.prod(value.shape[:-1])), value.shape)
                          if name.endswith("kernel") else np.zeros(value.shape)).astype(np.float32)
                   for name, value in weights.items()}
    convs = classifier.architecture.convs[:3]
    constants = [(tf.constant(weights[f"conv{i}/kernel"]), tf.constant(weights[f"conv{i}/bias"]), c.stride)
                 for i, c in enumerate(convs)]

    def features(counts):
        above = counts - tf.reduce_min(counts, axis=[1, 2, 3], keepdims=True)
        x = tf.math.log1p(tf.maximum(above, 0.0))
        x = x - tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        layers = []
        for kernel, bias, stride in constants:
            x = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, kernel, strides=stride, padding="SAME"), bias))
            layers.append(x)
        return layers

    return features


class RefocusTrainer:
    """The Keras U-Net, its optimizer and one compiled training step."""

    def __init__(self, settings: RefocusSettings, init_weights: dict | None = None):
        from ..tf import import_tensorflow

        tf = self.tf = import_tensorflow()
        tf.keras.utils.set_random_seed(settings.seed)
        self.settings = settings
        self.model = build_trainable(settings.spec, seed=settings.seed)
        if init_weights is not None:
            set_trainable_weights(self.model, settings.spec, init_weights)
        schedule = tf.keras.optimizers.schedules.CosineDecay(settings.learning_rate, settings.steps,
                                                             alpha=settings.final_learning_rate_fraction)
        self.optimizer = tf.keras.optimizers.Adam(schedule)
        self.features = (_feature_extractor(tf, settings.feature_network, settings.seed)
                         if settings.uses_features else None)
        self._step = tf.function(self._train_step)

    def loss(self, outputs, targets, scales):
        tf = self.tf
        loss = tf.reduce_mean(tf.abs(outputs - targets))
        if self.features is None:
            return loss
        low, span = scales[:, 0, None, None, None], scales[:, 1, None, None, None]
        output_features = self.features(outputs * span + low)
        target_features = self.features(targets * span + low)
        for out_layer, target_layer in zip(output_features, target_features):
            scale = tf.reduce_mean(tf.square(target_layer)) + 1e-6
            loss += self.settings.feature_weight * tf.reduce_mean(tf.square(out_layer - target_layer)) / scale
        return loss

    def _train_step(self, inputs, targets, scales):
        tf = self.tf
        with tf.GradientTape() as tape:
            loss = self.loss(self.model(inputs, training=True), targets, scales)
        gradients = tape.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.model.trainable_variables))
        return loss

    def step(self, inputs, targets, scales) -> float:
        tf = self.tf
        return float(self._step(tf.constant(inputs), tf.constant(targets), tf.constant(scales, tf.float32)))

    def validate(self, inputs, targets) -> dict:
        """PSNR (normalised intensities, peak 1) of the unrestored inputs and of the outputs."""
        outputs = np.concatenate([self.model(inputs[i:i + 16], training=False).numpy()
                                  for i in range(0, len(inputs), 16)])

        def psnr(images):
            return float(np.mean(-10 * np.log10(np.mean((images - targets) ** 2, axis=(1, 2, 3)) + 1e-12)))

        before, after = psnr(inputs), psnr(outputs)
        return {"val_psnr_input": before, "val_psnr_output": after, "val_psnr_gain": after - before}

    def weights(self) -> dict:
        return trainable_weights(self.model, self.settings.spec)

    def save_checkpoint(self, directory: Path, step: int) -> None:
        save_training_state(self.model, self.optimizer, directory, step)

    def restore_checkpoint(self, directory: Path) -> int:
        return restore_training_state(self.model, self.optimizer, directory)


def _run_record(settings, optics, images, validation_images) -> dict:
    return {"settings": dataclasses.asdict(settings), "optics": optics.to_dict(),
            "images": [str(p) for p in images], "validation_images": [str(p) for p in validation_images]}


def start_step(out: Path, record: dict, resume: bool) -> int:
    """The step to start from after checking ``out`` against the run (nothing built or loaded yet)."""
    step = checkpoint_step(out)
    if not resume:
        if step is not None:
            raise TrainingError(f"{out} already holds a training run: resume it, or write to another model folder",
                                setting="resume")
        return 0
    if step is None:
        raise TrainingError(f"{out / CHECKPOINT_DIR}: no checkpoint to resume from")
    config = read_refocus_config(out)
    previous = {"settings": config["training"]["settings"], "optics": config["simulator"]["optics"],
                "images": config["training"]["images"], "validation_images": config["training"]["validation_images"]}
    changed = sorted(key for key in record if previous.get(key) != record[key])
    if changed:
        raise TrainingError(f"cannot resume {out}: the run differs from the checkpoint's in {changed}")
    if step >= record["settings"]["steps"]:
        raise TrainingError(f"{out}: training already completed {step} of {record['settings']['steps']} steps")
    return step


def refocus_training_optics(init_model: str | None = None, images=(), **given) -> Optics:
    """The simulator's optics for a refocus run: what is given, else the images' pixel size, else the base's.

    The base is the initial refocus model's optics, or, from scratch, the
    shipped focus classifier's: the classifier decides which images are
    refocused by their level, so a refocus model's levels must mean the same
    blur as the classifier's. Other optics keep each level's blur in
    micrometres (:func:`focusnet.train.derived_optics`).
    """
    from ..inference import model_optics
    from ..loader import load_model
    from ..train import derived_optics
    from .model import load_refocus_model

    base = load_refocus_model(None if init_model == "shipped" else init_model).optics if init_model \
        else model_optics(load_model())
    return derived_optics(base, True, images, **given)


def split_images(images, validation_images, out=None) -> tuple:
    """Training and validation image paths.

    The last training image is held out when none is given; a single image
    is split in two (its lower or right half held out, both written to
    ``out/split/``), as for the classifier.
    """
    from ..train import SPLIT_DIR, TrainingRun, split_single_image

    train_paths = find_images(images)
    validation_paths = find_images(validation_images) if validation_images else []
    if not validation_paths and len(train_paths) == 1 and out is not None:
        run = TrainingRun(None, None, [str(Path(out) / SPLIT_DIR / "train.tif")],
                          [str(Path(out) / SPLIT_DIR / "validation.tif")], source=train_paths[0])
        if not Path(run.images[0]).is_file():
            split_single_image(run)
        return run.images, run.validation_images
    validation_paths = validation_paths or train_paths[-1:]
    train_paths = [p for p in train_paths if p not in validation_paths]
    if not train_paths or not validation_paths:
        raise TrainingError("need at least two in-focus images (one is held out for validation) or validation "
                            "images", setting="validation_images")
    return train_paths, validation_paths


def _log_row(path: Path, row: dict) -> None:
    new = not path.is_file()
    with open(path, "a", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(LOG_COLUMNS)
        writer.writerow([f"{row[column]:.6g}" for column in LOG_COLUMNS])


def train_refocus(images, out, settings: RefocusSettings = RefocusSettings(), validation_images=(),
                  optics: Optics = Optics(), resume: bool = False, command: str = "", progress: bool = True,
                  stop_after: int | None = None) -> Path:
    """Train a refocus U-Net on simulated defocus of in-focus images.

    Parameters
    ----------
    images : sequence of path-like
        In-focus training images (files, folders or globs).
    out : path-like
        Model folder to write.
    settings : RefocusSettings
    validation_images : sequence of path-like
        In-focus images held out for validation (default: the last training image).
    optics : Optics
        Simulator parameters (the microscope the model is for).
    resume : bool
        Continue from ``out/checkpoint``.
    command : str
        The command line, recorded in the model card.
    progress : bool
    stop_after : int, optional
        Stop after this many steps (with a checkpoint), to be resumed later.

    Returns
    -------
    Path
    """
    from tqdm import tqdm

    out = Path(out)
    train_paths, validation_paths = split_images(images, validation_images, out)
    record = _run_record(settings, optics, train_paths, validation_paths)
    first = start_step(out, record, resume)
    end = settings.steps if stop_after is None else min(settings.steps, first + stop_after)
    initial = None
    if settings.init_model is not None:
        from .model import load_refocus_model

        initial = load_refocus_model(None if settings.init_model == "shipped" else settings.init_model)
        if initial.spec != settings.spec:
            raise TrainingError(f"the initial model has network {initial.spec.to_dict()}, the run asks for "
                                f"{settings.spec.to_dict()}", setting="init_model")

    def load(paths):
        return [prepare_refocus_source(read_image(p), str(p), settings.max_level, optics, settings.patch_size,
                                       settings.seed) for p in paths]

    train_sources, validation_sources = load(train_paths), load(validation_paths)
    val_inputs, val_targets, _, _ = fixed_pairs(validation_sources, settings.validation_pairs, settings.patch_size,
                                                settings.max_level, seed=settings.seed + 1_000_003)
    trainer = RefocusTrainer(settings, initial.weights if initial is not None else None)
    checkpoint_dir = out / CHECKPOINT_DIR
    if resume:
        trainer.restore_checkpoint(checkpoint_dir)
    else:
        out.mkdir(parents=True, exist_ok=True)
        (out / TRAINING_LOG_FILE).unlink(missing_ok=True)
    config = make_refocus_config(settings, optics, dict(record, command=command),
                                 init_sha256=initial.config["weights"]["sha256"] if initial is not None else None)

    def batch_for(step):
        return sample_pairs(train_sources, settings.batch_size, settings.patch_size, settings.max_level,
                            np.random.default_rng([settings.seed, step]))

    losses, since, run_start, last_row = [], time.perf_counter(), time.perf_counter(), None
    bar = tqdm(total=settings.steps, initial=first, disable=not progress, unit="step", dynamic_ncols=True,
               file=sys.stderr)
    with ThreadPoolExecutor(max_workers=1) as prefetch:
        upcoming = prefetch.submit(batch_for, first)
        for step in range(first, end):
            inputs, targets, _, scales = upcoming.result()
            if step + 1 < end:
                upcoming = prefetch.submit(batch_for, step + 1)
            losses.append(trainer.step(inputs, targets, scales))
            done = step + 1
            bar.update(1)
            if done % settings.validate_every == 0 or done == end:
                last_row = {"step": done, "train_loss": float(np.mean(losses)),
                            **trainer.validate(val_inputs, val_targets),
                            "steps_per_second": len(losses) / (time.perf_counter() - since),
                            "elapsed_seconds": time.perf_counter() - run_start}
                _log_row(out / TRAINING_LOG_FILE, last_row)
                bar.write(f"step {done}: loss {last_row['train_loss']:.4f}, validation PSNR "
                          f"{last_row['val_psnr_input']:.2f} -> {last_row['val_psnr_output']:.2f} dB")
                losses, since = [], time.perf_counter()
            if done % settings.checkpoint_every == 0 or done == end:
                config["training"].update(completed_steps=done, last_validation=last_row)
                save_refocus_model(out, config, trainer.weights())
                trainer.save_checkpoint(checkpoint_dir, done)
    bar.close()
    return out
