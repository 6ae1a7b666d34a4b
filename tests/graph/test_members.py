"""inviteMember, changeRole and removeMember over GraphQL: who may manage roles, the Owner
role's protections, precise errors that change nothing, one AuditEvent per change, and
role changes that take effect on the member's very next request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final

import asyncpg
import httpx
import pytest
from sqlalchemy import func, select, update

from graph.app import AppState, create_app
from resolvers.bootstrap import Bootstrap
from resolvers.context import Context
from resolvers.identity.authenticate import Authenticator
from resolvers.identity.ratelimit import RateLimiter
from resolvers.identity.tokens import bootstrap_token
from store.db import Store
from store.hub import EventHub
from store.ids import new_id
from store.models import AuditEvent, AuditOutcome, Base, Membership, Role, User
from tests.factories import make_environment, make_project, service_yaml
from tests.helpers import DEADLINE_S, Api

RESULT_FIELDS = """
    __typename
    ... on MembershipSuccess {
      membership { id role user { id email } project { id slug } }
    }
    ... on ConflictError { existingId }
    ... on ValidationError { problems { path message } }
    ... on Error { message code path }
"""
INVITE = f"""
mutation($email: String!, $role: Role!, $project: ID) {{
  inviteMember(input: {{email: $email, role: $role, projectId: $project}}) {{ {RESULT_FIELDS} }}
}}
"""
CHANGE = f"""
mutation($id: ID!, $role: Role!) {{
  changeRole(input: {{id: $id, role: $role}}) {{ {RESULT_FIELDS} }}
}}
"""
REMOVE = """
mutation($id: ID!) {
  removeMember(input: {id: $id}) {
    __typename
    ... on RemoveMemberSuccess { removedMembershipId }
    ... on ConflictError { existingId }
    ... on Error { message code path }
  }
}
"""
CREATE_ENV = """
mutation($project: ID!, $name: String!) {
  createEnvironment(input: {projectId: $project, name: $name}) {
    __typename
    ... on CreateEnvironmentSuccess { environment { name } }
    ... on Error { message code path }
  }
}
"""
APPLY = """
mutation($yaml: String!) {
  applyService(input: {specYaml: $yaml}) {
    __typename
    ... on ApplyServiceSuccess { service { name } }
    ... on Error { message code path }
  }
}
"""

ONLY_OWNERS: Final = "Forbidden: only an Owner may grant, change or remove the owner role."
KEEP_AN_OWNER: Final = "The account must keep at least one Owner; make someone else Owner first."


def roles_denial(where: str, have: str) -> str:
    return (
        "Forbidden: managing roles and other people's tokens needs the admin role on "
        f"{where}; {have}."
    )


# -- people and what the database holds ----------------------------------------------------


@dataclass(frozen=True)
class Member:
    user_id: str
    membership_id: str | None
    api: Api


async def add_member(
    store: Store,
    api: Api,
    account_id: str,
    name: str,
    role: Role | None,
    project_id: str | None = None,
) -> Member:
    """A user with ``role`` on the account (or on ``project_id``) and an every-scope token,
    calling through ``api``'s client."""
    async with store.write() as session:
        user = User(
            id=new_id("user"),
            account_id=account_id,
            subject=f"test:{name}",
            email=f"{name}@example.test",
            display_name=name,
        )
        session.add(user)
        await session.flush()
        membership_id = None
        if role is not None:
            membership_id = new_id("membership")
            session.add(
                Membership(
                    id=membership_id,
                    account_id=account_id,
                    project_id=project_id,
                    user_id=user.id,
                    scope_ref=project_id or account_id,
                    role=role,
                )
            )
        row, secret = bootstrap_token(user)
        session.add(row)
        user_id = user.id
    return Member(user_id, membership_id, Api(api.client, {"authorization": f"Bearer {secret}"}))


