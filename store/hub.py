"""Subscribers of the durable event log: replay from a cursor, then follow live.

One ``_Tail`` per stream that has live subscribers reads new events once per wake-up and
hands the same records to every subscriber, so a thousand subscribers of a project cost one
query per event, not a thousand. Each subscriber still checks its own cursor: a record that
does not follow its cursor exactly (it subscribed mid-flight, or its queue overflowed) sends
it back to the table to fill the gap, so delivery is gap-free and duplicate-free whatever the
timing. A periodic poll bounds how late an event can be if a wake-up is ever lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from store.aio import cancel_and_wait
from store.events import EventRecord, read_events, stream_head
from store.pg_listener import PgListener

if TYPE_CHECKING:
    from store.db import Store

log = logging.getLogger(__name__)

QUEUE_LIMIT: Final = 1024
PAGE: Final = 500


class _Resync:
    """Queued to tell a subscriber to re-read the table from its cursor."""


RESYNC: Final = _Resync()


class HubClosed(Exception):
    """The hub is shutting down; subscriptions end."""


@dataclass(eq=False)
class _Subscriber:
    queue: asyncio.Queue[EventRecord | _Resync | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_LIMIT)
    )
    overflowed: bool = False

    def offer(self, record: EventRecord | _Resync | None) -> None:
        try:
            self.queue.put_nowait(record)
        except asyncio.QueueFull:
            # A slow consumer: drop live records and let it re-read the table.
            self.overflowed = True
            if record is None:
                self._force_close()

    def _force_close(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


@dataclass(eq=False)
class _Tail:
    stream: str
    last_seq: int | None = None  # None until the head has been read
    pending: int = 0  # highest seq announced while the head was unknown or a fetch ran
    subscribers: set[_Subscriber] = field(default_factory=set)
    fetching: bool = False


class EventHub:
    """Fan-out of the event log to in-process subscribers."""

    def __init__(self, store: Store, *, poll_interval: float = 10.0) -> None:
        self._store = store
        self._tails: dict[str, _Tail] = {}
        self._closed = False
        self._poll_interval = poll_interval
        self._poller: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._listener: PgListener | None = None
        self.wakeups = 0  # for tests and metrics: how many wake-ups arrived

    async def start(self) -> None:
        """Begin receiving wake-ups: after local commits on SQLite, through LISTEN on
        PostgreSQL (which also carries this process's own commits)."""
        if self._store.backend == "postgresql":
            self._listener = PgListener(
                self._store.asyncpg_dsn(), on_notify=self.wake, on_reconnect=self.wake_all
            )
            await self._listener.start()
        else:
            self._store.on_commit(self.wake_many)

    @property
    def listener(self) -> PgListener | None:
        return self._listener

    # -- wake-ups -------------------------------------------------------------------------

    def wake(self, stream: str, seq: int) -> None:
        """An event ``seq`` of ``stream`` has committed."""
        self.wakeups += 1
        tail = self._tails.get(stream)
        if tail is None:
            return
        tail.pending = max(tail.pending, seq)
        if tail.last_seq is not None and seq > tail.last_seq:
            self._schedule_fetch(tail)

    def wake_many(self, pairs: Iterable[tuple[str, int]]) -> None:
        for stream, seq in pairs:
            self.wake(stream, seq)

    def wake_all(self) -> None:
        """Re-read every followed stream (after a lost connection: anything may be new)."""
        for tail in list(self._tails.values()):
            if tail.last_seq is not None:
                self._schedule_fetch(tail)

    def _schedule_fetch(self, tail: _Tail) -> None:
        if tail.fetching or self._closed:
            return
        tail.fetching = True
        task = asyncio.get_running_loop().create_task(self._fetch(tail))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fetch(self, tail: _Tail) -> None:
        try:
            while not self._closed and tail.subscribers:
                assert tail.last_seq is not None
                async with self._store.read() as session:
                    records = await read_events(session, tail.stream, tail.last_seq, PAGE)
                for record in records:
                    for sub in tuple(tail.subscribers):
                        sub.offer(record)
                if records:
                    tail.last_seq = records[-1].seq
                if len(records) < PAGE and tail.pending <= tail.last_seq:
                    break
                if not records:
                    # Announced but not visible yet (should not happen after commit); the
                    # poller will pick it up rather than spin here.
                    break
        except Exception:
            log.exception("reading stream %s failed; the poller will retry", tail.stream)
        finally:
            tail.fetching = False

    # -- subscribing ----------------------------------------------------------------------

    async def _attach(self, stream: str) -> tuple[_Tail, _Subscriber]:
        if self._closed:
            raise HubClosed
        sub = _Subscriber()
        tail = self._tails.get(stream)
        if tail is None:
            tail = _Tail(stream)
            self._tails[stream] = tail
            tail.subscribers.add(sub)
            try:
                async with self._store.read() as session:
                    tail.last_seq = await stream_head(session, stream)
            except BaseException:
                self._detach(tail, sub)
                raise
            # Others may have joined while the head was read, read the table and started
            # waiting; events committed meanwhile are below the head the tail starts from,
            # so it will never hand them out. Send them back to the table once.
            for other in tail.subscribers:
                if other is not sub:
                    other.offer(RESYNC)
            if tail.pending > tail.last_seq:
                self._schedule_fetch(tail)
        else:
            tail.subscribers.add(sub)
        self._ensure_poller()
        return tail, sub

    def _detach(self, tail: _Tail, sub: _Subscriber) -> None:
        tail.subscribers.discard(sub)
        if not tail.subscribers and self._tails.get(tail.stream) is tail:
            del self._tails[tail.stream]

    async def head(self, stream: str) -> int:
        async with self._store.read() as session:
            return await stream_head(session, stream)

    async def subscribe(self, stream: str, after: int | None) -> AsyncGenerator[EventRecord, None]:
        """Every event of ``stream`` with seq > ``after`` (None: from now on), in order,
        each exactly once, until the consumer stops or the hub closes."""
        # "Now" is fixed before attaching: an event committed while attaching is then read
        # from the table below instead of being taken for history (and never delivered).
        cursor = after if after is not None else await self.head(stream)
        tail, sub = await self._attach(stream)
        try:
            from_table = True
            while True:
                if from_table:
                    sub.overflowed = False
                    async with self._store.read() as session:
                        records = await read_events(session, stream, cursor, PAGE)
                    for record in records:
                        yield record
                        cursor = record.seq
                    if len(records) == PAGE:
                        continue
                    from_table = False
                item = await sub.queue.get()
                if item is None:
                    return
                if isinstance(item, _Resync) or sub.overflowed:
                    from_table = True
                    continue
                if item.seq <= cursor:
                    continue
                if item.seq != cursor + 1:
                    from_table = True
                    continue
                yield item
                cursor = item.seq
        finally:
            self._detach(tail, sub)

    # -- lifecycle ------------------------------------------------------------------------

    def _ensure_poller(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        while not self._closed and self._tails:
            await asyncio.sleep(self._poll_interval)
            self.wake_all()

    @property
    def subscriber_count(self) -> int:
        return sum(len(t.subscribers) for t in self._tails.values())

    async def close(self) -> None:
        """End every subscription (their generators return) and stop background work."""
        self._closed = True
        if self._listener is not None:
            await self._listener.stop()
        for tail in list(self._tails.values()):
            for sub in tuple(tail.subscribers):
                sub.offer(None)
        tasks = [*self._tasks, *([self._poller] if self._poller else [])]
        await cancel_and_wait(*tasks, ignore_errors=True)
