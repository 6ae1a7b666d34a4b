"""store.sqlite_driver: each statement is one trip to aiosqlite's thread, and a cursor
still tells SQLAlchemy everything the four-trip one did (rows, description, rowcount,
lastrowid, errors), on the Store's real SQLite engines."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import exc, select, text

from resolvers.bootstrap import bootstrap
from store.db import Store
from store.models import Project
from store.sqlite_driver import OneTripCursor


@pytest.fixture
async def sqlite_store(sqlite_url: str) -> AsyncIterator[Store]:
    store = Store(sqlite_url)
    yield store
    await store.close()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The name of every function sent to an aiosqlite connection's thread."""
    sent: list[str] = []
    original = aiosqlite.Connection._execute

    async def counting(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counting)
    yield sent


async def test_a_statement_is_one_trip(sqlite_store: Store, trips: list[str]) -> None:
    async with sqlite_store.read() as session:
        await session.execute(text("SELECT 1"))  # begins the transaction, then runs
        trips.clear()
        rows = (await session.execute(text("SELECT 1 AS a, 'b' AS b UNION SELECT 2, 'c'"))).all()
        assert [tuple(r) for r in rows] == [(1, "b"), (2, "c")]
        await session.execute(text("SELECT 3"))
        # SQLAlchemy's own cursor went four times per statement: cursor, execute,
        # fetchall, close
        assert trips == ["_run", "_run"]


async def test_the_engines_use_the_one_trip_cursor(sqlite_store: Store) -> None:
    for engine in sqlite_store.engines:
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            assert isinstance(raw.driver_connection, aiosqlite.Connection)
            assert type(raw.dbapi_connection.cursor()) is OneTripCursor  # type: ignore[union-attr]


async def test_rowcount_lastrowid_and_many_rows(sqlite_store: Store) -> None:
    async with sqlite_store.write_engine.begin() as conn:
        await conn.execute(text("CREATE TABLE scratch (n INTEGER PRIMARY KEY, word TEXT)"))
        inserted = await conn.execute(text("INSERT INTO scratch (word) VALUES ('one')"))
        assert inserted.lastrowid == 1
        # executemany: several parameter sets, one trip
        many = await conn.execute(
            text("INSERT INTO scratch (word) VALUES (:w)"), [{"w": "two"}, {"w": "three"}]
        )
        assert many.rowcount == 2
        updated = await conn.execute(text("UPDATE scratch SET word = upper(word) WHERE n > 1"))
        assert updated.rowcount == 2
        result = await conn.execute(text("SELECT n, word FROM scratch ORDER BY n"))
        assert list(result.keys()) == ["n", "word"]
        assert [tuple(r) for r in result] == [(1, "one"), (2, "TWO"), (3, "THREE")]
        nothing = await conn.execute(text("SELECT n FROM scratch WHERE n > 10"))
        assert nothing.first() is None


async def test_errors_are_sqlalchemys_and_the_connection_goes_on(sqlite_store: Store) -> None:
    async with sqlite_store.write_engine.connect() as conn:
        with pytest.raises(exc.OperationalError, match="no such table: nowhere"):
            await conn.execute(text("SELECT * FROM nowhere"))
        await conn.rollback()
        assert (await conn.execute(text("SELECT 41 + 1"))).scalar() == 42


async def test_orm_writes_and_reads_through_it(sqlite_store: Store) -> None:
    account = (await bootstrap(sqlite_store)).actor.account_id
    async with sqlite_store.write() as session:
        session.add(Project(id="prj_1", account_id=account, name="Shop", slug="shop"))
    with pytest.raises(exc.IntegrityError, match="UNIQUE constraint failed"):
        async with sqlite_store.write() as session:
            # the same slug in the same account: refused by the unique constraint
            session.add(Project(id="prj_2", account_id=account, name="Again", slug="shop"))
    async with sqlite_store.read() as session:
        names = (await session.execute(select(Project.name))).scalars().all()
    assert names == ["Shop"]


async def test_server_side_cursors_still_stream(sqlite_store: Store) -> None:
    async with sqlite_store.write_engine.connect() as conn:
        result = await conn.stream(
            text(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) "
                "SELECT i FROM n"
            )
        )
        assert [row[0] async for row in result] == [1, 2, 3, 4, 5]


async def test_arraysize_set_before_a_statement_holds_for_fetchmany(sqlite_store: Store) -> None:
    async with sqlite_store.write_engine.connect() as conn:
        raw = await conn.get_raw_connection()
        cursor = raw.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.arraysize = 3
        await conn.run_sync(
            lambda _: cursor.execute(
                "SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4"
            )
        )
        assert cursor.fetchmany() == [(1,), (2,), (3,)]
