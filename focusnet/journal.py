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
JOURNAL_VERSION = 1


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
            raise InvalidParameterError(f"{path} holds an unfinished run's results: continue it with --resume (the "
                                        "same command), or delete that file to start again")
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
            raise InvalidParameterError(f"--resume: no unfinished run to continue ({path} does not exist); run "
                                        "without --resume")
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
                                        "run without --resume")
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
