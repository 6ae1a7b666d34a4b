"""The audit trail's hash chain: appended links verify, and every kind of tampering made
directly in the database (an edited column, a deleted row, a deleted tail, a forged row,
swapped rows) is reported at the first link that does not hold. Migration 0002 links the
rows an older install already had."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from alembic import command
from sqlalchemy import bindparam, func, insert, select, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from resolvers.context import Context
from store.audit import GENESIS, ChainReport, append_audit, link_hash, verify_chain
from store.db import Store, normalise_url
from store.ids import new_id
from store.migrate import alembic_config, current_revision, head_revision, upgrade_async
from store.models import Account, AuditChainHead, AuditEvent, AuditOutcome
from store.models.base import JSONType, UTCDateTime
from tests.factories import make_environment, make_project

# -- helpers -------------------------------------------------------------------------------


async def _verify(store: Store, account_id: str) -> ChainReport:
    async with store.read() as session:
        return await verify_chain(session, account_id)


async def _rows(store: Store, account_id: str) -> list[AuditEvent]:
    async with store.read() as session:
        return list(
            (
                await session.scalars(
                    select(AuditEvent)
                    .where(AuditEvent.account_id == account_id)
                    .order_by(AuditEvent.seq)
                )
            ).all()
        )


async def _execute(store: Store, sql: str, **params: Any) -> None:
    """Raw SQL, as someone with direct database access would run it."""
    statement = text(sql).bindparams(
        *(
            bindparam(name, type_=UTCDateTime())
            for name, value in params.items()
            if isinstance(value, datetime)
        ),
        *(
            bindparam(name, type_=JSONType)
            for name, value in params.items()
            if isinstance(value, dict)
        ),
    )
    async with store.write_engine.begin() as conn:
        await conn.execute(statement, params)


async def _seven_links(ctx: Context) -> list[AuditEvent]:
    """The bootstrap event and six mutations: seven links."""
    shop = await make_project(ctx, "shop")
    blog = await make_project(ctx, "blog")
    for env in ("dev", "stage"):
        await make_environment(ctx, shop, env)
        await make_environment(ctx, blog, env)
    rows = await _rows(ctx.store, ctx.actor.account_id)
    assert [r.seq for r in rows] == list(range(1, 8))
    return rows


# -- a chain as the API writes it ----------------------------------------------------------


async def test_appended_links_verify(ctx: Context) -> None:
    rows = await _seven_links(ctx)
    report = await _verify(ctx.store, ctx.actor.account_id)
    assert report == ChainReport(ok=True, checked=len(rows), broken_at=None, problem=None)
    # Each link covers its row and the link before it; the head holds the newest.
    prev = GENESIS
    for row in rows:
        assert row.prev_hash == prev
        assert row.hash == link_hash(prev, row)
        prev = row.hash
    async with ctx.store.read() as session:
        head = await session.get(AuditChainHead, ctx.actor.account_id)
    assert head is not None
    assert (head.last_seq, head.last_hash) == (7, rows[-1].hash)


@pytest.mark.parametrize("batch", [1, 2, 7])
async def test_verification_reads_the_chain_in_batches(
    ctx: Context, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    """Long chains are read in batches (1000); a break in a later batch is still found."""
    monkeypatch.setattr("store.audit.VERIFY_BATCH", batch)
    rows = await _seven_links(ctx)
    assert await _verify(ctx.store, ctx.actor.account_id) == ChainReport(True, 7, None, None)
    await _execute(
        ctx.store, "UPDATE audit_events SET action = 'x.y' WHERE id = :id", id=rows[5].id
    )
    report = await _verify(ctx.store, ctx.actor.account_id)
    assert (report.ok, report.checked, report.broken_at) == (False, 5, 6)


async def test_chains_are_per_account(ctx: Context) -> None:
    """Another account's chain starts at 1 and breaking it leaves this one intact."""
    await _seven_links(ctx)
    async with ctx.store.write() as session:
        other = Account(id=new_id("account"), name="Other", billing_profile={})
        session.add(other)
        await session.flush()
        for n in range(3):
            await append_audit(
                session,
                AuditEvent(
                    id=new_id("audit_event"),
                    account_id=other.id,
                    actor_id="system",
                    actor_display="test",
                    action=f"other.{n}",
                    outcome=AuditOutcome.SUCCEEDED,
                ),
            )
    assert [r.seq for r in await _rows(ctx.store, other.id)] == [1, 2, 3]
    assert await _verify(ctx.store, other.id) == ChainReport(True, 3, None, None)
    await _execute(ctx.store, "UPDATE audit_events SET action = 'x.y' WHERE action = 'other.1'")
    assert (await _verify(ctx.store, other.id)).broken_at == 2
    assert await _verify(ctx.store, ctx.actor.account_id) == ChainReport(True, 7, None, None)


