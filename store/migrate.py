"""Alembic, driven from code: ``enclii db upgrade`` and serve's automatic upgrade."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from store.db import normalise_url

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # Passed as an attribute, not a main option, so a '%' in a password survives.
    cfg.attributes["url"] = normalise_url(url).render_as_string(hide_password=False)
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision``. Blocking; runs its own event loop."""
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    # Alembic's env.py runs its own event loop, so it needs a thread without one.
    await asyncio.to_thread(upgrade, url, revision)


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite:///unused.db")).get_current_head()
    assert head is not None
    return head


async def current_revision(url: str) -> str | None:
    engine = create_async_engine(normalise_url(url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
            )
    finally:
        await engine.dispose()
