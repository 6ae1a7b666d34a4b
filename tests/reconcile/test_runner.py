"""The controller runner, driven by a fake controller whose reconciles the tests control.

Nothing here waits on wall-clock limits: tests poll what the runner and the fake controller
record under an asyncio.wait_for deadline, and where a delay must have been honoured they
compare the event loop's own times (a lower bound, never a speed target).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pytest

from reconcile.runner import DONE, KeyStats, PermanentError, Result, Runner, again
from tests.helpers import DEADLINE_S

# asyncio may run a timer up to its clock resolution early; allow that much and no more.
EARLY = 0.001

Handler = Callable[[str, int], Awaitable[Result]]  # (key, attempt of that key, from 1)


async def _done(_key: str, _attempt: int) -> Result:
    return DONE


@dataclass(frozen=True)
class Seen:
    """What the runner's stats said about a key when a reconcile of it began."""

    attempt: int
    failures: int
    last_error: str | None


class FakeController:
    """A fake controller: no world to converge, only a handler per test and a record of
    every reconcile (when it began, how many ran at once, which were cancelled)."""

    name = "fake"

    def __init__(
        self,
        handler: Handler = _done,
        *,
        keys: Iterable[str] = (),
        timeout: float = DEADLINE_S,
    ) -> None:
        self.handler = handler
        self.keys = list(keys)
        self.timeout = timeout
        self.runner: Runner | None = None
        self.calls: list[str] = []
        self.began: dict[str, list[float]] = defaultdict(list)
        self.seen: dict[str, list[Seen]] = defaultdict(list)
        self.active = 0
        self.most_active = 0
        self.cancelled: list[str] = []

    async def reconcile(self, key: str) -> Result:
        self.calls.append(key)
        self.began[key].append(asyncio.get_running_loop().time())
        attempt = self.calls.count(key)
        if self.runner is not None:
            stats = self.runner.stats[key]
            self.seen[key].append(Seen(attempt, stats.failures, stats.last_error))
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            return await self.handler(key, attempt)
        except asyncio.CancelledError:
            self.cancelled.append(key)
            raise
        finally:
            self.active -= 1

    async def list_keys(self) -> Iterable[str]:
        return list(self.keys)


def make_runner(controller: FakeController, **kw: Any) -> Runner:
    runner = Runner(controller, **kw)
    controller.runner = runner
    return runner


@contextlib.asynccontextmanager
async def running(runner: Runner) -> AsyncIterator[Runner]:
    runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


async def wait_until(predicate: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.002)

    await asyncio.wait_for(poll(), DEADLINE_S)


async def forever(_key: str, _attempt: int) -> Result:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


# -- queueing -------------------------------------------------------------------------------


async def test_a_key_is_reconciled_once_per_enqueue() -> None:
    fake = FakeController()
    async with running(make_runner(fake)) as runner:
        runner.enqueue("a")
        await runner.idle(DEADLINE_S)
        assert fake.calls == ["a"]

        # Queued several times before a worker takes it: still one reconcile.
        runner.enqueue("a")
        runner.enqueue("a")
        runner.enqueue("a")
        await runner.idle(DEADLINE_S)
        assert fake.calls == ["a", "a"]

        runner.enqueue("b")
        await runner.idle(DEADLINE_S)
        assert fake.calls == ["a", "a", "b"]
    assert runner.stats["a"] == KeyStats(reconciles=2, most_at_once=1)
    assert runner.stats["b"] == KeyStats(reconciles=1, most_at_once=1)


async def test_a_key_enqueued_while_running_runs_exactly_once_more_never_two_at_once() -> None:
    gate = asyncio.Event()

    async def first_waits(_key: str, attempt: int) -> Result:
        if attempt == 1:
            await gate.wait()
        return DONE

    fake = FakeController(first_waits)
    async with running(make_runner(fake, workers=8)) as runner:
        runner.enqueue("a")
        await wait_until(lambda: fake.active == 1)

        async def enqueue_soon() -> None:
            await asyncio.sleep(0)
            runner.enqueue("a")

        await asyncio.gather(*(enqueue_soon() for _ in range(100)))
        # Seven idle workers and a hundred requests: none of them starts a second run.
        for _ in range(20):
            await asyncio.sleep(0)
        assert fake.calls == ["a"]

        gate.set()
        await runner.idle(DEADLINE_S)
    assert fake.calls == ["a", "a"]
    assert runner.stats["a"].reconciles == 2
    assert runner.stats["a"].most_at_once == 1
    assert fake.most_active == 1


