"""The patch classifier as ONNX, run with onnxruntime: measuring focus without TensorFlow.

An ONNX model (``focusnet export --format onnx``, see ``export/onnxexport.py``)
takes patches ``[N, 84, 84, 1]`` (raw counts / 65535) and gives level
probabilities ``[N, 11]``. Its ``metadata_props`` hold focusnet's manifest:
format and version, the model's config and one SHA-256 over its graph and
that config (:func:`focusnet.classifier.onnx_manifest_sha256`): every number
that changes an answer (weights, pixel size, optics) is covered.

:func:`load_onnx` refuses, before onnxruntime sees the file, a model that is
damaged, tampered with (hash), of an unknown format version, whose graph
holds any op outside :data:`ALLOWED_ONNX_OPS` or data outside the file, or
whose input and output are not the classifier's; then onnxruntime builds its
session at once, so a model it cannot run is one clear error before any
image is measured, as the bundle loader does for SavedModels.
"""

from __future__ import annotations

import json
from pathlib import Path

from .classifier import MODEL_CACHE, PatchClassifier, check_config, onnx_manifest_sha256
from .contract import (
    NUM_LEVELS,
    ONNX_FORMAT,
    ONNX_FORMAT_VERSION,
    ONNX_INPUT,
    ONNX_MANIFEST_KEY,
    ONNX_OUTPUT,
    ONNX_SUFFIX,
    PATCH_SIZE,
)
from .errors import ModelError

#: Every op a focusnet classifier graph may contain: nothing that reads or writes files, no custom ops.
ALLOWED_ONNX_OPS = frozenset({
    "Mul", "Sub", "Add", "ReduceMin", "ReduceMean", "Log", "Transpose", "Conv", "Relu", "MaxPool", "Flatten",
    "MatMul", "Softmax",
})


def is_onnx(path) -> bool:
    """Whether a path names an ONNX model file (by its suffix)."""
    path = Path(path)
    return path.suffix.lower() == ONNX_SUFFIX and not path.is_dir()


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise ModelError("ONNX models need the onnx and onnxruntime packages: pip install 'focusnet[onnx]'") from None
    return onnx


class OnnxModel(PatchClassifier):
    """A checked ONNX model, predicting like the other classifiers (onnxruntime, CPU)."""

    def __init__(self, path, manifest: dict, config: dict, data: bytes):
        from .network import get_architecture

        super().__init__()
        self.directory = Path(path)
        self.manifest = manifest
        self.config = config
        self.architecture = get_architecture(config["architecture"])
        self._data = data

    @property
    def name(self) -> str:
        return f"onnx {self.directory.name} ({self.architecture.name})"

    def _build(self):
        session = onnx_session(self._data, self.directory)

        def predict(batch):
            try:
                return session.run([ONNX_OUTPUT], {ONNX_INPUT: batch})[0]
            except Exception as error:  # onnxruntime raises its own types (Fail, InvalidArgument, ...)
                raise ModelError(f"{self.directory}: onnxruntime cannot run this model "
                                 f"({type(error).__name__}: {error})") from None

        return predict


def onnx_session(data: bytes, where, missing: str = "ONNX models run with onnxruntime: pip install 'focusnet[onnx]'"):
    """onnxruntime's CPU session for a checked model, or one clear error (onnxruntime's own types are not ours).

    Parameters
    ----------
    data : bytes
        The serialized model.
    where : path-like
        Names the model in errors.
    missing : str
        The message when onnxruntime is not installed.
    """
    try:
        import onnxruntime
    except ImportError:
        raise ModelError(missing) from None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only
    try:
        return onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as error:
        raise ModelError(f"{where}: onnxruntime cannot load this model ({type(error).__name__}: {error}); export it "
                         "again with this focusnet (focusnet export)") from None


def _dimensions(value) -> list:
    """A graph input's or output's dimensions: a number, or None where it is named (the batch)."""
    return [dim.dim_value if dim.HasField("dim_value") else None for dim in value.type.tensor_type.shape.dim]


