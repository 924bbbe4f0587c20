"""One entry point for every kind of model: :func:`load_model`."""

from __future__ import annotations

from .bundle import is_bundle, load_bundle
from .contract import SHIPPED_MODEL_DIR
from .model import load_model_folder


def load_model(model=None):
    """Load a model once per process: a model folder, or an exported bundle.

    Parameters
    ----------
    model : str, Path, FocusModel or BundleModel, optional
        A model folder, a bundle (``.zip`` or unzipped folder, see
        :mod:`focusnet.bundle`), or an already loaded model (returned as is).
        Default: the model shipped with focusnet.

    Returns
    -------
    FocusModel or BundleModel
        Both are :class:`~focusnet.classifier.PatchClassifier` s, offering
        ``predict_patches``.

    Raises
    ------
    ModelError
        If the folder or bundle is missing, damaged (hash mismatch,
        unreadable weights, wrong shapes), of an unsupported format version,
        or (bundles, as :class:`~focusnet.errors.BundleError`) holds ops
        outside the allow-list.
    """
    if hasattr(model, "predict_patches"):
        return model
    if model is not None and is_bundle(model):
        return load_bundle(model)
    return load_model_folder(SHIPPED_MODEL_DIR if model is None else model)
