"""The durable event log and its hub: ordered, gap-free, resumable, on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, select

from store import hub as hub_module
from store import pg_listener
from store.db import Store
from store.events import EventRecord, append_event, read_events, stream_head
from store.hub import EventHub
from store.models import Event

DEADLINE_S = 30.0


async def _append(store: Store, stream: str, n: int = 1, type: str = "thing.happened") -> list[int]:
    seqs = []
    for i in range(n):
        async with store.write() as session:
            record = await append_event(session, stream, type, payload={"i": i})
            seqs.append(record.seq)
    return seqs


async def _take(gen: AsyncGenerator[EventRecord, None], n: int) -> list[EventRecord]:
    out: list[EventRecord] = []

    async def collect() -> None:
        async for record in gen:
            out.append(record)
            if len(out) == n:
                return

    await asyncio.wait_for(collect(), DEADLINE_S)
    return out


async def test_sequences_are_per_stream_and_gap_free(store: Store) -> None:
    assert await _append(store, "project:a", 3) == [1, 2, 3]
    assert await _append(store, "project:b", 2) == [1, 2]
    assert await _append(store, "project:a", 1) == [4]
    async with store.read() as session:
        assert await stream_head(session, "project:a") == 4
        assert await stream_head(session, "project:nothing") == 0
        assert [r.seq for r in await read_events(session, "project:a", 1)] == [2, 3, 4]


async def test_a_rolled_back_append_leaves_no_trace_and_no_gap(store: Store) -> None:
    await _append(store, "s", 1)
    with pytest.raises(RuntimeError):
        async with store.write() as session:
            await append_event(session, "s", "doomed")
            raise RuntimeError("the change failed")
    assert await _append(store, "s", 1) == [2]
    async with store.read() as session:
        types = [r.type for r in await read_events(session, "s", 0)]
    assert types == ["thing.happened", "thing.happened"]


async def test_concurrent_writers_get_distinct_ordered_sequences(store: Store) -> None:
    async def writer(k: int) -> list[int]:
        return await _append(store, "busy", 10, type=f"w{k}")

    results = await asyncio.gather(*(writer(k) for k in range(8)))
    every = sorted(s for r in results for s in r)
    assert every == list(range(1, 81))
    for seqs in results:
        assert seqs == sorted(seqs)


async def test_subscriber_replays_from_cursor_then_follows_live(
    store: Store, hub: EventHub
) -> None:
    await _append(store, "p", 5)
    gen = hub.subscribe("p", after=2)
    first = await _take(gen, 3)
    assert [r.seq for r in first] == [3, 4, 5]
    await _append(store, "p", 2)
    live = await _take(gen, 2)
    assert [r.seq for r in live] == [6, 7]
    await gen.aclose()
    assert hub.subscriber_count == 0


async def test_subscriber_without_cursor_starts_from_now(store: Store, hub: EventHub) -> None:
    await _append(store, "p", 3)
    gen = hub.subscribe("p", after=None)
    pending = asyncio.ensure_future(_take(gen, 1))
    await asyncio.sleep(0)  # let it attach before the next append
    while hub.subscriber_count == 0:
        await asyncio.sleep(0.01)
    await _append(store, "p", 1)
    assert [r.seq for r in await pending] == [4]
    await gen.aclose()


async def test_many_subscribers_each_get_everything_in_order(store: Store, hub: EventHub) -> None:
    gens = [hub.subscribe("fan", after=0) for _ in range(50)]
    tasks = [asyncio.ensure_future(_take(g, 20)) for g in gens]
    await _append(store, "fan", 20)
    for task in tasks:
        assert [r.seq for r in await task] == list(range(1, 21))
    for g in gens:
        await g.aclose()
    assert hub.subscriber_count == 0


async def test_slow_subscriber_overflows_then_catches_up_from_the_table(
    store: Store, hub: EventHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_module, "QUEUE_LIMIT", 4)
    gen = hub.subscribe("slow", after=0)
    await _append(store, "slow", 1)
    assert [r.seq for r in await _take(gen, 1)] == [1]
    # The consumer is not reading while 30 events arrive: its queue of 4 overflows.
    await _append(store, "slow", 30)
    rest = await _take(gen, 30)
    assert [r.seq for r in rest] == list(range(2, 32))
    await gen.aclose()


async def test_closing_the_hub_ends_subscriptions(store: Store) -> None:
    hub = EventHub(store)
    await hub.start()
    gen = hub.subscribe("p", after=0)
    task = asyncio.ensure_future(_take(gen, 1))
    while hub.subscriber_count == 0:
        await asyncio.sleep(0.01)
    await hub.close()
    assert await asyncio.wait_for(task, DEADLINE_S) == []


@pytest.mark.postgres
async def test_listener_reconnects_after_its_backend_is_killed_and_misses_nothing(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Hold the listener's reconnection until we say so, so that events are provably
    # committed while nobody is listening.
    gate = asyncio.Event()
    gate.set()
    real_connect = asyncpg.connect

    async def gated_connect(*args: Any, **kwargs: Any) -> Any:
        await gate.wait()
        return await real_connect(*args, **kwargs)

    monkeypatch.setattr(asyncpg, "connect", gated_connect)
    store = Store(pg_url)
    hub = EventHub(store, poll_interval=3600)  # no polling: recovery must come from reconnect
    await hub.start()
    try:
        listener = hub.listener
        assert listener is not None
        gen = hub.subscribe("p", after=0)
        await _append(store, "p", 3)
        assert [r.seq for r in await _take(gen, 3)] == [1, 2, 3]

        gate.clear()
        conn = await real_connect(store.asyncpg_dsn())
        try:
            killed = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = $1",
                pg_listener.application_name(),
            )
        finally:
            await conn.close()
        assert killed == 1
        while listener.connected.is_set():
            await asyncio.sleep(0.01)
        # Committed while no LISTEN connection exists: no NOTIFY can ever reach us for
        # these, so only the catch-up after reconnecting can deliver them.
        await _append(store, "p", 5)
        gate.set()
        assert [r.seq for r in await _take(gen, 5)] == [4, 5, 6, 7, 8]
        await asyncio.wait_for(_connected_twice(hub), DEADLINE_S)
        await _append(store, "p", 2)
        assert [r.seq for r in await _take(gen, 2)] == [9, 10]
        await gen.aclose()
    finally:
        await hub.close()
        await store.close()


async def _connected_twice(hub: EventHub) -> None:
    assert hub.listener is not None
    while hub.listener.connections < 2 or not hub.listener.connected.is_set():
        await asyncio.sleep(0.02)


async def test_events_table_holds_what_was_delivered(store: Store) -> None:
    await _append(store, "x", 4)
    async with store.read() as session:
        count = await session.scalar(select(func.count()).select_from(Event))
    assert count == 4


async def test_subscribers_joining_while_the_stream_head_is_read_miss_nothing(
    store: Store, hub: EventHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by bench/events_fanout.py: a subscriber that joined a new stream while its
    first subscriber was still reading the head, and read the table before an event
    committed, waited forever — the tail started from a head that already included it."""
    gate = asyncio.Event()
    real_head = stream_head

    async def slow_head(session: Any, stream: str) -> int:
        await gate.wait()
        return await real_head(session, stream)

    monkeypatch.setattr(hub_module, "stream_head", slow_head)
    first = hub.subscribe("race", after=0)
    second = hub.subscribe("race", after=0)
    first_task = asyncio.ensure_future(_take(first, 1))
    await asyncio.sleep(0.05)  # the first subscriber is now reading the head
    second_task = asyncio.ensure_future(_take(second, 1))
    while hub.subscriber_count < 2:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # the second has read the (empty) table and waits
    await _append(store, "race", 1)
    gate.set()
    assert [r.seq for r in await first_task] == [1]
    assert [r.seq for r in await second_task] == [1]
    await first.aclose()
    await second.aclose()
