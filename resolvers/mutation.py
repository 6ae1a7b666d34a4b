"""The shape of every mutation: one write transaction, one audit event, its events.

``async with mutate(ctx, "project.create") as change:`` opens a write transaction; the body
makes its changes, calls ``change.record(...)`` once to say what it changed, and
``change.emit(...)`` for what subscribers should see. When the block ends the audit event is
written in the same transaction, so a change and its record commit or vanish together.
Raising a Failure inside the block rolls everything back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession

from resolvers.context import Context
from resolvers.errors import Forbidden
from store.audit import append_audit
from store.events import EventRecord, append_event, project_stream
from store.ids import new_id
from store.models import AuditEvent, AuditOutcome, Base


def snapshot(row: Base | None) -> dict[str, Any] | None:
    """A row's columns as JSON-ready data, for audit before/after."""
    if row is None:
        return None
    out: dict[str, Any] = {}
    for attr in inspect(row).mapper.column_attrs:
        value = getattr(row, attr.key)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, Enum):
            value = value.value
        out[attr.key] = value
    return out


@dataclass
class Change:
    session: AsyncSession
    ctx: Context
    action: str
    _recorded: dict[str, Any] | None = None
    events: list[EventRecord] = field(default_factory=list)

    def record(
        self,
        *,
        entity_type: str,
        entity_id: str,
        project_id: str | None,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        **extra: Any,
    ) -> None:
        """Say what this mutation changed; written as its single AuditEvent."""
        if self._recorded is not None:
            raise RuntimeError(f"{self.action} recorded its change twice")
        self._recorded = {
            "entity_type": entity_type,
            "entity_id": entity_id,
            "project_id": project_id,
            "payload": {"before": before, "after": after, **extra},
        }

    async def emit(
        self, project_id: str, type: str, entity_id: str | None, payload: dict[str, Any]
    ) -> EventRecord:
        """Append an event to the project's stream in this transaction."""
        record = await append_event(
            self.session,
            project_stream(project_id),
            type,
            entity_id=entity_id,
            actor_id=self.ctx.actor.id,
            payload=payload,
        )
        self.events.append(record)
        return record

    def _audit_row(self) -> AuditEvent:
        if self._recorded is None:
            raise RuntimeError(f"{self.action} finished without recording its change")
        actor = self.ctx.actor
        return AuditEvent(
            id=new_id("audit_event"),
            account_id=actor.account_id,
            actor_id=actor.id,
            actor_display=actor.display,
            action=self.action,
            outcome=AuditOutcome.SUCCEEDED,
            request_id=self.ctx.request_id,
            source_address=self.ctx.source_address,
            **self._recorded,
        )


@asynccontextmanager
async def mutate(ctx: Context, action: str) -> AsyncIterator[Change]:
    try:
        async with ctx.store.write() as session:
            change = Change(session, ctx, action)
            yield change
            await append_audit(session, change._audit_row())
    except Forbidden as denied:
        # The change rolled back; the attempt itself is still recorded.
        await _record_denied(ctx, action, denied)
        raise


async def _record_denied(ctx: Context, action: str, denied: Forbidden) -> None:
    actor = ctx.actor
    async with ctx.store.write() as session:
        await append_audit(
            session,
            AuditEvent(
                id=new_id("audit_event"),
                account_id=actor.account_id,
                project_id=denied.project_id,
                actor_id=actor.id,
                actor_display=actor.display,
                action=action,
                outcome=AuditOutcome.DENIED,
                entity_type="project" if denied.project_id else "account",
                entity_id=denied.project_id or actor.account_id,
                payload={"reason": denied.message, "permission": denied.permission},
                request_id=ctx.request_id,
                source_address=ctx.source_address,
            ),
        )
