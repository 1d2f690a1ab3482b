"""RPC as in LiveKit's Python SDK (``register_rpc_method``, also as a decorator,
``unregister_rpc_method``, ``perform_rpc``, ``RpcError`` with LiveKit's codes, the 15 KiB
payload limit, ``RpcInvocationData``), through the real system: routed by the router like a
destination-filtered packet; the caller learns within its timeout when the recipient is
missing, leaves, or does not answer."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from roomstreams import Room, RpcError, RpcInvocationData

from .conftest import System
from .test_livekit_room import token

Connect = Callable[..., Any]


@pytest.fixture
async def two(system: System, room_name: str) -> AsyncIterator[tuple[Room, Room]]:
    """alice and bob, on different gateways."""
    alice, bob = Room(), Room()
    await alice.connect(system.urls[0], token(room_name, "alice"))
    await bob.connect(system.urls[1], token(room_name, "bob"))
    yield alice, bob
    await alice.disconnect()
    await bob.disconnect()


async def test_call_and_answer(two: tuple[Room, Room]) -> None:
    alice, bob = two
    seen: list[RpcInvocationData] = []

    @bob.local_participant.register_rpc_method("greet")
    async def greet(data: RpcInvocationData) -> str:
        seen.append(data)
        return f"hello {data.caller_identity}: {data.payload}"

    def shout(data: RpcInvocationData) -> str:  # a plain function works too
        return data.payload.upper()

    bob.local_participant.register_rpc_method("shout", shout)
    lp = alice.local_participant
    reply = await lp.perform_rpc(destination_identity="bob", method="greet", payload="hi")
    assert reply == "hello alice: hi"
    assert await lp.perform_rpc(destination_identity="bob", method="shout", payload="x") == "X"
    (data,) = seen
    assert (data.caller_identity, data.payload, data.method) == ("alice", "hi", "greet")
    assert data.request_id and 0 < data.response_timeout <= 15
    # a JSON round trip, as LiveKit's example does
    bob.local_participant.register_rpc_method(
        "add", lambda d: json.dumps(sum(json.loads(d.payload)))
    )
    assert await lp.perform_rpc(destination_identity="bob", method="add", payload="[1, 2]") == "3"


async def test_errors_from_the_handler(two: tuple[Room, Room]) -> None:
    alice, bob = two

    @bob.local_participant.register_rpc_method("divide")
    async def divide(data: RpcInvocationData) -> str:
        a, b = json.loads(data.payload)
        if b == 0:
            raise RpcError(2000, "division by zero", json.dumps({"a": a}))
        return str(a / b)

    @bob.local_participant.register_rpc_method("buggy")
    def buggy(data: RpcInvocationData) -> str:
        raise KeyError("oops")

    lp = alice.local_participant
    with pytest.raises(RpcError) as exc_info:
        await lp.perform_rpc(destination_identity="bob", method="divide", payload="[1, 0]")
    assert (exc_info.value.code, exc_info.value.message) == (2000, "division by zero")
    assert exc_info.value.data == '{"a": 1}'
    with pytest.raises(RpcError) as exc_info:
        await lp.perform_rpc(destination_identity="bob", method="buggy", payload="")
    assert exc_info.value.code == RpcError.ErrorCode.APPLICATION_ERROR == 1500
    assert exc_info.value.message == "Application error in method handler"
    with pytest.raises(RpcError) as exc_info:
        await lp.perform_rpc(destination_identity="bob", method="nope", payload="")
    assert exc_info.value.code == RpcError.ErrorCode.UNSUPPORTED_METHOD == 1400
    bob.local_participant.unregister_rpc_method("divide")
    with pytest.raises(RpcError) as exc_info:
        await lp.perform_rpc(destination_identity="bob", method="divide", payload="[1, 1]")
    assert exc_info.value.code == 1400


async def test_recipient_not_in_the_room_is_known_at_once(two: tuple[Room, Room]) -> None:
    alice, _ = two
    start = time.monotonic()
    with pytest.raises(RpcError) as exc_info:
        await alice.local_participant.perform_rpc(
            destination_identity="nobody", method="greet", payload=""
        )
    assert exc_info.value.code == RpcError.ErrorCode.RECIPIENT_NOT_FOUND == 1401
    assert exc_info.value.message == "Recipient not found"
    assert time.monotonic() - start < 2  # the router's answer, not a timeout


async def test_recipient_that_leaves_mid_call(two: tuple[Room, Room]) -> None:
    alice, bob = two
    started = asyncio.Event()

    @bob.local_participant.register_rpc_method("slow")
    async def slow(data: RpcInvocationData) -> str:
        started.set()
        await asyncio.sleep(30)
        return "too late"

    call = asyncio.create_task(
        alice.local_participant.perform_rpc(
            destination_identity="bob", method="slow", payload="", response_timeout=20
        )
    )
    await asyncio.wait_for(started.wait(), 5)
    start = time.monotonic()
    await bob.disconnect()
    with pytest.raises(RpcError) as exc_info:
        await asyncio.wait_for(call, 5)
    assert exc_info.value.code == RpcError.ErrorCode.RECIPIENT_DISCONNECTED == 1503
    assert time.monotonic() - start < 3


async def test_response_timeout(two: tuple[Room, Room]) -> None:
    alice, bob = two

    @bob.local_participant.register_rpc_method("slow")
    async def slow(data: RpcInvocationData) -> str:
        await asyncio.sleep(10)
        return "late"

    start = time.monotonic()
    with pytest.raises(RpcError) as exc_info:
        await alice.local_participant.perform_rpc(
            destination_identity="bob", method="slow", payload="", response_timeout=1.5
        )
    # the handler is given at least a second and answers 1502 itself, or the caller gives up
    assert exc_info.value.code == RpcError.ErrorCode.RESPONSE_TIMEOUT == 1502
    assert 1.0 <= time.monotonic() - start < 3


async def test_payload_limits(two: tuple[Room, Room]) -> None:
    alice, bob = two
    bob.local_participant.register_rpc_method("echo", lambda d: d.payload)
    bob.local_participant.register_rpc_method("big", lambda d: "x" * (15 * 1024 + 1))
    lp = alice.local_participant
    at_limit = "é" * (15 * 1024 // 2)
    assert await lp.perform_rpc(destination_identity="bob", method="echo", payload=at_limit) == (
        at_limit
    )
    with pytest.raises(RpcError) as exc_info:
        await lp.perform_rpc(destination_identity="bob", method="echo", payload="x" * 15361)
    assert exc_info.value.code == RpcError.ErrorCode.REQUEST_PAYLOAD_TOO_LARGE == 1402
    with pytest.raises(RpcError) as exc_info:
        await lp.perform_rpc(destination_identity="bob", method="big", payload="")
    assert exc_info.value.code == RpcError.ErrorCode.RESPONSE_PAYLOAD_TOO_LARGE == 1504


async def test_gateway_enforces_the_payload_limit(two: tuple[Room, Room]) -> None:
    """A client that skips the check still gets LiveKit's answer (1402), from the gateway."""
    alice, bob = two
    bob.local_participant.register_rpc_method("echo", lambda d: d.payload)
    got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    rpcs = alice.local_participant._rpc
    original = rpcs.on_response
    rpcs.on_response = lambda f: got.done() or got.set_result(f)  # type: ignore[method-assign]
    try:
        frame = {
            "type": "rpc_request",
            "id": "raw-1",
            "destination": "bob",
            "method": "echo",
            "payload": "x" * 15361,
        }
        await alice._conn.send(json.dumps(frame))
        resp = await asyncio.wait_for(got, 5)
    finally:
        rpcs.on_response = original  # type: ignore[method-assign]
    assert resp.request_id == "raw-1" and resp.error.code == 1402


async def test_concurrent_calls_both_ways(two: tuple[Room, Room]) -> None:
    alice, bob = two
    for room in (alice, bob):
        who = room.local_participant.identity

        async def echo(data: RpcInvocationData, who: str = who) -> str:
            await asyncio.sleep(0.01)
            return f"{who}:{data.payload}"

        room.local_participant.register_rpc_method("echo", echo)
    calls = [
        alice.local_participant.perform_rpc(
            destination_identity="bob", method="echo", payload=str(i)
        )
        for i in range(10)
    ] + [
        bob.local_participant.perform_rpc(
            destination_identity="alice", method="echo", payload=str(i)
        )
        for i in range(10)
    ]
    replies = await asyncio.gather(*calls)
    assert replies == [f"bob:{i}" for i in range(10)] + [f"alice:{i}" for i in range(10)]
