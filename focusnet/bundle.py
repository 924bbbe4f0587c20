"""The SavedModel bundle that Fiji and CellProfiler load, and its TensorFlow 2 loader.

A bundle (a zip, or the folder it unzips to) holds at its root:

* ``saved_model.pb``: one MetaGraph tagged ``inference`` with signature
  ``serving_default``: input ``input`` (float32, ``[rows*84, cols*84]``,
  raw counts / 65535: Fiji's stitched tiles) and outputs ``probabilities``
  (``[N, 11]``) and ``patches`` (``[N, 84, 84, 1]``), ``N = rows*cols`` in
  row-major order. Tensor names are ``<op>:0``. Written for TensorFlow 1.12.
* ``variables/``: empty (the weights are constants in the graph).
* ``focusnet.json``: the manifest: format and version, focusnet version, the
  model's config, levels, patch size, input scaling, and the SHA-256 of every
  other file.

:func:`load_bundle` refuses a bundle that is damaged, tampered with, of an
unknown format version, or whose graph holds any op outside
:data:`ALLOWED_OPS` (a SavedModel can carry file-reading and -writing ops;
loading an untrusted bundle must not run them), before TensorFlow sees it.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from .classifier import MODEL_CACHE, PatchClassifier, check_config, sha256_bytes
from .contract import (
    BUNDLE_FORMAT,
    BUNDLE_FORMAT_VERSION,
    BUNDLE_INPUT_KEY,
    BUNDLE_OUTPUT_KEYS,
    BUNDLE_PROBABILITIES_KEY,
    BUNDLE_SIGNATURE,
    BUNDLE_TAG,
    INPUT_SCALE,
    MANIFEST_FILE,
    NUM_LEVELS,
    PATCH_SIZE,
    SAVED_MODEL_FILE,
)
from .errors import BundleError, ModelError
from .tf import import_tensorflow

#: Every op a focusnet classifier graph may contain: tiling the stitched input
#: into patches, the network, and graph plumbing. Nothing that touches files.
ALLOWED_OPS = frozenset({
    "Placeholder", "Const", "Identity", "NoOp",
    "Shape", "StridedSlice", "FloorDiv", "Pack", "Reshape", "Transpose",
    "Conv2D", "BiasAdd", "Relu", "MaxPool", "AvgPool", "Mean", "Min", "Max", "Sub", "Add", "Mul", "Log",
    "Log1p", "MatMul", "Softmax",
})


def is_bundle(path) -> bool:
    """Whether a path looks like a bundle (a zip file, or a folder with saved_model.pb)."""
    path = Path(path)
    return (path.is_file() and zipfile.is_zipfile(path)) or (path / SAVED_MODEL_FILE).is_file()


#: The most a bundle may hold, uncompressed (the largest architecture's bundle is about 120 MB).
MAX_BUNDLE_BYTES = 512 * 2**20


def read_bundle_files(path) -> dict:
    """All files of a bundle (zip or folder) as ``{relative posix path: bytes}``.

    The sizes a zip declares are checked before anything is inflated, and
    zipfile stops at the declared size (a larger stream fails its CRC), so a
    small zip cannot fill memory.

    Raises
    ------
    BundleError
        Missing; damaged in any way (headers, compressed streams, CRCs,
        unsupported compression or zip versions); unsafe paths; larger than
        :data:`MAX_BUNDLE_BYTES`.
    """
    path = Path(path)
    if not path.exists():
        raise BundleError(f"{path}: bundle not found")
    if path.is_file():
        return read_zip(path.read_bytes(), path)
    return {file.relative_to(path).as_posix(): file.read_bytes()
            for file in sorted(p for p in path.rglob("*") if p.is_file())}


def read_zip(data: bytes, where) -> dict:
    """The files of a zipped bundle's bytes, as :func:`read_bundle_files` (``where`` names it in errors)."""
    files = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = [entry for entry in archive.infolist() if not entry.is_dir()]
            declared = sum(entry.file_size for entry in entries)
            if declared > MAX_BUNDLE_BYTES:
                raise BundleError(f"{where}: declares {declared / 2**20:.0f} MB of files, more than a focusnet "
                                  f"bundle holds ({MAX_BUNDLE_BYTES / 2**20:.0f} MB); refusing to inflate it")
            for entry in entries:
                name = entry.filename
                if name.startswith("/") or ".." in Path(name).parts:
                    raise BundleError(f"{where}: unsafe path {name!r} in the zip")
                files[name] = archive.read(entry)
    except BundleError:
        raise
    except Exception as error:  # zipfile, zlib and struct raise many types for damaged archives
        raise BundleError(f"{where}: damaged zip ({type(error).__name__}: {error})") from None
    return files


