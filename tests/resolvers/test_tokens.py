"""Personal access tokens: their format and checksum, creating, listing and revoking them
over the API, what the store keeps (only a hash), expiry, scopes, project tokens, and who may
revoke whose."""

from __future__ import annotations

import asyncio
import string
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from resolvers.bootstrap import Bootstrap
from resolvers.context import Actor, Context
from resolvers.errors import Unauthenticated
from resolvers.identity.authenticate import CACHE_TTL_S, Authenticator
from resolvers.identity.rbac import SCOPES
from resolvers.identity.tokens import (
    DISPLAY_LEN,
    MAX_LIFETIME,
    PREFIX,
    TOKEN_LENGTH,
    create_token,
    hash_secret,
    new_secret,
    parse_lifetime,
    well_formed,
)
from store.db import Store
from store.models import ApiToken, AuditEvent, Base, Event, Role, utcnow
from tests.helpers import DEADLINE_S, Api, count_statements

ALPHABET: Final = string.digits + string.ascii_uppercase + string.ascii_lowercase
RANDOM_LEN: Final = 30

CREATE_TOKEN: Final = """
mutation($input: CreateTokenInput!) {
  createToken(input: $input) {
    __typename
    ... on CreateTokenSuccess {
      secret
      token { id name displayPrefix scopes expiresAt lastUsedAt revokedAt project { id } }
    }
    ... on ValidationError { problems { path message } }
    ... on Error { message code path }
  }
}
"""

REVOKE_TOKEN: Final = """
mutation($input: RevokeTokenInput!) {
  revokeToken(input: $input) {
    __typename
    ... on RevokeTokenSuccess { token { id revokedAt } closedConnections }
    ... on Error { message code path }
  }
}
"""

LIST_TOKENS: Final = (
    "{ viewer { user { apiTokens { nodes { name displayPrefix scopes expiresAt } } } } }"
)
VIEWER: Final = "{ viewer { user { id } } }"

CREATE_PROJECT: Final = """
mutation($input: CreateProjectInput!) {
  createProject(input: $input) { ... on CreateProjectSuccess { project { id } } }
}
"""

INVITE: Final = """
mutation($input: InviteMemberInput!) {
  inviteMember(input: $input) { ... on MembershipSuccess { membership { user { id } } } }
}
"""


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def as_token(api: Api, secret: str) -> Api:
    return Api(api.client, headers={"authorization": f"Bearer {secret}"})


async def create(api: Api, **fields: Any) -> dict[str, Any]:
    variables = {"input": {"name": "ci", "scopes": ["*"], **fields}}
    result: dict[str, Any] = (await api.data(CREATE_TOKEN, variables))["createToken"]
    return result


async def created(api: Api, **fields: Any) -> dict[str, Any]:
    result = await create(api, **fields)
    assert result["__typename"] == "CreateTokenSuccess", result
    return result


async def refusal(api: Api, query: str = VIEWER) -> str:
    """The 401 reason the API gives for ``api``'s credential."""
    response = await api.client.post("/graphql", json={"query": query}, headers=api.headers)
    assert response.status_code == 401, response.text
    body = response.json()
    assert "data" not in body
    reason: str = body["errors"][0]["extensions"]["reason"]
    return reason


async def token_row(store: Store, token_id: str) -> ApiToken:
    async with store.read() as session:
        row = await session.get(ApiToken, token_id)
    assert row is not None
    return row


async def row_counts(store: Store) -> dict[str, int]:
    async with store.read() as session:
        return {
            model.__tablename__: int(
                await session.scalar(select(func.count()).select_from(model)) or 0
            )
            for model in (ApiToken, AuditEvent, Event)
        }


async def set_expires_at(store: Store, token_id: str, when: datetime) -> None:
    async with store.write() as session:
        await session.execute(
            update(ApiToken).where(ApiToken.id == token_id).values(expires_at=when)
        )


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


# -- the format -----------------------------------------------------------------------------


