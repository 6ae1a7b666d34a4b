"""From an Authorization header to an Actor, or a precise reason why not.

Personal access tokens are looked up by hash; OIDC JWTs are verified against the issuer and
their user is found (or created on first sign-in) in the server's account. Roles come from
memberships, and for OIDC users also from their groups. Results are cached for a few
seconds (revocation in this process evicts at once; other replicas notice within the TTL),
and a token's last use is written at most once a minute — authentication must cost next to
nothing per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Final

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from resolvers.context import Actor
from resolvers.errors import Unauthenticated
from resolvers.identity.oidc import Identity, OidcVerifier
from resolvers.identity.rbac import strongest
from resolvers.identity.tokens import PREFIX, hash_secret, well_formed
from store.aio import cancel_and_wait
from store.audit import append_audit
from store.db import Store
from store.ids import new_id
from store.models import ApiToken, AuditEvent, AuditOutcome, Membership, Role, User, utcnow

log = logging.getLogger(__name__)

CACHE_TTL_S: Final = 5.0
LAST_USED_EVERY: Final = timedelta(minutes=1)
MISSING_HELP: Final = (
    "send 'Authorization: Bearer <token>'; on the embedded default the token is in "
    "DATA_DIR/bootstrap-token, and `enclii auth token create` makes more"
)


@dataclass(frozen=True, slots=True)
class _Cached:
    actor: Actor
    loaded: float


class Authenticator:
    def __init__(
        self,
        store: Store,
        account_id: str,
        oidc: OidcVerifier | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        cache_ttl: float = CACHE_TTL_S,
    ) -> None:
        self._store = store
        self._account_id = account_id  # where OIDC users live
        self._oidc = oidc
        self._clock = clock
        self._ttl = cache_ttl
        self._cache: dict[str, _Cached] = {}
        self._last_used: dict[str, datetime] = {}
        self._background: set[asyncio.Task[None]] = set()

    async def authenticate(self, authorization: str | None) -> Actor:
        token = bearer_token(authorization)
        if token.startswith(PREFIX):
            actor = await self._personal_token(token)
        elif token.count(".") == 2:
            actor = await self._oidc_token(token)
        else:
            raise Unauthenticated(
                "TOKEN_MALFORMED",
                "the bearer token is neither a personal access token (enclii_pat_…) nor a JWT",
            )
        if actor.expires_at is not None and actor.expires_at <= datetime.now(UTC):
            raise Unauthenticated("TOKEN_EXPIRED", "the token has expired; create a new one")
        return actor

    # -- cache --------------------------------------------------------------------------

    def _cached(self, key: str) -> Actor | None:
        entry = self._cache.get(key)
        if entry is None or self._clock() - entry.loaded > self._ttl:
            return None
        return entry.actor

    def forget(self, *, token_id: str | None = None, user_id: str | None = None) -> None:
        """Drop cached identities (a token was revoked, a role changed)."""
        for key, entry in list(self._cache.items()):
            if (token_id and entry.actor.token_id == token_id) or (
                user_id and entry.actor.id == user_id
            ):
                del self._cache[key]

    # -- personal access tokens ------------------------------------------------------------

    async def _personal_token(self, token: str) -> Actor:
        if not well_formed(token):
            raise Unauthenticated(
                "TOKEN_MALFORMED",
                "the personal access token is incomplete or mistyped (its checksum is wrong)",
            )
        digest = hash_secret(token)
        cached = self._cached(digest)
        if cached is not None:
            self._touch(cached)
            return cached
        async with self._store.read() as session:
            row = await session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
            if row is None:
                raise Unauthenticated(
                    "TOKEN_UNKNOWN", "the token is not known here; " + MISSING_HELP
                )
            if row.revoked_at is not None:
                raise Unauthenticated(
                    "TOKEN_REVOKED", f"the token {row.display_prefix}… was revoked"
                )
            if row.expires_at is not None and row.expires_at <= datetime.now(UTC):
                raise Unauthenticated(
                    "TOKEN_EXPIRED",
                    f"the token {row.display_prefix}… expired at {row.expires_at.isoformat()}",
                )
            user = await session.get(User, row.user_id)
            assert user is not None
            account_role, project_roles = await _roles(session, user.id)
        actor = Actor(
            id=user.id,
            display=f"{user.display_name} (token {row.name})",
            account_id=user.account_id,
            account_role=account_role,
            project_roles=project_roles,
            scopes=frozenset(row.scopes),
            token_id=row.id,
            token_project_id=row.project_id,
            expires_at=row.expires_at,
            via="token",
        )
        self._cache[digest] = _Cached(actor, self._clock())
        self._touch(actor)
        return actor

    def _touch(self, actor: Actor) -> None:
        """Record when a token was last used, at most once a minute, off the request path."""
        if actor.token_id is None:
            return
        now = utcnow()
        last = self._last_used.get(actor.token_id)
        if last is not None and now - last < LAST_USED_EVERY:
            return
        self._last_used[actor.token_id] = now
        task = asyncio.get_running_loop().create_task(self._write_last_used(actor.token_id, now))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _write_last_used(self, token_id: str, when: datetime) -> None:
        try:
            async with self._store.write() as session:
                await session.execute(
                    update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=when)
                )
        except Exception:
            log.warning("could not record the last use of token %s", token_id, exc_info=True)

    # -- OIDC ------------------------------------------------------------------------------

    async def _oidc_token(self, token: str) -> Actor:
        if self._oidc is None:
            raise Unauthenticated(
                "OIDC_NOT_CONFIGURED",
                "this server accepts no OIDC tokens (start it with --oidc-issuer); use a "
                "personal access token",
            )
        key = hash_secret(token)
        cached = self._cached(key)
        if cached is not None:
            return cached
        identity = await self._oidc.verify(token)
        async with self._store.write() as session:
            user = await session.scalar(
                select(User).where(
                    User.account_id == self._account_id, User.subject == identity.subject
                )
            )
            if user is None and identity.email:
                # Someone invited by email signs in for the first time: claim the invitation.
                user = await session.scalar(
                    select(User).where(
                        User.account_id == self._account_id,
                        User.subject == invitation_subject(identity.email),
                    )
                )
                if user is not None:
                    user.subject = identity.subject
            if user is None:
                user = await self._provision(session, identity)
            await session.flush()
            account_role, project_roles = await _roles(session, user.id)
        actor = Actor(
            id=user.id,
            display=user.display_name,
            account_id=user.account_id,
            account_role=strongest(account_role, self._oidc.role_for(identity.groups)),
            project_roles=project_roles,
            # The verifier allowed the clock-skew leeway past exp; so does everything after it.
            expires_at=_expiry(identity.expires_at + self._oidc.config.leeway_s),
            via="oidc",
        )
        self._cache[key] = _Cached(actor, self._clock())
        return actor

    async def _provision(self, session: AsyncSession, identity: Identity) -> User:
        """Create the user of a first sign-in, unless a concurrent first sign-in (another
        request, another replica) just did."""
        user = User(
            id=new_id("user"),
            account_id=self._account_id,
            subject=identity.subject,
            email=identity.email,
            display_name=identity.name,
        )
        try:
            async with session.begin_nested():
                session.add(user)
                await session.flush()
        except IntegrityError:
            existing = await session.scalar(
                select(User).where(
                    User.account_id == self._account_id, User.subject == identity.subject
                )
            )
            assert existing is not None, "the conflicting user must exist"
            return existing
        # A first sign-in creates someone: that belongs in the audit trail too.
        await append_audit(
            session,
            AuditEvent(
                id=new_id("audit_event"),
                account_id=self._account_id,
                actor_id=user.id,
                actor_display=user.display_name,
                action="user.provision",
                outcome=AuditOutcome.SUCCEEDED,
                entity_type="user",
                entity_id=user.id,
                payload={"subject": identity.subject, "email": identity.email},
            ),
        )
        return user

    async def close(self) -> None:
        await cancel_and_wait(*self._background, ignore_errors=True)


def _expiry(timestamp: float) -> datetime:
    # An issuer may put exp centuries ahead; datetime stops at year 9999.
    try:
        return datetime.fromtimestamp(timestamp, UTC)
    except (OverflowError, ValueError, OSError):
        return datetime.max.replace(tzinfo=UTC)


def invitation_subject(email: str) -> str:
    return f"invite:{email.strip().lower()}"


async def _roles(
    session: AsyncSession, user_id: str
) -> tuple[Role | None, MappingProxyType[str, Role]]:
    rows = (await session.scalars(select(Membership).where(Membership.user_id == user_id))).all()
    account_role = strongest(*(m.role for m in rows if m.project_id is None))
    projects: dict[str, Role] = {}
    for m in rows:
        if m.project_id is not None:
            projects[m.project_id] = strongest(projects.get(m.project_id), m.role) or m.role
    return account_role, MappingProxyType(projects)


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if authorization is None or not authorization.strip():
        raise Unauthenticated("TOKEN_MISSING", "no credentials: " + MISSING_HELP)
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthenticated(
            "HEADER_MALFORMED",
            "the Authorization header must be 'Bearer <token>' (one token, no other scheme)",
        )
    if len(token) > 8192 or not token.isascii() or not token.isprintable():
        raise Unauthenticated("TOKEN_MALFORMED", "the bearer token has characters no token has")
    return token
