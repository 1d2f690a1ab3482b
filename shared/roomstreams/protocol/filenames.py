"""Byte stream names: a plain file name, never a path.

A byte stream's ``name`` comes from another participant and ends up as a file name on the
receiver (``ByteStreamReader.write_to_file``), so it must not be able to point anywhere else:
the gateway refuses a header whose name fails :func:`file_name_problem`, the client refuses to
send one, and ``write_to_file`` checks again (the receiver does not have to trust the server).
"""

from __future__ import annotations

from pathlib import PurePosixPath, PureWindowsPath

from .limits import MAX_FILE_NAME_BYTES

__all__ = ["file_name_problem"]


def file_name_problem(name: str | None) -> str | None:
    """Why ``name`` is not a safe file name, or None when it is.

    Refused: empty, longer than 255 UTF-8 bytes, a path separator (``/`` or ``\\``), a NUL or
    other control character, ``.`` or ``..``, an absolute or drive path (``C:x``)."""
    if not name:
        return "a byte stream needs a non-empty name"
    if len(name.encode("utf-8", "replace")) > MAX_FILE_NAME_BYTES:
        return f"name longer than {MAX_FILE_NAME_BYTES} bytes"
    if "/" in name or "\\" in name:
        return f"name {name!r} contains a path separator"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return f"name {name!r} contains a control character"
    if name in (".", ".."):
        return f"name {name!r} is not a file name"
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).drive:
        return f"name {name!r} is an absolute path"
    return None
