"""Store.shared_reads(): the reads of a block (and of the tasks it starts) share one session
and one pool connection while it is free, on both backends; the SharedReads extension puts
a GraphQL query's reads in such a block and leaves mutations out of it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from graph.extensions import SharedReads
from graph.schema import schema
from resolvers.context import Context
from store.db import Store
from tests.factories import add_release, add_runtime, make_environment, make_project, make_service
from tests.helpers import DEADLINE_S, count_statements, execute_in_process


@dataclass
class PoolUse:
    checkouts: int = 0
    checked_out: int = 0  # now
    engines: list[str] = field(default_factory=list)  # which engine each checkout was on


@contextmanager
def pool_use(store: Store) -> Iterator[PoolUse]:
    """Every connection the store's pools hand out inside the block, and how many are
    out at any moment."""
    use = PoolUse()
    read_engine = store.engines[-1]  # SQLite: (write, read); PostgreSQL: one for both

    def listeners(engine: Any) -> tuple[Any, Any]:
        name = "read" if engine is read_engine else "write"

        def checkout(*_args: Any) -> None:
            use.checkouts += 1
            use.checked_out += 1
            use.engines.append(name)

        def checkin(*_args: Any) -> None:
            use.checked_out -= 1

        return checkout, checkin

    attached = [(engine.sync_engine, *listeners(engine)) for engine in store.engines]
    for target, checkout, checkin in attached:
        event.listen(target, "checkout", checkout)
        event.listen(target, "checkin", checkin)
    try:
        yield use
    finally:
        for target, checkout, checkin in attached:
            event.remove(target, "checkout", checkout)
            event.remove(target, "checkin", checkin)


async def one(session: AsyncSession) -> int:
    """A statement on the session (so that it holds a connection); its answer, 1."""
    value = (await session.execute(text("SELECT 1"))).scalar_one()
    assert isinstance(value, int)
    return value


# -- the store --------------------------------------------------------------------------------


async def test_sequential_reads_share_one_session_and_one_connection(store: Store) -> None:
    with pool_use(store) as use:
        async with store.shared_reads():
            sessions = []
            for _ in range(4):
                async with store.read() as session:
                    assert await one(session) == 1
                    sessions.append(session)
            # A block nested in the block changes nothing: still the one session.
            async with store.shared_reads(), store.read() as session:
                assert await one(session) == 1
                sessions.append(session)
    assert all(s is sessions[0] for s in sessions)
    assert use.checkouts == 1
    assert use.engines == ["read"]
    assert use.checked_out == 0  # given back when the block ended


async def test_outside_a_block_every_read_has_its_own_session(store: Store) -> None:
    with pool_use(store) as use:
        sessions = []
        for _ in range(3):
            async with store.read() as session:
                assert await one(session) == 1
                sessions.append(session)
    assert len({id(s) for s in sessions}) == 3
    assert use.checkouts == 3
    assert use.checked_out == 0


async def test_a_read_that_finds_the_shared_session_busy_opens_its_own(store: Store) -> None:
    """One task holds the shared session while another reads: the other must not wait
    for it (the holder waits for the other to finish first, so waiting would deadlock)."""
    held = asyncio.Event()
    other_done = asyncio.Event()
    seen: dict[str, AsyncSession] = {}

    async def holder() -> None:
        async with store.read() as session:
            seen["holder"] = session
            assert await one(session) == 1
            held.set()
            await other_done.wait()
            assert await one(session) == 1

    async def other() -> None:
        await held.wait()
        async with store.read() as session:
            seen["other"] = session
            assert await one(session) == 1
        other_done.set()

    with pool_use(store) as use:
        async with asyncio.timeout(DEADLINE_S), store.shared_reads():
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(holder())
                tasks.create_task(other())
            # Free again: the next read has the shared session back.
            async with store.read() as after:
                assert after is seen["holder"]
                assert await one(after) == 1
    assert seen["other"] is not seen["holder"]
    assert use.checkouts == 2
    assert use.checked_out == 0


async def test_a_read_nested_in_a_read_gets_its_own_session(store: Store) -> None:
    with pool_use(store) as use:
        async with asyncio.timeout(DEADLINE_S), store.shared_reads():
            async with store.read() as outer:
                assert await one(outer) == 1
                async with store.read() as inner:
                    assert inner is not outer
                    assert await one(inner) == 1
                assert await one(outer) == 1
            async with store.read() as after:
                assert after is outer
    assert use.checkouts == 2
    assert use.checked_out == 0


async def test_tasks_started_in_the_block_share_it_while_it_lasts(store: Store) -> None:
    """A task started in the block (as DataLoader batches are) shares the session while
    the block lasts; one that reads after the block has ended gets a fresh session that
    works, and gives its connection back."""
    block_over = asyncio.Event()

    async def read_now() -> AsyncSession:
        async with store.read() as session:
            assert await one(session) == 1
            return session

    async def read_later() -> tuple[AsyncSession, int]:
        await block_over.wait()
        async with store.read() as session:
            return session, await one(session)

    with pool_use(store) as use:
        async with asyncio.timeout(DEADLINE_S):
            async with store.shared_reads():
                async with store.read() as shared:
                    assert await one(shared) == 1
                assert await asyncio.create_task(read_now()) is shared
                late = asyncio.create_task(read_later())
            block_over.set()
            late_session, value = await late
    assert late_session is not shared
    assert value == 1
    assert use.checkouts == 2
    assert use.checked_out == 0


async def test_another_store_does_not_use_this_stores_shared_session(
    store: Store, database_url: str
) -> None:
    other = Store(database_url)
    try:
        with pool_use(store) as mine, pool_use(other) as theirs:
            async with store.shared_reads():
                async with store.read() as shared:
                    assert await one(shared) == 1
                seen = []
                for _ in range(2):
                    async with other.read() as session:
                        assert session is not shared
                        assert await one(session) == 1
                        seen.append(session)
                async with store.read() as again:
                    assert again is shared
        assert seen[0] is not seen[1]
        assert mine.checkouts == 1
        assert theirs.checkouts == 2
        assert theirs.checked_out == 0
    finally:
        await other.close()


async def test_a_failed_read_does_not_fail_the_reads_after_it(
    store: Store,
) -> None:
    """Outside a block a failed statement costs its own session only; inside one, the
    reads after it must still work."""
    async with asyncio.timeout(DEADLINE_S), store.shared_reads():
        with pytest.raises(DBAPIError):
            async with store.read() as session:
                await session.execute(text("SELECT * FROM no_such_table"))
        async with store.read() as session:
            assert await one(session) == 1


async def test_a_read_spanning_the_end_of_the_block_gives_its_connection_back(
    store: Store,
) -> None:
    held = asyncio.Event()
    block_over = asyncio.Event()

    async def reader() -> AsyncSession:
        async with store.read() as session:
            assert await one(session) == 1
            held.set()
            await block_over.wait()
            assert await one(session) == 1
        return session

    with pool_use(store) as use:
        async with asyncio.timeout(DEADLINE_S):
            async with store.shared_reads():
                task = asyncio.create_task(reader())
                await held.wait()
            block_over.set()
            session = await task
        try:
            assert use.checked_out == 0
        finally:
            await session.close()  # what the test would otherwise leak to the garbage collector


# -- the SharedReads extension ----------------------------------------------------------------

PROJECT = """
query Project($slug: String!) {
  project(slug: $slug) {
    id name
    environments(first: 10) {
      nodes {
        name
        services(first: 10) {
          totalCount
          nodes { name latestRelease { status } runtime { replicasReady } }
        }
      }
    }
  }
}
"""


async def _seed(ctx: Context) -> None:
    project = await make_project(ctx, "shop")
    for env in ("dev", "stage"):
        await make_environment(ctx, project, env)
    for i in range(4):
        service = await make_service(ctx, "shop", ("dev", "stage")[i % 2], f"svc-{i}")
        await add_runtime(ctx, service, await add_release(ctx, service))


async def _execute(ctx: Context, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    result = await execute_in_process(ctx, query, variables)
    assert result.errors is None, result.errors
    assert result.data is not None
    return result.data


@asynccontextmanager
async def _counting_blocks(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[list[str]]:
    """Record each time the store's shared_reads() block is entered."""
    entered: list[str] = []
    original = store.shared_reads

    @asynccontextmanager
    async def spy() -> AsyncIterator[None]:
        entered.append("shared_reads")
        async with original():
            yield

    monkeypatch.setattr(store, "shared_reads", spy)
    yield entered


