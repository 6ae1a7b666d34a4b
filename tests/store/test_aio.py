"""cancel_and_wait: a task's own cancellation is absorbed, its caller's never is."""

from __future__ import annotations

import asyncio

import pytest

from store.aio import cancel_and_wait


async def forever() -> None:
    await asyncio.Event().wait()


async def test_cancels_and_waits_for_every_task() -> None:
    tasks = [asyncio.create_task(forever()) for _ in range(3)]
    await asyncio.sleep(0)
    await cancel_and_wait(*tasks, None)
    assert all(task.cancelled() for task in tasks)


async def test_a_task_ending_in_an_error_raises_it_after_all_are_done() -> None:
    async def fails() -> None:
        raise ValueError("boom")

    failing = asyncio.create_task(fails())
    other = asyncio.create_task(forever())
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="boom"):
        await cancel_and_wait(failing, other)
    assert other.cancelled()

    again = asyncio.create_task(fails())
    await asyncio.sleep(0)
    await cancel_and_wait(again, ignore_errors=True)


async def test_the_callers_own_cancellation_is_not_swallowed() -> None:
    """A task that takes a while to finish (it cleans up) is being waited for when the
    caller itself is cancelled: the caller must stop, not carry on."""
    cleaning = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await forever()
        finally:
            cleaning.set()
            await asyncio.shield(asyncio.sleep(0.05))

    carried_on = False

    async def caller() -> None:
        nonlocal carried_on
        child = asyncio.create_task(slow_to_stop())
        await asyncio.sleep(0)
        await cancel_and_wait(child)
        carried_on = True

    task = asyncio.create_task(caller())
    await cleaning.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not carried_on


async def test_a_loop_of_short_timed_waits_stops_when_cancelled() -> None:
    """The shape of a probe loop: each await finishes almost at once under a timeout. With
    Python 3.11's wait_for a cancel landing as one finishes is lost and the loop runs on;
    under asyncio.timeout every cancel ends it."""
    for _ in range(200):
        rounds = 0

        async def loop() -> None:
            nonlocal rounds
            while True:
                async with asyncio.timeout(1):
                    await asyncio.sleep(0)
                rounds += 1

        task = asyncio.create_task(loop())
        for _ in range(3):
            await asyncio.sleep(0)
        task.cancel()
        async with asyncio.timeout(5):
            with pytest.raises(asyncio.CancelledError):
                await task
