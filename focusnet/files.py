"""Writing outputs safely (never half a file, never over an input), and reading users' tables."""

from __future__ import annotations

import contextlib
import csv
import io
import os
from pathlib import Path

from .errors import InvalidParameterError


@contextlib.contextmanager
def replacing(path):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    A reader sees the old file or the whole new one, never a torn one. The
    temporary name keeps the suffix, so writers that choose a format by it
    (matplotlib, tifffile) still do. An ``OSError`` about the temporary file
    (a full disk, say) names ``path`` instead.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")
    try:
        yield temporary
        os.replace(temporary, path)
    except OSError as error:
        if error.filename is not None and Path(os.fsdecode(error.filename)) != temporary:
            raise  # about another file
        # About the output (writers such as matplotlib's give no file name), never the hidden temporary file the
        # user did not name: the error names the output they gave.
        raise type(error)(error.errno, error.strerror or str(error), str(path)) from None
    finally:
        if temporary.exists():
            temporary.unlink()


def write_text(path, text: str) -> Path:
    """Write a text file atomically (see :func:`replacing`)."""
    with replacing(path) as temporary:
        temporary.write_text(text)
    return Path(path)


def read_csv_rows(path) -> list:
    """The rows of a user's CSV table as dicts, or one clear error for anything that is not one.

    Parameters
    ----------
    path : path-like

    Raises
    ------
    InvalidParameterError
        A missing file or a folder; a binary file (NUL bytes); text that is not UTF-8 (what focusnet
        and CellProfiler write); or what the csv module cannot parse (e.g. a field over its limit),
        with the line.
    """
    path = Path(path)
    if path.is_dir():
        raise InvalidParameterError(f"{path} is a folder; give the CSV file")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InvalidParameterError(f"cannot read {path}: {error.strerror or error}") from None
    if b"\0" in data:
        raise InvalidParameterError(f"{path} holds NUL bytes: it is not a CSV text file (an image or other binary "
                                    "file given as the table?)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidParameterError(f"{path} is not UTF-8 text (byte {error.start}); save it as a UTF-8 CSV, as "
                                    "focusnet and CellProfiler write them") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        return list(reader)
    except csv.Error as error:
        raise InvalidParameterError(f"{path}, line {reader.line_num}: not a CSV table the csv module can read "
                                    f"({error})") from None


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


def check_output_folder(folder, setting: str | None) -> None:
    """Raise before anything is measured if files could not be written into ``folder`` (created if missing).

    Raises
    ------
    InvalidParameterError
        ``folder``, or the nearest of its parents that exists, is a file or not writable.
    """
    folder = Path(folder)
    existing = next(path for path in (folder, *folder.parents) if path.exists() or path == Path(path.anchor))
    if not existing.is_dir():
        where = "" if existing == folder else f"{folder}: "
        raise InvalidParameterError(f"{where}{existing} is a file, not a folder; choose another path", setting=setting)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InvalidParameterError(f"{folder}: folder {existing} is not writable; choose a folder you can write to",
                                    setting=setting)


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
        example = path / ("focus" + (path.suffix or ".csv"))
        raise InvalidParameterError(f"{path} is a folder; give a file name, e.g. {example}",
                                    setting=setting)
    if not create_folder and not folder.exists():
        raise InvalidParameterError(f"{path}: folder {folder} does not exist; create it first", setting=setting)
    check_output_folder(folder, setting)
