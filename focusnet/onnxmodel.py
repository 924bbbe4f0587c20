"""The patch classifier as ONNX, run with onnxruntime: measuring focus without TensorFlow.

An ONNX model (``focusnet export --format onnx``, see ``export/onnxexport.py``)
takes patches ``[N, 84, 84, 1]`` (raw counts / 65535) and gives level
probabilities ``[N, 11]``. Its ``metadata_props`` hold focusnet's manifest:
format and version, the model's config and the SHA-256 of its graph.

:func:`load_onnx` refuses, before onnxruntime sees the file, a model that is
damaged, tampered with (graph hash), of an unknown format version, or whose
graph holds any op outside :data:`ALLOWED_ONNX_OPS`, as the bundle loader
does for SavedModels.
"""

from __future__ import annotations

import json
from pathlib import Path

from .classifier import MODEL_CACHE, PatchClassifier, check_config, sha256_bytes
from .contract import ONNX_FORMAT, ONNX_FORMAT_VERSION, ONNX_INPUT, ONNX_MANIFEST_KEY, ONNX_OUTPUT, ONNX_SUFFIX
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


def graph_sha256(proto) -> str:
    """SHA-256 of a model's graph (weights included), the manifest's check of the graph."""
    return sha256_bytes(proto.graph.SerializeToString(deterministic=True))


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
        try:
            import onnxruntime
        except ImportError:
            raise ModelError("ONNX models run with onnxruntime: pip install 'focusnet[onnx]'") from None
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only
        session = onnxruntime.InferenceSession(self._data, options, providers=["CPUExecutionProvider"])

        def predict(batch):
            return session.run([ONNX_OUTPUT], {ONNX_INPUT: batch})[0]

        return predict


def check_onnx(data: bytes, where) -> tuple:
    """Parse and check an ONNX model's bytes; return ``(manifest, config)``.

    Raises
    ------
    ModelError
        Damaged, not a focusnet ONNX model, an unknown format version, a
        graph whose hash differs from the manifest's, or ops outside
        :data:`ALLOWED_ONNX_OPS`.
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
    if manifest.get("format_version") != ONNX_FORMAT_VERSION:
        raise ModelError(f"{where}: ONNX format version {manifest.get('format_version')!r} is not supported (this "
                         f"focusnet reads version {ONNX_FORMAT_VERSION})")
    if graph_sha256(proto) != manifest.get("graph_sha256"):
        raise ModelError(f"{where}: the graph is damaged or modified (SHA-256 does not match the manifest)")
    ops = {(node.domain or "", node.op_type) for node in proto.graph.node}
    forbidden = sorted(f"{domain}:{op}" if domain else op for domain, op in ops
                       if domain not in ("", "ai.onnx") or op not in ALLOWED_ONNX_OPS)
    if forbidden or any(function for function in proto.functions):
        raise ModelError(f"{where}: graph contains ops outside the classifier allow-list: {forbidden or 'functions'}"
                         "; refusing to load it")
    inputs = [value.name for value in proto.graph.input]
    outputs = [value.name for value in proto.graph.output]
    if inputs != [ONNX_INPUT] or outputs != [ONNX_OUTPUT]:
        raise ModelError(f"{where}: needs input {ONNX_INPUT!r} and output {ONNX_OUTPUT!r}, has {inputs} -> {outputs}")
    if not isinstance(manifest.get("model_config"), dict):
        raise ModelError(f"{where}: the manifest holds no model_config")
    return manifest, check_config(manifest["model_config"], f"{where} (manifest)")


def _load_onnx(path: Path) -> OnnxModel:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ModelError(f"{path}: cannot read the ONNX model ({error.strerror or error})") from None
    manifest, config = check_onnx(data, path)
    return OnnxModel(path, manifest, config, data)


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
