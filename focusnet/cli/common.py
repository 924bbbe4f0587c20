"""What the commands share beyond arguments: warnings, and how a stopped batch says how to go on."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from ..errors import FocusnetError, JournalError


class Terminated(BaseException):
    """SIGTERM (a cluster scheduler's kill), raised where the program is, as Ctrl-C raises KeyboardInterrupt."""


class Stopped(Exception):
    """A command stopped by an error or a signal after it kept results; ``how_to_go_on`` says what to do next.

    Attributes
    ----------
    cause : BaseException
        The error, :class:`KeyboardInterrupt` or :class:`Terminated`.
    how_to_go_on : str
    """

    def __init__(self, cause: BaseException, how_to_go_on: str):
        super().__init__(str(cause))
        self.cause = cause
        self.how_to_go_on = how_to_go_on


@contextlib.contextmanager
def keeps_results(journal, what: str):
    """Inside, a batch keeps what it finished in ``journal``: an error or a signal says so, and how to go on."""
    try:
        yield
    except (FocusnetError, OSError, KeyboardInterrupt, Terminated) as stop:  # OSError: a full disk
        if isinstance(stop, JournalError) or not Path(journal).is_file():
            raise  # a journal refused says what to do instead; no journal, nothing kept
        raise Stopped(stop, f"the {what} measured so far are kept in {journal}; run the same command with --resume "
                            "to measure the rest") from stop


def warn(command: str, message: str) -> None:
    """A warning on standard error, above a progress bar if one is drawn."""
    from tqdm import tqdm

    tqdm.write(f"focusnet {command}: warning: {message}", file=sys.stderr)
