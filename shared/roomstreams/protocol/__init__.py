"""The wire: WebSocket frames (JSON in ``frames``, binary in ``binary``), Redis stream entries,
key names, limits, chunking, file names."""

from .chunking import split_utf8, utf8_len
from .entries import EntryKind, LogEntry, encode_log_entry
from .frames import ErrorCode
from .limits import (
    MAX_CHUNK_BYTES,
    MAX_DATA_BYTES,
    MAX_FRAME_BYTES,
    MAX_HEADER_BYTES,
    MAX_TOPIC_BYTES,
)

__all__ = [
    "MAX_CHUNK_BYTES",
    "MAX_DATA_BYTES",
    "MAX_FRAME_BYTES",
    "MAX_HEADER_BYTES",
    "MAX_TOPIC_BYTES",
    "EntryKind",
    "ErrorCode",
    "LogEntry",
    "encode_log_entry",
    "split_utf8",
    "utf8_len",
]