async def token_for(store: Store, api: Api, user_id: str) -> Api:
    """A new every-scope token of an existing user (say, one who was invited)."""
    async with store.write() as session:
        user = await session.get(User, user_id)
        assert user is not None
        row, secret = bootstrap_token(user)
        session.add(row)
    return Api(api.client, {"authorization": f"Bearer {secret}"})


async def membership_id_of(store: Store, user_id: str, project_id: str | None = None) -> str:
    async with store.read() as session:
        found = await session.scalar(
            select(Membership.id).where(
                Membership.user_id == user_id,
                Membership.project_id.is_(None)
                if project_id is None
                else Membership.project_id == project_id,
            )
        )
    assert found is not None
    return found


AUDIT_TABLES: Final = frozenset({"audit_events", "audit_chain_heads"})


async def database_state(store: Store) -> dict[str, Any]:
    """Row counts of every table but the audit trail's, and every membership and user."""
    tables = [t for t in Base.metadata.sorted_tables if t.name not in AUDIT_TABLES]
    async with store.read() as session:
        counts = (
            await session.execute(
                select(
                    *(
                        select(func.count()).select_from(t).scalar_subquery().label(t.name)
                        for t in tables
                    )
                )
            )
        ).one()
        memberships = (
            await session.execute(
                select(
                    Membership.id, Membership.user_id, Membership.project_id, Membership.role
                ).order_by(Membership.id)
            )
        ).all()
        users = (
            await session.execute(select(User.id, User.subject, User.email).order_by(User.id))
        ).all()
    return {
        "counts": dict(counts._mapping),
        "memberships": [tuple(m) for m in memberships],
        "users": [tuple(u) for u in users],
    }


async def last_audit_seq(store: Store) -> int:
    async with store.read() as session:
        return int(await session.scalar(select(func.max(AuditEvent.seq))) or 0)


async def audit_since(store: Store, seq: int) -> list[AuditEvent]:
    async with store.read() as session:
        rows = await session.scalars(
            select(AuditEvent).where(AuditEvent.seq > seq).order_by(AuditEvent.seq)
        )
        return list(rows.all())


async def call(
    store: Store, caller: Api, document: str, variables: dict[str, Any]
) -> tuple[dict[str, Any], list[AuditEvent]]:
    """The response body, and the audit events the call wrote."""
    seq = await last_audit_seq(store)
    body = await caller.execute(document, variables)
    return body, await audit_since(store, seq)


async def refused(
    store: Store, caller: Api, document: str, variables: dict[str, Any]
) -> tuple[list[tuple[str, str]], list[AuditEvent]]:
    """The top-level errors (message, code) of a call that must change nothing, and the
    audit events it wrote."""
    before = await database_state(store)
    body, audit = await call(store, caller, document, variables)
    assert await database_state(store) == before
    return [(e["message"], e["extensions"]["code"]) for e in body.get("errors") or []], audit


def denied_record(audit: list[AuditEvent]) -> list[tuple[str, AuditOutcome, str | None, Any]]:
    return [(a.action, a.outcome, a.project_id, a.payload) for a in audit]


# -- who may manage roles ------------------------------------------------------------------


async def test_owner_invites_a_member_and_it_is_audited(
    api: Api, store: Store, owner: Bootstrap
) -> None:
    before = await database_state(store)
    body, audit = await call(
        store, api, INVITE, {"email": "  Dev@Example.TEST ", "role": "DEVELOPER"}
    )
    result = body["data"]["inviteMember"]
    assert result["__typename"] == "MembershipSuccess", body
    membership = result["membership"]
    assert (membership["role"], membership["project"], membership["user"]["email"]) == (
        "DEVELOPER",
        None,
        "dev@example.test",
    )
    async with store.read() as session:
        user = await session.get(User, membership["user"]["id"])
        row = await session.get(Membership, membership["id"])
    assert user is not None and row is not None
    assert (user.subject, user.email, user.account_id) == (
        "invite:dev@example.test",
        "dev@example.test",
        owner.owner.account_id,
    )
    assert (row.user_id, row.project_id, row.role) == (user.id, None, Role.DEVELOPER)
    after = await database_state(store)
    assert after["counts"]["users"] == before["counts"]["users"] + 1
    assert after["counts"]["memberships"] == before["counts"]["memberships"] + 1

    assert len(audit) == 1
    event = audit[0]
    assert (event.action, event.outcome, event.actor_id) == (
        "member.invite",
        AuditOutcome.SUCCEEDED,
        owner.owner.id,
    )
    assert (event.entity_type, event.entity_id, event.project_id) == (
        "membership",
        membership["id"],
        None,
    )
    assert event.payload["before"] is None
    assert event.payload["after"]["role"] == "developer"
    assert event.payload["email"] == "dev@example.test"