async def test_different_keys_run_in_parallel_up_to_workers() -> None:
    gate = asyncio.Event()

    async def wait_for_gate(_key: str, _attempt: int) -> Result:
        await gate.wait()
        return DONE

    fake = FakeController(wait_for_gate)
    keys = ["k1", "k2", "k3", "k4", "k5"]
    async with running(make_runner(fake, workers=3)) as runner:
        for key in keys:
            runner.enqueue(key)
        await wait_until(lambda: fake.active == 3)
        for _ in range(20):
            await asyncio.sleep(0)
        assert fake.active == 3
        assert fake.calls == keys[:3]

        gate.set()
        await runner.idle(DEADLINE_S)
    assert sorted(fake.calls) == keys
    assert fake.most_active == 3
    assert all(runner.stats[k].most_at_once == 1 for k in keys)


# -- failures -------------------------------------------------------------------------------


def test_backoff_doubles_per_failure_and_caps_at_max_backoff() -> None:
    fake = FakeController()
    runner = Runner(fake, base_backoff=0.2, max_backoff=60.0, jitter=lambda: 1.0)
    assert [runner.backoff(n) for n in range(1, 12)] == [
        0.2,
        0.4,
        0.8,
        1.6,
        3.2,
        6.4,
        12.8,
        25.6,
        51.2,
        60.0,
        60.0,
    ]
    # The jitter scales the delay; the cap still holds after it.
    assert Runner(fake, base_backoff=0.2, jitter=lambda: 0.5).backoff(3) == 0.4
    assert Runner(fake, base_backoff=0.2, max_backoff=60.0, jitter=lambda: 1.5).backoff(9) == 60.0


def test_backoff_stays_capped_after_1025_consecutive_failures() -> None:
    """2.0 ** (failures - 1) overflows a float at 1025 failures (about 17 hours of a key
    failing at the 60 s cap). The OverflowError escapes Runner._reconcile's except block and
    ends the worker task, so a controller loses a worker per such key."""
    runner = Runner(FakeController(), base_backoff=0.2, max_backoff=60.0, jitter=lambda: 1.0)
    assert runner.backoff(1024) == 60.0
    assert runner.backoff(1025) == 60.0


async def test_a_failing_reconcile_is_retried_with_exponential_backoff_until_it_succeeds() -> None:
    outcomes: list[bool] = [False, False, False, True, False, True]  # False: raise

    async def scripted(_key: str, attempt: int) -> Result:
        if not outcomes[attempt - 1]:
            raise RuntimeError(f"boom {attempt}")
        return DONE

    fake = FakeController(scripted)
    runner = make_runner(fake, base_backoff=0.02, max_backoff=0.05, jitter=lambda: 1.0)
    async with running(runner):
        runner.enqueue("a")
        await wait_until(lambda: len(fake.calls) == 4 and fake.active == 0)
        await runner.idle(DEADLINE_S)
        assert runner.stats["a"].failures == 0
        assert runner.stats["a"].last_error is None

        # A later failure starts the backoff from the beginning again.
        runner.enqueue("a")
        await wait_until(lambda: len(fake.calls) == 6 and fake.active == 0)
        await runner.idle(DEADLINE_S)

    assert fake.seen["a"] == [
        Seen(1, 0, None),
        Seen(2, 1, "RuntimeError: boom 1"),
        Seen(3, 2, "RuntimeError: boom 2"),
        Seen(4, 3, "RuntimeError: boom 3"),
        Seen(5, 0, None),
        Seen(6, 1, "RuntimeError: boom 5"),
    ]
    began = fake.began["a"]
    # Each retry waited at least its backoff: 0.02, 0.04, then capped at 0.05; after the
    # success, the first failure waits 0.02 again.
    for (before, after), delay in zip(
        [(0, 1), (1, 2), (2, 3), (4, 5)], [0.02, 0.04, 0.05, 0.02], strict=True
    ):
        assert began[after] - began[before] >= delay - EARLY
    assert runner.stats["a"] == KeyStats(reconciles=6, failures=0, most_at_once=1)


