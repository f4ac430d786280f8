"""The command line's error path: one line on stderr, exit status 2, tracebacks behind --debug.

A *user error* is something the person at the command line can fix: a bad option value, a
missing, unreadable or invalid file. The library reports those as :class:`UserError` or as the
``ValueError``/``OSError`` of the function that found them, always naming the argument or file.
:func:`run_cli` prints such an error as ``error: <message>`` on one line and returns
:data:`USAGE_ERROR`; anything else is a bug, printed as one line that points at ``--debug``.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import NoReturn, TextIO

__all__ = ["DEBUG_FLAG", "INTERNAL_ERROR", "USAGE_ERROR", "UserArgumentParser", "UserError",
           "one_line", "run_cli"]

#: Exit status of a user error (the same as argparse's for a bad command line).
USAGE_ERROR = 2
#: Exit status of an unexpected failure (a bug).
INTERNAL_ERROR = 1
#: The flag that shows tracebacks.
DEBUG_FLAG = "--debug"
_MAX_MESSAGE = 500


class UserError(ValueError):
    """An error the user can fix; the message names the option or file and what is wrong."""


class UserArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors go through :func:`run_cli` instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{self.prog}: {message} (see {self.prog} --help)")


def one_line(text: str) -> str:
    """``text`` on one line (line breaks folded into "; "), cut to a readable length."""
    parts = [p.strip() for p in str(text).splitlines() if p.strip()]
    line = "; ".join(parts)
    return line if len(line) <= _MAX_MESSAGE else line[: _MAX_MESSAGE - 3] + "..."


def _is_user_error(exc: BaseException) -> bool:
    return isinstance(exc, (ValueError, OSError))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"  # not "[Errno 2] ..."
    return str(exc) or type(exc).__name__


def run_cli(entry: Callable[[list[str]], int], argv: Sequence[str] | None = None, *,
            stderr: TextIO | None = None) -> int:
    """Run a command-line entry point with the project's error path.

    Args:
        entry: called with the arguments (``--debug`` removed); returns the exit status.
        argv: the arguments, ``sys.argv[1:]`` when None. ``--debug`` anywhere before a ``--``
            makes errors print their traceback instead of one line.
        stderr: where errors go (``sys.stderr`` by default).

    Returns:
        ``entry``'s status; :data:`USAGE_ERROR` after a user error (``UserError``, any
        ``ValueError`` or ``OSError``, or a ``SystemExit`` carrying a message);
        :data:`INTERNAL_ERROR` after any other exception.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    cut = args.index("--") if "--" in args else len(args)
    debug = DEBUG_FLAG in args[:cut]
    args = [a for a in args[:cut] if a != DEBUG_FLAG] + args[cut:]
    err = sys.stderr if stderr is None else stderr
    try:
        return int(entry(args) or 0)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return int(exc.code or 0)
        if debug:
            traceback.print_exc(file=err)
        print(f"error: {one_line(str(exc.code))}", file=err)
        return USAGE_ERROR
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        if debug:
            traceback.print_exc(file=err)
        if _is_user_error(exc):
            print(f"error: {one_line(_describe(exc))}", file=err)
            return USAGE_ERROR
        print(f"error: unexpected {type(exc).__name__}: {one_line(str(exc))} "
              f"(run again with {DEBUG_FLAG} for the traceback)", file=err)
        return INTERNAL_ERROR
