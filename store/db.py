"""The store: one async SQLAlchemy engine on SQLite (embedded default) or PostgreSQL.

Callers own their transaction (Prefect's rule): ``async with store.write() as session`` commits
when the block ends and rolls back when it raises; ``store.read()`` never writes. On SQLite
writes take the database lock up front (BEGIN IMMEDIATE) so two writers queue instead of one
failing on a lock upgrade; in-process writers queue on a one-connection pool and other
processes wait on busy_timeout.

A GraphQL query reads through one session (``store.shared_reads()``): its many small reads
would otherwise each check a connection out of the pool and reset it on return, which on
SQLite costs more thread hops than the statement itself.
"""

from __future__ import annotations

import json
import keyword
import re
import time
from collections import namedtuple
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson
from sqlalchemy import Executable, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from store import sqlite_driver
from store.errors import ConfigurationError
from store.sqlfuncs import register_sqlite_functions

# session.info key under which append_event leaves (stream, seq) to announce after commit.
PENDING_WAKEUPS: Final = "enclii.pending_wakeups"

SQLITE_BUSY_TIMEOUT_MS: Final = 15_000
POOL_TIMEOUT_S: Final = 30.0


def normalise_url(url: str) -> URL:
    """Accept the URLs people type (``postgresql://…``, ``sqlite:///…``) and pick our async
    drivers for them. Anything else is refused with the forms that work."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigurationError(
            f"Database URL {url!r} is not a URL; use sqlite:///PATH or "
            "postgresql://USER@HOST:PORT/DB"
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg")
    raise ConfigurationError(
        f"Database URL scheme {parsed.drivername!r} is not supported; use sqlite:///PATH or "
        "postgresql://USER@HOST:PORT/DB"
    )


def sqlite_url_for(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{data_dir / 'enclii.db'}"


def _configure_sqlite(engine: AsyncEngine, *, immediate: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins (SQLAlchemy docs:
        # "Serializable isolation / Savepoints / Transactional DDL" for aiosqlite).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # busy_timeout first: even the journal_mode pragma can meet another connection's
        # lock, and without a timeout it fails at once with "database is locked".
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _ensure_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        register_sqlite_functions(dbapi_connection)

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)


def _ensure_wal(cursor: Any) -> None:
    """Switch the database to WAL unless it is already. Setting the mode can meet another
    connection's lock without SQLite's busy handler being asked (CI saw "database is
    locked" with 50 readers connecting at once), so the no-op case is skipped and the
    switch itself is retried until the busy timeout."""
    cursor.execute("PRAGMA journal_mode")
    if str(cursor.fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:  # the driver's OperationalError, through its adapter
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@dataclass(eq=False)
class _SharedReads:
    store: Store
    session: AsyncSession
    busy: bool = False
    open: bool = True


# The shared read session of the running request, seen by the tasks it starts (DataLoader
# batches inherit the request's context).
_SHARED_READS: ContextVar[_SharedReads | None] = ContextVar("enclii_shared_reads", default=None)


async def select_rows(
    session: AsyncSession, statement: Executable, parameters: dict[str, Any]
) -> Sequence[Any]:
    """The rows of a column select, as named tuples (``row.id``, ``row[0]``).

    Run as Core on the session's connection: the ORM's result machinery (entity loading,
    identity map) is for entities, and cost a third of a page's read. Named tuples because
    reading a column of a SQLAlchemy Row by name costs about 0.4 µs and of a named tuple
    0.02 µs: a view built from a 14-column row read them in 5 µs, and a dashboard builds
    800 views."""
    connection = await session.connection()
    result = await connection.execute(statement, parameters)
    shape = _row_shape(tuple(result.keys()))
    rows = result.all()
    return rows if shape is None else list(map(shape._make, rows))


_ROW_SHAPES: dict[tuple[str, ...], type[tuple[Any, ...]] | None] = {}


def _row_shape(keys: tuple[str, ...]) -> Any:
    """A named tuple class for rows with these column names; None when the names cannot
    be attributes of one (then the SQLAlchemy rows are returned as they are)."""
    if keys not in _ROW_SHAPES:
        valid = len(set(keys)) == len(keys) and all(
            k.isidentifier() and not k.startswith("_") and not keyword.iskeyword(k) for k in keys
        )
        _ROW_SHAPES[keys] = namedtuple("Row", keys) if valid else None
    return _ROW_SHAPES[keys]


# 19 digits or more in a row: maybe an integer beyond 64 bits, which orjson would read as a
# float and lose digits of; json keeps it exact.
_LONG_NUMBER: Final = re.compile(r"\d{19}")


def _loads_json(text: str | bytes) -> Any:
    """JSON columns are read with orjson, several times faster than json (a dashboard reads
    the provenance of 200 releases), unless they hold a number orjson would not read
    exactly. What json would read and orjson refuses (NaN, Infinity) is still read."""
    if isinstance(text, bytes):
        text = text.decode()
    if _LONG_NUMBER.search(text):
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


class Store:
    """Engines and sessions for one database. Create one per process and ``close()`` it."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalise_url(url)
        self.backend: str = self.url.get_backend_name()
        self._after_commit: list[Callable[[list[tuple[str, int]]], None]] = []
        if self.backend == "sqlite":
            database = self.url.database
            if not database or database == ":memory:":
                raise ConfigurationError(
                    "An in-memory SQLite database cannot be shared between connections; "
                    "give a file path (sqlite:///PATH)"
                )
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            common: dict[str, Any] = {
                "module": sqlite_driver.dbapi(),
                "echo": echo,
                "pool_timeout": POOL_TIMEOUT_S,
                "json_deserializer": _loads_json,
            }
            self._write_engine = create_async_engine(
                self.url, pool_size=1, max_overflow=0, **common
            )
            self._read_engine = create_async_engine(self.url, pool_size=8, max_overflow=8, **common)
            _configure_sqlite(self._write_engine, immediate=True)
            _configure_sqlite(self._read_engine, immediate=False)
        else:
            self._write_engine = create_async_engine(
                self.url,
                echo=echo,
                pool_size=10,
                max_overflow=10,
                pool_timeout=POOL_TIMEOUT_S,
                pool_pre_ping=True,
                json_deserializer=_loads_json,
                connect_args={"server_settings": {"application_name": "enclii-api"}},
            )
            self._read_engine = self._write_engine
        self._write_sessions = async_sessionmaker(self._write_engine, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(self._read_engine, expire_on_commit=False)

    @property
    def engines(self) -> tuple[AsyncEngine, ...]:
        if self._read_engine is self._write_engine:
            return (self._write_engine,)
        return (self._write_engine, self._read_engine)

    @property
    def write_engine(self) -> AsyncEngine:
        return self._write_engine

    def on_commit(self, callback: Callable[[list[tuple[str, int]]], None]) -> None:
        """Call ``callback`` with the (stream, seq) pairs a write transaction appended,
        after it commits. The event hub uses this for in-process wake-ups."""
        self._after_commit.append(callback)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        shared = _SHARED_READS.get()
        if shared is not None and shared.store is self and shared.open and not shared.busy:
            # One user at a time: a read that finds it busy (a concurrent DataLoader batch)
            # opens a session of its own rather than wait, so no read ever waits on another.
            shared.busy = True
            try:
                yield shared.session
            except BaseException:
                # A failed or cancelled statement can leave the transaction unusable
                # (PostgreSQL refuses every statement after an error in it): the reads
                # after this one get sessions of their own.
                shared.open = False
                raise
            finally:
                shared.busy = False
                if not shared.open:  # retired, or its block ended while this read ran
                    await shared.session.close()
            return
        async with self._read_sessions() as session:
            yield session

    @asynccontextmanager
    async def shared_reads(self) -> AsyncIterator[None]:
        """Let the reads of the enclosed code, and of the tasks it starts, share one
        session (one connection checkout, one reset) while it is free. Only for code that
        does not write: on SQLite the shared session's transaction keeps the snapshot of
        its first read, so a write made inside would not be seen by the reads after it."""
        if _SHARED_READS.get() is not None:
            yield
            return
        session = self._read_sessions()
        shared = _SharedReads(self, session)
        token = _SHARED_READS.set(shared)
        try:
            yield
        finally:
            # A task started inside may outlive the block: its later reads get sessions of
            # their own, and a read it is in the middle of closes the session when done.
            shared.open = False
            _SHARED_READS.reset(token)
            if not shared.busy:
                await session.close()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        async with self._write_sessions() as session:
            async with session.begin():
                yield session
            pending: list[tuple[str, int]] = session.info.pop(PENDING_WAKEUPS, [])
        if pending:
            for callback in self._after_commit:
                callback(pending)

    def url_for_children(self) -> str:
        """The URL, password included, for a process of ours that opens its own store (the
        router); hand it over in the environment, never on a command line."""
        return self.url.render_as_string(hide_password=False)

    def asyncpg_dsn(self) -> str:
        """The URL in the form asyncpg.connect() takes, for connections outside the pool."""
        return self.url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def ping(self) -> None:
        """Raise when the database cannot answer a trivial query."""
        from sqlalchemy import text

        async with self.read() as session:
            await session.execute(text("SELECT 1"))

    async def close(self) -> None:
        for engine in self.engines:
            await engine.dispose()
