"""Migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from store.db import Store
from store.migrate import alembic_config, current_revision, head_revision, upgrade_async
from store.models import Base


async def test_models_and_migrations_agree(store: Store, database_url: str) -> None:
    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with store.write_engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == [], "models changed without a migration: " + repr(differences)
    assert await current_revision(database_url) == head_revision()


async def test_every_table_exists_with_foreign_keys(store: Store) -> None:
    def tables(connection: Connection) -> set[str]:
        return set(inspect(connection).get_table_names())

    async with store.write_engine.connect() as conn:
        found = await conn.run_sync(tables)
    assert set(Base.metadata.tables) <= found


async def test_downgrade_to_base_and_upgrade_again(store: Store, database_url: str) -> None:
    import asyncio

    await store.close()
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "base")
    assert await current_revision(database_url) is None
    await upgrade_async(database_url)
    assert await current_revision(database_url) == head_revision()
