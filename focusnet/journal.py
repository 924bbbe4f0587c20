"""A batch's results, committed image by image, so that no measured image is ever lost.

A journal is a text file of JSON lines beside a run's outputs: a header (what
the run is: its inputs and settings), then one line per finished image,
each written, flushed and ``fsync``-ed before the next image starts. Killed
by a signal, a crash or a full disk, the run leaves a journal that is
complete up to its last whole line; ``--resume`` reads it back, drops a torn
last line, measures only the images it lacks and writes the final outputs
from it, so they are byte for byte those of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import InvalidParameterError

#: Version of the journal's layout (its first line says which).
JOURNAL_FORMAT = "focusnet-journal"
#: Version 2 records each result as a record keyed by column names (focusnet.records); version 1 held CSV rows.
JOURNAL_VERSION = 2


def journal_path(output) -> Path:
    """Where the journal of a run writing ``output`` lives: ``<output>.journal`` beside it."""
    output = Path(output)
    return output.with_name(output.name + ".journal")


class Journal:
    """An append-only record of a run's results (see the module's description).

    Use :meth:`start` for a new run and :meth:`resume` to continue one;
    :attr:`entries` holds the results recorded so far, by key.
    """

    def __init__(self, path, header: dict, entries: dict, handle):
        self.path = Path(path)
        self.header = header
        self.entries = entries
        self._handle = handle

    @classmethod
    def start(cls, path, header: dict) -> Journal:
        """Begin a new journal.

        Raises
        ------
        InvalidParameterError
            When a journal is there already: an unfinished run, to resume or remove.
        """
        path = Path(path)
        if path.exists():
            raise InvalidParameterError(f"{path} holds an unfinished run's results: resume that run (the same "
                                        "command), or delete that file to start again", setting="resume")
        handle = open(path, "x", encoding="utf-8")
        journal = cls(path, header, {}, handle)
        try:
            journal._write({"format": JOURNAL_FORMAT, "version": JOURNAL_VERSION, **header})
        except BaseException:  # nothing was measured yet: leave no half journal behind
            journal.remove()
            raise
        return journal

    @classmethod
    def resume(cls, path, header: dict) -> Journal:
        """Continue the journal at ``path``, whose header must equal ``header``.

        A last line cut short (the run was killed while writing it) is dropped.

        Raises
        ------
        InvalidParameterError
            No journal; not a focusnet journal; or written by a run with other
            inputs or settings.
        """
        path = Path(path)
        if not path.is_file():
            raise InvalidParameterError(f"no unfinished run to resume ({path} does not exist); start the run "
                                        "without resuming", setting="resume")
        with open(path, "rb") as handle:
            data = handle.read()
        lines, whole = [], 0
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break  # torn: the run stopped while writing it
            try:
                lines.append(json.loads(line))
            except ValueError:
                break
            whole += len(line)
        first = lines[0] if lines else {}
        if first.get("format") != JOURNAL_FORMAT or first.get("version") != JOURNAL_VERSION:
            raise InvalidParameterError(f"{path} is not a focusnet journal (version {JOURNAL_VERSION}); delete it and "
                                        "start the run without resuming", setting="resume")
        recorded = {key: value for key, value in first.items() if key not in ("format", "version")}
        normalised = json.loads(json.dumps(header))
        if recorded != normalised:
            changed = sorted(key for key in set(recorded) | set(normalised) if recorded.get(key) != normalised.get(key))
            raise InvalidParameterError(f"cannot resume: this run differs from the one recorded in {path} in "
                                        f"{changed}; give the same arguments, or delete it to start again")
        handle = open(path, "r+b")
        handle.truncate(whole)
        handle.close()
        handle = open(path, "a", encoding="utf-8")
        entries = {entry["key"]: entry for entry in lines[1:]}
        return cls(path, header, entries, handle)

    def _write(self, record: dict) -> None:
        self._handle.write(json.dumps(record, allow_nan=True) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def record(self, key: str, **entry) -> None:
        """Commit one finished item (on disk when this returns)."""
        record = {"key": key, **entry}
        self._write(record)
        self.entries[key] = record

    def close(self) -> None:
        """Close the file (it stays on disk)."""
        if not self._handle.closed:
            self._handle.close()

    def remove(self) -> None:
        """Close and delete the journal: the run's outputs are complete."""
        self.close()
        self.path.unlink()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run_journaled(path, header: dict, keys, measure, write, resume: bool = False, on_entry=None) -> list:
    """Run a batch through a journal: measure what it lacks, write the outputs from it, then remove it.

    Every batch command (``focusnet predict``, ``focusnet stack``) runs this
    way, so each has the same guarantees: each item is on disk before the
    next starts, an interrupted run keeps every finished item, and a resumed
    run ends with the outputs of an uninterrupted one.

    Parameters
    ----------
    path : path-like
        The journal (see :func:`journal_path`).
    header : dict
        What the run is (inputs and settings): a resumed run must match it.
    keys : list of str
        One per item, in output order.
    measure : callable
        ``measure(todo)`` with the keys not yet recorded; yields ``(key, entry)``
        pairs (in any order) with JSON-able entries.
    write : callable
        ``write(entries)`` with every entry in the order of ``keys``: writes
        the outputs (whole) before the journal is removed.
    resume : bool
        Continue the journal at ``path`` instead of starting one.
    on_entry : callable, optional
        Called with each new entry once it is committed.

    Returns
    -------
    list of dict
        The entries, in the order of ``keys``.

    Raises
    ------
    InvalidParameterError
        A journal that is there (and not resumed), missing or of another run,
        or one that cannot be written.
    """
    try:
        journal = Journal.resume(path, header) if resume else Journal.start(path, header)
    except OSError as error:
        raise InvalidParameterError(f"cannot write {path} ({error.strerror or error}); choose a folder you can "
                                    "write to") from None
    with journal:
        todo = [key for key in keys if key not in journal.entries]
        for key, entry in measure(todo):
            journal.record(key, **entry)
            if on_entry is not None:
                on_entry(entry)
        entries = [journal.entries[key] for key in keys]
        write(entries)
    journal.remove()
    return entries
