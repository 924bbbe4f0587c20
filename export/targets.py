"""What every export checks before it writes: a model folder in, an output path it may write."""

from __future__ import annotations

from pathlib import Path

from focusnet.errors import ExportError
from focusnet.files import check_output_file
from focusnet.loader import load_model
from focusnet.model import FocusModel


def refuse_inside_model(out: Path, model_directory: Path) -> None:
    """Refuse an output that is the model folder or lies inside it (it would replace or mix with its files).

    Raises
    ------
    ExportError
        Naming both paths.
    """
    folder = Path(model_directory).resolve()
    target = Path(out).resolve()
    if target == folder or folder in target.parents:
        raise ExportError(f"{out} is inside the model folder {model_directory}: refusing to write among its files; "
                          "choose a path outside it", setting="out")


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
        Not a model folder (a bundle or an ONNX model), no output path, one inside the model folder, an
        existing one without ``overwrite``, or a folder it cannot be written in.
    """
    model = load_model(model)
    if not isinstance(model, FocusModel):
        raise ExportError(f"{getattr(model, 'directory', model)} is not a model folder; export needs one "
                          "(config.json, weights.npz)")
    if out is None:
        raise ExportError(f"an output path is required: {what}")
    out = Path(out)
    refuse_inside_model(out, model.directory)
    if out.exists() and not overwrite:
        raise ExportError(f"{out} exists: refusing to overwrite it",
                          setting="overwrite")
    check_output_file(out, "out")
    return model, out
