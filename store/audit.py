"""The audit trail's hash chain: appending a link and verifying the chain.

Each account's AuditEvents are chained: ``hash = sha256(prev_hash + canonical(row))`` over
every recorded column, ``seq`` counts 1, 2, 3 … without gaps, and the account's
``AuditChainHead`` holds the newest link. Editing a row changes its hash; deleting one leaves
a gap or a broken link; deleting the newest rows leaves the head pointing past the end.
Nothing in the API changes or deletes audit rows; this is how anyone who can reach the
database directly is caught doing so.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import AuditChainHead, AuditEvent, utcnow

GENESIS: Final = "0" * 64
VERIFY_BATCH: Final = 1000
# Every column that says what happened; seq/prev_hash/hash are the chain itself.
CHAINED_COLUMNS: Final = (
    "id",
    "account_id",
    "seq",
    "project_id",
    "actor_id",
    "actor_display",
    "action",
    "outcome",
    "entity_type",
    "entity_id",
    "payload",
    "request_id",
    "source_address",
    "created_at",
)


def canonical(row: AuditEvent) -> bytes:
    values: dict[str, Any] = {}
    for column in CHAINED_COLUMNS:
        value = getattr(row, column)
        if column == "created_at":
            value = value.isoformat(timespec="microseconds")
        elif column == "outcome":
            value = getattr(value, "value", value)
        values[column] = value
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def link_hash(prev_hash: str, row: AuditEvent) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical(row)).hexdigest()


async def _locked_head(session: AsyncSession, account_id: str) -> AuditChainHead:
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    await session.execute(
        insert(AuditChainHead)
        .values(account_id=account_id, last_seq=0, last_hash=GENESIS)
        .on_conflict_do_nothing(index_elements=[AuditChainHead.account_id])
    )
    # FOR UPDATE holds the head until commit on PostgreSQL; SQLite writers are serialised.
    head = await session.scalar(
        select(AuditChainHead)
        .where(AuditChainHead.account_id == account_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert head is not None
    return head


async def append_audit(session: AsyncSession, row: AuditEvent) -> AuditEvent:
    """Link ``row`` to its account's chain and add it, in the caller's transaction."""
    head = await _locked_head(session, row.account_id)
    # Column defaults apply at flush, after hashing: fix every hashed value first.
    if row.created_at is None:
        row.created_at = utcnow()
    if row.payload is None:
        row.payload = {}
    row.seq = head.last_seq + 1
    row.prev_hash = head.last_hash
    row.hash = link_hash(head.last_hash, row)
    head.last_seq, head.last_hash = row.seq, row.hash
    session.add(row)
    await session.flush()
    return row


async def _in_order(
    session: AsyncSession, account_id: str, end: int | None
) -> AsyncIterator[AuditEvent]:
    after = 0
    while True:
        conditions = [AuditEvent.account_id == account_id, AuditEvent.seq > after]
        if end is not None:
            conditions.append(AuditEvent.seq <= end)
        batch = (
            await session.scalars(
                select(AuditEvent).where(*conditions).order_by(AuditEvent.seq).limit(VERIFY_BATCH)
            )
        ).all()
        for row in batch:
            yield row
        if len(batch) < VERIFY_BATCH:
            return
        after = batch[-1].seq
        session.expunge_all()  # keep memory flat on long chains


@dataclass(frozen=True, slots=True)
class ChainReport:
    ok: bool
    checked: int
    broken_at: int | None  # the first seq where the chain does not hold
    problem: str | None


async def verify_chain(session: AsyncSession, account_id: str) -> ChainReport:
    """Walk the account's chain from the start; report the first link that does not hold."""
    # The head is read first and only the links up to it are walked: events committed
    # while we walk (on PostgreSQL each statement sees new commits) are not our business.
    head = await session.get(AuditChainHead, account_id)
    end = head.last_seq if head is not None else None
    expected_prev = GENESIS
    expected_seq = 1
    checked = 0
    async for row in _in_order(session, account_id, end):
        if row.seq != expected_seq:
            return ChainReport(
                False,
                checked,
                expected_seq,
                f"audit event {expected_seq} is missing (the next one is {row.seq})",
            )
        if row.prev_hash != expected_prev:
            return ChainReport(
                False,
                checked,
                row.seq,
                f"audit event {row.seq} ({row.id}) does not follow event {row.seq - 1}: "
                "a row before it was changed or replaced",
            )
        if link_hash(row.prev_hash, row) != row.hash:
            return ChainReport(
                False,
                checked,
                row.seq,
                f"audit event {row.seq} ({row.id}, {row.action}) was modified after it was written",
            )
        expected_prev = row.hash
        expected_seq += 1
        checked += 1
    last = expected_seq - 1
    if head is None and checked:
        return ChainReport(
            False, checked, last + 1, "the chain's head record is missing: it was deleted"
        )
    if head is not None and (head.last_seq != last or head.last_hash != expected_prev):
        return ChainReport(
            False,
            checked,
            last + 1,
            f"the chain ends at event {last} but its head records event {head.last_seq}: "
            "the newest events were deleted",
        )
    return ChainReport(True, checked, None, None)