async def test_admin_invites_changes_and_removes_members(
    api: Api, store: Store, owner: Bootstrap
) -> None:
    admin = await add_member(store, api, owner.owner.account_id, "admin", Role.ADMIN)

    body, audit = await call(
        store, admin.api, INVITE, {"email": "ro@example.test", "role": "READONLY"}
    )
    membership_id = body["data"]["inviteMember"]["membership"]["id"]
    assert [(a.action, a.outcome, a.actor_id, a.entity_id) for a in audit] == [
        ("member.invite", AuditOutcome.SUCCEEDED, admin.user_id, membership_id)
    ]

    body, audit = await call(store, admin.api, CHANGE, {"id": membership_id, "role": "DEVELOPER"})
    assert body["data"]["changeRole"]["membership"]["role"] == "DEVELOPER", body
    assert [(a.action, a.outcome, a.entity_id) for a in audit] == [
        ("member.change-role", AuditOutcome.SUCCEEDED, membership_id)
    ]
    assert (audit[0].payload["before"]["role"], audit[0].payload["after"]["role"]) == (
        "readonly",
        "developer",
    )
    async with store.read() as session:
        row = await session.get(Membership, membership_id)
    assert row is not None and row.role is Role.DEVELOPER

    body, audit = await call(store, admin.api, REMOVE, {"id": membership_id})
    assert body["data"]["removeMember"] == {
        "__typename": "RemoveMemberSuccess",
        "removedMembershipId": membership_id,
    }
    assert [(a.action, a.outcome, a.entity_id) for a in audit] == [
        ("member.remove", AuditOutcome.SUCCEEDED, membership_id)
    ]
    assert audit[0].payload["before"]["role"] == "developer"
    assert audit[0].payload["after"] is None
    async with store.read() as session:
        assert await session.get(Membership, membership_id) is None
        # The person stays known (their history refers to them); only the role went.
        assert await session.scalar(select(User.id).where(User.email == "ro@example.test"))


@pytest.mark.parametrize("role", [Role.DEVELOPER, Role.READONLY], ids=["developer", "readonly"])
async def test_developers_and_readonly_members_cannot_manage_roles(
    role: Role, api: Api, store: Store, owner: Bootstrap
) -> None:
    account_id = owner.owner.account_id
    caller = await add_member(store, api, account_id, "caller", role)
    target = await add_member(store, api, account_id, "target", Role.READONLY)
    message = roles_denial("the account", f"you are {role.value}")
    attempts: list[tuple[str, str, dict[str, Any]]] = [
        ("member.invite", INVITE, {"email": "new@example.test", "role": "READONLY"}),
        ("member.change-role", CHANGE, {"id": target.membership_id, "role": "ADMIN"}),
        ("member.remove", REMOVE, {"id": target.membership_id}),
    ]
    for action, document, variables in attempts:
        errors, audit = await refused(store, caller.api, document, variables)
        assert errors == [(message, "FORBIDDEN")], action
        assert denied_record(audit) == [
            (action, AuditOutcome.DENIED, None, {"reason": message, "permission": "roles"})
        ]
        assert audit[0].actor_id == caller.user_id


