"""User errors: what the person running a command can fix, reported in one line.

An error in what the user gave (a missing or wrong file, a bad parameter, a model that does
not fit) derives from :class:`UserError`, and its message names the thing and the fix. The
``fourreal`` command, the stage entry points and the gather scripts run their work under
:func:`report_user_errors`: a user error (or a missing file) ends the run with one line,
``error: <message>``, on stderr and exit status 2; any other exception is a bug and keeps its
traceback. ``FOURREAL_DEBUG=1`` (``fourreal --debug`` sets it, for the stages that ``fourreal
run`` starts too) shows the traceback of user errors as well.
"""

from __future__ import annotations

import os
import sys
from typing import Callable

DEBUG_ENV = "FOURREAL_DEBUG"
USER_ERROR_STATUS = 2


class UserError(Exception):
    """An error in what the user gave; its message names the file or parameter and the fix."""


def debug_enabled() -> bool:
    """Whether ``FOURREAL_DEBUG`` asks for the tracebacks of user errors (set and not ``0``)."""
    return os.environ.get(DEBUG_ENV, "0") not in ("", "0")


def error_line(exc: BaseException) -> str:
    """The one-line report of a user error: its message with line breaks folded, a missing
    file named as ``<path>: <reason>``."""
    if isinstance(exc, OSError) and exc.filename is not None:
        text = f"{exc.filename}: {exc.strerror}"
    else:
        text = str(exc)
    return "error: " + " ".join(text.split())


def report_user_errors(work: Callable[[], int | None], debug: bool = False) -> int:
    """Run ``work`` and return its exit status (0 for ``None``). A :class:`UserError` or
    :class:`FileNotFoundError` prints :func:`error_line` on stderr and returns 2 instead,
    unless ``debug`` or :func:`debug_enabled` (then it propagates with its traceback)."""
    try:
        return work() or 0
    except (UserError, FileNotFoundError) as exc:
        if debug or debug_enabled():
            raise
        print(error_line(exc), file=sys.stderr)
        return USER_ERROR_STATUS
