"""RPC on the wire: LiveKit's built-in error codes and messages, and its limits and timeouts
(the frames are in :mod:`roomstreams.protocol.frames`: ``rpc_request``, ``rpc_ack``,
``rpc_response``). Shared by the client, the gateway and the router."""

from __future__ import annotations

import enum
from typing import Final

from .frames import RpcError

__all__ = [
    "MAX_RPC_PAYLOAD_BYTES",
    "RPC_MAX_ROUND_TRIP_S",
    "RPC_MIN_EFFECTIVE_TIMEOUT_S",
    "RPC_RESPONSE_TIMEOUT_S",
    "RpcErrorCode",
]

#: Largest request or response payload, in UTF-8 bytes (LiveKit's 15 KiB).
MAX_RPC_PAYLOAD_BYTES: Final = 15 * 1024
#: How long a caller waits for the recipient's ack (LiveKit's maximum round trip, 7 s).
RPC_MAX_ROUND_TRIP_S: Final = 7.0
#: ``perform_rpc``'s default ``response_timeout`` (LiveKit's client SDKs: 15 s).
RPC_RESPONSE_TIMEOUT_S: Final = 15.0
#: The least a handler is given (the caller's timeout less the round trip, at least this).
RPC_MIN_EFFECTIVE_TIMEOUT_S: Final = 1.0


class RpcErrorCode(enum.IntEnum):
    """LiveKit's built-in RPC error codes (``RpcError.ErrorCode``)."""

    APPLICATION_ERROR = 1500
    CONNECTION_TIMEOUT = 1501
    RESPONSE_TIMEOUT = 1502
    RECIPIENT_DISCONNECTED = 1503
    RESPONSE_PAYLOAD_TOO_LARGE = 1504
    SEND_FAILED = 1505

    UNSUPPORTED_METHOD = 1400
    RECIPIENT_NOT_FOUND = 1401
    REQUEST_PAYLOAD_TOO_LARGE = 1402
    UNSUPPORTED_SERVER = 1403
    UNSUPPORTED_VERSION = 1404

    @property
    def message(self) -> str:
        return _MESSAGES[self]

    def error(self, data: str | None = None) -> RpcError:
        """This code as it travels in an ``rpc_response``."""
        return RpcError(code=int(self), message=self.message, data=data)


_MESSAGES: dict[RpcErrorCode, str] = {
    RpcErrorCode.APPLICATION_ERROR: "Application error in method handler",
    RpcErrorCode.CONNECTION_TIMEOUT: "Connection timeout",
    RpcErrorCode.RESPONSE_TIMEOUT: "Response timeout",
    RpcErrorCode.RECIPIENT_DISCONNECTED: "Recipient disconnected",
    RpcErrorCode.RESPONSE_PAYLOAD_TOO_LARGE: "Response payload too large",
    RpcErrorCode.SEND_FAILED: "Failed to send",
    RpcErrorCode.UNSUPPORTED_METHOD: "Method not supported at destination",
    RpcErrorCode.RECIPIENT_NOT_FOUND: "Recipient not found",
    RpcErrorCode.REQUEST_PAYLOAD_TOO_LARGE: "Request payload too large",
    RpcErrorCode.UNSUPPORTED_SERVER: "RPC not supported by server",
    RpcErrorCode.UNSUPPORTED_VERSION: "Unsupported RPC version",
}