def spec_checksum(body: str) -> str:
    """The documented checksum, written out independently: CRC32 of the random part as six
    base62 digits, most significant first."""
    value, digits = zlib.crc32(body.encode()), []
    for _ in range(6):
        value, digit = divmod(value, 62)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits))


def test_a_new_secret_has_the_documented_shape() -> None:
    secrets = {new_secret() for _ in range(200)}
    assert len(secrets) == 200
    for secret in secrets:
        assert secret.startswith("enclii_pat_")
        assert len(secret) == TOKEN_LENGTH == len(PREFIX) + 36
        body = secret[len(PREFIX) :]
        assert all(c in ALPHABET for c in body)
        assert secret[-6:] == spec_checksum(body[:RANDOM_LEN])
        assert well_formed(secret)


@settings(max_examples=200, deadline=None)
@given(
    body=st.text(ALPHABET, min_size=RANDOM_LEN, max_size=RANDOM_LEN),
    position=st.integers(0, RANDOM_LEN + 5),
    replacement=st.sampled_from(ALPHABET),
)
def test_any_one_character_change_breaks_the_checksum(
    body: str, position: int, replacement: str
) -> None:
    token = PREFIX + body + spec_checksum(body)
    assert well_formed(token)
    chars = list(token[len(PREFIX) :])
    if chars[position] == replacement:
        return
    chars[position] = replacement
    assert not well_formed(PREFIX + "".join(chars))


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s[:-1],
        lambda s: s + "0",
        lambda s: s.replace(PREFIX, "enclii_PAT_"),
        lambda s: s[: len(PREFIX)] + s[len(PREFIX) + 1 :] + s[len(PREFIX)],
        lambda s: s.upper(),
    ],
    ids=["truncated", "extended", "prefix", "rotated", "uppercased"],
)
def test_mangled_tokens_are_not_well_formed(mangle: Any) -> None:
    assert not well_formed(mangle(new_secret()))


async def test_a_mistyped_token_is_refused_before_any_database_lookup(
    store: Store, owner: Bootstrap, token: str
) -> None:
    authenticator = Authenticator(store, owner.owner.account_id)
    try:
        body_start = len(PREFIX)
        for position in (body_start, body_start + 17, TOKEN_LENGTH - 7, TOKEN_LENGTH - 1):
            replacement = "a" if token[position] != "a" else "b"
            mistyped = token[:position] + replacement + token[position + 1 :]
            with count_statements(store) as seen, pytest.raises(Unauthenticated) as refused:
                await authenticator.authenticate(f"Bearer {mistyped}")
            assert refused.value.reason == "TOKEN_MALFORMED"
            assert seen == []

        # The counter does see lookups: a well-formed unknown token costs one.
        with count_statements(store) as seen, pytest.raises(Unauthenticated) as refused:
            await authenticator.authenticate(f"Bearer {new_secret()}")
        assert refused.value.reason == "TOKEN_UNKNOWN"
        assert any("api_tokens" in statement for statement in seen)
    finally:
        await authenticator.close()


# -- creating, storing, listing ---------------------------------------------------------------


async def test_create_token_shows_the_secret_once_and_stores_only_its_hash(
    api: Api, store: Store
) -> None:
    before = utcnow()
    result = await created(api, name="deploy bot", scopes=["logs:read", "deploy:write"])
    after = utcnow()
    secret = result["secret"]
    assert well_formed(secret)
    token = result["token"]
    assert token["name"] == "deploy bot"
    assert token["displayPrefix"] == secret[:DISPLAY_LEN]
    assert token["scopes"] == ["deploy:write", "logs:read"]
    assert before + timedelta(days=90) <= when(token["expiresAt"]) <= after + timedelta(days=90)
    assert (token["lastUsedAt"], token["revokedAt"], token["project"]) == (None, None, None)

    row = await token_row(store, token["id"])
    assert row.token_hash == hash_secret(secret)
    assert len(row.token_hash) == 64 and row.token_hash != secret

    # Neither the secret nor its random part is anywhere in the store; the hash only where
    # it belongs (not in the audit trail, not in events).
    random_part = secret[len(PREFIX) :]
    found: list[tuple[str, str]] = []
    async with store.read() as session:
        for table in Base.metadata.sorted_tables:
            for values in (await session.execute(select(table))).all():
                for column, value in zip(table.columns, values, strict=True):
                    text = str(value)
                    if random_part in text or secret in text:
                        found.append((table.name, column.name))
                    if row.token_hash in text and (table.name, column.name) != (
                        "api_tokens",
                        "token_hash",
                    ):
                        found.append((table.name, column.name))
    assert found == []

    # The secret is never shown again.
    for query in (LIST_TOKENS, f'{{ node(id: "{token["id"]}") {{ ... on ApiToken {{ name }} }} }}'):
        response = await api.client.post("/graphql", json={"query": query}, headers=api.headers)
        assert response.status_code == 200
        assert "errors" not in response.json()
        assert random_part not in response.text


