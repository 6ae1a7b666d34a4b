"""PostgreSQL LISTEN on a dedicated connection, for wake-ups across API replicas.

The connection is ours alone (not from the pool) and is watched: a termination callback and
a periodic liveness query notice a lost connection, after which it reconnects with
exponential backoff and jitter, LISTENs again and tells the hub to re-read every followed
stream from the table, which is what makes a lost notification harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import Callable
from typing import Any, Final

import asyncpg

from store.aio import cancel_and_wait
from store.events import NOTIFY_CHANNEL

log = logging.getLogger(__name__)

APPLICATION_NAME: Final = "enclii-listener"


def application_name() -> str:
    """Names the connection in pg_stat_activity, with our pid, so an operator (or a test)
    can tell which replica's listener it is."""
    return f"{APPLICATION_NAME}:{os.getpid()}"


class PgListener:
    def __init__(
        self,
        dsn: str,
        on_notify: Callable[[str, int], None],
        on_reconnect: Callable[[], None],
        *,
        liveness_interval: float = 5.0,
        connect_timeout: float = 10.0,
        max_backoff: float = 5.0,
    ) -> None:
        self._dsn = dsn
        self._on_notify = on_notify
        self._on_reconnect = on_reconnect
        self._liveness_interval = liveness_interval
        self._connect_timeout = connect_timeout
        self._max_backoff = max_backoff
        self._task: asyncio.Task[None] | None = None
        self._conn: Any = None
        self.connected = asyncio.Event()
        self.connections = 0  # how many times a LISTEN connection was established

    async def start(self, within: float = 30.0) -> None:
        """Start listening; return once the first LISTEN is in place."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="pg-listener")
        try:
            async with asyncio.timeout(within):
                await self.connected.wait()
        except TimeoutError:
            await self.stop()
            raise TimeoutError(
                f"could not LISTEN on PostgreSQL within {within:.0f}s; is the database up?"
            ) from None

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        stream, _, seq = payload.rpartition(" ")
        try:
            self._on_notify(stream, int(seq))
        except ValueError:
            log.warning("ignoring malformed notification payload %r", payload)

    async def _run(self) -> None:
        attempt = 0
        while True:
            lost = asyncio.Event()
            try:
                self._conn = await asyncpg.connect(
                    self._dsn,
                    timeout=self._connect_timeout,
                    server_settings={"application_name": application_name()},
                )
                self._conn.add_termination_listener(lambda _c, ev=lost: ev.set())
                await self._conn.add_listener(NOTIFY_CHANNEL, self._notified)
                attempt = 0
                self.connections += 1
                self.connected.set()
                # Anything committed while we were not listening is in the table.
                self._on_reconnect()
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._liveness_interval):
                            await lost.wait()
                    if not lost.is_set():
                        async with asyncio.timeout(self._liveness_interval):
                            await self._conn.fetchval("SELECT 1")
                log.warning("LISTEN connection lost; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("LISTEN connection failed (%s); reconnecting", exc)
            finally:
                self.connected.clear()
                conn, self._conn = self._conn, None
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            attempt += 1
            delay = min(self._max_backoff, 0.05 * 2**attempt)
            await asyncio.sleep(delay * (0.5 + random.random() / 2))

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
