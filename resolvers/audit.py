"""Reading the audit trail: filtered pages, chain verification, export for a SIEM."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, select

from resolvers.context import Context
from resolvers.errors import BadRequest
from resolvers.identity.guard import require
from resolvers.identity.rbac import Permission
from resolvers.lookup import get_project
from resolvers.pagination import MAX_PAGE, decode_cursor, encode_cursor
from store.audit import ChainReport, verify_chain
from store.models import AuditEvent, AuditOutcome

EXPORT_BATCH: Final = 500


@dataclass(frozen=True, slots=True)
class AuditFilter:
    project_id: str | None = None
    actor_id: str | None = None
    action: str | None = None  # exact, or a prefix ending in "." ("service.")
    entity_id: str | None = None
    outcome: AuditOutcome | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditPage:
    rows: list[AuditEvent]
    has_next_page: bool

    @property
    def end_cursor(self) -> str | None:
        return encode_cursor([self.rows[-1].id]) if self.rows else None


def _conditions(ctx: Context, where: AuditFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [AuditEvent.account_id == ctx.actor.account_id]
    if where.project_id is not None:
        conditions.append(AuditEvent.project_id == where.project_id)
    if where.actor_id is not None:
        conditions.append(AuditEvent.actor_id == where.actor_id)
    if where.action is not None:
        if where.action.endswith("."):
            conditions.append(AuditEvent.action.startswith(where.action, autoescape=True))
        else:
            conditions.append(AuditEvent.action == where.action)
    if where.entity_id is not None:
        conditions.append(AuditEvent.entity_id == where.entity_id)
    if where.outcome is not None:
        conditions.append(AuditEvent.outcome == where.outcome)
    if where.since is not None:
        conditions.append(AuditEvent.created_at >= where.since)
    if where.until is not None:
        conditions.append(AuditEvent.created_at < where.until)
    return conditions


async def _authorize(ctx: Context, where: AuditFilter) -> None:
    if where.since is not None and where.until is not None and where.since >= where.until:
        raise BadRequest("since must be before until", ("filter", "since"))
    if where.project_id is None:
        require(ctx, Permission.AUDIT_READ)
        return
    async with ctx.store.read() as session:
        project = await get_project(session, ctx, where.project_id, ("filter", "projectId"))
    require(ctx, Permission.AUDIT_READ, project)


async def audit_page(ctx: Context, where: AuditFilter, first: int, after: str | None) -> AuditPage:
    """Newest first."""
    if not 0 <= first <= MAX_PAGE:
        raise BadRequest(f"first must be between 0 and {MAX_PAGE}, got {first}", ("first",))
    await _authorize(ctx, where)
    conditions = _conditions(ctx, where)
    if after is not None:
        (last_id,) = decode_cursor(after, (AuditEvent.id,))
        conditions.append(AuditEvent.id < last_id)
    async with ctx.store.read() as session:
        rows = list(
            (
                await session.scalars(
                    select(AuditEvent)
                    .where(*conditions)
                    .order_by(AuditEvent.id.desc())
                    .limit(first + 1)
                )
            ).all()
        )
    return AuditPage(rows[:first], len(rows) > first)


async def verify(ctx: Context) -> ChainReport:
    require(ctx, Permission.AUDIT_READ)
    async with ctx.store.read() as session:
        return await verify_chain(session, ctx.actor.account_id)


def export_record(row: AuditEvent) -> dict[str, Any]:
    """One audit event as a flat JSON object (one NDJSON line), chain fields included so a
    SIEM can verify the chain independently."""
    return {
        "id": row.id,
        "seq": row.seq,
        "time": row.created_at.isoformat(timespec="microseconds"),
        "account_id": row.account_id,
        "project_id": row.project_id,
        "actor_id": row.actor_id,
        "actor": row.actor_display,
        "action": row.action,
        "outcome": row.outcome.value,
        "entity_type": row.entity_type,
        "entity_id": row.entity_id,
        "payload": row.payload,
        "request_id": row.request_id,
        "source_address": row.source_address,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


async def export(ctx: Context, where: AuditFilter) -> AsyncIterator[dict[str, Any]]:
    """Every matching event, oldest first, streamed in batches."""
    await _authorize(ctx, where)
    conditions = _conditions(ctx, where)
    after = 0
    while True:
        async with ctx.store.read() as session:
            batch = (
                await session.scalars(
                    select(AuditEvent)
                    .where(*conditions, AuditEvent.seq > after)
                    .order_by(AuditEvent.seq)
                    .limit(EXPORT_BATCH)
                )
            ).all()
        for row in batch:
            yield export_record(row)
        if len(batch) < EXPORT_BATCH:
            return
        after = batch[-1].seq
