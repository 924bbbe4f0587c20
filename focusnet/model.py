"""A trained model is a folder: ``config.json``, ``weights.npz``, ``README.md``.

* ``config.json``: format name and version, architecture, patch size, number
  of levels, input scaling, preprocessing, the simulator parameters and
  training settings used, the focusnet version, and the SHA-256 of the
  weights file.
* ``weights.npz``: inference weights with batch normalisation folded in
  (:func:`focusnet.network.fold_inference_weights`), float32.
* ``README.md``: the model card (training data, the command that produced
  it, evaluation figures, known limits).

:func:`load_model` checks all of it and fails with a :class:`ModelError`
that says what is wrong; a loaded model is cached, so every caller in a
process shares one instance.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import numpy as np

from . import __version__
from .network import INPUT_SCALE, NUM_LEVELS, PATCH_SIZE, expected_weight_shapes, get_architecture
from .tf import import_tensorflow

MODEL_FORMAT = "focusnet-model"
MODEL_FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.npz"
CARD_FILE = "README.md"
PREPROCESSING = "log(1 + counts - patch minimum) - patch mean"

#: Patches per network call (1024 float32 patches are 29 MB): bounds memory on huge images.
PATCHES_PER_BATCH = 1024

#: The model shipped inside the package, used when no model is given.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "models" / "default"


class ModelError(ValueError):
    """A model folder that is missing, damaged or of an unknown format."""


def sha256_of(path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make_config(architecture: str, optics: dict, augmentation: dict, training: dict) -> dict:
    """The ``config.json`` content of a model (weights hash added on save)."""
    get_architecture(architecture)
    return {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "focusnet_version": __version__,
        "architecture": architecture,
        "patch_size": PATCH_SIZE,
        "num_levels": NUM_LEVELS,
        "input_scale": INPUT_SCALE,
        "preprocessing": PREPROCESSING,
        "simulator": {"optics": optics, "augmentation": augmentation},
        "training": training,
    }


def save_model(directory, config: dict, weights: dict) -> Path:
    """Write ``config.json`` and ``weights.npz`` (atomically replacing old ones)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    architecture = get_architecture(config["architecture"])
    _check_weights(weights, architecture, directory)
    temporary = directory / (WEIGHTS_FILE + ".tmp.npz")
    np.savez(temporary, **{name: np.asarray(value, np.float32) for name, value in weights.items()})
    config = dict(config, weights={"file": WEIGHTS_FILE, "sha256": sha256_of(temporary)})
    os.replace(temporary, directory / WEIGHTS_FILE)
    temporary_config = directory / (CONFIG_FILE + ".tmp")
    temporary_config.write_text(json.dumps(config, indent=2) + "\n")
    os.replace(temporary_config, directory / CONFIG_FILE)
    return directory


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
    """Read and validate a model folder's ``config.json``."""
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
    if not isinstance(config, dict) or config.get("format") != MODEL_FORMAT:
        raise ModelError(f"{path}: not a focusnet model config (format is not {MODEL_FORMAT!r})")
    version = config.get("format_version")
    if version != MODEL_FORMAT_VERSION:
        raise ModelError(f"{path}: model format version {version!r} is not supported by focusnet {__version__} "
                         f"(it reads version {MODEL_FORMAT_VERSION}); use a matching focusnet version")
    for key, expected in (("patch_size", PATCH_SIZE), ("num_levels", NUM_LEVELS), ("input_scale", INPUT_SCALE)):
        if config.get(key) != expected:
            raise ModelError(f"{path}: {key} is {config.get(key)!r}, this focusnet supports {expected}")
    try:
        get_architecture(config.get("architecture"))
    except ValueError as error:
        raise ModelError(f"{path}: {error}") from None
    if not isinstance(config.get("weights"), dict) or "sha256" not in config["weights"]:
        raise ModelError(f"{path}: no weights entry with a sha256")
    return config


class PatchClassifier:
    """What inference needs of a model: ``predict_patches``, built lazily, thread-safe.

    Subclasses set ``directory``, ``config`` and ``architecture`` and implement
    :meth:`_build`, which returns a function from a float32 batch
    ``(n, 84, 84, 1)`` to probabilities ``(n, 11)``. TensorFlow is imported
    there, on the first prediction.
    """

    directory: Path
    config: dict

    def __init__(self):
        self._predict = None
        self._lock = threading.Lock()

    def _build(self):
        raise NotImplementedError

    def predict_patches(self, patches: np.ndarray, batch_size: int = PATCHES_PER_BATCH) -> np.ndarray:
        """Level probabilities of patches.

        Parameters
        ----------
        patches : ndarray, shape (N, 84, 84) or (N, 84, 84, 1)
            Raw counts divided by 65535.
        batch_size : int
            Patches per network call (bounds memory for huge images).

        Returns
        -------
        ndarray, shape (N, 11), float64
        """
        with self._lock:
            if self._predict is None:
                self._predict = self._build()
        patches = np.asarray(patches, np.float32)
        if patches.ndim == 3:
            patches = patches[..., None]
        if patches.shape[1:] != (PATCH_SIZE, PATCH_SIZE, 1):
            raise ValueError(f"patches must have shape (N, {PATCH_SIZE}, {PATCH_SIZE}[, 1]), got {patches.shape}")
        outputs = [np.asarray(self._predict(patches[start:start + batch_size]))
                   for start in range(0, len(patches), batch_size)]
        if not outputs:
            return np.zeros((0, NUM_LEVELS))
        return np.concatenate(outputs).astype(np.float64)


class FocusModel(PatchClassifier):
    """A loaded model folder: configuration, weights and a batched predictor.

    Use :func:`load_model` rather than the constructor: it caches instances.
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


_cache = {}
_cache_lock = threading.Lock()


def load_model(directory=None):
    """Load a model once per process: a model folder, or an exported bundle.

    Parameters
    ----------
    directory : str, Path, FocusModel or BundleModel, optional
        A model folder, a bundle (``.zip`` or unzipped folder, see
        :mod:`focusnet.bundle`), or an already loaded model (returned as is).
        Default: the model shipped with focusnet.

    Returns
    -------
    FocusModel or BundleModel
        Both are :class:`PatchClassifier` s, offering ``predict_patches``.

    Raises
    ------
    ModelError
        If the folder or bundle is missing, damaged (hash mismatch,
        unreadable weights, wrong shapes), of an unsupported format version,
        or (bundles) holds ops outside the allow-list.
    """
    if hasattr(directory, "predict_patches"):
        return directory
    from .bundle import is_bundle, load_bundle

    if directory is not None and is_bundle(directory):
        return load_bundle(directory)
    directory = Path(DEFAULT_MODEL_DIR if directory is None else directory).resolve()
    config = read_config(directory)
    weights_path = directory / config["weights"].get("file", WEIGHTS_FILE)
    if not weights_path.is_file():
        raise ModelError(f"{directory}: weights file {weights_path.name} is missing")
    key = (str(directory), config["weights"]["sha256"])
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        if sha256_of(weights_path) != config["weights"]["sha256"]:
            raise ModelError(f"{weights_path}: damaged or modified (SHA-256 does not match {CONFIG_FILE})")
        try:
            with np.load(weights_path, allow_pickle=False) as archive:
                weights = {name: archive[name].astype(np.float32) for name in archive.files}
        except Exception as error:  # numpy raises several types for bad archives
            raise ModelError(f"{weights_path}: unreadable weights ({error})") from None
        _check_weights(weights, get_architecture(config["architecture"]), directory)
        model = FocusModel(directory, config, weights)
        _cache[key] = model
        return model
