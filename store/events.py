"""The durable event log: append in the caller's transaction, read from a cursor.

Every change a subscription may stream is appended here in the same transaction as the
change. Each stream (``project:prj_…``) has its own gap-free sequence. Taking the next
sequence upserts the stream's head row, which holds that row's lock until commit, so on
PostgreSQL two writers of one stream commit in sequence order and a reader that has seen
seq N never later discovers a smaller one. On SQLite writers are serialised anyway.

After commit, subscribers are woken: on PostgreSQL by ``pg_notify`` issued inside the
transaction (delivered only if it commits; the payload is ``"<stream> <seq>"``, never data),
on SQLite by the store's after-commit callback. See ``store.hub`` for the reading side.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import PENDING_WAKEUPS
from store.models import Event, EventStream

NOTIFY_CHANNEL: Final = "enclii_events"
# Work queues of the controllers: resolvers append here, the controller runner follows.
BUILDS_STREAM: Final = "work:builds"
DEPLOYMENTS_STREAM: Final = "work:deployments"  # entity: a service whose rollout to look at
ALERTS_STREAM: Final = "work:alerts"  # entity: an alert delivery to send
SLO_STREAM: Final = "work:slo"  # entity: a service whose error budget to compute


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: int
    stream: str
    seq: int
    type: str
    entity_id: str | None
    actor_id: str | None
    payload: dict[str, Any]
    created_at: datetime

    @classmethod
    def from_row(cls, row: Event) -> EventRecord:
        return cls(
            id=row.id,
            stream=row.stream,
            seq=row.seq,
            type=row.type,
            entity_id=row.entity_id,
            actor_id=row.actor_id,
            payload=row.payload,
            created_at=row.created_at,
        )


def project_stream(project_id: str) -> str:
    return f"project:{project_id}"


def deployment_stream(deployment_id: str) -> str:
    """One deployment's phase changes, for ``deploymentStatus``."""
    return f"deployment:{deployment_id}"


CANARY_SAMPLE: Final = "canary.sample"
CANARY_ENDED: Final = "canary.ended"  # the last event of a canary's stream
# On a deployment's stream, between phase changes: its conditions or canary state changed.
DEPLOYMENT_PROGRESS: Final = "deployment.progress"


def canary_stream(deployment_id: str) -> str:
    """One canary deployment's analysis checks, for ``canaryMetrics``."""
    return f"canary:{deployment_id}"


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def _next_seq(session: AsyncSession, stream: str) -> int:
    insert = postgresql.insert if _dialect(session) == "postgresql" else sqlite.insert
    stmt = (
        insert(EventStream)
        .values(stream=stream, last_seq=1)
        .on_conflict_do_update(
            index_elements=[EventStream.stream],
            set_={"last_seq": EventStream.last_seq + 1},
        )
        .returning(EventStream.last_seq)
    )
    return int((await session.execute(stmt)).scalar_one())


async def append_event(
    session: AsyncSession,
    stream: str,
    type: str,
    *,
    entity_id: str | None = None,
    actor_id: str | None = None,
    payload: dict[str, Any] | None = None,
) -> EventRecord:
    """Append one event to ``stream`` inside the caller's (write) transaction."""
    seq = await _next_seq(session, stream)
    row = Event(
        stream=stream,
        seq=seq,
        type=type,
        entity_id=entity_id,
        actor_id=actor_id,
        payload=payload or {},
    )
    session.add(row)
    await session.flush()
    if _dialect(session) == "postgresql":
        await session.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": NOTIFY_CHANNEL, "payload": f"{stream} {seq}"},
        )
    else:
        session.info.setdefault(PENDING_WAKEUPS, []).append((stream, seq))
    return EventRecord.from_row(row)


async def read_events(
    session: AsyncSession, stream: str, after: int, limit: int = 500
) -> list[EventRecord]:
    """Events of ``stream`` with seq > ``after``, oldest first, at most ``limit``."""
    rows = await session.scalars(
        select(Event)
        .where(Event.stream == stream, Event.seq > after)
        .order_by(Event.seq)
        .limit(limit)
    )
    return [EventRecord.from_row(r) for r in rows]


async def read_events_before(
    session: AsyncSession, stream: str, before: int | None, limit: int
) -> list[EventRecord]:
    """Newest first: events of ``stream`` with seq < ``before`` (or the newest ones)."""
    stmt = select(Event).where(Event.stream == stream)
    if before is not None:
        stmt = stmt.where(Event.seq < before)
    rows = await session.scalars(stmt.order_by(Event.seq.desc()).limit(limit))
    return [EventRecord.from_row(r) for r in rows]


async def stream_head(session: AsyncSession, stream: str) -> int:
    """The last sequence appended to ``stream`` (0 when it has none)."""
    value = await session.scalar(
        select(func.coalesce(func.max(EventStream.last_seq), 0)).where(EventStream.stream == stream)
    )
    return int(value or 0)
