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