async def test_the_api_token_type_has_no_secret_field(api: Api) -> None:
    data = await api.data('{ __type(name: "ApiToken") { fields { name } } }')
    fields = {f["name"] for f in data["__type"]["fields"]}
    assert "displayPrefix" in fields
    assert not {f for f in fields if "secret" in f.lower() or "hash" in f.lower()}


async def test_tokens_are_listed_newest_first_without_secrets(api: Api) -> None:
    first = await created(api, name="first", scopes=["logs:read"], expiresIn="12h")
    second = await created(api, name="second", scopes=["deploy:write", "routes:write"])
    response = await api.client.post("/graphql", json={"query": LIST_TOKENS}, headers=api.headers)
    nodes = response.json()["data"]["viewer"]["user"]["apiTokens"]["nodes"]
    assert [n["name"] for n in nodes] == ["second", "first", "bootstrap"]
    assert nodes[0] == {
        "name": "second",
        "displayPrefix": second["secret"][:DISPLAY_LEN],
        "scopes": ["deploy:write", "routes:write"],
        "expiresAt": second["token"]["expiresAt"],
    }
    assert nodes[1]["expiresAt"] == first["token"]["expiresAt"]
    assert nodes[2]["scopes"] == ["*"]
    for result in (first, second):
        assert result["secret"][len(PREFIX) :] not in response.text


# -- refusals ---------------------------------------------------------------------------------


async def test_revoking_a_token_refuses_its_next_request(api: Api, store: Store) -> None:
    result = await created(api, name="short-lived")
    bot = as_token(api, result["secret"])
    assert (await bot.data(VIEWER))["viewer"]["user"]["id"]  # now in the auth cache

    revoked = (await api.data(REVOKE_TOKEN, {"input": {"id": result["token"]["id"]}}))[
        "revokeToken"
    ]
    assert revoked["__typename"] == "RevokeTokenSuccess"
    assert revoked["token"]["revokedAt"] is not None
    assert await refusal(bot) == "TOKEN_REVOKED"
    assert (await token_row(store, result["token"]["id"])).revoked_at is not None

    again = (await api.data(REVOKE_TOKEN, {"input": {"id": result["token"]["id"]}}))["revokeToken"]
    assert again["__typename"] == "ConflictError"
    assert "already revoked" in again["message"]
    assert again["path"] == ["input", "id"]


async def test_a_token_can_revoke_itself(api: Api) -> None:
    result = await created(api, name="self")
    bot = as_token(api, result["secret"])
    revoked = (await bot.data(REVOKE_TOKEN, {"input": {"id": result["token"]["id"]}}))[
        "revokeToken"
    ]
    assert revoked["__typename"] == "RevokeTokenSuccess"
    assert await refusal(bot) == "TOKEN_REVOKED"


