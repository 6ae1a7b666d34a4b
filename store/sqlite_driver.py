"""SQLite through aiosqlite, in one trip to the connection's thread per statement.

aiosqlite runs every call on its connection's own thread. SQLAlchemy's adapter makes four
calls per statement (open a cursor, execute, fetch all rows, close), each a trip through a
queue to that thread and back through the event loop's self-pipe: about 0.1 ms apiece on a
loaded 2 vCPU machine, more than SQLite needs to answer a page of 200 rows from its cache.
The cursor here does the four in one function on that thread.

Everything else is SQLAlchemy's aiosqlite dialect as it is: the engine is given this module
as its DBAPI (``create_async_engine(..., module=dbapi())``). Server-side cursors, which
fetch as they go, keep SQLAlchemy's own cursor.

It relies on two attributes of aiosqlite's Connection that SQLAlchemy's adapter relies on
too: ``_conn`` (the sqlite3 connection) and ``_execute`` (run a function on its thread).
"""

from __future__ import annotations

import collections
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)


@dataclass(slots=True)
class _Done:
    """What a statement left behind, standing for the (closed) sqlite3 cursor."""

    description: Any = None
    rows: list[Any] = field(default_factory=list)
    rowcount: int = -1
    lastrowid: int | None = None
    arraysize: int = 1

    async def close(self) -> None:
        """The sqlite3 cursor closed on its thread already."""


def _run(connection: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Done:
    """On the connection's thread: the whole life of a cursor."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description and not many else []
        return _Done(description, rows, cursor.rowcount, cursor.lastrowid)
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()

    def _make_new_cursor(self, connection: Any) -> Any:
        return _Done()

    def _aenter_cursor(self, cursor: Any) -> Any:
        return cursor

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        return await self._run(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        return await self._run(operation, seq_of_parameters, many=True)

    async def _run(self, operation: Any, parameters: Any, *, many: bool) -> _Done:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            done: _Done = await connection._execute(  # type: ignore[no-untyped-call]
                _run,
                connection._conn,
                operation,
                parameters,
                many,
            )
        done.arraysize = self._cursor.arraysize  # as set before the statement (fetchmany)
        self._cursor = done  # type: ignore[assignment]
        self._rows = collections.deque(done.rows)
        return done


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)


def dbapi() -> OneTripDBAPI:
    return OneTripDBAPI(aiosqlite, sqlite3)
