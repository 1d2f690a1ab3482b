"""Splitting text into chunks of at most N UTF-8 bytes without splitting a character."""

from __future__ import annotations

from collections.abc import Iterator

from .limits import MAX_CHUNK_BYTES

__all__ = ["split_utf8", "utf8_len"]


def utf8_len(text: str) -> int:
    """Length of ``text`` in UTF-8 bytes (without a full encoded copy of a long text)."""
    if text.isascii():
        return len(text)
    step = 1 << 20
    return sum(len(text[i : i + step].encode("utf-8")) for i in range(0, len(text), step))


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
    # Walk the text a slice at a time, so a 20 MB text never gets a 20 MB encoded copy: a
    # slice of max_bytes characters is at least max_bytes bytes, so it is either emitted
    # whole (all ASCII) or cut at the last character boundary within max_bytes.
    start, n = 0, len(text)
    while start < n:
        piece = text[start : start + max_bytes]
        data = piece.encode("utf-8")
        if len(data) > max_bytes:
            end = max_bytes
            while (data[end] & 0xC0) == 0x80:
                end -= 1
            piece = data[:end].decode("utf-8")
        yield piece
        start += len(piece)
