"""A batch's results, committed image by image, so that no measured image is ever lost.

A journal is a text file of JSON lines beside a run's outputs: a header (what
the run is: its inputs, settings and model), then one line per finished image,
each written, flushed and ``fsync``-ed before the next image starts. Killed
by a signal, a crash or a full disk, the run leaves a journal that is
complete up to its last whole line; ``--resume`` reads it back, drops a torn
last line, measures only the images it lacks and writes the final outputs
from it, so they are byte for byte those of an uninterrupted run.

A line knows what it measured and is sealed: it holds its input's size and
SHA-256 (:func:`file_identity`), and a SHA-256 of its own content. On resume,
an input that changed since (a file replaced by another of the same name)
and a line that was edited or damaged are measured again, with a note, never
reported from the journal.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .errors import InvalidParameterError, JournalError

#: Version of the journal's layout (its first line says which).
JOURNAL_FORMAT = "focusnet-journal"
#: Version 3 seals each line and records its input's identity; version 2 records each result as a record keyed
#: by column names (focusnet.records); version 1 held CSV rows.
JOURNAL_VERSION = 3
#: The key of a line's seal: the SHA-256 of the rest of the line.
_SEAL = "sha256"


def file_identity(path) -> dict:
    """What a journal records of an input: its size and SHA-256 (None for both when it cannot be read)."""
    from .classifier import sha256_file

    try:
        return {"size": os.path.getsize(path), "sha256": sha256_file(path)}
    except OSError:
        return {"size": None, "sha256": None}


def _seal(record: dict) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True, allow_nan=True).encode()).hexdigest()


def journal_path(output) -> Path:
    """Where the journal of a run writing ``output`` lives: ``<output>.journal`` beside it."""
    output = Path(output)
    return output.with_name(output.name + ".journal")


class Journal:
    """An append-only record of a run's results (see the module's description).

    Use :meth:`start` for a new run and :meth:`resume` to continue one;
    :attr:`entries` holds the results recorded so far, by key.
    """

    def __init__(self, path, header: dict, entries: dict, handle, damaged: int = 0):
        self.path = Path(path)
        self.header = header
        self.entries = entries
        self._handle = handle
        #: Lines (after the header) that were edited or damaged, left out of :attr:`entries` on resume.
        self.damaged = damaged

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
            raise JournalError(f"{path} holds an unfinished run's results: resume that run (the same command, "
                               "resuming), or delete that file to start again", setting="resume")
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
            raise JournalError(f"no unfinished run to resume ({path} does not exist); start the run without "
                               "resuming", setting="resume")
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
        first = lines[0] if lines and isinstance(lines[0], dict) else {}
        if first.get("format") != JOURNAL_FORMAT:
            raise JournalError(f"{path} is not a focusnet journal; delete it (or choose another output) and start the "
                               "run without resuming", setting="resume")
        if first.get("version") != JOURNAL_VERSION:
            raise JournalError(f"{path} was written by another focusnet (journal version {first.get('version')!r}, "
                               f"this one reads version {JOURNAL_VERSION}) and cannot be resumed; delete it and start "
                               "the run without resuming", setting="resume")
        recorded = {key: value for key, value in first.items() if key not in ("format", "version")}
        normalised = json.loads(json.dumps(header))
        if recorded != normalised:
            changed = sorted(key for key in set(recorded) | set(normalised) if recorded.get(key) != normalised.get(key))
            raise JournalError(f"cannot resume: this run differs from the one recorded in {path} in {changed}; give "
                               "the same arguments and model, or delete it and start the run without resuming",
                               setting="resume")
        handle = open(path, "r+b")
        handle.truncate(whole)
        handle.close()
        handle = open(path, "a", encoding="utf-8")
        entries, damaged = {}, 0
        for entry in lines[1:]:
            sealed = isinstance(entry, dict) and isinstance(entry.get("key"), str) and entry.get(_SEAL) == _seal(
                {key: value for key, value in entry.items() if key != _SEAL})
            if sealed:
                entries[entry["key"]] = entry
            else:
                damaged += 1
        return cls(path, header, entries, handle, damaged)

    def _write(self, record: dict) -> None:
        self._handle.write(json.dumps(record, allow_nan=True) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def record(self, key: str, **entry) -> None:
        """Commit one finished item (on disk when this returns), sealed with the SHA-256 of its content."""
        record = {"key": key, **entry}
        record[_SEAL] = _seal(json.loads(json.dumps(record, allow_nan=True)))
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


def run_journaled(path, header: dict, keys, measure, write, resume: bool = False, on_entry=None,
                  on_note=None) -> list:
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
    on_note : callable, optional
        Called with a message for each recorded item measured again on resume (its input changed since,
        or its line was damaged).

    Returns
    -------
    list of dict
        The entries, in the order of ``keys``.

    Raises
    ------
    JournalError
        A journal that is there (and not resumed), missing or of another run.
    InvalidParameterError
        One that cannot be written.

    Notes
    -----
    ``keys`` are the inputs' paths: each entry records its input's :func:`file_identity` when it is
    committed, and a resumed run measures again every input whose identity changed since.
    """
    note = on_note or (lambda message: None)
    try:
        journal = Journal.resume(path, header) if resume else Journal.start(path, header)
    except OSError as error:
        raise InvalidParameterError(f"cannot write {path} ({error.strerror or error}); choose a folder you can "
                                    "write to") from None
    with journal:
        if journal.damaged:
            note(f"{journal.damaged} line(s) of {path} were edited or damaged: their images are measured again")
        for key in keys:
            if key in journal.entries and journal.entries[key].get("source") != file_identity(key):
                del journal.entries[key]
                note(f"{key} changed since it was measured: measured again")
        todo = [key for key in keys if key not in journal.entries]
        for key, entry in measure(todo):
            journal.record(key, **entry, source=file_identity(key))
            if on_entry is not None:
                on_entry(entry)
        entries = [journal.entries[key] for key in keys]
        write(entries)
    journal.remove()
    return entries