async def test_a_query_reads_through_one_connection(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _seed(ctx)
    store = ctx.store
    async with _counting_blocks(store, monkeypatch) as entered:
        with pool_use(store) as use, count_statements(store) as statements:
            data = await _execute(ctx, PROJECT, {"slug": "shop"})
    environments = data["project"]["environments"]["nodes"]
    assert [e["services"]["totalCount"] for e in environments] == [2, 2]
    assert all(
        s["runtime"]["replicasReady"] == 2 for e in environments for s in e["services"]["nodes"]
    )
    # project, environments, services, their count, releases, runtimes: one connection.
    assert len(statements) >= 5
    assert entered == ["shared_reads"]
    assert use.checkouts == 1
    assert use.checked_out == 0

    # The same query without the extension: a connection per read.
    monkeypatch.setattr(
        schema, "extensions", tuple(e for e in schema.extensions if e is not SharedReads)
    )
    with pool_use(store) as unshared, count_statements(store) as again:
        assert await _execute(ctx, PROJECT, {"slug": "shop"}) == data
    assert unshared.checkouts == len(again) == len(statements)


CREATE_TWO = """
mutation Two($p: ID!) {
  a: createEnvironment(input: {projectId: $p, name: "dev"}) {
    ... on CreateEnvironmentSuccess {
      environment { name project { environments(first: 10) { nodes { name } } } }
    }
  }
  b: createEnvironment(input: {projectId: $p, name: "stage"}) {
    ... on CreateEnvironmentSuccess {
      environment { name project { environments(first: 20) { nodes { name } } } }
    }
  }
}
"""


async def test_a_mutation_does_not_share_and_sees_its_own_writes(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second mutation's payload reads after its write, and after the first payload's
    read: one session for both would, on SQLite, still see the snapshot of the first read.
    (The page sizes differ so that the request's loaders do not answer from their cache.)"""
    project = await make_project(ctx, "shop")
    async with _counting_blocks(ctx.store, monkeypatch) as entered:
        data = await _execute(ctx, CREATE_TWO, {"p": project.id})
        first, second = (
            [e["name"] for e in data[key]["environment"]["project"]["environments"]["nodes"]]
            for key in ("a", "b")
        )
        assert first == ["dev"]
        assert second == ["dev", "stage"]
        assert entered == []

        await _execute(ctx, "{ projects(first: 5) { nodes { name } } }", {})
        assert entered == ["shared_reads"]
