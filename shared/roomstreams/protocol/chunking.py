"""Splitting text into chunks of at most N UTF-8 bytes without splitting a character."""

from __future__ import annotations

from collections.abc import Iterator

from .limits import MAX_CHUNK_BYTES

__all__ = ["split_utf8", "utf8_len"]


def utf8_len(text: str) -> int:
    """Length of ``text`` in UTF-8 bytes."""
    return len(text.encode("utf-8"))


def split_utf8(text: str, max_bytes: int = MAX_CHUNK_BYTES) -> Iterator[str]:
    """Yield pieces of ``text``, each at most ``max_bytes`` UTF-8 bytes, in order.

    A cut never falls inside a character: it moves back over UTF-8 continuation bytes
    (``0b10xxxxxx``). Empty text yields nothing.
    """
    if max_bytes < 4:
        raise ValueError("max_bytes must be at least 4 (the longest UTF-8 character)")
    if len(text) * 4 <= max_bytes:  # fast path: cannot exceed the limit
        if text:
            yield text
        return
    data = text.encode("utf-8")
    start, end_of_data = 0, len(data)
    while start < end_of_data:
        end = min(start + max_bytes, end_of_data)
        while end < end_of_data and (data[end] & 0xC0) == 0x80:
            end -= 1
        yield data[start:end].decode("utf-8")
        start = end
