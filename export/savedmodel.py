"""Build the serving adapter of a model and write it as a TensorFlow 1 SavedModel bundle.

The adapter is what Fiji's "Microscope Image Focus Quality" plugin expects:
it takes the plugin's stitched tiles (``input``: float32 ``[rows*84,
cols*84]``, raw counts / 65535), cuts them into row-major patches
(``patches``) and runs the classifier on them (``probabilities``). The
classifier's weights are constants in the graph (nothing to freeze), the
graph is built in a ``tf.compat.v1`` graph with the same
:func:`focusnet.network.inference_graph` that TensorFlow 2 inference uses,
and :class:`tf.compat.v1.saved_model.Builder` writes it with default
attributes stripped, so TensorFlow 1.12 and 1.15 (Fiji's runtimes) load it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from focusnet import __version__
from focusnet.bundle import ALLOWED_OPS, graph_ops, zip_bundle_folder
from focusnet.classifier import sha256_bytes
from focusnet.contract import (
    BUNDLE_FORMAT,
    BUNDLE_FORMAT_VERSION,
    BUNDLE_INPUT_KEY,
    BUNDLE_INPUT_SPEC,
    BUNDLE_OUTPUT_SPECS,
    BUNDLE_PATCHES_KEY,
    BUNDLE_PROBABILITIES_KEY,
    BUNDLE_SIGNATURE,
    BUNDLE_TAG,
    IMAGEJ_MODEL_FILE,
    INPUT_SCALE,
    MANIFEST_FILE,
    NUM_LEVELS,
    PATCH_SIZE,
    VARIABLES_DIR,
)
from focusnet.errors import ExportError
from focusnet.files import replacing
from focusnet.loader import load_model
from focusnet.model import FocusModel
from focusnet.network import inference_graph
from focusnet.tf import import_tensorflow

from .imagej import imagej_model_text
from .targets import refuse_inside_model


def build_serving_graph(model: FocusModel):
    """The serving adapter as a ``tf.Graph`` and its input/output tensors."""
    tf = import_tensorflow()
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        image = v1.placeholder(tf.float32, shape=[None, None], name=BUNDLE_INPUT_KEY)
        shape = tf.shape(image)
        rows = tf.math.floordiv(shape[0], PATCH_SIZE)
        cols = tf.math.floordiv(shape[1], PATCH_SIZE)
        # [rows*84, cols*84] -> [rows, 84, cols, 84] -> [rows, cols, 84, 84] -> [N, 84, 84, 1], row-major.
        tiles = tf.reshape(image, tf.stack([rows, PATCH_SIZE, cols, PATCH_SIZE]))
        patches = tf.reshape(tf.transpose(tiles, [0, 2, 1, 3]), [-1, PATCH_SIZE, PATCH_SIZE, 1])
        patches = tf.identity(patches, name=BUNDLE_PATCHES_KEY)
        weights = {name: tf.constant(value, name=name.replace("/", "_")) for name, value in model.weights.items()}
        probabilities = tf.identity(inference_graph(patches, weights, model.architecture),
                                    name=BUNDLE_PROBABILITIES_KEY)
    return graph, image, patches, probabilities


def export_bundle(model=None, out=None, overwrite: bool = False) -> Path:
    """Export a model folder as a bundle: a ``.zip`` for Fiji, or a folder.

    Parameters
    ----------
    model : FocusModel, str or Path, optional
        Model folder (default: the shipped model).
    out : str or Path
        ``*.zip`` writes a zip as Fiji's plugin downloads it; anything else
        is written as the unzipped folder.
    overwrite : bool
        Replace an existing bundle at ``out`` (default: refuse). A folder that
        is not a focusnet bundle is never replaced.

    Returns
    -------
    Path
        The written bundle.
    """
    tf = import_tensorflow()
    v1 = tf.compat.v1
    model = load_model(model)
    if not isinstance(model, FocusModel):
        raise ExportError(f"{model.directory} is already a bundle; export needs a model folder (config.json, "
                         "weights.npz)")
    if out is None:
        raise ExportError("an output path (.zip or folder) is required")
    out = Path(out)
    refuse_inside_model(out, model.directory)
    if out.is_dir() and not (out / MANIFEST_FILE).is_file():
        raise ExportError(f"{out} exists and is not a focusnet bundle: refusing to overwrite it")
    if out.exists() and not overwrite:
        raise ExportError(f"{out} exists: refusing to overwrite it",
                          setting="overwrite")
    if not out.parent.is_dir():
        raise ExportError(f"{out}: folder {out.parent} does not exist; create it first")
    graph, image, patches, probabilities = build_serving_graph(model)
    unexpected = graph_ops(graph.as_graph_def()) - ALLOWED_OPS
    if unexpected:  # the exporter must never write what the loader refuses
        raise RuntimeError(f"serving graph contains ops outside the allow-list: {sorted(unexpected)}")

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "bundle"
        with v1.Session(graph=graph) as session:
            builder = v1.saved_model.Builder(str(folder))
            signature = v1.saved_model.signature_def_utils.predict_signature_def(
                inputs={BUNDLE_INPUT_KEY: image},
                outputs={BUNDLE_PROBABILITIES_KEY: probabilities, BUNDLE_PATCHES_KEY: patches})
            builder.add_meta_graph_and_variables(session, [BUNDLE_TAG], signature_def_map={BUNDLE_SIGNATURE: signature},
                                                 strip_default_attrs=True)
            builder.save()
        (folder / VARIABLES_DIR).mkdir(exist_ok=True)  # Fiji's plugin expects the folder even when empty
        imagej_model = imagej_model_text(model)
        if imagej_model is not None:
            (folder / IMAGEJ_MODEL_FILE).write_text(imagej_model, encoding="ascii")
        files = {p.relative_to(folder).as_posix(): sha256_bytes(p.read_bytes())
                 for p in sorted(folder.rglob("*")) if p.is_file()}
        manifest = {
            "format": BUNDLE_FORMAT,
            "format_version": BUNDLE_FORMAT_VERSION,
            "focusnet_version": __version__,
            "model_config": model.config,
            "num_levels": NUM_LEVELS,
            "patch_size": PATCH_SIZE,
            "input_scale": INPUT_SCALE,
            "tag": BUNDLE_TAG,
            "signature": BUNDLE_SIGNATURE,
            "input": BUNDLE_INPUT_SPEC,
            "outputs": BUNDLE_OUTPUT_SPECS,
            "files": files,
        }
        (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
        if out.suffix.lower() == ".zip":
            with replacing(out) as temporary:  # whole or not at all
                zip_bundle_folder(folder, temporary)
        else:
            # Copied beside the target first, so a failed copy leaves the old bundle as it was.
            staged = out.with_name(f".{out.name}.partial")
            shutil.rmtree(staged, ignore_errors=True)
            try:
                shutil.copytree(folder, staged)
                if out.exists():
                    shutil.rmtree(out)
                staged.rename(out)
            finally:
                shutil.rmtree(staged, ignore_errors=True)
    return out
