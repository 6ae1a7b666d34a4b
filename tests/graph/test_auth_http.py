"""The gate in front of the API, through the real ASGI app: what needs a token, what does
not, and the precise 401 every kind of bad credential gets (never a 5xx, never data)."""

from __future__ import annotations

import asyncio
import string
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Final

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from graph.app import AppState, create_app
from resolvers.bootstrap import Bootstrap
from resolvers.context import Context
from resolvers.identity.authenticate import Authenticator
from resolvers.identity.oidc import OidcVerifier
from resolvers.identity.ratelimit import RateLimiter
from resolvers.identity.tokens import PREFIX, create_token, new_secret, revoke_token
from store.models import ApiToken, utcnow
from tests.helpers import DEADLINE_S, Api, LiveServer
from tests.resolvers.test_oidc import CRAFTED, FakeIssuer, oidc_config, rsa_key

VIEWER: Final = {"query": "{ viewer { user { id } } }"}
UNAUTHENTICATED_REASONS: Final = frozenset(
    {"TOKEN_MISSING", "HEADER_MALFORMED", "TOKEN_MALFORMED", "TOKEN_UNKNOWN", "OIDC_NOT_CONFIGURED"}
)
FUZZ: Final = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _refusal(response: httpx.Response) -> str:
    """The reason of a well-formed 401, checking everything else a 401 must have."""
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["www-authenticate"].startswith(
        'Bearer realm="enclii", error="invalid_token", error_description="'
    )
    body = response.json()
    assert set(body) == {"errors"}  # no data
    [error] = body["errors"]
    assert error["message"]
    assert set(error["extensions"]) == {"code", "reason"}
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    reason: str = error["extensions"]["reason"]
    return reason


async def _post(api: Api, authorization: str | bytes | None) -> httpx.Response:
    headers: dict[bytes, bytes] = {}
    if authorization is not None:
        raw = authorization.encode() if isinstance(authorization, str) else authorization
        headers[b"authorization"] = raw
    return await api.client.post("/graphql", json=VIEWER, headers=headers)


async def test_no_header_is_token_missing(api: Api) -> None:
    response = await _post(api, None)
    assert _refusal(response) == "TOKEN_MISSING"
    assert response.json()["errors"][0]["extensions"] == {
        "code": "UNAUTHENTICATED",
        "reason": "TOKEN_MISSING",
    }
    assert "bootstrap-token" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        ("", "TOKEN_MISSING"),
        ("   ", "TOKEN_MISSING"),
        ("Basic xyz", "HEADER_MALFORMED"),
        ("Basic dXNlcjpwYXNz", "HEADER_MALFORMED"),
        ("Bearer a b", "HEADER_MALFORMED"),
        ("Bearer", "HEADER_MALFORMED"),
        ("Bearer   ", "HEADER_MALFORMED"),
        ("Token abc", "HEADER_MALFORMED"),
        ("Bearer nonsense", "TOKEN_MALFORMED"),
        ("Bearer enclii_pat_short", "TOKEN_MALFORMED"),
        ("Bearer " + "x" * 9000, "TOKEN_MALFORMED"),
        ("Bearer a.b.c", "OIDC_NOT_CONFIGURED"),
    ],
)
async def test_bad_headers_have_precise_reasons(api: Api, authorization: str, reason: str) -> None:
    assert _refusal(await _post(api, authorization)) == reason


async def test_control_characters_in_the_token_are_malformed(api: Api) -> None:
    assert _refusal(await _post(api, b"Bearer abc\x01def")) == "TOKEN_MALFORMED"
    assert _refusal(await _post(api, "Bearer caf\u00e9".encode())) == "TOKEN_MALFORMED"


async def test_the_scheme_is_case_insensitive(api: Api, token: str) -> None:
    for scheme in ("bearer", "BEARER", "Bearer"):
        response = await _post(api, f"{scheme} {token}")
        assert response.status_code == 200, response.text
        assert response.json()["data"]["viewer"]["user"]["id"]