def check_onnx(data: bytes, where) -> tuple:
    """Parse and check an ONNX model's bytes; return ``(manifest, config)``.

    Raises
    ------
    ModelError
        Damaged, not a focusnet ONNX model, an unknown or earlier format
        version, a graph or config whose hash differs from the manifest's,
        ops outside :data:`ALLOWED_ONNX_OPS`, external data, or inputs and
        outputs other than the classifier's.
    """
    onnx = _import_onnx()
    try:
        proto = onnx.load_model_from_string(data)
    except Exception as error:  # protobuf raises DecodeError and others
        raise ModelError(f"{where}: damaged ONNX model ({type(error).__name__}: {error})") from None
    properties = {entry.key: entry.value for entry in proto.metadata_props}
    try:
        manifest = json.loads(properties[ONNX_MANIFEST_KEY])
    except (KeyError, ValueError):
        raise ModelError(f"{where}: not a focusnet ONNX model (no '{ONNX_MANIFEST_KEY}' manifest in its metadata)") \
            from None
    if not isinstance(manifest, dict) or manifest.get("format") != ONNX_FORMAT:
        raise ModelError(f"{where}: not a focusnet ONNX model manifest")
    if manifest.get("format_version") == 1:
        raise ModelError(f"{where}: exported by an earlier focusnet (ONNX format version 1), whose hash does not cover "
                         "the model's settings; export it again from its model folder (focusnet export --format onnx)")
    if manifest.get("format_version") != ONNX_FORMAT_VERSION:
        raise ModelError(f"{where}: ONNX format version {manifest.get('format_version')!r} is not supported (this "
                         f"focusnet reads version {ONNX_FORMAT_VERSION})")
    if not isinstance(manifest.get("model_config"), dict):
        raise ModelError(f"{where}: the manifest holds no model_config")
    if onnx_manifest_sha256(proto, manifest["model_config"]) != manifest.get("sha256"):
        raise ModelError(f"{where}: the graph or its settings are damaged or modified (SHA-256 does not match the "
                         "manifest)")
    ops = {(node.domain or "", node.op_type) for node in proto.graph.node}
    forbidden = sorted(f"{domain}:{op}" if domain else op for domain, op in ops
                       if domain not in ("", "ai.onnx") or op not in ALLOWED_ONNX_OPS)
    if forbidden or any(function for function in proto.functions):
        raise ModelError(f"{where}: graph contains ops outside the classifier allow-list: {forbidden or 'functions'}"
                         "; refusing to load it")
    if any(tensor.data_location == onnx.TensorProto.EXTERNAL for tensor in proto.graph.initializer):
        raise ModelError(f"{where}: its weights refer to files outside the model; refusing to read them")
    inputs = [value.name for value in proto.graph.input]
    outputs = [value.name for value in proto.graph.output]
    if inputs != [ONNX_INPUT] or outputs != [ONNX_OUTPUT]:
        raise ModelError(f"{where}: needs input {ONNX_INPUT!r} and output {ONNX_OUTPUT!r}, has {inputs} -> {outputs}")
    shapes = (_dimensions(proto.graph.input[0]), _dimensions(proto.graph.output[0]))
    if shapes != ([None, PATCH_SIZE, PATCH_SIZE, 1], [None, NUM_LEVELS]):
        raise ModelError(f"{where}: input and output shapes {shapes[0]} -> {shapes[1]} are not the classifier's "
                         f"[N, {PATCH_SIZE}, {PATCH_SIZE}, 1] -> [N, {NUM_LEVELS}]")
    return manifest, check_config(manifest["model_config"], f"{where} (manifest)")


def _load_onnx(path: Path) -> OnnxModel:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ModelError(f"{path}: cannot read the ONNX model ({error.strerror or error})") from None
    manifest, config = check_onnx(data, path)
    model = OnnxModel(path, manifest, config, data)
    model.prepare()  # onnxruntime's refusal now, not in the middle of a batch
    return model


def load_onnx(path) -> OnnxModel:
    """Check and load an ONNX model, once per process and state on disk.

    Raises
    ------
    ModelError
        Missing, or refused by :func:`check_onnx`.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: ONNX model not found")
    return MODEL_CACHE.get(path, _load_onnx)