async def test_an_empty_chain_verifies(store: Store) -> None:
    async with store.write() as session:
        account = Account(id=new_id("account"), name="Quiet", billing_profile={})
        session.add(account)
    assert await _verify(store, account.id) == ChainReport(True, 0, None, None)


# -- tampering -----------------------------------------------------------------------------

MIDDLE = 4
EDITS: dict[str, Any] = {
    "payload": {"before": None, "after": {"name": "Rewritten"}},
    "actor_id": "usr_01M8EH5K0V56WD37Z896MQ0S8X",
    "action": "project.delete",
    "created_at": datetime(2020, 1, 1, 12, 0, tzinfo=UTC),
    "actor_display": "Someone else",
    "outcome": "denied",
    "entity_type": "route",
    "entity_id": "rte_01M8EH5K0V56WD37Z896MQ0S8X",
    "project_id": "prj_01M8EH5K0V56WD37Z896MQ0S8X",
    "request_id": "req_forged",
    "source_address": "203.0.113.9",
    "id": "aud_01M8EH5K0V56WD37Z896MQ0S8X",
}


@pytest.mark.parametrize("column", list(EDITS))
async def test_editing_a_chained_column_of_a_middle_row_is_reported(
    ctx: Context, column: str
) -> None:
    rows = await _seven_links(ctx)
    target = rows[MIDDLE - 1]
    await _execute(
        ctx.store,
        f"UPDATE audit_events SET {column} = :value WHERE id = :id",
        value=EDITS[column],
        id=target.id,
    )
    report = await _verify(ctx.store, ctx.actor.account_id)
    assert not report.ok
    assert report.broken_at == MIDDLE
    assert report.checked == MIDDLE - 1
    assert report.problem is not None
    assert f"audit event {MIDDLE} " in report.problem
    assert "modified" in report.problem


async def test_an_edit_that_only_reorders_payload_keys_is_not_a_change(ctx: Context) -> None:
    """The canonical form sorts keys: a database that stores JSON keys in another order
    (as PostgreSQL's jsonb does) must not look like tampering."""
    rows = await _seven_links(ctx)
    target = rows[MIDDLE - 1]
    reordered = dict(reversed(list(target.payload.items())))
    await _execute(
        ctx.store,
        "UPDATE audit_events SET payload = :value WHERE id = :id",
        value=reordered,
        id=target.id,
    )
    assert (await _verify(ctx.store, ctx.actor.account_id)).ok


async def test_rewriting_a_row_and_its_hash_breaks_the_next_link(ctx: Context) -> None:
    rows = await _seven_links(ctx)
    target = rows[MIDDLE - 1]
    target.action = "project.delete"
    forged_hash = link_hash(target.prev_hash, target)
    await _execute(
        ctx.store,
        "UPDATE audit_events SET action = :action, hash = :hash WHERE id = :id",
        action="project.delete",
        hash=forged_hash,
        id=target.id,
    )
    report = await _verify(ctx.store, ctx.actor.account_id)
    assert not report.ok
    assert report.broken_at == MIDDLE + 1
    assert report.checked == MIDDLE
    assert report.problem is not None
    assert f"does not follow event {MIDDLE}" in report.problem


async def test_deleting_a_middle_row_is_reported_as_missing(ctx: Context) -> None:
    rows = await _seven_links(ctx)
    await _execute(ctx.store, "DELETE FROM audit_events WHERE id = :id", id=rows[MIDDLE - 1].id)
    report = await _verify(ctx.store, ctx.actor.account_id)
    assert not report.ok
    assert report.broken_at == MIDDLE
    assert report.checked == MIDDLE - 1
    assert report.problem == f"audit event {MIDDLE} is missing (the next one is {MIDDLE + 1})"


async def test_deleting_the_newest_rows_is_reported_against_the_head(ctx: Context) -> None:
    rows = await _seven_links(ctx)
    await _execute(
        ctx.store,
        "DELETE FROM audit_events WHERE id IN (:a, :b)",
        a=rows[-1].id,
        b=rows[-2].id,
    )
    report = await _verify(ctx.store, ctx.actor.account_id)
    assert not report.ok
    assert report.checked == 5
    assert report.broken_at == 6
    assert report.problem is not None
    assert "ends at event 5" in report.problem
    assert "head records event 7" in report.problem
    assert "newest events were deleted" in report.problem


