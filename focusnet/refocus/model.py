"""A refocus model is a folder (``config.json``, ``weights.npz``, ``README.md``), run with onnxruntime.

``config.json`` holds the format name and version, the network's shape, the
normalisation, the levels it was trained on and those it restores (from its
evaluation), the simulator's optics, the training run and the SHA-256 of
the weights. :func:`load_refocus_model` checks all of it; the weights are
turned into an ONNX graph in memory (:func:`focusnet.refocus.unet.build_onnx_graph`),
so every front end runs the same graph and TensorFlow is needed only to train.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from pathlib import Path

import numpy as np

from .. import __version__
from ..classifier import MODEL_CACHE, onnx_manifest_sha256, sha256_file
from ..contract import CONFIG_FILE, WEIGHTS_FILE
from ..errors import ModelError
from ..files import write_text
from ..onnxmodel import onnx_session
from ..optics import Optics
from .pairs import PERCENTILES
from .unet import UNetSpec, build_onnx_graph, expected_weight_shapes

REFOCUS_FORMAT = "focusnet-refocus-model"
REFOCUS_FORMAT_VERSION = 1
#: The manifest format of an exported refocus ONNX file.
REFOCUS_ONNX_FORMAT = "focusnet-refocus-onnx"
#: The refocus model shipped with focusnet.
SHIPPED_REFOCUS_DIR = Path(__file__).resolve().parent.parent / "models" / "refocus"
#: Largest tile (pixels per side, before padding) one network call sees; larger images are tiled with overlap.
TILE = 1024
#: Pixels each tile overlaps its neighbours by, on each side (more than the blur the model undoes).
TILE_MARGIN = 64


def make_refocus_config(settings, optics: Optics, training: dict, init_sha256=None) -> dict:
    """``config.json`` of a refocus model (the weights' hash is added on save)."""
    config = {
        "format": REFOCUS_FORMAT,
        "format_version": REFOCUS_FORMAT_VERSION,
        "focusnet_version": __version__,
        "network": settings.spec.to_dict(),
        "normalisation": {"percentiles": list(PERCENTILES)},
        "max_level": settings.max_level,
        # Until an evaluation says which levels it restores, a model claims what it was trained on.
        "restorable_levels": list(range(1, settings.max_level + 1)),
        "simulator": {"optics": optics.to_dict()},
        "training": dict(training, settings=dataclasses.asdict(settings)),
    }
    if init_sha256 is not None:
        config["training"]["init_weights_sha256"] = init_sha256
    return config


def check_refocus_config(config, where) -> dict:
    """Check a refocus ``config.json``'s content."""
    if not isinstance(config, dict) or config.get("format") != REFOCUS_FORMAT:
        raise ModelError(f"{where}: not a focusnet refocus model (format {REFOCUS_FORMAT!r} expected)")
    version = config.get("format_version")
    if version != REFOCUS_FORMAT_VERSION:
        raise ModelError(f"{where}: refocus model format version {version!r} is not supported (this focusnet "
                         f"reads version {REFOCUS_FORMAT_VERSION})")
    try:
        UNetSpec(**config["network"])
        Optics(**config["simulator"]["optics"])
        levels = [int(level) for level in config["restorable_levels"]]
        if not all(1 <= level <= int(config["max_level"]) for level in levels):
            raise ValueError("restorable levels outside the trained levels")
        if not isinstance(config["weights"]["sha256"], str):
            raise ValueError("no weights hash")
    except (KeyError, TypeError, ValueError) as error:
        raise ModelError(f"{where}: damaged refocus config ({type(error).__name__}: {error})") from None
    return config


def read_refocus_config(directory) -> dict:
    """Read and check a refocus model folder's ``config.json``."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise ModelError(f"{directory}: not a focusnet refocus model folder (no {CONFIG_FILE})")
    try:
        config = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ModelError(f"{path}: damaged ({error})") from None
    return check_refocus_config(config, path)


def write_refocus_config(directory, config: dict) -> Path:
    """Replace a refocus model folder's ``config.json`` atomically."""
    return write_text(Path(directory) / CONFIG_FILE, json.dumps(config, indent=2) + "\n")


def _check_weights(weights: dict, spec: UNetSpec, where) -> None:
    expected = expected_weight_shapes(spec)
    if set(weights) != set(expected):
        raise ModelError(f"{where}: weights do not match the network (missing {sorted(set(expected) - set(weights))},"
                         f" unexpected {sorted(set(weights) - set(expected))})")
    for name, shape in expected.items():
        if tuple(weights[name].shape) != shape or not np.all(np.isfinite(weights[name])):
            raise ModelError(f"{where}: weight {name} has shape {tuple(weights[name].shape)} (needs {shape}) or "
                             "holds NaN or infinite values")


def save_refocus_model(directory, config: dict, weights: dict) -> Path:
    """Write ``weights.npz`` and ``config.json``, each replaced atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _check_weights(weights, UNetSpec(**config["network"]), directory)
    temporary = directory / (WEIGHTS_FILE + ".tmp.npz")
    np.savez(temporary, **{name: np.asarray(value, np.float32) for name, value in weights.items()})
    config = dict(config, weights={"file": WEIGHTS_FILE, "sha256": sha256_file(temporary)})
    os.replace(temporary, directory / WEIGHTS_FILE)
    write_refocus_config(directory, config)
    return directory


#: What a refocus model needs to run, said once.
_MISSING_RUNTIME = "refocusing runs with onnxruntime: pip install 'focusnet[onnx]'"


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise ModelError(_MISSING_RUNTIME) from None
    return onnx


class RefocusModel:
    """A loaded refocus model: config, weights and the ONNX session that runs them (built on first use)."""

    def __init__(self, directory, config: dict, weights: dict | None = None, proto=None):
        self.directory = Path(directory)
        self.config = config
        self.weights = weights
        self._proto = proto
        self.spec = UNetSpec(**config["network"])
        self.optics = Optics(**config["simulator"]["optics"])
        self.restorable_levels = tuple(int(level) for level in config["restorable_levels"])
        self._session = None
        self._lock = threading.Lock()
        #: An exported model's manifest (its hash covers graph and config); None for a folder.
        self.manifest = None

    @property
    def name(self) -> str:
        return self.directory.name

    def onnx_proto(self):
        """The model as an ONNX ModelProto (what the session runs and what ``export`` writes)."""
        from ..contract import ONNX_OPSET

        if self._proto is not None:
            return self._proto
        helper = _import_onnx().helper
        proto = helper.make_model(build_onnx_graph(self.spec, self.weights),
                                  opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
                                  producer_name="focusnet", producer_version=__version__)
        proto.ir_version = min(proto.ir_version, 9)
        return proto

    def run(self, normalised: np.ndarray) -> np.ndarray:
        """Refocus one normalised image ``(H, W)`` (any size): tiles with overlap, reflective padding."""
        normalised = np.asarray(normalised, np.float32)
        height, width = normalised.shape
        output = np.empty_like(normalised)
        for y0, y1, x0, x1 in _tiles(height, width):
            top, left = max(y0 - TILE_MARGIN, 0), max(x0 - TILE_MARGIN, 0)
            window = normalised[top:min(y1 + TILE_MARGIN, height), left:min(x1 + TILE_MARGIN, width)]
            refocused = self._run_padded(window)
            output[y0:y1, x0:x1] = refocused[y0 - top:y1 - top, x0 - left:x1 - left]
        return output

    def run_graph(self, normalised: np.ndarray) -> np.ndarray:
        """The graph on one normalised image as it is (sides multiples of ``spec.multiple()``; no padding)."""
        with self._lock:
            if self._session is None:
                self._session = onnx_session(self.onnx_proto().SerializeToString(), self.directory,
                                             missing=_MISSING_RUNTIME)
        return self._session.run(None, {"image": np.asarray(normalised, np.float32)[None, None]})[0][0, 0]

    def _run_padded(self, window: np.ndarray) -> np.ndarray:
        multiple = self.spec.multiple()
        height, width = window.shape
        # Reflective padding to a whole number of blocks, and at least the margin a border needs.
        pad_y = TILE_MARGIN // 2 + (-(height + TILE_MARGIN) % multiple)
        pad_x = TILE_MARGIN // 2 + (-(width + TILE_MARGIN) % multiple)
        padded = np.pad(window, ((TILE_MARGIN // 2, pad_y), (TILE_MARGIN // 2, pad_x)), mode="symmetric")
        result = self.run_graph(padded)
        return result[TILE_MARGIN // 2:TILE_MARGIN // 2 + height, TILE_MARGIN // 2:TILE_MARGIN // 2 + width]


def _tiles(height: int, width: int):
    for y0 in range(0, height, TILE):
        for x0 in range(0, width, TILE):
            yield y0, min(y0 + TILE, height), x0, min(x0 + TILE, width)


def _load_folder(directory: Path) -> RefocusModel:
    from ..model import read_weights

    config = read_refocus_config(directory)
    weights = read_weights(directory, config)
    _check_weights(weights, UNetSpec(**config["network"]), directory)
    return RefocusModel(directory, config, weights)


def _load_onnx(path: Path) -> RefocusModel:
    """A refocus model exported as ONNX, checked before onnxruntime sees it (format, ops, hash)."""
    from .unet import ALLOWED_REFOCUS_OPS

    onnx = _import_onnx()
    try:
        proto = onnx.load_model_from_string(path.read_bytes())
        manifest = json.loads({p.key: p.value for p in proto.metadata_props}["focusnet"])
        config = check_refocus_config(manifest["model_config"], path)
        if manifest.get("format") != REFOCUS_ONNX_FORMAT:
            raise ValueError(f"format {manifest.get('format')!r}")
    except ModelError:
        raise
    except Exception as error:  # protobuf, JSON and key errors: all mean "not one of ours"
        raise ModelError(f"{path}: not a focusnet refocus ONNX model ({type(error).__name__}: {error})") from None
    ops = {node.op_type for node in proto.graph.node}
    if not ops <= ALLOWED_REFOCUS_OPS or proto.graph.input[0].name != "image" or any(
            initialiser.data_location == onnx.TensorProto.EXTERNAL for initialiser in proto.graph.initializer):
        raise ModelError(f"{path}: its graph holds ops or data a refocus model never has "
                         f"({sorted(ops - ALLOWED_REFOCUS_OPS)}); refusing to run it")
    if manifest.get("sha256") != onnx_manifest_sha256(proto, config):
        raise ModelError(f"{path}: damaged or modified (its graph or config does not match its SHA-256)")
    model = RefocusModel(path, config, proto=proto)
    model.manifest = manifest
    return model


def load_refocus_model(model=None) -> RefocusModel:
    """Load a refocus model folder or exported ``.onnx`` file (default: the shipped folder), once per state on disk.

    Raises
    ------
    ModelError
        Missing, damaged (hash mismatch, unreadable weights, wrong shapes), or of another format.
    """
    if isinstance(model, RefocusModel):
        return model
    directory = SHIPPED_REFOCUS_DIR if model is None else Path(model)
    if directory.suffix.lower() == ".onnx" and directory.is_file():
        return MODEL_CACHE.get(directory, _load_onnx)
    if not directory.is_dir():
        raise ModelError(f"{directory}: refocus model folder not found")
    return MODEL_CACHE.get(directory, _load_folder, names=(CONFIG_FILE, WEIGHTS_FILE))
