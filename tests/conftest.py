"""Shared fixtures: real SQLite and real PostgreSQL stores, the app, live servers.

Tests that take ``database_url`` (or anything built on it) run once per backend. PostgreSQL
is expected at ENCLII_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres);
when it is not reachable those runs skip with a message, except under CI=true, where they
fail: CI must never pass by not testing PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from graph.app import AppState, create_app
from reconcile.local.processes import kill_recorded
from resolvers.bootstrap import Bootstrap, bootstrap
from resolvers.context import Context
from resolvers.identity.authenticate import Authenticator
from resolvers.identity.ratelimit import RateLimiter
from store.db import Store
from store.hub import EventHub
from store.migrate import upgrade
from store.models import Base
from tests.helpers import Api, LiveServer, start_live_server

PG_ADMIN_URL = os.environ.get(
    "ENCLII_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
T = TypeVar("T")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _in_thread(fn: Callable[[], T]) -> T:
    """Run blocking set-up that starts its own event loop, even from inside a test's loop
    (session fixtures may first be requested by an async fixture)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _pg_problem() -> str | None:
    try:
        conn = await asyncpg.connect(_asyncpg_dsn(PG_ADMIN_URL), timeout=3)
    except Exception as exc:
        return f"{exc.__class__.__name__}: {exc}"
    await conn.close()
    return None


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    problem = _in_thread(lambda: asyncio.run(_pg_problem()))
    if problem is not None:
        message = (
            f"PostgreSQL is not reachable at {PG_ADMIN_URL} ({problem}). Start it, or point "
            "ENCLII_TEST_POSTGRES_URL at a server where the user may create databases."
        )
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return PG_ADMIN_URL


@pytest.fixture(scope="session")
def pg_database(pg_admin_url: str) -> Iterator[str]:
    """A migrated database of this test session's own, dropped at the end."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"enclii_test_{worker}_{uuid.uuid4().hex[:8]}"
    admin_dsn = _asyncpg_dsn(pg_admin_url)

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_dsn, timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    _in_thread(lambda: asyncio.run(admin(f'CREATE DATABASE "{name}"')))
    url = make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    _in_thread(lambda: upgrade(url))
    yield url
    _in_thread(lambda: asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "enclii.db"
    _in_thread(lambda: upgrade(f"sqlite:///{path}"))
    return path


_TABLES = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)


async def _truncate(url: str) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(url), timeout=10)
    try:
        await conn.execute(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated, empty SQLite store (a copy of the session's template)."""
    target = tmp_path / "enclii.db"
    shutil.copyfile(sqlite_template, target)
    return f"sqlite:///{target}"


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest) -> str:
    """A migrated, empty store on each backend in turn."""
    if request.param == "sqlite":
        url: str = request.getfixturevalue("sqlite_url")
        return url
    url = request.getfixturevalue("pg_database")
    await _truncate(url)
    return url


@pytest.fixture
async def pg_url(pg_database: str) -> str:
    """An empty PostgreSQL store, for tests that are about PostgreSQL itself."""
    await _truncate(pg_database)
    return pg_database


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    s = Store(database_url)
    yield s
    await s.close()


@pytest.fixture
async def hub(store: Store) -> AsyncIterator[EventHub]:
    h = EventHub(store, poll_interval=2.0)
    await h.start()
    yield h
    await h.close()


@pytest.fixture
async def owner(store: Store) -> Bootstrap:
    """The first start: the account, its Owner and the Owner's bootstrap token."""
    return await bootstrap(store)


@pytest.fixture
def token(owner: Bootstrap) -> str:
    assert owner.token is not None
    return owner.token


@pytest.fixture
async def ctx(store: Store, hub: EventHub, owner: Bootstrap) -> Context:
    return Context(store=store, hub=hub, actor=owner.actor, request_id="req_test")


@pytest.fixture
async def app_state(ctx: Context, owner: Bootstrap) -> AsyncIterator[AppState]:
    authenticator = Authenticator(ctx.store, owner.owner.account_id)
    # Generous limits: rate limiting has tests of its own, with a controllable clock.
    state = AppState(
        store=ctx.store,
        hub=ctx.hub,
        authenticator=authenticator,
        limiter=RateLimiter(rate_per_minute=600_000, burst=100_000),
    )
    yield state
    await state.connections.close()
    await authenticator.close()


@pytest.fixture
async def api(app_state: AppState, token: str) -> AsyncIterator[Api]:
    """The GraphQL API over the ASGI app in this process (real store, no socket), as the
    Owner, with the bootstrap token."""
    transport = httpx.ASGITransport(app=create_app(app_state))
    async with httpx.AsyncClient(transport=transport, base_url="http://enclii.test") as client:
        yield Api(client, headers={"authorization": f"Bearer {token}"})


@pytest.fixture
async def live_server(app_state: AppState) -> AsyncIterator[LiveServer]:
    """The app served by uvicorn on a real socket of this machine."""
    async with start_live_server(create_app(app_state)) as server:
        yield server


@pytest.fixture(autouse=True)
def _reap_data_planes(request: pytest.FixtureRequest) -> Iterator[None]:
    """Routers and replicas outlive the control plane by design; none outlives its test."""
    # Taken before the test, so tmp_path is torn down after this fixture, not before.
    root = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None
    yield
    if root is not None:
        kill_recorded(root)