async def test_a_deleted_tail_is_caught_by_the_heads_hash_not_only_its_seq(ctx: Context) -> None:
    """Rewinding only the head's sequence after deleting the newest row is still caught:
    the head's hash names the deleted row."""
    rows = await _seven_links(ctx)
    await _execute(ctx.store, "DELETE FROM audit_events WHERE id = :id", id=rows[-1].id)
    # The head's sequence is rewound but its hash still names the deleted row.
    await _execute(
        ctx.store,
        "UPDATE audit_chain_heads SET last_seq = 6 WHERE account_id = :a",
        a=ctx.actor.account_id,
    )
    report = await _verify(ctx.store, ctx.actor.account_id)
    assert not report.ok
    assert report.broken_at == 7
    assert report.problem is not None
    assert "newest events were deleted" in report.problem


async def test_a_forged_row_with_a_recomputed_hash_but_wrong_prev_is_reported(
    ctx: Context,
) -> None:
    rows = await _seven_links(ctx)
    forged = AuditEvent(
        id=new_id("audit_event"),
        account_id=ctx.actor.account_id,
        seq=8,
        prev_hash=GENESIS,  # not rows[-1].hash
        project_id=None,
        actor_id=ctx.actor.id,
        actor_display="Owner",
        action="project.create",
        outcome=AuditOutcome.SUCCEEDED,
        entity_type="project",
        entity_id=None,
        payload={"before": None, "after": None},
        request_id=None,
        source_address=None,
        created_at=datetime.now(UTC),
    )
    forged.hash = link_hash(forged.prev_hash, forged)
    async with ctx.store.write() as session:
        session.add(forged)
        # A careful forger moves the head too, so only the broken link gives it away.
        head = await session.get(AuditChainHead, ctx.actor.account_id)
        assert head is not None
        head.last_seq, head.last_hash = 8, forged.hash
    report = await _verify(ctx.store, ctx.actor.account_id)
    assert not report.ok
    assert report.broken_at == 8
    assert report.checked == len(rows)
    assert report.problem is not None
    assert "does not follow event 7" in report.problem
    assert forged.id in report.problem


async def test_swapping_two_rows_seq_is_reported(ctx: Context) -> None:
    await _seven_links(ctx)
    account = ctx.actor.account_id
    # Three steps, so the unique (account_id, seq) holds after each statement.
    for old, new in ((MIDDLE, -1), (MIDDLE + 1, MIDDLE), (-1, MIDDLE + 1)):
        await _execute(
            ctx.store,
            "UPDATE audit_events SET seq = :new WHERE account_id = :a AND seq = :old",
            new=new,
            old=old,
            a=account,
        )
    report = await _verify(ctx.store, account)
    assert not report.ok
    assert report.broken_at == MIDDLE
    assert report.checked == MIDDLE - 1
    assert report.problem is not None
    assert f"audit event {MIDDLE} " in report.problem


# -- concurrency ---------------------------------------------------------------------------


async def test_concurrent_mutations_make_a_gap_free_valid_chain(ctx: Context) -> None:
    projects = await asyncio.gather(*(make_project(ctx, f"p{i:02d}") for i in range(20)))
    assert len({p.id for p in projects}) == 20
    rows = await _rows(ctx.store, ctx.actor.account_id)
    assert [r.seq for r in rows] == list(range(1, 22))
    assert {r.entity_id for r in rows if r.action == "project.create"} == {p.id for p in projects}
    report = await _verify(ctx.store, ctx.actor.account_id)
    assert report == ChainReport(True, 21, None, None)


