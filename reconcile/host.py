"""Where controllers run: in the server process, on exactly one replica.

On SQLite there is one process, so it leads. On PostgreSQL the leader is whoever holds an
advisory lock on a connection of its own; the others retry every few seconds, so when the
leader dies its lock goes with its connection and another replica takes over. The leader
runs every controller's runner and feeds it the keys its work stream announces; a resync
at start (and periodically) catches anything announced while nobody led.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import asyncpg

from reconcile.runner import Controller, Runner
from store.aio import cancel_and_wait
from store.db import Store
from store.hub import EventHub

log = logging.getLogger(__name__)

LEADER_LOCK: Final = 0x656E636C6963  # any fixed number, distinct from the other locks
RETRY_S: Final = 5.0


@dataclass
class Hosted:
    controller: Controller
    stream: str  # the work stream whose events name keys to reconcile
    workers: int = 2


class ControllerHost:
    def __init__(self, store: Store, hub: EventHub, hosted: Sequence[Hosted]) -> None:
        self.store = store
        self.hub = hub
        self.hosted = list(hosted)
        self.runners: dict[str, Runner] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._election: asyncio.Task[None] | None = None
        self.leading = asyncio.Event()

    async def start(self) -> None:
        if self.store.backend == "sqlite":
            await self._lead()
        else:
            self._election = asyncio.get_running_loop().create_task(self._elect())

    async def _lead(self) -> None:
        for hosted in self.hosted:
            runner = Runner(hosted.controller, workers=hosted.workers)
            runner.start()
            self.runners[hosted.controller.name] = runner
            self._tasks.append(
                asyncio.get_running_loop().create_task(self._follow(hosted.stream, runner))
            )
        self.leading.set()

    async def _follow(self, stream: str, runner: Runner) -> None:
        async for event in self.hub.subscribe(stream, after=None):
            if event.entity_id:
                runner.enqueue(event.entity_id)

    async def _unlead(self) -> None:
        self.leading.clear()
        await cancel_and_wait(*self._tasks)
        self._tasks = []
        for runner in self.runners.values():
            await runner.stop()
        self.runners = {}

    async def _elect(self) -> None:
        while True:
            conn: Any = None
            try:
                conn = await asyncpg.connect(
                    self.store.asyncpg_dsn(),
                    timeout=10,
                    server_settings={"application_name": "enclii-leader"},
                )
                if await conn.fetchval("SELECT pg_try_advisory_lock($1)", LEADER_LOCK):
                    log.info("leading: controllers run in this replica")
                    await self._lead()
                    lost = asyncio.Event()
                    conn.add_termination_listener(lambda _c, ev=lost: ev.set())
                    while not lost.is_set():
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(RETRY_S):
                                await lost.wait()
                        if not lost.is_set():
                            async with asyncio.timeout(RETRY_S):
                                await conn.fetchval("SELECT 1")
                    log.warning("lost the leader lock's connection; controllers stop")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("leader election: %s; retrying", exc)
            finally:
                await self._unlead()
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(RETRY_S)

    async def stop(self) -> None:
        if self._election is not None:
            await cancel_and_wait(self._election)
            self._election = None
        await self._unlead()
