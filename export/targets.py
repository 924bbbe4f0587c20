"""What every export checks before it writes: a model folder in, an output path it may write."""

from __future__ import annotations

from pathlib import Path

from focusnet.errors import ExportError
from focusnet.loader import load_model
from focusnet.model import FocusModel


def export_source_and_target(model, out, overwrite: bool, what: str):
    """The loaded model folder and the output path, or a clear refusal.

    Parameters
    ----------
    model : path-like, loaded model or None (the shipped model)
    out : path-like
    overwrite : bool
        Replace an existing ``out`` (default: refuse).
    what : str
        Names the output in messages (e.g. "an ONNX model (NAME.onnx)").

    Raises
    ------
    ExportError
        Not a model folder (a bundle or an ONNX model), no output path, an existing one without
        ``overwrite``, or a missing parent folder.
    """
    model = load_model(model)
    if not isinstance(model, FocusModel):
        raise ExportError(f"{getattr(model, 'directory', model)} is not a model folder; export needs one "
                          "(config.json, weights.npz)")
    if out is None:
        raise ExportError(f"an output path is required: {what}")
    out = Path(out)
    if out.exists() and not overwrite:
        raise ExportError(f"{out} exists: refusing to overwrite it",
                          setting="overwrite")
    if not out.parent.is_dir():
        raise ExportError(f"{out}: folder {out.parent} does not exist; create it first")
    return model, out