async def test_verify_while_a_mutation_commits_reports_no_tampering(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """verify_chain reads the head, then the rows, in statements that on PostgreSQL (READ
    COMMITTED) each see the newest commits. A mutation committing in between makes an
    intact chain look truncated: "the chain ends at event 8 but its head records event 7:
    the newest events were deleted". (SQLite's read transaction is one snapshot.)"""
    await _seven_links(ctx)
    async with ctx.store.read() as session:
        real_get = session.get

        async def get_then_another_request_commits(*args: Any, **kwargs: Any) -> Any:
            found = await real_get(*args, **kwargs)
            await make_project(ctx, "meanwhile")
            return found

        monkeypatch.setattr(session, "get", get_then_another_request_commits)
        report = await verify_chain(session, ctx.actor.account_id)
    assert await _verify(ctx.store, ctx.actor.account_id) == ChainReport(True, 8, None, None)
    assert report.ok, report


# -- migration 0002 ------------------------------------------------------------------------

LEGACY_INSERT = (
    "INSERT INTO audit_events (id, account_id, project_id, actor_id, actor_display, action, "
    "outcome, entity_type, entity_id, payload, request_id, source_address, created_at) "
    "VALUES (:id, :account_id, :project_id, :actor_id, :actor_display, :action, :outcome, "
    ":entity_type, :entity_id, :payload, :request_id, :source_address, :created_at)"
)


def _legacy_row(account_id: str, n: int, created_at: datetime) -> dict[str, Any]:
    return {
        "id": new_id("audit_event"),
        "account_id": account_id,
        "project_id": None if n % 2 else "prj_01M8EH5K0V56WD37Z896MQ0S8X",
        "actor_id": "usr_01M8EH5K0V56WD37Z896MQ0S8Y",
        "actor_display": "Ünïcode Öwner",
        "action": "project.create" if n % 3 else "service.apply",
        "outcome": "denied" if n == 2 else "succeeded",
        "entity_type": "project",
        "entity_id": f"prj_{n:026d}",
        "payload": {"after": {"name": f"Project №{n}", "n": n, "tags": ["a", "b"]}, "before": None},
        "request_id": f"req_{n}" if n % 2 else None,
        "source_address": "127.0.0.1",
        "created_at": created_at,
    }


async def test_migration_0002_links_the_rows_of_an_older_install(database_url: str) -> None:
    config = alembic_config(database_url)
    await asyncio.to_thread(command.downgrade, config, "0001")
    try:
        assert await current_revision(database_url) == "0001"
        engine = create_async_engine(normalise_url(database_url), poolclass=NullPool)
        base = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
        inserted: dict[str, list[str]] = {}
        try:
            async with engine.begin() as conn:
                accounts = [new_id("account"), new_id("account")]
                for account_id in accounts:
                    await conn.execute(
                        insert(Account).values(
                            id=account_id, name="Older install", billing_profile={}
                        )
                    )
                    inserted[account_id] = []
                statement = text(LEGACY_INSERT).bindparams(
                    bindparam("payload", type_=JSONType),
                    bindparam("created_at", type_=UTCDateTime()),
                )
                # Interleaved accounts; one time with no microseconds, one not in UTC.
                for n in range(1, 10):
                    account_id = accounts[n % 2]
                    when = base + timedelta(seconds=n, microseconds=0 if n == 3 else 1234 * n)
                    if n == 5:
                        when = when.astimezone(timezone(timedelta(hours=5, minutes=30)))
                    row = _legacy_row(account_id, n, when)
                    await conn.execute(statement, row)
                    inserted[account_id].append(row["id"])
        finally:
            await engine.dispose()
    finally:
        await upgrade_async(database_url)
    assert await current_revision(database_url) == head_revision()

    store = Store(database_url)
    try:
        for account_id, ids in inserted.items():
            rows = await _rows(store, account_id)
            # Linked in the order they were written (their IDs sort by time): 1..n.
            assert [r.id for r in rows] == sorted(ids)
            assert [r.seq for r in rows] == list(range(1, len(ids) + 1))
            assert await _verify(store, account_id) == ChainReport(True, len(ids), None, None)
            async with store.read() as session:
                head = await session.get(AuditChainHead, account_id)
            assert head is not None
            assert (head.last_seq, head.last_hash) == (len(ids), rows[-1].hash)
        # The backfilled chain is one the current code extends.
        account_id = next(iter(inserted))
        async with store.write() as session:
            await append_audit(
                session,
                AuditEvent(
                    id=new_id("audit_event"),
                    account_id=account_id,
                    actor_id="system",
                    actor_display="after the upgrade",
                    action="account.check",
                    outcome=AuditOutcome.SUCCEEDED,
                    payload={},
                ),
            )
        report = await _verify(store, account_id)
        assert report == ChainReport(True, len(inserted[account_id]) + 1, None, None)
        async with store.read() as session:
            total = await session.scalar(select(func.count()).select_from(AuditEvent))
        assert total == 10
    finally:
        await store.close()
