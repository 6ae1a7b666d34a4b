"""The controller runner: level-triggered reconciles from a per-key work queue.

A controller says how to make one key (a release, a deployment) match its desired state;
the runner decides when. Keys are queued at most once; a key is never reconciled twice at
the same time (a key queued while it is being reconciled runs again right after); a failed
reconcile is retried with exponential backoff and jitter; a result may ask to run again
after a delay; a periodic resync lists every key, so nothing depends on a wake-up arriving.
Controllers read desired and observed state on every call and never care why they were
woken — that is what makes running one twice harmless.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, Protocol

from store.aio import cancel_and_wait

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S: Final = 600.0


@dataclass(frozen=True, slots=True)
class Result:
    """What a reconcile concluded: done (None), or look again after some seconds."""

    requeue_after: float | None = None


DONE: Final = Result()


def again(after: float) -> Result:
    return Result(requeue_after=after)


class PermanentError(Exception):
    """Nothing will succeed until the desired state changes: record it, do not retry."""


class Controller(Protocol):
    name: str
    # How long one reconcile may take before it is abandoned and retried.
    timeout: float

    async def reconcile(self, key: str) -> Result: ...

    async def list_keys(self) -> Iterable[str]: ...


@dataclass
class KeyStats:
    """What happened to one key, for tests and for status pages."""

    reconciles: int = 0
    failures: int = 0
    running: int = 0
    most_at_once: int = 0
    last_error: str | None = None


@dataclass
class Runner:
    controller: Controller
    workers: int = 4
    base_backoff: float = 0.2
    max_backoff: float = 60.0
    resync_interval: float = 60.0
    jitter: Callable[[], float] = field(default=lambda: 0.5 + random.random())
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._running: set[str] = set()
        self._dirty: set[str] = set()
        self._timers: dict[str, tuple[float, asyncio.TimerHandle]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._idle = asyncio.Event()
        self._idle.set()
        self.stats: dict[str, KeyStats] = {}

    # -- queueing ---------------------------------------------------------------------------

    def enqueue(self, key: str, delay: float = 0.0) -> None:
        """Reconcile ``key`` now, or after ``delay`` seconds (the earliest request wins)."""
        if delay > 0:
            loop = asyncio.get_running_loop()
            due = self.clock() + delay
            current = self._timers.get(key)
            if current is not None and current[0] <= due:
                return
            if current is not None:
                current[1].cancel()
            self._timers[key] = (due, loop.call_later(delay, self._due, key))
            return
        if key in self._running:
            self._dirty.add(key)  # run again as soon as the current reconcile ends
            return
        if key not in self._queued:
            self._queued.add(key)
            self._idle.clear()
            self._queue.put_nowait(key)

    def _due(self, key: str) -> None:
        self._timers.pop(key, None)
        self.enqueue(key)

    # -- working ----------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            self._running.add(key)
            try:
                await self._reconcile(key)
            finally:
                self._running.discard(key)
                self._queue.task_done()
                if key in self._dirty:
                    self._dirty.discard(key)
                    self.enqueue(key)
                if not self._queued and not self._running:
                    self._idle.set()

    async def _reconcile(self, key: str) -> None:
        stats = self.stats.setdefault(key, KeyStats())
        stats.reconciles += 1
        stats.running += 1
        stats.most_at_once = max(stats.most_at_once, stats.running)
        try:
            async with asyncio.timeout(self.controller.timeout):
                result = await self.controller.reconcile(key)
        except PermanentError as exc:
            stats.failures = 0
            stats.last_error = str(exc)
            log.warning("%s %s: %s (not retried)", self.controller.name, key, exc)
            return
        except Exception as exc:
            stats.failures += 1
            stats.last_error = f"{exc.__class__.__name__}: {exc}"
            delay = self.backoff(stats.failures)
            log.warning(
                "%s %s failed (%s); retrying in %.1fs",
                self.controller.name,
                key,
                stats.last_error,
                delay,
                exc_info=not isinstance(exc, TimeoutError),
            )
            self.enqueue(key, delay)
            return
        finally:
            stats.running -= 1
        stats.failures = 0
        stats.last_error = None
        if result.requeue_after is not None:
            self.enqueue(key, max(result.requeue_after, 0.001))

    def backoff(self, failures: int) -> float:
        """Exponential in the number of consecutive failures, capped, with jitter."""
        # The exponent stops growing long after the cap is reached (2**30 overflows nothing).
        base = min(self.max_backoff, self.base_backoff * 2.0 ** min(failures - 1, 30))
        factor: float = self.jitter()
        return float(min(self.max_backoff, base * factor))

    async def _resync(self) -> None:
        while True:
            try:
                for key in await self.controller.list_keys():
                    self.enqueue(key)
            except Exception:
                log.exception("%s: listing keys failed; will try again", self.controller.name)
            await asyncio.sleep(self.resync_interval)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._work()) for _ in range(self.workers)]
        self._tasks.append(loop.create_task(self._resync()))

    async def idle(self, within: float) -> None:
        """Wait until nothing is queued or running (timers may still be pending)."""
        async with asyncio.timeout(within):
            await self._idle.wait()

    async def stop(self) -> None:
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        await cancel_and_wait(*self._tasks)
        self._tasks = []
