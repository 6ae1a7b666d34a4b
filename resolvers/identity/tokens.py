"""Personal access tokens: ``enclii_pat_…``, scoped, expiring, stored only as a hash.

A token is 30 random base62 characters and a 6-character checksum (CRC32 of the random
part), after the ``enclii_pat_`` prefix. The checksum lets a mistyped or truncated token be
refused as malformed before any database lookup, and the prefix lets secret scanners find
leaked ones. The database keeps the SHA-256 of the whole token (tokens are random, so a
fast hash is the right one) and a short display prefix; the secret is shown once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import zlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from resolvers.context import Context
from resolvers.errors import Conflict, NotFound, Problem, ValidationFailed
from resolvers.identity.guard import require
from resolvers.identity.rbac import SCOPES, Permission, allowed
from resolvers.lookup import find_node, get_project
from resolvers.mutation import mutate, snapshot
from store.ids import new_id
from store.models import ApiToken, Project, User, utcnow

PREFIX: Final = "enclii_pat_"
_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_RANDOM_LEN: Final = 30
_CHECK_LEN: Final = 6
TOKEN_LENGTH: Final = len(PREFIX) + _RANDOM_LEN + _CHECK_LEN
_SHAPE: Final = re.compile(rf"{PREFIX}[0-9A-Za-z]{{{_RANDOM_LEN + _CHECK_LEN}}}")
DISPLAY_LEN: Final = len(PREFIX) + 6
DEFAULT_LIFETIME: Final = timedelta(days=90)
MAX_LIFETIME: Final = timedelta(days=366)
_DURATION: Final = re.compile(r"(\d+)\s*([mhdw])")
_UNITS: Final = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _base62(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, digit = divmod(value, 62)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), _CHECK_LEN)


def new_secret() -> str:
    body = "".join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_LEN))
    return PREFIX + body + _checksum(body)


def well_formed(token: str) -> bool:
    if not _SHAPE.fullmatch(token):
        return False
    body = token[len(PREFIX) : len(PREFIX) + _RANDOM_LEN]
    return token[-_CHECK_LEN:] == _checksum(body)


def hash_secret(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_lifetime(text: str) -> timedelta:
    """``30d``, ``12h``, ``2w``, ``90m``: how long a new token lives."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match:
        raise ValueError(f"{text!r} is not a duration; use forms like 30d, 12h, 2w or 90m")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    if seconds > MAX_LIFETIME.total_seconds():
        raise ValueError(f"{text!r} is too long: tokens live at most {MAX_LIFETIME.days} days")
    return timedelta(seconds=seconds)


def redacted(row: ApiToken) -> dict[str, object] | None:
    """A token row for the audit trail, without even its hash."""
    data = snapshot(row)
    if data is not None:
        data.pop("token_hash", None)
    return data


@dataclass(frozen=True, slots=True)
class NewToken:
    row: ApiToken
    secret: str


def _scope_problems(ctx: Context, scopes: list[str], project: Project | None) -> list[Problem]:
    problems = []
    role = ctx.actor.role_on(project.id if project else None)
    for scope in scopes:
        if scope not in SCOPES:
            known = ", ".join(sorted(SCOPES))
            problems.append(
                Problem(("input", "scopes"), f"unknown scope {scope!r}; known: {known}")
            )
            continue
        usable = [p for p in SCOPES[scope] if allowed(role, p)]
        if not usable and scope != "*":
            problems.append(
                Problem(
                    ("input", "scopes"),
                    f"scope {scope!r} grants nothing your role "
                    f"({role.value if role else 'none'}) may do",
                )
            )
        if (
            ctx.actor.scopes is not None
            and scope not in ctx.actor.scopes
            and "*" not in ctx.actor.scopes
        ):
            problems.append(
                Problem(
                    ("input", "scopes"),
                    f"the token you are using lacks {scope!r}, so it cannot grant it",
                )
            )
    if not scopes:
        problems.append(Problem(("input", "scopes"), "give at least one scope, e.g. deploy:write"))
    return problems


async def create_token(
    ctx: Context,
    name: str,
    scopes: list[str],
    project_id: str | None,
    expires_in: str | None,
) -> NewToken:
    """A token for the caller, no stronger than the caller (role, scopes and project)."""
    problems = []
    if not name.strip() or len(name) > 200:
        problems.append(Problem(("input", "name"), "name must be 1 to 200 characters"))
    lifetime = DEFAULT_LIFETIME
    if expires_in is not None:
        try:
            lifetime = parse_lifetime(expires_in)
        except ValueError as exc:
            problems.append(Problem(("input", "expiresIn"), str(exc)))
    if problems:
        raise ValidationFailed(problems)
    async with mutate(ctx, "token.create") as change:
        project = None
        if project_id is not None:
            project = await get_project(change.session, ctx, project_id, ("input", "projectId"))
        elif ctx.actor.token_project_id is not None:
            raise ValidationFailed.one(
                ("input", "projectId"),
                "you are using a project token; the new token must name that project",
            )
        require(ctx, Permission.VIEW, project)
        problems = _scope_problems(ctx, sorted(set(scopes)), project)
        if problems:
            raise ValidationFailed(problems)
        now = utcnow()
        expires_at = now + lifetime
        if ctx.actor.expires_at is not None:
            expires_at = min(expires_at, ctx.actor.expires_at)  # never outlive the creator's
        secret = new_secret()
        row = ApiToken(
            id=new_id("api_token"),
            account_id=ctx.actor.account_id,
            user_id=ctx.actor.id,
            project_id=project.id if project else None,
            name=name.strip(),
            token_hash=hash_secret(secret),
            display_prefix=secret[:DISPLAY_LEN],
            scopes=sorted(set(scopes)),
            expires_at=expires_at,
        )
        change.session.add(row)
        await change.session.flush()
        change.record(
            entity_type="api_token",
            entity_id=row.id,
            project_id=row.project_id,
            before=None,
            after=redacted(row),
        )
    return NewToken(row, secret)


async def revoke_token(ctx: Context, token_id: str) -> ApiToken:
    """Revoke one of your own tokens, or anyone's with the role to manage roles."""
    async with mutate(ctx, "token.revoke") as change:
        row = await find_node(change.session, ctx, token_id)
        if not isinstance(row, ApiToken):
            raise NotFound(f"Token {token_id!r} not found.", ("input", "id"))
        if row.user_id != ctx.actor.id:
            require(ctx, Permission.ROLES)
        if row.revoked_at is not None:
            raise Conflict(
                f"Token {row.name!r} was already revoked at {row.revoked_at.isoformat()}.",
                ("input", "id"),
                existing_id=row.id,
            )
        before = redacted(row)
        row.revoked_at = utcnow()
        await change.session.flush()
        change.record(
            entity_type="api_token",
            entity_id=row.id,
            project_id=row.project_id,
            before=before,
            after=redacted(row),
        )
    return row


def bootstrap_token(user: User) -> tuple[ApiToken, str]:
    """The first Owner's token on a new install: every scope, a year long."""
    secret = new_secret()
    row = ApiToken(
        id=new_id("api_token"),
        account_id=user.account_id,
        user_id=user.id,
        project_id=None,
        name="bootstrap",
        description="Written to DATA_DIR/bootstrap-token on first start.",
        token_hash=hash_secret(secret),
        display_prefix=secret[:DISPLAY_LEN],
        scopes=["*"],
        expires_at=utcnow() + MAX_LIFETIME,
    )
    return row, secret
