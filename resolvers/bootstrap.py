"""First start: the account, its first Owner, and the Owner's bootstrap token."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, text

from resolvers.context import Actor
from resolvers.identity.tokens import bootstrap_token
from store.audit import append_audit
from store.db import Store
from store.ids import new_id
from store.models import Account, AuditEvent, AuditOutcome, Membership, Role, User

OWNER_SUBJECT = "local:owner"
BOOTSTRAP_LOCK = 0x656E636C6962  # any fixed number, distinct from the migration lock


@dataclass(frozen=True)
class Bootstrap:
    owner: User
    actor: Actor  # the Owner, with the Owner's full powers (not a token's)
    token: str | None  # the bootstrap token, on the first start only


async def bootstrap(store: Store, save_token: Callable[[str], None] | None = None) -> Bootstrap:
    """The account and its Owner, created once; the same ones on every start after.

    On the first start the Owner's token is handed to ``save_token`` (which writes it to the
    data dir) *before* the account commits: a crash in between leaves no account, so the next
    start begins again, rather than an account whose only token was lost. Several replicas
    may start together on one PostgreSQL: an advisory lock makes exactly one of them create
    the account and receive the token."""
    token: str | None = None
    async with store.write() as session:
        if store.backend == "postgresql":
            await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": BOOTSTRAP_LOCK})
        owner = await session.scalar(select(User).where(User.subject == OWNER_SUBJECT))
        if owner is None:
            account = Account(id=new_id("account"), name="Default account", billing_profile={})
            owner = User(
                id=new_id("user"),
                account_id=account.id,
                subject=OWNER_SUBJECT,
                display_name="Owner",
            )
            session.add_all([account, owner])
            await session.flush()
            session.add(
                Membership(
                    id=new_id("membership"),
                    account_id=account.id,
                    project_id=None,
                    user_id=owner.id,
                    scope_ref=account.id,
                    role=Role.OWNER,
                )
            )
            await append_audit(
                session,
                AuditEvent(
                    id=new_id("audit_event"),
                    account_id=account.id,
                    actor_id="system",
                    actor_display="Enclii (first start)",
                    action="account.bootstrap",
                    outcome=AuditOutcome.SUCCEEDED,
                    entity_type="account",
                    entity_id=account.id,
                    payload={"owner": owner.id, "token": "bootstrap (written to the data dir)"},
                ),
            )
            row, token = bootstrap_token(owner)
            session.add(row)
            await session.flush()
            if save_token is not None:
                save_token(token)
    actor = Actor(
        id=owner.id,
        display=owner.display_name,
        account_id=owner.account_id,
        account_role=Role.OWNER,
        via="system",
    )
    return Bootstrap(owner=owner, actor=actor, token=token)
