"""One entry point for every kind of model: :func:`load_model`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .bundle import is_bundle, load_bundle
from .contract import SHIPPED_MODEL_DIR, SHIPPED_ONNX
from .errors import ModelError
from .model import load_model_folder
from .onnxmodel import is_onnx, load_onnx


def tensorflow_installed() -> bool:
    """Whether TensorFlow can be imported here (without importing it)."""
    return importlib.util.find_spec("tensorflow") is not None


#: What the onnxruntime backend imports: onnx checks the graph, onnxruntime runs it.
ONNX_RUNTIME_PACKAGES = ("onnx", "onnxruntime")


def missing_runtime(model=None) -> list:
    """The packages a model needs to run that cannot be imported here (none: it can run).

    Parameters
    ----------
    model : str or Path, optional
        An ONNX model needs onnx and onnxruntime, a bundle or model folder
        TensorFlow. Default: the shipped model, which runs with either.

    Returns
    -------
    list of str
        Distribution names to install (empty when nothing is missing).
    """
    onnx_missing = [name for name in ONNX_RUNTIME_PACKAGES if importlib.util.find_spec(name) is None]
    if model is None:
        return [] if tensorflow_installed() else onnx_missing
    if is_onnx(model):
        return onnx_missing
    return [] if tensorflow_installed() else ["tensorflow"]


def load_model(model=None):
    """Load a model once per process: a model folder, an exported bundle, or an ONNX model.

    Parameters
    ----------
    model : str, Path or loaded model, optional
        A model folder, a bundle (``.zip`` or unzipped folder, see
        :mod:`focusnet.bundle`), an ONNX model (``.onnx``, see
        :mod:`focusnet.onnxmodel`), or an already loaded model (returned as
        is). Default: the model shipped with focusnet, as its folder where
        TensorFlow is installed and as ONNX (onnxruntime) where it is not.

    Returns
    -------
    FocusModel, BundleModel or OnnxModel
        All are :class:`~focusnet.classifier.PatchClassifier` s, offering
        ``predict_patches``.

    Raises
    ------
    ModelError
        If the model is missing, damaged (hash mismatch, unreadable weights,
        wrong shapes), of an unsupported format version, or holds ops outside
        its loader's allow-list (bundles: :class:`~focusnet.errors.BundleError`).
    """
    if hasattr(model, "predict_patches"):
        return model
    if model is None:
        return load_model_folder(SHIPPED_MODEL_DIR) if tensorflow_installed() else load_onnx(SHIPPED_ONNX)
    if is_onnx(model):
        return load_onnx(model)
    if is_bundle(model):
        return load_bundle(model)
    path = Path(model)
    if path.is_file():  # neither a readable zip nor ONNX: say what it is not, not "folder not found"
        what = "an empty file" if path.stat().st_size == 0 else (
            "a damaged zip" if path.suffix.lower() == ".zip" else "not a model")
        raise ModelError(f"{path}: {what}; give a model folder, a bundle (.zip, as focusnet export writes it, or "
                         "its unzipped folder) or an ONNX model (.onnx)")
    return load_model_folder(model)
