"""How the services log: plain text for people (the default), or one JSON object a line.

``ROOMSTREAMS_LOG_FORMAT=json`` picks JSON (python-json-logger): every record is an object
with ``time`` (ISO 8601, UTC), ``level``, ``logger`` and ``message``, plus whatever the call
passed in ``extra`` as fields of their own (the gateways pass ``session``, ``room``, ``identity``; a
stream's ``stream_id`` where one is concerned), plus ``exc_info`` when there is a traceback.
In text, the same context keys follow the message as ``key=value`` so that a person reading
a terminal sees them too.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Literal

__all__ = [
    "CONTEXT_KEYS",
    "LOG_FORMATS",
    "LogFormatError",
    "configure_logging",
    "configure_service_logging",
    "log_format",
]

LOG_FORMATS = ("text", "json")
#: the ``extra`` keys of a log call that name what it is about (shown in text; JSON has all)
CONTEXT_KEYS = ("session", "room", "identity", "stream_id", "gateway")

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# the LogRecord's own attributes: what is not one of these came in ``extra``
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class LogFormatError(ValueError):
    """``ROOMSTREAMS_LOG_FORMAT`` names no format."""


def log_format(value: str | None = None) -> Literal["text", "json"]:
    """The format asked for (``value``, else ``ROOMSTREAMS_LOG_FORMAT``, else text)."""
    raw = os.environ.get("ROOMSTREAMS_LOG_FORMAT", "") if value is None else value
    fmt = raw.strip().lower() or "text"
    if fmt == "json":
        return "json"
    if fmt == "text":
        return "text"
    raise LogFormatError(f"ROOMSTREAMS_LOG_FORMAT={raw!r} is not a log format: use text or json")


class TextFormatter(logging.Formatter):
    """The plain format, with the record's context keys appended as ``key=value``."""

    def __init__(self) -> None:
        super().__init__(_TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = [f"{k}={record.__dict__[k]}" for k in CONTEXT_KEYS if k in record.__dict__]
        if not context:
            return text
        head, sep, tail = text.partition("\n")  # after the message, before a traceback
        return f"{head} [{' '.join(context)}]{sep}{tail}"


def json_formatter() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(
        "{levelname}{name}{message}",
        style="{",
        timestamp="time",  # ISO 8601, UTC
        rename_fields={"levelname": "level", "name": "logger"},
        reserved_attrs=sorted(_RESERVED),
    )


def configure_logging(level: str | int, fmt: str | None = None) -> None:
    """Set up the root logger on stderr for a service process (replaces earlier handlers).
    Raises :class:`LogFormatError` for an unknown format."""
    chosen = log_format(fmt)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(json_formatter() if chosen == "json" else TextFormatter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    logging.captureWarnings(True)  # a warning is a record too (one JSON line, not two)


def configure_service_logging(level: str) -> None:
    """:func:`configure_logging` for a service's ``__main__``: an unknown format or level is
    one line on stderr and exit code 2, not a traceback."""
    try:
        configure_logging(level)
    except ValueError as exc:  # LogFormatError, or logging's "Unknown level"
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
