"""The exceptions of roomstreams: one root, three kinds of stream ending.

Tree::

    RoomStreamsError
    ├── ConnectError            connecting failed (network, refused handshake)
    │   └── AuthError           the gateway refused the token (its reason is in the message)
    ├── ConnectionClosed        the room connection is gone; nothing more can be sent
    ├── PermissionDenied        the token does not allow this (for example canPublishData=false)
    ├── ServerError             the gateway answered a frame with an error (code + message)
    ├── RpcError                an RPC failed: LiveKit's code, message and data
    └── StreamError             something about one stream
        ├── StreamClosed        *we* closed it: writing after close(), closing twice
        │                       (also a RuntimeError)
        ├── StreamAborted       the stream ended abnormally (sender left, close reason, lag, ...)
        ├── StreamSizeMismatch  total_size announced and bytes written disagree
        └── UnsafeFileName      a byte stream name that is a path, not a plain file name
                                (also a ValueError)

Errors from redis-py, websockets or pydantic never cross the public API: they are
translated at the boundary and chained with ``raise ... from exc``.
"""

from __future__ import annotations

from typing import ClassVar

from .protocol.rpc import RpcErrorCode

__all__ = [
    "AuthError",
    "ConnectError",
    "ConnectionClosed",
    "PermissionDenied",
    "RoomStreamsError",
    "RpcError",
    "ServerError",
    "StreamAborted",
    "StreamClosed",
    "StreamError",
    "StreamSizeMismatch",
    "UnsafeFileName",
]


class RoomStreamsError(Exception):
    """Root of every error raised by roomstreams."""


class ConnectError(RoomStreamsError):
    """Connecting to a gateway failed."""


class AuthError(ConnectError):
    """The gateway refused the access token."""


class ConnectionClosed(RoomStreamsError):
    """The room connection is closed."""

    def __init__(self, reason: str = "connection closed") -> None:
        super().__init__(reason)
        self.reason = reason


class PermissionDenied(RoomStreamsError):
    """The access token does not grant this operation."""


class ServerError(RoomStreamsError):
    """The gateway or router rejected a frame."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class RpcError(RoomStreamsError):
    """An RPC failed (LiveKit's ``RpcError``). Raised by ``perform_rpc``; raise it in an RPC
    handler to send its code, message and data to the caller (any other exception reaches
    the caller as 1500, application error). Codes 1001-1999 are LiveKit's built-in ones
    (:attr:`ErrorCode`)."""

    ErrorCode = RpcErrorCode
    ErrorMessage: ClassVar[dict[RpcErrorCode, str]] = {c: c.message for c in RpcErrorCode}

    def __init__(self, code: int, message: str, data: str | None = None) -> None:
        super().__init__(message)
        self._code = int(code)
        self._message = message
        self._data = data

    @property
    def code(self) -> int:
        return self._code

    @property
    def message(self) -> str:
        return self._message

    @property
    def data(self) -> str | None:
        return self._data

    @classmethod
    def _built_in(cls, code: RpcErrorCode, data: str | None = None) -> RpcError:
        return cls(code, code.message, data)

    def __repr__(self) -> str:
        return f"RpcError({self._code}, {self._message!r}, {self._data!r})"


class StreamError(RoomStreamsError):
    """Base for errors about a single stream."""

    def __init__(self, message: str, *, stream_id: str | None = None) -> None:
        super().__init__(message)
        self.stream_id = stream_id


class StreamClosed(StreamError, RuntimeError):
    """The stream was closed by this side: no more writes, no second close (also a
    ``RuntimeError``, what LiveKit raises in both cases)."""


class StreamAborted(StreamError):
    """The stream ended abnormally; ``code`` and ``reason`` say why."""

    def __init__(
        self,
        reason: str,
        *,
        code: str = "aborted",
        stream_id: str | None = None,
        sender: str | None = None,
    ) -> None:
        super().__init__(f"stream ended abnormally ({code}): {reason}", stream_id=stream_id)
        self.code = code
        self.reason = reason
        self.sender = sender


class StreamSizeMismatch(StreamError):
    """The bytes written do not match the announced total size."""


class UnsafeFileName(StreamError, ValueError):
    """A byte stream name with a path separator, ``..``, an absolute path or a control
    character: refused when sending, and by ``ByteStreamReader.write_to_file``."""