def check_manifest(files: dict, where) -> dict:
    """Validate the manifest and every file's hash; return the manifest."""
    if MANIFEST_FILE not in files:
        raise BundleError(f"{where}: not a focusnet bundle (no {MANIFEST_FILE})")
    try:
        manifest = json.loads(files[MANIFEST_FILE].decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise BundleError(f"{where}: damaged {MANIFEST_FILE} ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{where}: {MANIFEST_FILE} is not a focusnet bundle manifest")
    if manifest.get("format_version") != BUNDLE_FORMAT_VERSION:
        raise BundleError(f"{where}: bundle format version {manifest.get('format_version')!r} is not supported "
                          f"(this focusnet reads version {BUNDLE_FORMAT_VERSION})")
    for key, expected in (("num_levels", NUM_LEVELS), ("patch_size", PATCH_SIZE), ("input_scale", INPUT_SCALE)):
        if manifest.get(key) != expected:
            raise BundleError(f"{where}: {key} is {manifest.get(key)!r}, this focusnet supports {expected}")
    recorded = manifest.get("files")
    if not isinstance(recorded, dict) or SAVED_MODEL_FILE not in recorded:
        raise BundleError(f"{where}: manifest lists no {SAVED_MODEL_FILE}")
    present = set(files) - {MANIFEST_FILE}
    if present != set(recorded):
        raise BundleError(f"{where}: files differ from the manifest (unexpected: {sorted(present - set(recorded))}, "
                          f"missing: {sorted(set(recorded) - present)}): tampered with or incomplete")
    for name, digest in recorded.items():
        if sha256_bytes(files[name]) != digest:
            raise BundleError(f"{where}: {name} is damaged or modified (SHA-256 does not match the manifest)")
    return manifest


def graph_ops(graph_def) -> set:
    """Op types of a GraphDef, including those inside its function library."""
    ops = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        ops.update(node.op for node in function.node_def)
    return ops


def check_saved_model(data: bytes, where):
    """Parse ``saved_model.pb``, check tag, signature and ops; return the MetaGraphDef."""
    import_tensorflow()  # quiet start-up before the protobuf module pulls TensorFlow in
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    try:
        saved_model.ParseFromString(data)
    except Exception as error:  # protobuf raises DecodeError and others
        raise BundleError(f"{where}: damaged {SAVED_MODEL_FILE} ({error})") from None
    graphs = [g for g in saved_model.meta_graphs if BUNDLE_TAG in g.meta_info_def.tags]
    if len(graphs) != 1:
        raise BundleError(f"{where}: needs exactly one MetaGraph tagged {BUNDLE_TAG!r}")
    meta_graph = graphs[0]
    forbidden = graph_ops(meta_graph.graph_def) - ALLOWED_OPS
    if forbidden:
        raise BundleError(f"{where}: graph contains ops outside the classifier allow-list: {sorted(forbidden)}; "
                          "refusing to load it")
    if BUNDLE_SIGNATURE not in meta_graph.signature_def:
        raise BundleError(f"{where}: no {BUNDLE_SIGNATURE!r} signature")
    signature = meta_graph.signature_def[BUNDLE_SIGNATURE]
    if BUNDLE_INPUT_KEY not in signature.inputs or any(key not in signature.outputs for key in BUNDLE_OUTPUT_KEYS):
        raise BundleError(f"{where}: signature {BUNDLE_SIGNATURE!r} must have input {BUNDLE_INPUT_KEY!r} and outputs "
                          f"{list(BUNDLE_OUTPUT_KEYS)}")
    return meta_graph


class BundleModel(PatchClassifier):
    """A loaded bundle, predicting like :class:`focusnet.model.FocusModel`.

    Patches are stitched into one row (``[84, n*84]``), the way Fiji feeds
    its tiles, and run through the bundle's own graph, fed and fetched by
    the signature's tensor names.
    """

    def __init__(self, path, manifest: dict, config: dict, meta_graph):
        from .network import get_architecture

        super().__init__()
        self.directory = Path(path)
        self.manifest = manifest
        self.config = config
        self.architecture = get_architecture(self.config["architecture"])
        self._meta_graph = meta_graph

    @property
    def name(self) -> str:
        return f"bundle {self.directory.name} ({self.architecture.name})"

    def _build(self):
        tf = import_tensorflow()
        signature = self._meta_graph.signature_def[BUNDLE_SIGNATURE]
        graph_def = self._meta_graph.graph_def

        def imported():
            tf.compat.v1.import_graph_def(graph_def, name="")

        wrapped = tf.compat.v1.wrap_function(imported, [])
        run = wrapped.prune(
            feeds=[wrapped.graph.get_tensor_by_name(signature.inputs[BUNDLE_INPUT_KEY].name)],
            fetches=wrapped.graph.get_tensor_by_name(signature.outputs[BUNDLE_PROBABILITIES_KEY].name))

        def predict(batch):
            mosaic = np.concatenate(list(batch[..., 0]), axis=1)  # one row of tiles: [84, n*84]
            return run(tf.constant(mosaic)).numpy()

        return predict


def _load_bundle(path: Path) -> BundleModel:
    return bundle_from_files(read_bundle_files(path), path)


def bundle_from_files(files: dict, path) -> BundleModel:
    """Check a bundle's files (manifest, hashes, config, graph and its ops) and make its model.

    Raises
    ------
    BundleError
        For anything that is not a whole, untampered focusnet bundle.
    """
    manifest = check_manifest(files, path)
    if not isinstance(manifest.get("model_config"), dict):
        raise BundleError(f"{path}: {MANIFEST_FILE} holds no model_config")
    try:
        config = check_config(manifest["model_config"], f"{path} ({MANIFEST_FILE})")
    except ModelError as error:
        raise BundleError(str(error)) from None
    meta_graph = check_saved_model(files[SAVED_MODEL_FILE], path)
    return BundleModel(path, manifest, config, meta_graph)


def load_bundle(path) -> BundleModel:
    """Check and load a bundle (zip or folder) for TensorFlow 2, once per process and state on disk.

    Raises
    ------
    BundleError
        Missing, damaged, tampered with, unknown format version, or ops
        outside :data:`ALLOWED_OPS`.
    """
    path = Path(path)
    if not path.exists():
        raise BundleError(f"{path}: bundle not found")
    return MODEL_CACHE.get(path, _load_bundle)


def zip_bundle_folder(folder, zip_path) -> Path:
    """Zip a bundle folder the way Fiji's unzip needs it.

    Entries sit at the zip's root, and every directory entry comes before the
    files inside it (Fiji's unzip does not create parent folders).
    """
    folder, zip_path = Path(folder), Path(zip_path)
    entries = []
    for item in sorted(folder.rglob("*")):
        relative = item.relative_to(folder).as_posix()
        entries.append((relative + "/", None) if item.is_dir() else (relative, item))
    # Sort so that "variables/" precedes "variables/x", and files by path.
    entries.sort(key=lambda entry: (entry[0].rstrip("/").split("/")[:-1], entry[1] is not None, entry[0]))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, item in entries:
            if item is None:
                archive.writestr(zipfile.ZipInfo(name), b"")
            else:
                archive.write(item, name)
    zip_path.write_bytes(buffer.getvalue())
    return zip_path