async def test_a_revocation_by_another_replica_is_noticed_within_the_cache_ttl(
    ctx: Context, owner: Bootstrap
) -> None:
    clock = FakeClock()
    authenticator = Authenticator(ctx.store, owner.owner.account_id, clock=clock)
    try:
        new = await create_token(ctx, "replica", ["*"], None, None)
        await authenticator.authenticate(f"Bearer {new.secret}")
        async with ctx.store.write() as session:
            await session.execute(
                update(ApiToken).where(ApiToken.id == new.row.id).values(revoked_at=utcnow())
            )
        await authenticator.authenticate(f"Bearer {new.secret}")  # cached, as documented
        clock.advance(CACHE_TTL_S + 0.1)
        with pytest.raises(Unauthenticated) as refused:
            await authenticator.authenticate(f"Bearer {new.secret}")
        assert refused.value.reason == "TOKEN_REVOKED"
    finally:
        await authenticator.close()


async def test_an_expired_token_is_refused(api: Api, store: Store) -> None:
    result = await created(api, name="old")
    await set_expires_at(store, result["token"]["id"], utcnow() - timedelta(seconds=1))
    assert await refusal(as_token(api, result["secret"])) == "TOKEN_EXPIRED"


async def test_an_unknown_token_is_refused(api: Api) -> None:
    assert await refusal(as_token(api, new_secret())) == "TOKEN_UNKNOWN"


async def test_a_mistyped_token_is_malformed_over_the_api(api: Api, token: str) -> None:
    mistyped = token[:-1] + ("x" if token[-1] != "x" else "y")
    assert await refusal(as_token(api, mistyped)) == "TOKEN_MALFORMED"


# -- expiry -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "lifetime"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("2w", timedelta(weeks=2)),
        ("90m", timedelta(minutes=90)),
        (" 30D ", timedelta(days=30)),
        ("7 d", timedelta(days=7)),
    ],
)
def test_lifetimes_parse(text: str, lifetime: timedelta) -> None:
    assert parse_lifetime(text) == lifetime


BAD_LIFETIMES: Final = ["", "30", "d", "1y", "0d", "-1d", "1.5d", "30 days", "3d12h", "367d"]


async def test_bad_lifetimes_are_validation_errors_and_change_nothing(
    api: Api, store: Store
) -> None:
    before = await row_counts(store)
    for text in BAD_LIFETIMES:
        result = await create(api, expiresIn=text)
        assert result["__typename"] == "ValidationError", (text, result)
        assert result["code"] == "VALIDATION_FAILED"
        assert result["path"] == ["input", "expiresIn"]
        assert [p["path"] for p in result["problems"]] == [["input", "expiresIn"]]
    assert await row_counts(store) == before
    assert (await create(api, expiresIn="367d"))["message"] == (
        "'367d' is too long: tokens live at most 366 days"
    )
    assert "longer than zero" in (await create(api, expiresIn="0d"))["message"]
    assert "30d, 12h, 2w or 90m" in (await create(api, expiresIn="1y"))["message"]


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 10**6), st.sampled_from([("m", 60), ("h", 3600), ("d", 86400)]))
def test_any_count_of_a_unit_parses_up_to_the_maximum(count: int, unit: tuple[str, int]) -> None:
    seconds = count * unit[1]
    if seconds <= MAX_LIFETIME.total_seconds():
        assert parse_lifetime(f"{count}{unit[0]}") == timedelta(seconds=seconds)
    else:
        with pytest.raises(ValueError, match="too long: tokens live at most 366 days"):
            parse_lifetime(f"{count}{unit[0]}")


async def test_an_enormous_expires_in_is_a_validation_error(api: Api, store: Store) -> None:
    """tokens.parse_lifetime: timedelta(seconds=99999999999 * 86400) raises OverflowError,
    which create_token does not catch (it expects ValueError): INTERNAL_SERVER_ERROR."""
    before = await row_counts(store)
    body = await api.execute(
        CREATE_TOKEN, {"input": {"name": "x", "scopes": ["*"], "expiresIn": "99999999999d"}}
    )
    assert "errors" not in body, body["errors"]
    result = body["data"]["createToken"]
    assert result["__typename"] == "ValidationError"
    assert result["path"] == ["input", "expiresIn"]
    assert await row_counts(store) == before