async def test_health_checks_are_open(api: Api) -> None:
    healthz = await api.client.get("/healthz")
    assert (healthz.status_code, healthz.json()) == (200, {"status": "ok"})
    readyz = await api.client.get("/readyz")
    assert readyz.status_code == 200
    assert readyz.json()["status"] == "ready"
    assert "ratelimit-remaining" not in healthz.headers


async def test_the_ui_page_is_open(api: Api) -> None:
    response = await api.client.get("/", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


async def test_graphiql_page_is_open_but_queries_over_get_need_a_token(
    api: Api, token: str
) -> None:
    page = await api.client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()

    for accept in ("text/html", "application/json"):
        query = await api.client.get(
            "/graphql", params={"query": "{ __typename }"}, headers={"accept": accept}
        )
        assert _refusal(query) == "TOKEN_MISSING"
    json_get = await api.client.get("/graphql", headers={"accept": "application/json"})
    assert _refusal(json_get) == "TOKEN_MISSING"

    authorised = await api.client.get(
        "/graphql",
        params={"query": "{ __typename }"},
        headers={"authorization": f"Bearer {token}", "accept": "application/json"},
    )
    assert authorised.status_code == 200
    assert authorised.json() == {"data": {"__typename": "Query"}}


async def test_a_percent_encoded_query_parameter_does_not_bypass_the_gate(api: Api) -> None:
    """graph/auth.py _is_page_request looks for the bytes b"query=" in the raw query string,
    but Strawberry decodes parameter names: ?%71uery=… is ?query=…, executed with no token
    (as NOBODY, and without rate limits)."""
    for url in ("/graphql?%71uery={__typename}", "/graphql?quer%79={__typename}"):
        response = await api.client.get(url, headers={"accept": "text/html"})
        assert _refusal(response) == "TOKEN_MISSING", response.text


async def test_audit_export_needs_a_token(api: Api, token: str) -> None:
    assert _refusal(await api.client.get("/audit/export.ndjson")) == "TOKEN_MISSING"
    refused = await api.client.get(
        "/audit/export.ndjson",
        headers={"authorization": "Bearer nonsense", "accept": "text/html"},
    )
    assert _refusal(refused) == "TOKEN_MALFORMED"
    allowed = await api.client.get(
        "/audit/export.ndjson", headers={"authorization": f"Bearer {token}"}
    )
    assert allowed.status_code == 200
    assert allowed.headers["content-type"].startswith("application/x-ndjson")


async def test_mutations_need_a_token(api: Api) -> None:
    response = await api.client.post(
        "/graphql", json={"query": 'mutation { createProject(input: {name: "x"}) { __typename } }'}
    )
    assert _refusal(response) == "TOKEN_MISSING"


# -- fuzzing the header ---------------------------------------------------------------------


@FUZZ
@given(value=st.text(max_size=120))
async def test_any_text_header_is_a_known_401(api: Api, value: str) -> None:
    assert _refusal(await _post(api, value.encode())) in UNAUTHENTICATED_REASONS


@FUZZ
@given(value=st.binary(max_size=120).map(lambda b: b.decode("latin-1")))
async def test_any_latin1_header_is_a_known_401(api: Api, value: str) -> None:
    assert _refusal(await _post(api, value.encode("latin-1"))) in UNAUTHENTICATED_REASONS


@FUZZ
@given(
    value=st.one_of(
        st.text(max_size=80).map(lambda t: "Bearer " + t),
        st.text(string.ascii_letters + string.digits, min_size=30, max_size=40).map(
            lambda t: f"Bearer {PREFIX}{t}"
        ),
        st.lists(st.text(string.ascii_letters + "-_", max_size=20), min_size=3, max_size=3).map(
            lambda parts: "Bearer " + ".".join(parts)
        ),
    )
)
async def test_any_bearer_header_is_a_known_401(api: Api, value: str) -> None:
    assert _refusal(await _post(api, value.encode())) in UNAUTHENTICATED_REASONS


async def _raw_request(server: LiveServer, authorization: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(
            b"POST /graphql HTTP/1.1\r\nHost: enclii.test\r\nAuthorization: "
            + authorization
            + b"\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
            + b"Connection: close\r\n\r\n{}"
        )
        await writer.drain()
        return await asyncio.wait_for(reader.read(), DEADLINE_S)
    finally:
        writer.close()
        await writer.wait_closed()


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=st.binary(max_size=200).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")))
async def test_arbitrary_header_bytes_never_crash_the_server(
    live_server: LiveServer, value: bytes
) -> None:
    raw = await _raw_request(live_server, value)
    status_line = raw.split(b"\r\n", 1)[0]
    assert status_line.split(b" ")[1] in (b"400", b"401"), raw[:300]
    async with httpx.AsyncClient(base_url=live_server.http_url) as client:
        assert (await client.get("/healthz")).status_code == 200


# -- every failure its own reason -------------------------------------------------------------


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    fake = FakeIssuer()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
async def oidc_api(
    ctx: Context, owner: Bootstrap, issuer: FakeIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with both kinds of credential: personal access tokens and the fake issuer's."""
    authenticator = Authenticator(
        ctx.store, owner.owner.account_id, OidcVerifier(oidc_config(issuer))
    )
    state = AppState(
        store=ctx.store,
        hub=ctx.hub,
        authenticator=authenticator,
        limiter=RateLimiter(rate_per_minute=600_000, burst=100_000),
    )
    transport = httpx.ASGITransport(app=create_app(state), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://enclii.test") as client:
        yield client
    await state.connections.close()
    await authenticator.close()


def _mistyped(secret: str) -> str:
    last = secret[-1]
    return secret[:-1] + ("A" if last != "A" else "B")


async def test_each_failure_has_a_distinct_reason_and_no_data(
    oidc_api: httpx.AsyncClient, issuer: FakeIssuer, ctx: Context
) -> None:
    expired = await create_token(ctx, "expired", ["*"], None, None)
    async with ctx.store.write() as session:
        await session.execute(
            update(ApiToken)
            .where(ApiToken.id == expired.row.id)
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    revoked = await create_token(ctx, "revoked", ["*"], None, None)
    await revoke_token(ctx, revoked.row.id)
    valid = await create_token(ctx, "valid", ["*"], None, None)

    credentials = {
        "malformed": _mistyped(valid.secret),
        "expired": expired.secret,
        "wrong audience": issuer.mint(aud="another-api"),
        "wrong signature": issuer.mint(key=rsa_key(99)),
        "revoked": revoked.secret,
        "unknown": new_secret(),
    }
    reasons: dict[str, str] = {}
    for name, credential in credentials.items():
        response = await oidc_api.post(
            "/graphql", json=VIEWER, headers={"authorization": f"Bearer {credential}"}
        )
        reasons[name] = _refusal(response)
    assert reasons == {
        "malformed": "TOKEN_MALFORMED",
        "expired": "TOKEN_EXPIRED",
        "wrong audience": "TOKEN_AUDIENCE",
        "wrong signature": "TOKEN_SIGNATURE",
        "revoked": "TOKEN_REVOKED",
        "unknown": "TOKEN_UNKNOWN",
    }
    assert len(set(reasons.values())) == len(reasons)

    # The same app serves both kinds of valid credential.
    for credential in (valid.secret, issuer.mint("someone")):
        ok = await oidc_api.post(
            "/graphql", json=VIEWER, headers={"authorization": f"Bearer {credential}"}
        )
        assert ok.status_code == 200, ok.text
        assert ok.json()["data"]["viewer"]["user"]["id"]


@pytest.mark.parametrize("token", list(CRAFTED.values()), ids=list(CRAFTED))
async def test_crafted_jwts_are_a_401_not_a_500(oidc_api: httpx.AsyncClient, token: str) -> None:
    """No key is needed to send these; OidcVerifier.verify lets PyJWT's DecodeError /
    InvalidTokenError escape, AuthGate catches only Unauthenticated, and the server
    answers 500."""
    response = await oidc_api.post(
        "/graphql", json=VIEWER, headers={"authorization": f"Bearer {token}"}
    )
    assert _refusal(response) == "TOKEN_MALFORMED"
