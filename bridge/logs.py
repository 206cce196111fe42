"""Logging set-up: readable lines by default, one JSON object per line with --log-format json.

Every record passes bridge.redact, whatever the code that logged it did: a known secret or a credential-shaped
string (a server's echo inside an error) never reaches a log line. Library loggers (the SDKs, APScheduler's
"job raised" tracebacks) write through the same handler, so they are redacted too.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from bridge.redact import redact


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = ()
        record.bridge_redacted = True  # the message: its fields are redacted where they are written (JSON)
        return True


class _BridgeHandler(logging.StreamHandler):
    """Marks bridge's own handler, so that setting up twice replaces it instead of adding a second."""


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created))
        line = f"{stamp} {record.levelname.lower():7} {record.getMessage()}"
        if not record.exc_info and getattr(record, "bridge_redacted", False):
            # The message is all the line holds besides the time and the level, and the filter redacted it: a
            # second pass would read the same text again (10,000 lines in a cold poll's record)
            return line
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in getattr(record, "fields", {}).items():
            data[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(data, ensure_ascii=False, default=str))


def setup_logging(fmt: str = "text", level: str = "info") -> None:
    handler = _BridgeHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    handler.addFilter(_RedactingFilter())
    root = logging.getLogger("bridge")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    # Other libraries' warnings and errors would otherwise reach stderr through Python's last-resort handler,
    # unformatted and unredacted.
    top = logging.getLogger()
    top.handlers[:] = [h for h in top.handlers if not isinstance(h, _BridgeHandler)] + [handler]
    # the libraries' own chatter (httpx logs every request at INFO) is noise for a writer
    for name in ("httpx", "httpcore", "apscheduler"):
        logging.getLogger(name).setLevel(logging.WARNING)


def log_event(logger: logging.Logger, level: int, message: str, **fields) -> None:
    """Log a line whose fields also appear as keys in JSON logs."""
    logger.log(level, message, extra={"fields": fields})
