"""Exceptions nobody planned for — a library's bug, a RecursionError on hostile input — are a readable reason on
the one entry, feed or account they hit, and the rest goes on. Their traceback goes to the debug log, once.

The state database failing is nobody's single entry: those errors are not isolated but stop the pass, and the
command reports them.
"""

from __future__ import annotations

import logging
import sqlite3

from bridge.errors import StateError

NOT_ISOLATED = (StateError, sqlite3.Error)


def describe(exc: BaseException) -> str:
    """'RecursionError: maximum recursion depth exceeded': the error's kind and its message, on one line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def unexpected(logger: logging.Logger, exc: BaseException, what: str) -> str:
    """The reason to record for an unexpected `exc` met while doing `what`; its traceback is logged at debug."""
    logger.debug("unexpected error while %s", what, exc_info=exc)
    return describe(exc)


def entry_left_out(logger: logging.Logger, url: str, number: int, exc: BaseException) -> str:
    """A feed document's entry that an unexpected error keeps from being read: warned, and the feed's complaint."""
    reason = unexpected(logger, exc, f"reading entry {number} of {url}")
    logger.warning("%s: entry %d left out, the others are read: %s", url, number, reason)
    return f"entry {number} left out: {reason}"