async def test_an_admin_cannot_grant_change_or_remove_the_owner_role(
    api: Api, store: Store, owner: Bootstrap
) -> None:
    account_id = owner.owner.account_id
    admin = await add_member(store, api, account_id, "admin", Role.ADMIN)
    developer = await add_member(store, api, account_id, "dev", Role.DEVELOPER)
    owner_membership = await membership_id_of(store, owner.owner.id)
    attempts: list[tuple[str, str, dict[str, Any]]] = [
        ("member.invite", INVITE, {"email": "boss@example.test", "role": "OWNER"}),
        ("member.change-role", CHANGE, {"id": owner_membership, "role": "ADMIN"}),
        ("member.change-role", CHANGE, {"id": developer.membership_id, "role": "OWNER"}),
        ("member.remove", REMOVE, {"id": owner_membership}),
    ]
    for action, document, variables in attempts:
        errors, audit = await refused(store, admin.api, document, variables)
        assert errors == [(ONLY_OWNERS, "FORBIDDEN")], variables
        assert denied_record(audit) == [
            (action, AuditOutcome.DENIED, None, {"reason": ONLY_OWNERS, "permission": "roles"})
        ]

    # What an Admin may do, it does: the same changes among non-owners go through.
    body = await admin.api.data(CHANGE, {"id": developer.membership_id, "role": "ADMIN"})
    assert body["changeRole"]["membership"]["role"] == "ADMIN"


async def test_an_owner_grants_the_owner_role_and_may_then_step_down(
    api: Api, store: Store, owner: Bootstrap
) -> None:
    body, audit = await call(store, api, INVITE, {"email": "heir@example.test", "role": "OWNER"})
    assert body["data"]["inviteMember"]["membership"]["role"] == "OWNER", body
    assert [(a.action, a.outcome) for a in audit] == [("member.invite", AuditOutcome.SUCCEEDED)]

    mine = await membership_id_of(store, owner.owner.id)
    body, audit = await call(store, api, CHANGE, {"id": mine, "role": "ADMIN"})
    assert body["data"]["changeRole"]["membership"]["role"] == "ADMIN", body
    assert [(a.action, a.outcome, a.entity_id) for a in audit] == [
        ("member.change-role", AuditOutcome.SUCCEEDED, mine)
    ]


async def test_the_account_keeps_at_least_one_owner(
    api: Api, store: Store, ctx: Context, owner: Bootstrap
) -> None:
    # An Owner of one project does not count: the account itself needs an Owner.
    shop = await make_project(ctx, "shop")
    await add_member(store, api, owner.owner.account_id, "po", Role.OWNER, shop.id)
    mine = await membership_id_of(store, owner.owner.id)
    before = await database_state(store)

    for role in ("ADMIN", "READONLY"):
        body, audit = await call(store, api, CHANGE, {"id": mine, "role": role})
        assert body["data"]["changeRole"] == {
            "__typename": "ConflictError",
            "existingId": mine,
            "message": KEEP_AN_OWNER,
            "code": "CONFLICT",
            "path": ["input", "role"],
        }
        assert audit == []
    body, audit = await call(store, api, REMOVE, {"id": mine})
    assert body["data"]["removeMember"] == {
        "__typename": "ConflictError",
        "existingId": mine,
        "message": KEEP_AN_OWNER,
        "code": "CONFLICT",
        "path": ["input", "id"],
    }
    assert audit == []
    assert await database_state(store) == before

    # Changing the last Owner to Owner is no change of owners at all.
    same = await api.data(CHANGE, {"id": mine, "role": "OWNER"})
    assert same["changeRole"]["membership"]["role"] == "OWNER"


