"""A trained model is a folder: ``config.json``, ``weights.npz``, ``README.md``.

* ``config.json``: format name and version, architecture, patch size, number
  of levels, input scaling, preprocessing, the simulator parameters, the
  training run (its settings, images and progress), the focusnet version,
  and the SHA-256 of the weights file.
* ``weights.npz``: inference weights with batch normalisation folded in
  (:func:`focusnet.network.fold_inference_weights`), float32.
* ``evaluation.json`` (once evaluated) and ``README.md``: the evaluation
  figures, and the model card rendered from config and evaluation
  (:mod:`focusnet.card`).

:func:`load_model_folder` checks all of it and fails with a
:class:`~focusnet.errors.ModelError` that says what is wrong; folders of an
older format version are upgraded in memory
(:func:`focusnet.classifier.upgrade_config`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .classifier import MODEL_CACHE, PatchClassifier, check_config, sha256_file
from .contract import CONFIG_FILE, PATCH_SIZE, WEIGHTS_FILE
from .errors import ModelError
from .files import write_text
from .network import expected_weight_shapes, get_architecture
from .tf import import_tensorflow


def save_model(directory, config: dict, weights: dict) -> Path:
    """Write ``config.json`` and ``weights.npz``, each replaced atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    architecture = get_architecture(config["architecture"])
    _check_weights(weights, architecture, directory)
    temporary = directory / (WEIGHTS_FILE + ".tmp.npz")
    np.savez(temporary, **{name: np.asarray(value, np.float32) for name, value in weights.items()})
    config = dict(config, weights={"file": WEIGHTS_FILE, "sha256": sha256_file(temporary)})
    os.replace(temporary, directory / WEIGHTS_FILE)
    write_config(directory, config)
    return directory


def write_config(directory, config: dict) -> Path:
    """Replace a model folder's ``config.json`` atomically."""
    return write_text(Path(directory) / CONFIG_FILE, json.dumps(config, indent=2) + "\n")


def _check_weights(weights: dict, architecture, where) -> None:
    expected = expected_weight_shapes(architecture)
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise ModelError(f"{where}: weights do not match architecture {architecture.name!r} "
                         f"(missing {missing}, unexpected {unexpected})")
    for name, shape in expected.items():
        if tuple(weights[name].shape) != shape:
            raise ModelError(f"{where}: weight {name} has shape {tuple(weights[name].shape)}, "
                             f"architecture {architecture.name!r} needs {shape}")
        if not np.all(np.isfinite(weights[name])):
            raise ModelError(f"{where}: weight {name} contains NaN or infinite values")


def read_config(directory) -> dict:
    """Read and validate a model folder's ``config.json``, upgraded to the current format version."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelError(f"{directory}: model folder not found")
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise ModelError(f"{directory}: not a focusnet model folder (no {CONFIG_FILE})")
    try:
        config = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ModelError(f"{path}: damaged ({error})") from None
    config = check_config(config, path)
    if not isinstance(config.get("weights"), dict) or "sha256" not in config["weights"]:
        raise ModelError(f"{path}: no weights entry with a sha256")
    return config


class FocusModel(PatchClassifier):
    """A loaded model folder: configuration, weights and a batched predictor.

    Use :func:`focusnet.loader.load_model` rather than the constructor: it
    caches instances.
    """

    def __init__(self, directory, config: dict, weights: dict):
        super().__init__()
        self.directory = Path(directory)
        self.config = config
        self.architecture = get_architecture(config["architecture"])
        self.weights = weights

    @property
    def name(self) -> str:
        return f"{self.directory.name} ({self.architecture.name})"

    def _build(self):
        tf = import_tensorflow()
        from .network import inference_graph

        constants = {name: tf.constant(value) for name, value in self.weights.items()}

        @tf.function(input_signature=[tf.TensorSpec([None, PATCH_SIZE, PATCH_SIZE, 1], tf.float32)])
        def predict(patches):
            return inference_graph(patches, constants, self.architecture)

        return lambda batch: predict(batch).numpy()


def read_weights(directory: Path, config: dict) -> dict:
    """The weights a model folder's config names, after checking their SHA-256 against it (float32 arrays)."""
    weights_path = directory / config["weights"].get("file", WEIGHTS_FILE)
    if not weights_path.is_file():
        raise ModelError(f"{directory}: weights file {weights_path.name} is missing")
    if sha256_file(weights_path) != config["weights"]["sha256"]:
        raise ModelError(f"{weights_path}: damaged or modified (SHA-256 does not match {CONFIG_FILE})")
    try:
        with np.load(weights_path, allow_pickle=False) as archive:
            return {name: archive[name].astype(np.float32) for name in archive.files}
    except Exception as error:  # numpy raises several types for bad archives
        raise ModelError(f"{weights_path}: unreadable weights ({error})") from None


def _load_folder(directory: Path) -> FocusModel:
    config = read_config(directory)
    weights = read_weights(directory, config)
    _check_weights(weights, get_architecture(config["architecture"]), directory)
    return FocusModel(directory, config, weights)


def load_model_folder(directory) -> FocusModel:
    """Check and load a model folder, once per process and state on disk.

    Raises
    ------
    ModelError
        Missing, damaged (hash mismatch, unreadable weights, wrong shapes), or
        of an unsupported format version.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelError(f"{directory}: model folder not found")
    try:
        weights_file = json.loads((directory / CONFIG_FILE).read_text())["weights"]["file"]
    except (OSError, ValueError, KeyError, TypeError):
        weights_file = WEIGHTS_FILE  # _load_folder says what is wrong with the config
    return MODEL_CACHE.get(directory, _load_folder, names=(CONFIG_FILE, str(weights_file)))
