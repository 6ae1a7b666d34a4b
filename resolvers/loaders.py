"""Batch reads behind the GraphQL DataLoaders: many keys in, one statement out.

Like pages (see resolvers.pagination), these return read-only rows with the model's columns,
typed as the model for the views that read them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, TypeVar, cast

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.orm import InstrumentedAttribute

from resolvers.pagination import ListSpec, Page, PageRequest, count_children, load_pages
from store.db import Store, select_rows
from store.models import Base, Release, Runtime, RuntimeStatus, ServiceSpecVersion

T = TypeVar("T", bound=Base)


# Built once per model and reused with bound parameters (see resolvers.pagination).
_BY_ID: dict[type[Base], Select[Any]] = {}
_NEWEST: dict[type[Base], Select[Any]] = {}


async def rows_by_id(store: Store, model: type[T], ids: Sequence[str]) -> list[T | None]:
    stmt = _BY_ID.get(model)
    if stmt is None:
        id_column: InstrumentedAttribute[str] = model.id  # type: ignore[attr-defined]
        stmt = _BY_ID[model] = select(*model.__table__.columns).where(
            id_column.in_(bindparam("ids", expanding=True))
        )
    async with store.read() as session:
        rows = await select_rows(session, stmt, {"ids": sorted(set(ids))})
    found = {row.id: cast(T, row) for row in rows}
    return [found.get(i) for i in ids]


async def _newest_per_service(
    store: Store, model: type[T], order_column: InstrumentedAttribute[object], ids: Sequence[str]
) -> list[T | None]:
    service_column: InstrumentedAttribute[str] = model.service_id  # type: ignore[attr-defined]
    stmt = _NEWEST.get(model)
    if stmt is None:
        newest = (
            select(service_column, func.max(order_column).label("top"))
            .where(service_column.in_(bindparam("ids", expanding=True)))
            .group_by(service_column)
            .subquery()
        )
        stmt = _NEWEST[model] = select(*model.__table__.columns).join(
            newest,
            (service_column == newest.c[service_column.key]) & (order_column == newest.c.top),
        )
    async with store.read() as session:
        rows = [cast(T, r) for r in await select_rows(session, stmt, {"ids": sorted(set(ids))})]
    found = {getattr(row, "service_id"): row for row in rows}  # noqa: B009
    return [found.get(i) for i in ids]


async def latest_releases(store: Store, service_ids: Sequence[str]) -> list[Release | None]:
    return await _newest_per_service(store, Release, Release.id, service_ids)


_LIVE_RUNTIMES: Final = select(*Runtime.__table__.columns).where(
    Runtime.service_id.in_(bindparam("ids", expanding=True)),
    Runtime.status != RuntimeStatus.STOPPED,
)


async def current_runtimes(store: Store, service_ids: Sequence[str]) -> list[Runtime | None]:
    """Per service, the runtime taking most traffic (the newest on a tie); None when
    nothing runs. A service has a few live runtimes at most (serving, rolling, warm)."""
    async with store.read() as session:
        rows = [
            cast(Runtime, r)
            for r in await select_rows(session, _LIVE_RUNTIMES, {"ids": sorted(set(service_ids))})
        ]
    best: dict[str, Runtime] = {}
    for row in rows:
        held = best.get(row.service_id)
        if held is None or (row.weight, row.id) > (held.weight, held.id):
            best[row.service_id] = row
    return [best.get(i) for i in service_ids]


async def current_specs(
    store: Store, service_ids: Sequence[str]
) -> list[ServiceSpecVersion | None]:
    return await _newest_per_service(
        store, ServiceSpecVersion, ServiceSpecVersion.version, service_ids
    )


async def pages(store: Store, spec: ListSpec[T], requests: Sequence[PageRequest]) -> list[Page[T]]:
    async with store.read() as session:
        return await load_pages(session, spec, requests)


async def counts(store: Store, spec: ListSpec[T], parent_ids: Sequence[str]) -> list[int]:
    async with store.read() as session:
        return await count_children(session, spec, parent_ids)
