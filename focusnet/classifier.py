"""What model folders and bundles share: the predictor base, the config schema, hashing, one cache.

:mod:`focusnet.model` (model folders) and :mod:`focusnet.bundle` (exported
SavedModels) both build on this module and on nothing of each other;
:func:`focusnet.loader.load_model` picks between them.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from pathlib import Path

import numpy as np

from . import __version__
from .contract import (
    INPUT_SCALE,
    MODEL_FORMAT,
    MODEL_FORMAT_VERSION,
    NUM_LEVELS,
    PATCH_SIZE,
    PREPROCESSING,
)
from .errors import ModelError

#: Patches per network call (1024 float32 patches are 29 MB): bounds memory on huge images.
PATCHES_PER_BATCH = 1024

#: Keys of a version-1 ``config["training"]`` that record progress, not the run's settings.
_TRAINING_RECORD_KEYS = ("images", "validation_images", "command", "completed_steps", "last_validation")


def sha256_file(path) -> str:
    """Hex SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of bytes in memory."""
    return hashlib.sha256(data).hexdigest()


def onnx_manifest_sha256(proto, config: dict) -> str:
    """One SHA-256 over an ONNX graph (weights included) and the config beside it: neither can change unnoticed."""
    digest = hashlib.sha256(proto.graph.SerializeToString(deterministic=True))
    digest.update(json.dumps(config, sort_keys=True).encode())
    return digest.hexdigest()


def make_config(architecture: str, optics: dict, augmentation: dict, training: dict) -> dict:
    """The ``config.json`` content of a model (the weights' hash is added on save).

    Parameters
    ----------
    architecture : str
        A name in :data:`focusnet.network.ARCHITECTURES`.
    optics, augmentation : dict
        The simulator's optics and the training augmentation.
    training : dict
        The run: ``settings`` (everything that defines it), ``images``,
        ``validation_images``, ``command``, and progress.
    """
    from .network import get_architecture

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


def _upgrade_1_to_2(config: dict) -> dict:
    # Version 1 mixed the run's settings with its record in config["training"] (and kept a
    # second copy in checkpoint/settings.json); version 2 nests them under "settings".
    training = dict(config.get("training") or {})
    settings = {key: value for key, value in training.items() if key not in _TRAINING_RECORD_KEYS}
    config["training"] = {"settings": settings,
                          **{key: training[key] for key in _TRAINING_RECORD_KEYS if key in training}}
    return config


def _upgrade_2_to_3(config: dict) -> dict:
    # Before version 3 the simulator knew only the paraxial defocus phase and did not record it.
    simulator = config.get("simulator")
    if isinstance(simulator, dict) and isinstance(simulator.get("optics"), dict):
        simulator["optics"] = {**simulator["optics"], "defocus_phase": "paraxial"}
    return config


#: ``{version: function}``: each turns a config of that version into the next version's.
UPGRADES = {1: _upgrade_1_to_2, 2: _upgrade_2_to_3}


def upgrade_config(config: dict, where) -> dict:
    """A model config of any known format version, upgraded in memory to the current one.

    As CSBDeep's ``update_loaded_config``: older folders and bundles keep
    loading; the files on disk are not touched. A newer, unknown version is
    refused, since its meaning cannot be guessed.

    Raises
    ------
    ModelError
        For a version newer than :data:`focusnet.contract.MODEL_FORMAT_VERSION`
        or one no upgrade starts from.
    """
    version = config.get("format_version")
    if type(version) is not int:  # noqa: E721 - neither True nor 1.0 is a version
        raise ModelError(f"{where}: model format version {version!r} is not a whole number")
    if version > MODEL_FORMAT_VERSION:
        raise ModelError(f"{where}: model format version {version} is newer than focusnet {__version__} reads "
                         f"(up to {MODEL_FORMAT_VERSION}); update focusnet")
    config = copy.deepcopy(config)
    while config.get("format_version") != MODEL_FORMAT_VERSION:
        upgrade = UPGRADES.get(config.get("format_version"))
        if upgrade is None:
            raise ModelError(f"{where}: model format version {config.get('format_version')!r} is not supported by "
                             f"focusnet {__version__} (it reads versions {min(UPGRADES)} to {MODEL_FORMAT_VERSION})")
        config = upgrade(config)
        config["format_version"] = config.get("format_version") + 1
    return config


def check_config(config, where) -> dict:
    """Validate a model config (upgrading older versions in memory); return it.

    Raises
    ------
    ModelError
        Not a focusnet model config, an unsupported version, or numbers that
        differ from the contract's.
    """
    from .network import get_architecture

    if not isinstance(config, dict) or config.get("format") != MODEL_FORMAT:
        raise ModelError(f"{where}: not a focusnet model config (format is not {MODEL_FORMAT!r})")
    config = upgrade_config(config, where)
    for key, expected in (("patch_size", PATCH_SIZE), ("num_levels", NUM_LEVELS), ("input_scale", INPUT_SCALE)):
        if config.get(key) != expected:
            raise ModelError(f"{where}: {key} is {config.get(key)!r}, this focusnet supports {expected}")
    try:
        get_architecture(config.get("architecture"))
    except ValueError as error:
        raise ModelError(f"{where}: {error}") from None
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

    def prepare(self):
        """Build the runtime now (thread-safe, once): a model that cannot run fails here, before any image.

        Returns the prediction function. :meth:`predict_patches` calls it on first use.

        Raises
        ------
        ModelError
            The runtime is missing (TensorFlow, onnxruntime) or refuses the model.
        """
        with self._lock:
            if self._predict is None:
                self._predict = self._build()
        return self._predict

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
        predict = self.prepare()
        patches = np.asarray(patches, np.float32)
        if patches.ndim == 3:
            patches = patches[..., None]
        if patches.shape[1:] != (PATCH_SIZE, PATCH_SIZE, 1):
            raise ValueError(f"patches must have shape (N, {PATCH_SIZE}, {PATCH_SIZE}[, 1]), got {patches.shape}")
        outputs = [np.asarray(predict(patches[start:start + batch_size]))
                   for start in range(0, len(patches), batch_size)]
        if not outputs:
            return np.zeros((0, NUM_LEVELS))
        return np.concatenate(outputs).astype(np.float64)


def file_signature(path: Path, names=None) -> tuple:
    """Names, sizes and modification times of a model's files: any change on disk means a new check.

    Cheap enough to run on every call (callers such as a CellProfiler module ask
    for the model once per image set), unlike reading and hashing the files.

    Parameters
    ----------
    path : Path
        A file, or a folder.
    names : iterable of str, optional
        For a folder, the files that make the model (others, such as logs,
        plots or a training run's temporary files, may come and go);
        default: every file below it.
    """
    if path.is_file():
        items = [(path.name, path)]
    elif names is not None:
        items = [(name, path / name) for name in names]
    else:
        items = [(p.relative_to(path).as_posix(), p) for p in sorted(path.rglob("*")) if p.is_file()]
    signature = []
    for name, item in items:
        try:
            status = item.stat()
        except OSError:  # absent (or vanished while listed): the loader says what is missing
            signature.append((name, None, None))
            continue
        signature.append((name, status.st_size, status.st_mtime_ns))
    return tuple(signature)


class ModelCache:
    """One loaded model per path, shared by every caller in a process, checked again when its files change."""

    def __init__(self):
        self._models = {}
        self._lock = threading.Lock()

    def get(self, path: Path, load, names=None):
        """The cached model at ``path``, or ``load(path)`` when new or changed on disk.

        ``names`` selects the files that make a folder's model (see :func:`file_signature`).
        """
        path = Path(path).resolve()
        signature = file_signature(path, names)
        with self._lock:
            cached = self._models.get(str(path))
            if cached is None or cached[0] != signature:
                self._models[str(path)] = (signature, load(path))  # replaces the stale one
            return self._models[str(path)][1]

    def clear(self):
        with self._lock:
            self._models.clear()


#: The process's one model cache (folders and bundles alike).
MODEL_CACHE = ModelCache()
