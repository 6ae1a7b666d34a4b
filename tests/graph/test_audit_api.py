"""The audit trail through the API: auditEvents (filters, paging), verifyAudit, denied
mutations, who may read it, and the NDJSON export a SIEM verifies on its own."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select, text

from resolvers.context import Context
from resolvers.identity.tokens import bootstrap_token
from store.audit import CHAINED_COLUMNS, GENESIS, append_audit, link_hash
from store.db import Store
from store.ids import new_id
from store.models import Account, AuditEvent, AuditOutcome, Membership, Project, Role, User
from tests.factories import make_environment, make_project, make_service
from tests.helpers import Api

AUDIT_EVENTS = """
query($filter: AuditEventFilter, $first: Int!, $after: String) {
  auditEvents(filter: $filter, first: $first, after: $after) {
    nodes {
      id actorId actorDisplay action outcome entityType entityId projectId payload
      requestId sourceAddress createdAt
    }
    hasNextPage
    endCursor
  }
}
"""

VERIFY = "{ verifyAudit { ok checked brokenAtSequence problem } }"
EXPORT = "/audit/export.ndjson"


# -- people --------------------------------------------------------------------------------


@dataclass
class Member:
    user_id: str
    api: Api


async def _member(store: Store, api: Api, account_id: str, role: Role, name: str) -> Member:
    """A user with ``role`` on the account and a token of every scope (the role decides)."""
    async with store.write() as session:
        user = User(
            id=new_id("user"),
            account_id=account_id,
            subject=f"local:test-{name}",
            display_name=name.title(),
        )
        session.add(user)
        await session.flush()
        session.add(
            Membership(
                id=new_id("membership"),
                account_id=account_id,
                project_id=None,
                user_id=user.id,
                scope_ref=account_id,
                role=role,
            )
        )
        token_row, secret = bootstrap_token(user)
        session.add(token_row)
    return Member(user.id, Api(api.client, headers={"authorization": f"Bearer {secret}"}))


@pytest.fixture
async def readonly(ctx: Context, api: Api) -> Member:
    return await _member(ctx.store, api, ctx.actor.account_id, Role.READONLY, "reader")


# -- helpers -------------------------------------------------------------------------------


async def _all_rows(store: Store) -> list[AuditEvent]:
    async with store.read() as session:
        return list((await session.scalars(select(AuditEvent).order_by(AuditEvent.id))).all())


async def _pages(
    api: Api, filter: dict[str, Any] | None = None, first: int = 2
) -> list[dict[str, Any]]:
    """Every page of auditEvents, following endCursor; the nodes in the order served."""
    nodes: list[dict[str, Any]] = []
    after: str | None = None
    for _ in range(1000):
        data = await api.data(AUDIT_EVENTS, {"filter": filter, "first": first, "after": after})
        page = data["auditEvents"]
        assert len(page["nodes"]) <= first
        nodes.extend(page["nodes"])
        if not page["hasNextPage"]:
            return nodes
        assert page["endCursor"] is not None
        after = page["endCursor"]
    raise AssertionError("auditEvents kept saying hasNextPage")


@dataclass
class Trail:
    shop: Project
    blog: Project
    denied_message: str


async def _trail(ctx: Context, api: Api, readonly: Member) -> Trail:
    """Some history: projects, environments, a service, a denied attempt."""
    shop = await make_project(ctx, "shop")
    blog = await make_project(ctx, "blog")
    await make_environment(ctx, shop, "dev")
    await make_environment(ctx, shop, "stage")
    await make_environment(ctx, blog, "prod")
    await make_service(ctx, "shop", "stage", "api")
    await make_service(ctx, "shop", "dev", "worker")
    body = await readonly.api.execute(
        'mutation { createProject(input: {name: "Sneaky"}) { __typename } }'
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    return Trail(shop, blog, body["errors"][0]["message"])


def _ids(nodes: list[dict[str, Any]]) -> list[str]:
    return [n["id"] for n in nodes]


def _newest_first(rows: list[AuditEvent]) -> list[str]:
    return sorted((r.id for r in rows), reverse=True)


# -- auditEvents ---------------------------------------------------------------------------


async def test_pages_newest_first_without_gaps(ctx: Context, api: Api, readonly: Member) -> None:
    await _trail(ctx, api, readonly)
    rows = await _all_rows(ctx.store)
    assert len(rows) == 9
    for first in (1, 2, 4, 9, 50):
        nodes = await _pages(api, first=first)
        assert _ids(nodes) == _newest_first(rows)
    newest = (await api.data(AUDIT_EVENTS, {"first": 1}))["auditEvents"]
    assert newest["hasNextPage"] is True
    assert newest["nodes"][0]["action"] == "project.create"
    assert newest["nodes"][0]["outcome"] == "DENIED"


async def test_filters_narrow_the_trail(ctx: Context, api: Api, readonly: Member) -> None:
    trail = await _trail(ctx, api, readonly)
    rows = await _all_rows(ctx.store)

    async def check(filter: dict[str, Any], expected: list[AuditEvent]) -> None:
        assert expected, f"the filter {filter} should match something"
        assert _ids(await _pages(api, filter)) == _newest_first(expected), filter

    await check({"projectId": trail.shop.id}, [r for r in rows if r.project_id == trail.shop.id])
    await check({"actorId": readonly.user_id}, [r for r in rows if r.actor_id == readonly.user_id])
    await check({"actorId": "system"}, [r for r in rows if r.action == "account.bootstrap"])
    await check(
        {"action": "environment.create"}, [r for r in rows if r.action == "environment.create"]
    )
    await check({"action": "service."}, [r for r in rows if r.action.startswith("service.")])
    await check({"action": "project."}, [r for r in rows if r.action.startswith("project.")])
    await check({"entityId": trail.blog.id}, [r for r in rows if r.entity_id == trail.blog.id])
    await check({"outcome": "DENIED"}, [r for r in rows if r.outcome == AuditOutcome.DENIED])
    await check(
        {"outcome": "SUCCEEDED", "projectId": trail.shop.id, "action": "service.apply"},
        [
            r
            for r in rows
            if r.outcome == AuditOutcome.SUCCEEDED
            and r.project_id == trail.shop.id
            and r.action == "service.apply"
        ],
    )
    # A prefix needs its dot: "service" alone is an exact action that nothing has.
    assert await _pages(api, {"action": "service"}) == []
    assert await _pages(api, {"action": "servic."}) == []

    # since is inclusive, until exclusive; the same instant in another zone is the same.
    by_time = sorted(rows, key=lambda r: (r.created_at, r.id))
    since, until = by_time[2].created_at, by_time[6].created_at
    window = [r for r in rows if since <= r.created_at < until]
    assert 3 <= len(window) <= 4
    await check({"since": since.isoformat(), "until": until.isoformat()}, window)
    elsewhere = timezone(timedelta(hours=-7))
    await check(
        {"since": since.astimezone(elsewhere).isoformat(), "until": until.isoformat()}, window
    )
    await check({"since": since.isoformat()}, [r for r in rows if r.created_at >= since])
    await check({"until": until.isoformat()}, [r for r in rows if r.created_at < until])


async def test_since_after_until_is_bad_input(api: Api) -> None:
    body = await api.execute(
        AUDIT_EVENTS,
        {
            "filter": {"since": "2026-11-27T10:00:00+00:00", "until": "2026-11-27T09:00:00+00:00"},
            "first": 10,
        },
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["errors"][0]["message"] == "since must be before until"


async def test_the_denied_mutation_is_recorded_with_its_reason(
    ctx: Context, api: Api, readonly: Member
) -> None:
    trail = await _trail(ctx, api, readonly)
    # Denied: nothing was created, but the attempt is on the trail.
    async with ctx.store.read() as session:
        assert await session.scalar(select(Project).where(Project.slug == "sneaky")) is None
    nodes = await _pages(api, {"outcome": "DENIED"})
    assert len(nodes) == 1
    (denied,) = nodes
    assert denied["action"] == "project.create"
    assert denied["outcome"] == "DENIED"
    assert denied["actorId"] == readonly.user_id
    assert denied["actorDisplay"] == "Reader (token bootstrap)"
    assert denied["entityType"] == "account"
    assert denied["entityId"] == ctx.actor.account_id
    assert denied["payload"] == {"reason": trail.denied_message, "permission": "project:write"}
    assert "needs the admin role" in trail.denied_message
    assert denied["requestId"]
    assert denied["sourceAddress"]
    verified = (await api.data(VERIFY))["verifyAudit"]
    assert verified == {"ok": True, "checked": 9, "brokenAtSequence": None, "problem": None}


async def test_a_denial_on_a_project_is_recorded_against_that_project(
    ctx: Context, api: Api, readonly: Member
) -> None:
    shop = await make_project(ctx, "shop")
    body = await readonly.api.execute(
        'mutation($p: ID!) { createEnvironment(input: {projectId: $p, name: "dev"}) '
        "{ __typename } }",
        {"p": shop.id},
    )
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    nodes = await _pages(api, {"projectId": shop.id, "outcome": "DENIED"})
    assert [(n["action"], n["entityType"], n["entityId"], n["projectId"]) for n in nodes] == [
        ("environment.create", "project", shop.id, shop.id)
    ]
    assert nodes[0]["payload"] == {
        "reason": error["message"],
        "permission": "environment:write",
    }


async def test_another_accounts_trail_is_invisible(ctx: Context, api: Api) -> None:
    await make_project(ctx, "shop")
    async with ctx.store.write() as session:
        other = Account(id=new_id("account"), name="Other", billing_profile={})
        session.add(other)
        await session.flush()
        for _ in range(3):
            await append_audit(
                session,
                AuditEvent(
                    id=new_id("audit_event"),
                    account_id=other.id,
                    actor_id="system",
                    actor_display="other",
                    action="project.create",
                    outcome=AuditOutcome.SUCCEEDED,
                ),
            )
    mine = [r for r in await _all_rows(ctx.store) if r.account_id == ctx.actor.account_id]
    assert _ids(await _pages(api)) == _newest_first(mine)
    assert _ids(await _pages(api, {"actorId": "system"})) == [
        r.id for r in mine if r.actor_id == "system"
    ]
    response = await api.client.get(EXPORT, headers=api.headers)
    assert [r["id"] for r in _lines(response.text)] == sorted(r.id for r in mine)
    # Breaking the other account's chain does not break this one.
    async with ctx.store.write_engine.begin() as conn:
        await conn.execute(
            text("UPDATE audit_events SET actor_display = 'x' WHERE account_id = :a"),
            {"a": other.id},
        )
    verified = (await api.data(VERIFY))["verifyAudit"]
    assert verified == {"ok": True, "checked": 2, "brokenAtSequence": None, "problem": None}


@pytest.mark.parametrize(
    ("role", "may_read"),
    [(Role.OWNER, True), (Role.ADMIN, True), (Role.DEVELOPER, False), (Role.READONLY, False)],
)
async def test_only_owners_and_admins_read_the_trail(
    ctx: Context, api: Api, role: Role, may_read: bool
) -> None:
    project = await make_project(ctx, "shop")
    member = await _member(ctx.store, api, ctx.actor.account_id, role, role.value)
    for query, variables in (
        (AUDIT_EVENTS, {"first": 10}),
        (AUDIT_EVENTS, {"first": 10, "filter": {"projectId": project.id}}),
        (VERIFY, None),
    ):
        body = await member.api.execute(query, variables)
        if may_read:
            assert "errors" not in body, body
        else:
            assert body["data"] is None
            (error,) = body["errors"]
            assert error["extensions"]["code"] == "FORBIDDEN"
            assert "reading the audit trail needs the admin role" in error["message"]
    response = await member.api.client.get(EXPORT, headers=member.api.headers)
    assert response.status_code == (200 if may_read else 403)


# -- verifyAudit ---------------------------------------------------------------------------


async def test_verify_reports_tampering(ctx: Context, api: Api) -> None:
    project = await make_project(ctx, "shop")
    for env in ("dev", "stage", "prod"):
        await make_environment(ctx, project, env)
    assert (await api.data(VERIFY))["verifyAudit"] == {
        "ok": True,
        "checked": 5,
        "brokenAtSequence": None,
        "problem": None,
    }
    async with ctx.store.write_engine.begin() as conn:
        await conn.execute(text("UPDATE audit_events SET actor_display = 'Nobody' WHERE seq = 3"))
    report = (await api.data(VERIFY))["verifyAudit"]
    assert report["ok"] is False
    assert report["checked"] == 2
    assert report["brokenAtSequence"] == 3
    assert "audit event 3" in report["problem"]
    assert "modified" in report["problem"]


# -- no way to change the trail ------------------------------------------------------------


async def test_no_mutation_changes_or_deletes_audit_events(api: Api) -> None:
    data = await api.data("{ __schema { mutationType { fields { name } } } }")
    names = [f["name"] for f in data["__schema"]["mutationType"]["fields"]]
    assert "createProject" in names  # the introspection did list the mutations
    assert [n for n in names if "audit" in n.lower()] == []


# -- export --------------------------------------------------------------------------------


def _lines(body: str) -> list[dict[str, Any]]:
    assert body == "" or body.endswith("\n")
    records = [json.loads(line) for line in body.splitlines()]
    assert all(isinstance(r, dict) for r in records)
    return records


def _recomputed_hash(record: dict[str, Any]) -> str:
    """The link hash from the exported fields alone, as a SIEM would compute it."""
    fields = {
        **{k: record[k] for k in CHAINED_COLUMNS if k in record},
        "actor_display": record["actor"],
        "created_at": record["time"],
    }
    assert set(fields) == set(CHAINED_COLUMNS)
    canonical_form = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(record["prev_hash"].encode() + canonical_form.encode()).hexdigest()


async def test_export_streams_the_chain_oldest_first(
    ctx: Context, api: Api, readonly: Member
) -> None:
    await _trail(ctx, api, readonly)
    response = await api.client.get(EXPORT, headers=api.headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    records = _lines(response.text)
    rows = {r.id: r for r in await _all_rows(ctx.store)}
    assert [r["seq"] for r in records] == list(range(1, len(rows) + 1))
    assert {r["id"] for r in records} == set(rows)
    prev = GENESIS
    for record in records:
        assert record["prev_hash"] == prev
        assert _recomputed_hash(record) == record["hash"]
        # …and the same as the store's own canonical form of the row.
        row = rows[record["id"]]
        assert record["hash"] == link_hash(row.prev_hash, row)
        prev = record["hash"]
    denied = [r for r in records if r["outcome"] == "denied"]
    assert [(r["actor_id"], r["action"]) for r in denied] == [(readonly.user_id, "project.create")]


@pytest.mark.parametrize("batch", [2, 3, 500])
async def test_export_streams_every_batch(
    ctx: Context, api: Api, readonly: Member, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    """Nine events in batches of 2 (a short last batch), 3 (an exact multiple) and 500."""
    await _trail(ctx, api, readonly)
    monkeypatch.setattr("resolvers.audit.EXPORT_BATCH", batch)
    response = await api.client.get(EXPORT, headers=api.headers)
    assert response.status_code == 200
    assert [r["seq"] for r in _lines(response.text)] == list(range(1, 10))
    response = await api.client.get(EXPORT, params={"action": "environment."}, headers=api.headers)
    assert [r["action"] for r in _lines(response.text)] == ["environment.create"] * 3


async def test_export_takes_filters_as_query_params(
    ctx: Context, api: Api, readonly: Member
) -> None:
    trail = await _trail(ctx, api, readonly)
    rows = await _all_rows(ctx.store)

    async def export(**params: str) -> list[dict[str, Any]]:
        response = await api.client.get(EXPORT, params=params, headers=api.headers)
        assert response.status_code == 200, response.text
        records = _lines(response.text)
        seqs = [r["seq"] for r in records]
        assert seqs == sorted(seqs)
        for record in records:  # each link still checks against its own prev_hash
            assert _recomputed_hash(record) == record["hash"]
        return records

    def ids(records: list[dict[str, Any]]) -> set[str]:
        return {r["id"] for r in records}

    assert ids(await export(projectId=trail.shop.id)) == {
        r.id for r in rows if r.project_id == trail.shop.id
    }
    assert ids(await export(action="service.")) == {
        r.id for r in rows if r.action.startswith("service.")
    }
    assert ids(await export(action="environment.create", entityId=trail.blog.id)) == set()
    assert ids(await export(actorId=readonly.user_id, outcome="denied")) == {
        r.id for r in rows if r.actor_id == readonly.user_id
    }
    by_time = sorted(rows, key=lambda r: (r.created_at, r.id))
    since, until = by_time[3].created_at, by_time[5].created_at
    assert ids(await export(since=since.isoformat(), until=until.isoformat())) == {
        r.id for r in rows if since <= r.created_at < until
    }
    assert await export(action="nothing.") == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"since": "yesterday"}, 'since "yesterday" is not an ISO 8601 time'),
        ({"until": "2026-11-27T00:00:00"}, 'until "2026-11-27T00:00:00" has no time zone'),
        ({"outcome": "maybe"}, "'maybe' is not a valid AuditOutcome"),
        (
            {"since": "2026-11-27T10:00:00+00:00", "until": "2026-11-27T09:00:00+00:00"},
            "since must be before until",
        ),
    ],
)
async def test_export_refuses_bad_filters(api: Api, params: dict[str, str], message: str) -> None:
    response = await api.client.get(EXPORT, params=params, headers=api.headers)
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert message in error["message"]


async def test_export_needs_a_token(api: Api) -> None:
    response = await api.client.get(EXPORT)
    assert response.status_code == 401
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["extensions"]["reason"] == "TOKEN_MISSING"


async def test_export_refuses_readonly(api: Api, readonly: Member) -> None:
    response = await readonly.api.client.get(EXPORT, headers=readonly.api.headers)
    assert response.status_code == 403
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert "reading the audit trail needs the admin role" in error["message"]