@pytest.mark.parametrize(
    ("text", "lifetime"), [("30d", timedelta(days=30)), ("12h", timedelta(hours=12))]
)
async def test_expires_in_sets_the_expiry(api: Api, text: str, lifetime: timedelta) -> None:
    before = utcnow()
    result = await created(api, expiresIn=text)
    after = utcnow()
    assert before + lifetime <= when(result["token"]["expiresAt"]) <= after + lifetime


async def test_a_created_token_never_outlives_the_creating_token(api: Api, store: Store) -> None:
    parent = await created(api, name="parent", expiresIn="1h")
    parent_expiry = when(parent["token"]["expiresAt"])
    as_parent = as_token(api, parent["secret"])

    longer = await created(as_parent, name="child", expiresIn="30d")
    assert when(longer["token"]["expiresAt"]) == parent_expiry
    default = await created(as_parent, name="default")
    assert when(default["token"]["expiresAt"]) == parent_expiry
    shorter = await created(as_parent, name="short", expiresIn="10m")
    assert when(shorter["token"]["expiresAt"]) < parent_expiry
    assert (await token_row(store, longer["token"]["id"])).expires_at == parent_expiry


# -- scopes and projects --------------------------------------------------------------------


async def test_an_unknown_scope_lists_the_known_ones(api: Api, store: Store) -> None:
    before = await row_counts(store)
    result = await create(api, scopes=["deploy:write", "deploy:everything"])
    assert result["__typename"] == "ValidationError"
    assert result["path"] == ["input", "scopes"]
    [problem] = result["problems"]
    assert problem["path"] == ["input", "scopes"]
    assert "'deploy:everything'" in problem["message"]
    known = problem["message"].split("known: ", 1)[1]
    assert known.split(", ") == sorted(SCOPES)
    assert await row_counts(store) == before


async def test_no_scopes_is_a_validation_error(api: Api, store: Store) -> None:
    before = await row_counts(store)
    result = await create(api, scopes=[])
    assert result["__typename"] == "ValidationError"
    assert result["path"] == ["input", "scopes"]
    assert "at least one scope" in result["message"]
    assert await row_counts(store) == before


async def test_a_narrow_token_cannot_grant_more_than_it_has(api: Api) -> None:
    narrow = await created(api, name="narrow", scopes=["deploy:write"])
    result = await create(as_token(api, narrow["secret"]), scopes=["deploy:write", "roles:write"])
    assert result["__typename"] == "ValidationError"
    assert result["path"] == ["input", "scopes"]
    assert "lacks 'roles:write'" in result["message"]
    same = await created(as_token(api, narrow["secret"]), scopes=["deploy:write"])
    assert same["token"]["scopes"] == ["deploy:write"]


async def test_a_project_token_cannot_create_an_account_token(api: Api, store: Store) -> None:
    project = (await api.data(CREATE_PROJECT, {"input": {"name": "Shop"}}))["createProject"][
        "project"
    ]
    scoped = await created(api, name="shop only", projectId=project["id"])
    assert scoped["token"]["project"] == {"id": project["id"]}
    as_project = as_token(api, scoped["secret"])

    before = await row_counts(store)
    refused = await create(as_project, name="escape")
    assert refused["__typename"] == "ValidationError"
    assert refused["path"] == ["input", "projectId"]
    assert "project token" in refused["message"]
    assert await row_counts(store) == before

    inside = await created(as_project, name="inside", projectId=project["id"])
    assert inside["token"]["project"] == {"id": project["id"]}
    assert (await token_row(store, inside["token"]["id"])).project_id == project["id"]


# -- last use -------------------------------------------------------------------------------


async def test_last_used_at_is_written_after_use(api: Api, store: Store) -> None:
    result = await created(api, name="used")
    assert (await token_row(store, result["token"]["id"])).last_used_at is None
    before = utcnow()
    await as_token(api, result["secret"]).data(VIEWER)

    async def written() -> datetime:
        while True:
            last = (await token_row(store, result["token"]["id"])).last_used_at
            if last is not None:
                return last
            await asyncio.sleep(0.01)

    last_used = await asyncio.wait_for(written(), DEADLINE_S)
    assert before <= last_used <= utcnow()


