"""The ``focusnet`` command line: one module per command, each declaring its arguments and printing results.

Each command module has ``add_parser(commands)``, which declares the
command's arguments (shared groups come from :mod:`.arguments`) and sets its
``run(arguments) -> int``; the work itself is the library's.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from . import (
    evaluate,
    evaluate_refocus,
    evaluate_stack,
    export,
    plate,
    predict,
    refocus,
    simulate,
    stack,
    train,
    train_refocus,
)
from .arguments import flag_for
from .common import Stopped, Terminated

DESCRIPTION = """\
focusnet: absolute focus quality of fluorescence microscope images, after
Yang et al., "Assessing microscope image focus quality with deep learning",
BMC Bioinformatics 19:77 (2018).
"""

#: The commands, in the order ``focusnet --help`` lists them.
COMMANDS = (simulate, train, predict, evaluate, evaluate_stack, stack, plate, train_refocus, refocus, evaluate_refocus,
            export)

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``focusnet`` command."""
    parser = argparse.ArgumentParser(prog="focusnet", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"focusnet {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    for command in COMMANDS:
        command.add_parser(commands)
    for command_parser in commands.choices.values():
        command_parser.set_defaults(command_parser=command_parser)  # to name the flag an error's setting needs
    return parser


def _raise_on_sigterm():
    """Turn SIGTERM into :class:`Terminated` while a command runs; returns what restores the old handler."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)


def _report(arguments, cause: BaseException, how_to_go_on: str = "") -> int:
    """Print why a command ended early, with the flag that would fix it; returns the exit status."""
    go_on = f"; {how_to_go_on}" if how_to_go_on else ""
    if isinstance(cause, (KeyboardInterrupt, Terminated)):
        signal_name, status = ("SIGTERM", 143) if isinstance(cause, Terminated) else ("SIGINT", 130)
        print(f"focusnet {arguments.command}: stopped by {signal_name}{go_on}", file=sys.stderr)
        return status
    flag = flag_for(arguments.command_parser, getattr(cause, "setting", None))
    print(f"focusnet {arguments.command}: error: {cause}" + (f" ({flag})" if flag else "") + go_on, file=sys.stderr)
    return 1


def main(argv=None) -> int:
    """Run the command line; returns the exit status."""
    from ..errors import FocusnetError

    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    arguments = parser.parse_args(argv)
    arguments.argv = argv
    restore = _raise_on_sigterm()
    try:
        return arguments.run(arguments)
    except Stopped as stopped:
        return _report(arguments, stopped.cause, stopped.how_to_go_on)
    except (FocusnetError, OSError, KeyboardInterrupt, Terminated) as error:  # OSError: an unwritable output
        return _report(arguments, error)
    finally:
        restore()


if __name__ == "__main__":
    sys.exit(main())
