"""First-start set-up of the embedded default: the account and its first person."""

from __future__ import annotations

from sqlalchemy import select, text

from resolvers.context import Actor
from store.db import Store
from store.ids import new_id
from store.models import Account, Membership, Role, User

LOCAL_SUBJECT = "local:owner"
BOOTSTRAP_LOCK = 0x656E636C6962  # any fixed number, distinct from the migration lock


async def ensure_local_owner(store: Store) -> Actor:
    """The default account and its Owner, created once; the same ones every start after."""
    async with store.write() as session:
        if store.backend == "postgresql":
            # Replicas starting together must not create two default accounts.
            await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": BOOTSTRAP_LOCK})
        user = await session.scalar(select(User).where(User.subject == LOCAL_SUBJECT))
        if user is None:
            account = Account(id=new_id("account"), name="Default account", billing_profile={})
            user = User(
                id=new_id("user"),
                account_id=account.id,
                subject=LOCAL_SUBJECT,
                display_name="Local owner",
            )
            session.add_all([account, user])
            await session.flush()
            session.add(
                Membership(
                    id=new_id("membership"),
                    account_id=account.id,
                    project_id=None,
                    user_id=user.id,
                    scope_ref=account.id,
                    role=Role.OWNER,
                )
            )
        return Actor(id=user.id, display=user.display_name, account_id=user.account_id)