async def test_inviting_a_member_twice_is_a_conflict(
    api: Api, store: Store, ctx: Context, owner: Bootstrap
) -> None:
    shop = await make_project(ctx, "shop")
    first = await api.data(INVITE, {"email": "dev@example.test", "role": "DEVELOPER"})
    membership_id = first["inviteMember"]["membership"]["id"]
    before = await database_state(store)
    body, audit = await call(store, api, INVITE, {"email": "DEV@example.test", "role": "ADMIN"})
    assert body["data"]["inviteMember"] == {
        "__typename": "ConflictError",
        "existingId": membership_id,
        "message": (
            "dev@example.test is already a member of the account as developer; use "
            "changeRole to change it."
        ),
        "code": "CONFLICT",
        "path": ["input", "email"],
    }
    assert audit == []
    assert await database_state(store) == before

    # The same person on a project is a new role (for the same user), once.
    on_project = {"email": "dev@example.test", "role": "ADMIN", "project": shop.id}
    added = await api.data(INVITE, on_project)
    assert added["inviteMember"]["membership"]["project"] == {"id": shop.id, "slug": "shop"}
    assert (
        added["inviteMember"]["membership"]["user"] == first["inviteMember"]["membership"]["user"]
    )
    again = await api.data(INVITE, on_project)
    assert again["inviteMember"]["message"] == (
        "dev@example.test is already a member of project 'shop' as admin; use changeRole to "
        "change it."
    )
    assert again["inviteMember"]["existingId"] == added["inviteMember"]["membership"]["id"]


async def test_an_invalid_email_is_a_validation_error(api: Api, store: Store) -> None:
    before = await database_state(store)
    seq = await last_audit_seq(store)
    for given, shown in [
        ("Not-An-Email", "not-an-email"),
        ("dev@localhost", "dev@localhost"),
        ("@example.test", "@example.test"),
        ("dev@exa mple.test", "dev@exa mple.test"),
        ("", ""),
    ]:
        data = await api.data(INVITE, {"email": given, "role": "DEVELOPER"})
        message = f"{shown!r} is not an email address"
        assert data["inviteMember"] == {
            "__typename": "ValidationError",
            "problems": [{"path": ["input", "email"], "message": message}],
            "message": message,
            "code": "VALIDATION_FAILED",
            "path": ["input", "email"],
        }, given
    assert await database_state(store) == before
    assert await audit_since(store, seq) == []


async def _lock_waiters(conn: Any) -> int:
    """Connections of this database waiting for a lock (seen afresh, though ``conn`` is in
    a transaction: PostgreSQL keeps one activity snapshot per transaction otherwise)."""
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    found = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    return int(found)


async def test_two_owners_stepping_down_at_once_keep_one_owner(
    api: Api, store: Store, owner: Bootstrap
) -> None:
    """Each of two Owners makes themselves Admin at the same moment. One must succeed and
    the other get the last-Owner ConflictError. On PostgreSQL both succeed: change_role
    (resolvers/identity/members.py, _last_owner) counts the Owners without locking
    anything, so two transactions each see two Owners. The interleaving is made certain
    by holding the audit chain head, which every mutation locks just before it commits,
    until both are waiting for it. (SQLite serialises writers, so there it holds.)"""
    account_id = owner.owner.account_id
    second = await add_member(store, api, account_id, "second", Role.OWNER)
    mine = await membership_id_of(store, owner.owner.id)

    async def both_step_down() -> list[dict[str, Any]]:
        return list(
            await asyncio.gather(
                api.execute(CHANGE, {"id": mine, "role": "ADMIN"}),
                second.api.execute(CHANGE, {"id": second.membership_id, "role": "ADMIN"}),
            )
        )

    if store.backend == "postgresql":
        conn = await asyncpg.connect(store.asyncpg_dsn())
        try:
            holding = conn.transaction()
            await holding.start()
            await conn.execute(
                "SELECT 1 FROM audit_chain_heads WHERE account_id = $1 FOR UPDATE", account_id
            )
            racing = asyncio.create_task(both_step_down())

            async def both_waiting() -> None:
                while await _lock_waiters(conn) < 2 and not racing.done():
                    await asyncio.sleep(0.01)

            await asyncio.wait_for(both_waiting(), DEADLINE_S)
            await holding.rollback()
            results = await racing
        finally:
            await conn.close()
    else:
        results = await both_step_down()

    outcomes = sorted(r["data"]["changeRole"]["__typename"] for r in results)
    async with store.read() as session:
        owners = await session.scalar(
            select(func.count()).where(
                Membership.account_id == account_id,
                Membership.project_id.is_(None),
                Membership.role == Role.OWNER,
            )
        )
    assert (outcomes, owners) == (["ConflictError", "MembershipSuccess"], 1)


