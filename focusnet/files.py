"""Writing outputs safely: never half a file, never over an input."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from .errors import InvalidParameterError


@contextlib.contextmanager
def replacing(path):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    A reader sees the old file or the whole new one, never a torn one. The
    temporary name keeps the suffix, so writers that choose a format by it
    (matplotlib, tifffile) still do.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def write_text(path, text: str) -> Path:
    """Write a text file atomically (see :func:`replacing`)."""
    with replacing(path) as temporary:
        temporary.write_text(text)
    return Path(path)


def refuse_inputs_as_outputs(inputs, outputs) -> None:
    """Raise before anything is written if an output path is one of the inputs.

    Raises
    ------
    InvalidParameterError
        Naming the path.
    """
    taken = {Path(p).resolve() for p in inputs}
    for output in outputs:
        if output is not None and Path(output).resolve() in taken:
            raise InvalidParameterError(f"{output} is an input: refusing to write over it; choose another output path")


def check_output_file(path: Path, setting: str, create_folder: bool = False) -> None:
    """Raise before anything is measured if a table could not be written at ``path``.

    Parameters
    ----------
    create_folder : bool
        The caller creates a missing folder (then only a file in its way is refused).

    Raises
    ------
    InvalidParameterError
        ``path`` is a folder, or its folder is missing, a file or not writable.
    """
    folder = path.parent
    if path.is_dir():
        raise InvalidParameterError(f"{path} is a folder; give a file name, e.g. {path / 'focus.csv'}",
                                    setting=setting)
    if create_folder and not folder.exists():
        existing = next(parent for parent in folder.parents if parent.exists())
        if not existing.is_dir():
            raise InvalidParameterError(f"{path}: {existing} is a file, not a folder; choose another path",
                                        setting=setting)
        return
    if not folder.exists():
        raise InvalidParameterError(f"{path}: folder {folder} does not exist; create it first", setting=setting)
    if not folder.is_dir():
        raise InvalidParameterError(f"{path}: {folder} is a file, not a folder; choose another path",
                                    setting=setting)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InvalidParameterError(f"{path}: folder {folder} is not writable; choose a folder you can write to",
                                    setting=setting)
