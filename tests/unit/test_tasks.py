"""cancel_and_wait: a task that swallows a cancellation (as asyncio.wait_for can on Python
3.11) is cancelled again until it ends."""

from __future__ import annotations

import asyncio

from roomstreams._tasks import cancel_and_wait


async def test_a_task_that_swallows_one_cancellation_still_ends() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1  # what a lost cancellation looks like to the loop

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    assert await cancel_and_wait([task], timeout=2.0) == set()
    assert task.cancelled() and swallowed == 1


async def test_a_task_that_never_ends_is_returned_after_the_timeout() -> None:
    released = False

    async def immortal() -> None:
        while not released:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue

    task = asyncio.create_task(immortal())
    await asyncio.sleep(0)
    assert await cancel_and_wait([task], timeout=0.2) == {task}
    released = True
    task.cancel()
    await task  # it ends on its own flag


async def test_finished_and_failed_tasks_are_left_alone() -> None:
    async def fails() -> None:
        raise RuntimeError("boom")

    done = asyncio.create_task(asyncio.sleep(0))
    failed = asyncio.create_task(fails())
    await asyncio.wait([done, failed])
    assert await cancel_and_wait([done, failed]) == set()
    assert not done.cancelled() and not failed.cancelled()