# -- roles on one project ------------------------------------------------------------------


async def test_a_project_invite_gives_a_role_on_that_project_only(
    api: Api, store: Store, ctx: Context, owner: Bootstrap
) -> None:
    shop = await make_project(ctx, "shop")
    await make_environment(ctx, shop)
    blog = await make_project(ctx, "blog")
    await make_environment(ctx, blog)

    body, audit = await call(
        store, api, INVITE, {"email": "pat@example.test", "role": "DEVELOPER", "project": shop.id}
    )
    membership = body["data"]["inviteMember"]["membership"]
    assert (membership["role"], membership["project"]) == (
        "DEVELOPER",
        {"id": shop.id, "slug": "shop"},
    )
    assert [(a.action, a.outcome, a.project_id) for a in audit] == [
        ("member.invite", AuditOutcome.SUCCEEDED, shop.id)
    ]

    pat = await token_for(store, api, membership["user"]["id"])
    seen = await pat.data('{ projects { nodes { slug } } blog: project(slug: "blog") { id } }')
    assert seen == {"projects": {"nodes": [{"slug": "shop"}]}, "blog": None}
    deployed = await pat.data(APPLY, {"yaml": service_yaml("shop", "stage", "api")})
    assert deployed["applyService"] == {
        "__typename": "ApplyServiceSuccess",
        "service": {"name": "api"},
    }
    elsewhere = await pat.data(APPLY, {"yaml": service_yaml("blog", "stage", "api")})
    assert elsewhere["applyService"]["__typename"] == "NotFoundError"

    errors, _ = await refused(store, pat, CREATE_ENV, {"project": shop.id, "name": "prod"})
    assert errors == [
        (
            "Forbidden: creating or changing environments needs the admin role on project "
            "'shop'; you are developer.",
            "FORBIDDEN",
        )
    ]
    errors, _ = await refused(store, pat, INVITE, {"email": "x@example.test", "role": "READONLY"})
    assert errors == [(roles_denial("the account", "you have no role there"), "FORBIDDEN")]


async def test_a_project_admin_manages_that_project_s_members_only(
    api: Api, store: Store, ctx: Context, owner: Bootstrap
) -> None:
    account_id = owner.owner.account_id
    shop = await make_project(ctx, "shop")
    admin = await add_member(store, api, account_id, "padmin", Role.ADMIN, shop.id)
    colleague = await add_member(store, api, account_id, "colleague", Role.READONLY)

    invited = await admin.api.data(
        INVITE, {"email": "dev@example.test", "role": "DEVELOPER", "project": shop.id}
    )
    project_membership = invited["inviteMember"]["membership"]["id"]
    changed = await admin.api.data(CHANGE, {"id": project_membership, "role": "ADMIN"})
    assert changed["changeRole"]["membership"]["role"] == "ADMIN"

    errors, audit = await refused(
        store,
        admin.api,
        INVITE,
        {"email": "boss@example.test", "role": "OWNER", "project": shop.id},
    )
    assert errors == [(ONLY_OWNERS, "FORBIDDEN")]
    assert denied_record(audit) == [
        (
            "member.invite",
            AuditOutcome.DENIED,
            shop.id,
            {"reason": ONLY_OWNERS, "permission": "roles"},
        )
    ]
    # Account-level memberships are not theirs to see, let alone change.
    before = await database_state(store)
    body, audit = await call(
        store, admin.api, CHANGE, {"id": colleague.membership_id, "role": "ADMIN"}
    )
    assert body["data"]["changeRole"] == {
        "__typename": "NotFoundError",
        "message": f"Membership {colleague.membership_id!r} not found.",
        "code": "NOT_FOUND",
        "path": ["input", "id"],
    }
    assert audit == []
    assert await database_state(store) == before


