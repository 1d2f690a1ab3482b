"""RPC between participants, LiveKit's API: ``register_rpc_method`` / ``unregister_rpc_method``
and ``perform_rpc`` on the local participant, handlers getting one :class:`RpcInvocationData`.

The wire (``protocol/frames.py``): the caller sends ``rpc_request``; the recipient answers
``rpc_ack`` at once and ``rpc_response`` (a payload or an error) when its handler returns. The
router routes them to the destination identity like a destination-filtered data packet, in
room-log order, and answers a request for someone not in the room itself (1401). The caller
gives up on its own: no ack within 7 s (1501, connection timeout), no response within
``response_timeout`` (1502); it fails at once when the recipient leaves (1503).

::

    @room.local_participant.register_rpc_method("greet")
    async def greet(data: roomstreams.RpcInvocationData) -> str:
        return f"hello {data.caller_identity}"

    reply = await other.local_participant.perform_rpc(
        destination_identity="bob", method="greet", payload="hi"
    )
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from ..exceptions import ConnectionClosed, RpcError
from ..protocol.chunking import utf8_len
from ..protocol.frames import (
    DeliveredRpcAck,
    DeliveredRpcRequest,
    DeliveredRpcResponse,
    RpcAckFrame,
    RpcRequestFrame,
    RpcResponseFrame,
)
from ..protocol.frames import RpcError as WireRpcError
from ..protocol.rpc import (
    MAX_RPC_PAYLOAD_BYTES,
    RPC_MAX_ROUND_TRIP_S,
    RPC_MIN_EFFECTIVE_TIMEOUT_S,
    RPC_RESPONSE_TIMEOUT_S,
    RpcErrorCode,
)

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["RpcHandler", "RpcInvocationData", "Rpcs"]

logger = logging.getLogger("roomstreams.rpc")


@dataclass(slots=True)
class RpcInvocationData:
    """What an RPC handler gets (LiveKit's ``RpcInvocationData``)."""

    request_id: str
    caller_identity: str
    payload: str
    #: seconds the caller waits for the answer (less the round trip)
    response_timeout: float
    method: str = ""


RpcHandler = Callable[[RpcInvocationData], Awaitable[str | None] | str | None]
H = TypeVar("H", bound=RpcHandler)


@dataclass(slots=True)
class _Call:
    destination: str
    acked: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    result: asyncio.Future[str] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def fail(self, err: RpcError) -> None:
        for fut in (self.acked, self.result):
            if not fut.done():
                fut.set_exception(err)
                fut.exception()


class Rpcs:
    """This participant's RPC methods and calls in flight (the local participant owns one;
    the room feeds it the RPC frames and the departures)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.handlers: dict[str, RpcHandler] = {}
        self._calls: dict[str, _Call] = {}

    # -- calling ------------------------------------------------------------------------------

    async def perform(
        self,
        *,
        destination_identity: str,
        method: str,
        payload: str,
        response_timeout: float | None = None,
    ) -> str:
        timeout = RPC_RESPONSE_TIMEOUT_S if response_timeout is None else response_timeout
        if utf8_len(payload) > MAX_RPC_PAYLOAD_BYTES:
            raise RpcError._built_in(RpcErrorCode.REQUEST_PAYLOAD_TOO_LARGE)
        try:
            self._conn.ensure_connected()
        except ConnectionClosed as exc:
            raise RpcError._built_in(RpcErrorCode.SEND_FAILED, str(exc)) from exc
        request_id = str(uuid.uuid4())
        handler_budget = max(timeout - RPC_MAX_ROUND_TRIP_S, RPC_MIN_EFFECTIVE_TIMEOUT_S)
        frame = RpcRequestFrame(
            id=request_id,
            destination=destination_identity,
            method=method,
            payload=payload,
            response_timeout_ms=int(handler_budget * 1000),
        )
        call = _Call(destination_identity)
        self._calls[request_id] = call
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            try:
                await self._conn.send(frame.model_dump_json())
            except ConnectionClosed as exc:
                raise RpcError._built_in(RpcErrorCode.SEND_FAILED, str(exc)) from exc
            try:
                async with asyncio.timeout(min(RPC_MAX_ROUND_TRIP_S, timeout)):
                    await asyncio.shield(call.acked)
            except TimeoutError:
                raise RpcError._built_in(RpcErrorCode.CONNECTION_TIMEOUT) from None
            try:
                async with asyncio.timeout(max(timeout - (loop.time() - start), 0)):
                    return await asyncio.shield(call.result)
            except TimeoutError:
                raise RpcError._built_in(RpcErrorCode.RESPONSE_TIMEOUT) from None
        finally:
            self._calls.pop(request_id, None)
            call.fail(RpcError._built_in(RpcErrorCode.SEND_FAILED))  # nothing left waiting

    def on_ack(self, f: DeliveredRpcAck) -> None:
        call = self._calls.get(f.request_id)
        if call is not None and not call.acked.done():
            call.acked.set_result(None)

    def on_response(self, f: DeliveredRpcResponse) -> None:
        call = self._calls.get(f.request_id)
        if call is None:
            return  # it timed out here already
        if not call.acked.done():  # the router answers for a missing recipient: no ack
            call.acked.set_result(None)
        if call.result.done():
            return
        if f.error is not None:
            call.result.set_exception(RpcError(f.error.code, f.error.message, f.error.data))
            call.result.exception()
        else:
            call.result.set_result(f.payload or "")

    def participant_left(self, identity: str) -> None:
        """The destination left the room: its calls fail now (LiveKit's 1503)."""
        for call in list(self._calls.values()):
            if call.destination == identity:
                call.fail(RpcError._built_in(RpcErrorCode.RECIPIENT_DISCONNECTED))

    def connection_lost(self, reason: str) -> None:
        """Answers to this connection cannot arrive any more."""
        for call in list(self._calls.values()):
            call.fail(RpcError._built_in(RpcErrorCode.SEND_FAILED, reason))

    # -- answering ----------------------------------------------------------------------------

    def register(self, method: str, handler: H | None = None) -> H | Callable[[H], H]:
        def register(fn: H) -> H:
            self.handlers[method] = fn
            return fn

        return register if handler is None else register(handler)

    def on_request(self, f: DeliveredRpcRequest) -> None:
        self._conn.spawn(self._answer(f))

    async def _answer(self, f: DeliveredRpcRequest) -> None:
        ack = RpcAckFrame(request_id=f.id, destination=f.caller)
        await self._send_quietly(ack.model_dump_json())
        payload: str | None = None
        error: WireRpcError | None = None
        handler = self.handlers.get(f.method)
        budget = f.response_timeout_ms / 1000
        if f.version != 1:
            error = RpcErrorCode.UNSUPPORTED_VERSION.error()
        elif handler is None:
            error = RpcErrorCode.UNSUPPORTED_METHOD.error()
        else:
            data = RpcInvocationData(f.id, f.caller, f.payload, budget, f.method)
            try:
                async with asyncio.timeout(budget):
                    result = handler(data)
                    if inspect.isawaitable(result):
                        result = await result
                payload = "" if result is None else str(result)
                if utf8_len(payload) > MAX_RPC_PAYLOAD_BYTES:
                    payload, error = None, RpcErrorCode.RESPONSE_PAYLOAD_TOO_LARGE.error()
            except RpcError as exc:
                error = WireRpcError(code=exc.code, message=exc.message, data=exc.data)
            except TimeoutError:
                error = RpcErrorCode.RESPONSE_TIMEOUT.error()
            except Exception:
                logger.exception("RPC handler for %r raised; answering 1500", f.method)
                error = RpcErrorCode.APPLICATION_ERROR.error()
        response = RpcResponseFrame(
            request_id=f.id, destination=f.caller, payload=payload, error=error
        )
        await self._send_quietly(response.model_dump_json(exclude_none=True))

    async def _send_quietly(self, frame: str) -> None:
        try:
            await self._conn.send(frame)
        except ConnectionClosed:
            logger.info("connection closed before an RPC answer could be sent")
