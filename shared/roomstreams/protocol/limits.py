"""Protocol limits: the client never exceeds them, the gateway enforces them."""

from __future__ import annotations

__all__ = [
    "MAX_ATTRIBUTES_BYTES",
    "MAX_CHUNK_BYTES",
    "MAX_DATA_BYTES",
    "MAX_DATA_META_BYTES",
    "MAX_FILE_NAME_BYTES",
    "MAX_FRAME_BYTES",
    "MAX_HEADER_BYTES",
    "MAX_IDENTITY_BYTES",
    "MAX_PARTICIPANT_ATTRIBUTES_BYTES",
    "MAX_PARTICIPANT_METADATA_BYTES",
    "MAX_PARTICIPANT_NAME_BYTES",
    "MAX_STREAM_ID_BYTES",
    "MAX_TOPIC_BYTES",
]

#: Largest chunk content, in bytes: UTF-8 bytes of a text chunk, payload of a binary byte
#: chunk (LiveKit's STREAM_CHUNK_SIZE).
MAX_CHUNK_BYTES = 15_000
#: Largest data packet payload (``publish_data``), in bytes: LiveKit's limit for reliable
#: packets (15 KiB). The gateway answers a larger one with an ``error`` frame, code
#: ``data_too_large``, and drops it.
MAX_DATA_BYTES = 15 * 1024
#: Largest JSON meta of a data packet frame (topic and destination identities), in bytes.
MAX_DATA_META_BYTES = 15_000
#: Longest byte stream name (a file name), in UTF-8 bytes.
MAX_FILE_NAME_BYTES = 255
#: Largest header frame, serialised, in bytes.
MAX_HEADER_BYTES = 15_000
#: Largest WebSocket message the gateway accepts from a client. A chunk of 15000 bytes of
#: text that JSON escapes entirely (control characters, ``\\uXXXX``) is at most 6x larger.
MAX_FRAME_BYTES = 96 * 1024
MAX_TOPIC_BYTES = 256
MAX_STREAM_ID_BYTES = 128
MAX_IDENTITY_BYTES = 256
MAX_ATTRIBUTES_BYTES = 8 * 1024
#: LiveKit's limits on what a participant sets of itself (``set_name``, ``set_metadata``,
#: ``set_attributes``; the same as for the token's claims), in UTF-8 bytes; attributes count
#: keys and values, all of them after the merge.
MAX_PARTICIPANT_NAME_BYTES = 256
MAX_PARTICIPANT_METADATA_BYTES = 64_000
MAX_PARTICIPANT_ATTRIBUTES_BYTES = 64_000