async def test_a_cached_token_costs_no_lookup(ctx: Context, owner: Bootstrap) -> None:
    authenticator = Authenticator(ctx.store, owner.owner.account_id, clock=FakeClock())
    try:
        new = await create_token(ctx, "hot", ["*"], None, None)
        first = await authenticator.authenticate(f"Bearer {new.secret}")
        with count_statements(ctx.store) as seen:
            for _ in range(20):
                assert (await authenticator.authenticate(f"Bearer {new.secret}")) == first
        # At most the once-a-minute last-use write; never a lookup.
        assert [s for s in seen if not s.lstrip().upper().startswith("UPDATE")] == []
    finally:
        await authenticator.close()


# -- other people's tokens ------------------------------------------------------------------


@dataclass
class Member:
    user_id: str
    token_id: str
    api: Api


@pytest.fixture
async def members(api: Api, ctx: Context, owner: Bootstrap) -> AsyncIterator[dict[str, Member]]:
    """A developer and an admin, each with a token made for them."""
    out = {}
    for name, role in (("dev", Role.DEVELOPER), ("admin", Role.ADMIN)):
        invited = await api.data(
            INVITE, {"input": {"email": f"{name}@example.com", "role": role.name}}
        )
        user_id = invited["inviteMember"]["membership"]["user"]["id"]
        actor = Actor(
            id=user_id,
            display=name,
            account_id=owner.owner.account_id,
            account_role=role,
            via="system",
        )
        member_ctx = Context(store=ctx.store, hub=ctx.hub, actor=actor)
        new = await create_token(member_ctx, f"{name}'s token", ["*"], None, None)
        out[name] = Member(user_id, new.row.id, as_token(api, new.secret))
    yield out


async def _bootstrap_token_id(store: Store) -> str:
    async with store.read() as session:
        token_id = await session.scalar(select(ApiToken.id).where(ApiToken.name == "bootstrap"))
    assert token_id is not None
    return token_id


async def test_revoking_someone_elses_token_needs_the_admin_role(
    api: Api, store: Store, members: dict[str, Member]
) -> None:
    dev, admin = members["dev"], members["admin"]
    owners_token = await _bootstrap_token_id(store)
    for victim in (owners_token, admin.token_id):
        result = (await dev.api.data(REVOKE_TOKEN, {"input": {"id": victim}}))["revokeToken"]
        assert result["__typename"] == "NotFoundError"  # a developer cannot even see it
        assert (await token_row(store, victim)).revoked_at is None
    assert (await api.data(VIEWER))["viewer"]["user"]["id"]
    assert (await admin.api.data(VIEWER))["viewer"]["user"]["id"] == admin.user_id

    revoked = (await admin.api.data(REVOKE_TOKEN, {"input": {"id": dev.token_id}}))["revokeToken"]
    assert revoked["__typename"] == "RevokeTokenSuccess"
    assert await refusal(dev.api) == "TOKEN_REVOKED"


async def test_a_developer_cannot_list_someone_elses_tokens_but_an_admin_can(
    members: dict[str, Member],
) -> None:
    dev, admin = members["dev"], members["admin"]
    query = f'{{ node(id: "{admin.user_id}") {{ ... on User {{ apiTokens {{ nodes {{ name }} }} }} }} }}'
    body = await dev.api.execute(query)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    query = (
        f'{{ node(id: "{dev.user_id}") {{ ... on User {{ apiTokens {{ nodes {{ name }} }} }} }} }}'
    )
    data = await admin.api.data(query)
    assert data["node"]["apiTokens"]["nodes"] == [{"name": "dev's token"}]


async def test_a_developer_cannot_mint_a_roles_token(members: dict[str, Member]) -> None:
    result = await create(members["dev"].api, scopes=["roles:write"])
    assert result["__typename"] == "ValidationError"
    assert "grants nothing your role (developer) may do" in result["message"]