# -- a changed role is the next request's role ---------------------------------------------


@pytest.fixture
async def cached_api(
    store: Store, hub: EventHub, owner: Bootstrap, token: str
) -> AsyncIterator[Api]:
    """The API with an authenticator whose cache never expires on its own (its clock
    stands still), so whatever a request sees after a change is what forget() made it see."""
    authenticator = Authenticator(store, owner.owner.account_id, clock=lambda: 0.0)
    state = AppState(
        store=store,
        hub=hub,
        authenticator=authenticator,
        limiter=RateLimiter(rate_per_minute=600_000, burst=100_000),
    )
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://enclii.test") as client:
        yield Api(client, headers={"authorization": f"Bearer {token}"})
    await state.connections.close()
    await authenticator.close()


async def test_a_changed_role_applies_to_the_members_next_request(
    cached_api: Api, store: Store, ctx: Context, owner: Bootstrap
) -> None:
    shop = await make_project(ctx, "shop")
    dev = await add_member(store, cached_api, owner.owner.account_id, "dev", Role.DEVELOPER)
    assert dev.membership_id is not None
    as_developer = (
        "Forbidden: creating or changing environments needs the admin role on project "
        "'shop'; you are developer."
    )
    errors, _ = await refused(store, dev.api, CREATE_ENV, {"project": shop.id, "name": "prod"})
    assert errors == [(as_developer, "FORBIDDEN")]

    # The identity is cached: a change behind the API's back is not seen...
    async with store.write() as session:
        await session.execute(
            update(Membership).where(Membership.id == dev.membership_id).values(role=Role.READONLY)
        )
    errors, _ = await refused(store, dev.api, CREATE_ENV, {"project": shop.id, "name": "prod"})
    assert errors == [(as_developer, "FORBIDDEN")]

    # ...but changeRole forgets it, and the same token is an Admin on its next request.
    await cached_api.data(CHANGE, {"id": dev.membership_id, "role": "ADMIN"})
    created = await dev.api.data(CREATE_ENV, {"project": shop.id, "name": "prod"})
    assert created["createEnvironment"] == {
        "__typename": "CreateEnvironmentSuccess",
        "environment": {"name": "prod"},
    }

    # And removeMember: the next request has no role at all.
    await cached_api.data(REMOVE, {"id": dev.membership_id})
    gone = await dev.api.data(CREATE_ENV, {"project": shop.id, "name": "dev"})
    assert gone["createEnvironment"]["__typename"] == "NotFoundError"
    assert await dev.api.data('{ project(slug: "shop") { id } }') == {"project": None}


async def test_a_role_granted_by_invite_applies_to_the_next_request(
    cached_api: Api, store: Store, ctx: Context, owner: Bootstrap
) -> None:
    """inviteMember of someone who already has a role (an account Developer made Admin of
    one project) changes their roles like changeRole does, but the mutation does not call
    authenticator.forget (graph/mutations.py, invite_member), so the new role is ignored
    until the cached identity expires."""
    shop = await make_project(ctx, "shop")
    dev = await add_member(store, cached_api, owner.owner.account_id, "dev", Role.DEVELOPER)
    errors, _ = await refused(store, dev.api, CREATE_ENV, {"project": shop.id, "name": "prod"})
    assert [code for _, code in errors] == ["FORBIDDEN"]

    invited = await cached_api.data(
        INVITE, {"email": "dev@example.test", "role": "ADMIN", "project": shop.id}
    )
    assert invited["inviteMember"]["membership"]["user"]["id"] == dev.user_id
    created = await dev.api.data(CREATE_ENV, {"project": shop.id, "name": "prod"})
    assert created["createEnvironment"]["__typename"] == "CreateEnvironmentSuccess", created
