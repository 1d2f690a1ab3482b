"""services.gateway.lean: asyncio.Queue's and asyncio.Event's behaviour for one waiter."""

from __future__ import annotations

import asyncio

import pytest

from services.gateway.lean import Gate, SendQueue


async def test_frames_come_out_in_order_and_the_bound_holds() -> None:
    q = SendQueue(2)
    q.put_nowait(b"a")
    q.put_nowait(b"b")
    with pytest.raises(asyncio.QueueFull):
        q.put_nowait(b"c")
    assert q.qsize() == 2 and not q.empty()
    assert await q.get() == b"a"
    assert q.get_nowait() == b"b"
    assert q.empty()
    with pytest.raises(asyncio.QueueEmpty):
        q.get_nowait()


async def test_a_waiting_get_wakes_on_put_and_survives_cancellation() -> None:
    q = SendQueue(4)
    waiting = asyncio.create_task(q.get())
    await asyncio.sleep(0)  # it is waiting now
    assert not waiting.done()
    q.put_nowait(b"x")
    assert await waiting == b"x"
    cancelled = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    q.put_nowait(b"y")  # no waiter left behind: the next get takes it
    assert await asyncio.wait_for(q.get(), 1) == b"y"


async def test_two_waiters_are_a_bug() -> None:
    q = SendQueue(4)
    first = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError):
        await q.get()
    first.cancel()


async def test_a_gate_lets_its_waiter_through_when_set() -> None:
    g = Gate(open=True)
    await asyncio.wait_for(g.wait(), 1)  # open: no wait
    g.clear()
    assert not g.is_set()
    waiting = asyncio.create_task(g.wait())
    await asyncio.sleep(0)
    assert not waiting.done()
    g.set()
    await asyncio.wait_for(waiting, 1)
    assert g.is_set()