async def test_a_permanent_error_is_recorded_and_not_retried() -> None:
    async def permanent(key: str, attempt: int) -> Result:
        if key == "bad":
            raise PermanentError("the spec names an image that does not exist")
        if attempt == 1:
            raise RuntimeError("transient")
        return DONE

    fake = FakeController(permanent)
    # A zero backoff requeues an ordinary failure at once, so the runner is not idle until
    # its retry has run: idleness proves a retry would have happened.
    runner = make_runner(fake, base_backoff=0.0, jitter=lambda: 1.0)
    async with running(runner):
        runner.enqueue("flaky")
        await runner.idle(DEADLINE_S)
        assert fake.calls == ["flaky", "flaky"]

        runner.enqueue("bad")
        await runner.idle(DEADLINE_S)
        assert fake.calls == ["flaky", "flaky", "bad"]
    assert runner.stats["bad"].last_error == "the spec names an image that does not exist"
    assert runner.stats["bad"].failures == 0
    assert runner.stats["bad"].reconciles == 1


async def test_again_requeues_after_the_delay() -> None:
    async def later(_key: str, attempt: int) -> Result:
        return again(0.05) if attempt == 1 else DONE

    fake = FakeController(later)
    async with running(make_runner(fake)) as runner:
        runner.enqueue("a")
        await wait_until(lambda: len(fake.calls) == 2 and fake.active == 0)
        await runner.idle(DEADLINE_S)
    began = fake.began["a"]
    assert began[1] - began[0] >= 0.05 - EARLY
    assert runner.stats["a"] == KeyStats(reconciles=2, most_at_once=1)


async def test_a_reconcile_past_the_controller_timeout_is_abandoned_and_retried() -> None:
    async def first_hangs(key: str, attempt: int) -> Result:
        if attempt == 1:
            return await forever(key, attempt)
        return DONE

    fake = FakeController(first_hangs, timeout=0.05)
    runner = make_runner(fake, base_backoff=0.01, jitter=lambda: 1.0)
    async with running(runner):
        runner.enqueue("a")
        await wait_until(lambda: len(fake.calls) == 2 and fake.active == 0)
        await runner.idle(DEADLINE_S)
    assert fake.cancelled == ["a"]
    assert [s.failures for s in fake.seen["a"]] == [0, 1]
    last_error = fake.seen["a"][1].last_error
    assert last_error is not None and last_error.startswith("TimeoutError")
    assert runner.stats["a"] == KeyStats(reconciles=2, failures=0, most_at_once=1)


# -- resync and lifecycle -------------------------------------------------------------------


async def test_resync_enqueues_every_listed_key_periodically() -> None:
    fake = FakeController(keys=["r1", "r2", "r3"])
    runner = make_runner(fake, resync_interval=0.02)
    async with running(runner):
        await wait_until(
            lambda: all(fake.calls.count(k) >= 2 for k in ("r1", "r2", "r3")) and fake.active == 0
        )
    assert set(fake.calls) == {"r1", "r2", "r3"}
    assert all(runner.stats[k].most_at_once == 1 for k in ("r1", "r2", "r3"))


async def test_resync_survives_a_failing_list_keys() -> None:
    class FailingOnceFake(FakeController):
        """A fake controller whose first listing of keys fails."""

        listings = 0

        async def list_keys(self) -> Iterable[str]:
            self.listings += 1
            if self.listings == 1:
                raise RuntimeError("database away")
            return ["x"]

    fake = FailingOnceFake()
    async with running(make_runner(fake, resync_interval=0.01)):
        await wait_until(lambda: "x" in fake.calls)
    assert fake.listings >= 2


async def test_stop_cancels_everything() -> None:
    before = asyncio.all_tasks()

    async def some_hang(key: str, attempt: int) -> Result:
        if key == "hangs":
            return await forever(key, attempt)
        return again(0.01)  # keeps a timer pending

    fake = FakeController(some_hang, keys=["hangs"])
    runner = make_runner(fake, workers=3)
    runner.start()
    runner.enqueue("loops")
    runner.enqueue("later", delay=60)
    await wait_until(lambda: "hangs" in fake.calls and fake.calls.count("loops") >= 2)
    # Three workers and the resync (and, before Python 3.12, wait_for's inner task).
    assert len(asyncio.all_tasks() - before) >= 4

    await runner.stop()
    assert fake.cancelled == ["hangs"]
    assert fake.active == 0
    assert asyncio.all_tasks() == before
    assert "later" not in fake.calls


@pytest.mark.parametrize("delays", [(60.0, 0.01), (0.01, 60.0)])
async def test_the_earliest_delayed_request_wins(delays: tuple[float, float]) -> None:
    fake = FakeController()
    async with running(make_runner(fake)) as runner:
        for delay in delays:
            runner.enqueue("a", delay=delay)
        await wait_until(lambda: fake.calls == ["a"] and fake.active == 0)
