"""OIDC bearer tokens: verification against a local issuer with real keys, every way a token
can be wrong, key rotation and JWKS caching, provisioning users on first sign-in, and the
whole path through the HTTP app.

No real OIDC provider can run on a test machine, so ``FakeIssuer`` plays one: real RSA keys
(cryptography), a discovery document and a JWKS served over a real local HTTP socket, and
tokens minted with PyJWT. It counts the requests it gets, which is how JWKS caching is seen.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

import httpx
import jwt
import jwt.api_jwk
import jwt.jwk_set_cache
import jwt.jwks_client
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import func, select

from graph.app import AppState, create_app
from resolvers.bootstrap import Bootstrap
from resolvers.context import Context
from resolvers.errors import Unauthenticated
from resolvers.identity.authenticate import Authenticator
from resolvers.identity.oidc import OidcConfig, OidcVerifier
from resolvers.identity.ratelimit import RateLimiter
from store.db import Store
from store.models import Membership, Role, User
from tests.helpers import Api, free_port

AUDIENCE: Final = "enclii-api"
ROLE_MAP: Final = {
    "everyone": Role.READONLY,
    "developers": Role.DEVELOPER,
    "platform-admins": Role.ADMIN,
    "platform-owners": Role.OWNER,
}
JWKS_PATH: Final = "/jwks"
DISCOVERY_PATH: Final = "/.well-known/openid-configuration"
COOLDOWN_S: Final = 10.0  # OidcVerifier's PyJWKClient refetch cooldown


@functools.cache
def rsa_key(index: int) -> RSAPrivateKey:
    """Real RSA keys, made once per test session (each takes a moment to generate)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: object, payload: object, signature: bytes = b"") -> str:
    """A JWT assembled by hand, for headers and payloads PyJWT would refuse to sign."""
    return ".".join(
        [
            b64url(json.dumps(header).encode()),
            b64url(json.dumps(payload).encode()),
            b64url(signature),
        ]
    )


class FakeIssuer:
    """A fake OIDC provider: discovery and JWKS over a real local HTTP socket, real keys."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._published: dict[str, RSAPrivateKey] = {}
        self._next_key = 0
        self.current_kid = ""
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.rotate()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def requests(self, path: str) -> int:
        with self._lock:
            return self._requests[path]

    def key(self, kid: str) -> RSAPrivateKey:
        return self._published[kid]

    def rotate(self, *, keep_old: bool = False) -> str:
        """Sign with a new key (a new kid) from now on; withdraw the old one unless kept."""
        kid = f"key-{self._next_key}"
        key = rsa_key(self._next_key)
        self._next_key += 1
        with self._lock:
            if not keep_old:
                self._published.clear()
            self._published[kid] = key
        self.current_kid = kid
        return kid

    def jwks(self) -> dict[str, Any]:
        keys = []
        with self._lock:
            published = list(self._published.items())
        for kid, key in published:
            jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            jwk.update(kid=kid, use="sig", alg="RS256")
            keys.append(jwk)
        return {"keys": keys}

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self._requests[request.path] += 1
        if request.path == DISCOVERY_PATH:
            document: dict[str, Any] = {
                "issuer": self.url,
                "jwks_uri": self.url + JWKS_PATH,
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        elif request.path == JWKS_PATH:
            document = self.jwks()
        else:
            request.send_error(404)
            return
        body = json.dumps(document).encode()
        request.send_response(200)
        request.send_header("content-type", "application/json")
        request.send_header("content-length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def claims(self, sub: str | None = "alice", **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": sub,
            "iat": now,
            "exp": now + 600,
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def mint(
        self,
        sub: str | None = "alice",
        *,
        kid: str | None = None,
        key: RSAPrivateKey | None = None,
        algorithm: str = "RS256",
        **overrides: Any,
    ) -> str:
        """A token for ``sub``; ``overrides`` replace claims (None removes one)."""
        kid = kid or self.current_kid
        signing_key = key or self._published[kid]
        return jwt.encode(
            self.claims(sub, **overrides), signing_key, algorithm=algorithm, headers={"kid": kid}
        )


class PyJwtClock:
    """A controllable clock for PyJWT's JWKS cache and its refetch cooldown, which read
    ``time.monotonic`` directly: OidcVerifier takes no clock (or cooldown) of its own."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    fake = FakeIssuer()
    fake.start()
    yield fake
    fake.stop()


def oidc_config(issuer: FakeIssuer, **changes: Any) -> OidcConfig:
    return OidcConfig(issuer=issuer.url, audience=AUDIENCE, role_map=ROLE_MAP, **changes)


@pytest.fixture
def verifier(issuer: FakeIssuer) -> OidcVerifier:
    return OidcVerifier(oidc_config(issuer))


@pytest.fixture
def jwks_clock(monkeypatch: pytest.MonkeyPatch) -> PyJwtClock:
    clock = PyJwtClock()
    for module in (jwt.api_jwk, jwt.jwk_set_cache, jwt.jwks_client):
        monkeypatch.setattr(module, "time", clock)
    return clock


@pytest.fixture
async def authenticator(
    store: Store, owner: Bootstrap, verifier: OidcVerifier
) -> AsyncIterator[Authenticator]:
    auth = Authenticator(store, owner.owner.account_id, verifier)
    yield auth
    await auth.close()


async def reason_of(verifier: OidcVerifier, token: str) -> str:
    with pytest.raises(Unauthenticated) as refused:
        await verifier.verify(token)
    return refused.value.reason


# -- verification -------------------------------------------------------------------------


async def test_a_valid_token_gives_the_identity(issuer: FakeIssuer, verifier: OidcVerifier) -> None:
    token = issuer.mint(
        "alice", email="alice@example.com", name="Alice Liddell", groups=["developers", "x"]
    )
    identity = await verifier.verify(token)
    assert identity.subject == f"{issuer.url}|alice"
    assert identity.email == "alice@example.com"
    assert identity.name == "Alice Liddell"
    assert identity.groups == ("developers", "x")
    assert identity.expires_at == float(
        jwt.decode(token, options={"verify_signature": False})["exp"]
    )
    assert issuer.requests(DISCOVERY_PATH) == 1
    assert issuer.requests(JWKS_PATH) == 1


async def test_name_falls_back_to_email_then_subject(
    issuer: FakeIssuer, verifier: OidcVerifier
) -> None:
    assert (await verifier.verify(issuer.mint("bob", email="bob@example.com"))).name == (
        "bob@example.com"
    )
    anonymous = await verifier.verify(issuer.mint("carol"))
    assert (anonymous.name, anonymous.email, anonymous.groups) == ("carol", None, ())


async def test_a_single_group_string_is_one_group(
    issuer: FakeIssuer, verifier: OidcVerifier
) -> None:
    assert (await verifier.verify(issuer.mint(groups="developers"))).groups == ("developers",)


async def test_the_groups_claim_is_configurable(issuer: FakeIssuer) -> None:
    verifier = OidcVerifier(oidc_config(issuer, groups_claim="roles"))
    identity = await verifier.verify(issuer.mint(roles=["platform-admins"], groups=["everyone"]))
    assert identity.groups == ("platform-admins",)


def _expired(issuer: FakeIssuer) -> str:
    now = int(time.time())
    return issuer.mint(iat=now - 7200, exp=now - 3600)


def _not_yet_valid(issuer: FakeIssuer) -> str:
    return issuer.mint(nbf=int(time.time()) + 600)


def _other_key_known_kid(issuer: FakeIssuer) -> str:
    return issuer.mint(key=rsa_key(99))


def _unknown_kid(issuer: FakeIssuer) -> str:
    return issuer.mint(kid="never-published", key=rsa_key(99))


def _alg_none(issuer: FakeIssuer) -> str:
    return unsigned({"alg": "none", "typ": "JWT", "kid": issuer.current_kid}, issuer.claims())


def _hs256(issuer: FakeIssuer) -> str:
    return jwt.encode(
        issuer.claims(),
        "a-shared-secret-long-enough-for-hmac-sha256!",
        algorithm="HS256",
        headers={"kid": issuer.current_kid},
    )


REFUSALS: Final[list[tuple[str, Callable[[FakeIssuer], str], str]]] = [
    ("expired", _expired, "TOKEN_EXPIRED"),
    ("audience", lambda i: i.mint(aud="someone-else"), "TOKEN_AUDIENCE"),
    ("issuer", lambda i: i.mint(iss="https://login.example.com"), "TOKEN_ISSUER"),
    ("other key, known kid", _other_key_known_kid, "TOKEN_SIGNATURE"),
    ("unknown kid", _unknown_kid, "TOKEN_SIGNATURE"),
    ("alg none", _alg_none, "TOKEN_ALGORITHM"),
    ("HS256", _hs256, "TOKEN_ALGORITHM"),
    ("garbage", lambda i: "this.is.garbage", "TOKEN_MALFORMED"),
    ("not base64", lambda i: "%%%.%%%.%%%", "TOKEN_MALFORMED"),
    ("not yet valid", _not_yet_valid, "TOKEN_NOT_YET_VALID"),
    ("no exp", lambda i: i.mint(exp=None), "TOKEN_CLAIMS"),
    ("no sub", lambda i: i.mint(sub=None), "TOKEN_CLAIMS"),
]


@pytest.mark.parametrize(
    ("make", "reason"), [(m, r) for _, m, r in REFUSALS], ids=[n for n, _, _ in REFUSALS]
)
async def test_every_wrong_token_has_its_own_reason(
    issuer: FakeIssuer, verifier: OidcVerifier, make: Callable[[FakeIssuer], str], reason: str
) -> None:
    assert await reason_of(verifier, make(issuer)) == reason


def test_the_refusal_table_covers_distinct_reasons() -> None:
    assert {r for _, _, r in REFUSALS} == {
        "TOKEN_EXPIRED",
        "TOKEN_AUDIENCE",
        "TOKEN_ISSUER",
        "TOKEN_SIGNATURE",
        "TOKEN_ALGORITHM",
        "TOKEN_MALFORMED",
        "TOKEN_NOT_YET_VALID",
        "TOKEN_CLAIMS",
    }


async def test_nbf_within_the_leeway_is_accepted(
    issuer: FakeIssuer, verifier: OidcVerifier
) -> None:
    assert verifier.config.leeway_s == 60
    identity = await verifier.verify(issuer.mint(nbf=int(time.time()) + 20))
    assert identity.subject.endswith("|alice")


async def test_nbf_beyond_a_smaller_leeway_is_refused(issuer: FakeIssuer) -> None:
    strict = OidcVerifier(oidc_config(issuer, leeway_s=5))
    assert await reason_of(strict, issuer.mint(nbf=int(time.time()) + 20)) == (
        "TOKEN_NOT_YET_VALID"
    )


async def test_an_unreachable_issuer_is_oidc_unavailable() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    verifier = OidcVerifier(OidcConfig(issuer=url, audience=AUDIENCE))
    now = int(time.time())
    token = jwt.encode(
        {"iss": url, "aud": AUDIENCE, "sub": "x", "iat": now, "exp": now + 600},
        rsa_key(0),
        algorithm="RS256",
        headers={"kid": "key-0"},
    )
    assert await reason_of(verifier, token) == "OIDC_UNAVAILABLE"


# -- JWKS caching and key rotation ----------------------------------------------------------


async def test_many_verifications_fetch_the_jwks_once(
    issuer: FakeIssuer, verifier: OidcVerifier
) -> None:
    tokens = [issuer.mint(f"user-{i}") for i in range(25)]
    identities = await asyncio.gather(*(verifier.verify(t) for t in tokens))
    assert [i.subject for i in identities] == [f"{issuer.url}|user-{i}" for i in range(25)]
    for token in tokens[:5]:
        await verifier.verify(token)
    assert issuer.requests(DISCOVERY_PATH) == 1
    assert issuer.requests(JWKS_PATH) == 1


async def test_the_jwks_is_fetched_again_when_its_lifespan_ends(
    issuer: FakeIssuer, verifier: OidcVerifier, jwks_clock: PyJwtClock
) -> None:
    await verifier.verify(issuer.mint())
    jwks_clock.advance(verifier.config.jwks_lifespan_s - 1)
    await verifier.verify(issuer.mint())
    assert issuer.requests(JWKS_PATH) == 1
    jwks_clock.advance(2)
    await verifier.verify(issuer.mint())
    assert issuer.requests(JWKS_PATH) == 2
    assert issuer.requests(DISCOVERY_PATH) == 1


async def test_key_rotation_is_followed_without_a_restart(
    issuer: FakeIssuer, verifier: OidcVerifier, jwks_clock: PyJwtClock
) -> None:
    old_kid = issuer.current_kid
    old_token = issuer.mint("before")
    assert (await verifier.verify(old_token)).subject.endswith("|before")
    assert issuer.requests(JWKS_PATH) == 1

    issuer.rotate()  # a new kid; the old key is withdrawn
    jwks_clock.advance(COOLDOWN_S)
    identity = await verifier.verify(issuer.mint("after"))
    assert identity.subject == f"{issuer.url}|after"
    assert issuer.requests(JWKS_PATH) == 2  # refetched for the unknown kid

    # The same verifier now refuses new tokens of the withdrawn key.
    stale = issuer.mint("stale", kid=old_kid, key=rsa_key(0))
    assert await reason_of(verifier, stale) == "TOKEN_SIGNATURE"


async def test_a_key_published_before_use_needs_no_refetch(
    issuer: FakeIssuer, verifier: OidcVerifier
) -> None:
    """The usual way to rotate: publish the next key, then start signing with it."""
    old_kid = issuer.current_kid
    issuer.rotate(keep_old=True)
    await verifier.verify(issuer.mint("old", kid=old_kid, key=rsa_key(0)))
    await verifier.verify(issuer.mint("new"))
    assert issuer.current_kid != old_kid
    assert issuer.requests(JWKS_PATH) == 1


async def test_unknown_kids_refetch_at_most_once_per_cooldown(
    issuer: FakeIssuer, verifier: OidcVerifier, jwks_clock: PyJwtClock
) -> None:
    """Forged kids cannot make the server hammer the issuer. The price: a key rotated in
    during the cooldown after a fetch is refused (TOKEN_SIGNATURE) until the cooldown ends."""
    await verifier.verify(issuer.mint())
    for i in range(10):
        forged = issuer.mint(kid=f"forged-{i}", key=rsa_key(99))
        assert await reason_of(verifier, forged) == "TOKEN_SIGNATURE"
    assert issuer.requests(JWKS_PATH) == 1

    issuer.rotate()
    rotated = issuer.mint("rotated")
    assert await reason_of(verifier, rotated) == "TOKEN_SIGNATURE"
    assert issuer.requests(JWKS_PATH) == 1
    jwks_clock.advance(COOLDOWN_S)
    assert (await verifier.verify(rotated)).subject.endswith("|rotated")
    assert issuer.requests(JWKS_PATH) == 2


# -- sign-in: users and roles ---------------------------------------------------------------


async def _users(store: Store, subject: str) -> list[User]:
    async with store.read() as session:
        return list((await session.scalars(select(User).where(User.subject == subject))).all())


def authenticator_leeway(authenticator: Authenticator) -> float:
    verifier = authenticator._oidc
    assert verifier is not None
    return verifier.config.leeway_s


async def test_first_sign_in_provisions_a_user_with_the_strongest_group_role(
    issuer: FakeIssuer, authenticator: Authenticator, store: Store, owner: Bootstrap
) -> None:
    token = issuer.mint(
        "alice",
        email="alice@example.com",
        name="Alice",
        groups=["everyone", "developers", "platform-admins", "unmapped"],
    )
    actor = await authenticator.authenticate(f"Bearer {token}")
    assert actor.via == "oidc"
    assert actor.account_role is Role.ADMIN
    assert actor.account_id == owner.owner.account_id
    assert actor.scopes is None and actor.token_id is None
    claims = jwt.decode(token, options={"verify_signature": False})
    # Accepted until exp plus the clock-skew leeway the verifier allows.
    leeway = timedelta(seconds=authenticator_leeway(authenticator))
    assert actor.expires_at == datetime.fromtimestamp(claims["exp"], UTC) + leeway

    [user] = await _users(store, f"{issuer.url}|alice")
    assert (user.id, user.email, user.display_name) == (actor.id, "alice@example.com", "Alice")
    assert user.account_id == owner.owner.account_id
    async with store.read() as session:
        memberships = await session.scalar(
            select(func.count()).select_from(Membership).where(Membership.user_id == user.id)
        )
    assert memberships == 0  # the role comes from the groups, not a stored membership


@pytest.mark.parametrize(
    ("groups", "role"),
    [
        (["everyone"], Role.READONLY),
        (["developers", "everyone"], Role.DEVELOPER),
        (["everyone", "platform-owners", "platform-admins"], Role.OWNER),
        (["unmapped"], None),
        ([], None),
    ],
)
async def test_the_strongest_mapped_group_wins(
    issuer: FakeIssuer, authenticator: Authenticator, groups: list[str], role: Role | None
) -> None:
    actor = await authenticator.authenticate(f"Bearer {issuer.mint('dev', groups=groups)}")
    assert actor.account_role is role


async def test_the_same_person_on_a_second_token_is_the_same_user(
    issuer: FakeIssuer, authenticator: Authenticator, store: Store
) -> None:
    first = await authenticator.authenticate(f"Bearer {issuer.mint('alice', jti='one')}")
    second = await authenticator.authenticate(
        f"Bearer {issuer.mint('alice', jti='two', groups=['developers'])}"
    )
    assert first.id == second.id
    assert (first.account_role, second.account_role) == (None, Role.DEVELOPER)
    assert len(await _users(store, f"{issuer.url}|alice")) == 1
    other = await authenticator.authenticate(f"Bearer {issuer.mint('bob')}")
    assert other.id != first.id


async def test_concurrent_first_sign_ins_make_one_user(
    issuer: FakeIssuer, authenticator: Authenticator, store: Store
) -> None:
    """A browser fires several requests right after signing in, each with a fresh token.
    On PostgreSQL each finds no user and inserts one: all but the first fail on the
    unique (account_id, subject) constraint instead of finding the winner's row."""
    tokens = [issuer.mint("eve", jti=str(i)) for i in range(6)]
    actors = await asyncio.gather(*(authenticator.authenticate(f"Bearer {t}") for t in tokens))
    assert len({a.id for a in actors}) == 1
    assert len(await _users(store, f"{issuer.url}|eve")) == 1


INVITE = """
mutation($input: InviteMemberInput!) {
  inviteMember(input: $input) {
    __typename
    ... on MembershipSuccess { membership { id role user { id subject email } } }
    ... on Error { message code }
  }
}
"""


async def _invite(api: Api, email: str, role: str) -> dict[str, Any]:
    data = await api.data(INVITE, {"input": {"email": email, "role": role}})
    result = data["inviteMember"]
    assert result["__typename"] == "MembershipSuccess", result
    membership: dict[str, Any] = result["membership"]
    return membership


async def test_an_invited_user_claims_the_invitation_on_first_sign_in(
    issuer: FakeIssuer, authenticator: Authenticator, api: Api, store: Store
) -> None:
    invited = await _invite(api, "dana@example.com", "DEVELOPER")
    assert invited["user"]["subject"] == "invite:dana@example.com"

    token = issuer.mint("dana-sub", email="Dana@Example.com", name="Dana")
    actor = await authenticator.authenticate(f"Bearer {token}")
    assert actor.id == invited["user"]["id"]
    assert actor.account_role is Role.DEVELOPER  # from the invitation's membership

    async with store.read() as session:
        users = (await session.scalars(select(User).where(User.email == "dana@example.com"))).all()
    assert [(u.id, u.subject) for u in users] == [(actor.id, f"{issuer.url}|dana-sub")]
    assert await _users(store, "invite:dana@example.com") == []

    # Signing in again finds the user by subject, not the spent invitation.
    again = await authenticator.authenticate(f"Bearer {issuer.mint('dana-sub', jti='2')}")
    assert again.id == actor.id


async def test_an_invitation_is_not_claimed_without_the_email(
    issuer: FakeIssuer, authenticator: Authenticator, api: Api, store: Store
) -> None:
    invited = await _invite(api, "frank@example.com", "ADMIN")
    actor = await authenticator.authenticate(
        f"Bearer {issuer.mint('frank', email='someone-else@example.com')}"
    )
    assert actor.id != invited["user"]["id"]
    assert actor.account_role is None
    assert len(await _users(store, "invite:frank@example.com")) == 1


async def test_inviting_a_signed_in_user_by_email_matches_any_letter_case(
    issuer: FakeIssuer, authenticator: Authenticator, api: Api, store: Store
) -> None:
    """An identity provider reports "Gina@Example.com"; an admin invites gina@example.com.
    The invitation should give Gina's existing user the role."""
    first = await authenticator.authenticate(
        f"Bearer {issuer.mint('gina', email='Gina@Example.com')}"
    )
    invited = await _invite(api, "gina@example.com", "DEVELOPER")
    authenticator.forget(user_id=first.id)
    again = await authenticator.authenticate(
        f"Bearer {issuer.mint('gina', email='Gina@Example.com', jti='2')}"
    )
    assert invited["user"]["id"] == first.id
    assert again.account_role is Role.DEVELOPER


async def test_exp_within_the_leeway_is_accepted_throughout(
    issuer: FakeIssuer, verifier: OidcVerifier, authenticator: Authenticator
) -> None:
    """OidcConfig.leeway_s tolerates clock skew; the verifier applies it to exp, but the
    Authenticator then compares exp with its own clock without it."""
    now = int(time.time())
    token = issuer.mint(iat=now - 600, exp=now - 20)
    await verifier.verify(token)  # within the 60 s leeway: accepted
    actor = await authenticator.authenticate(f"Bearer {token}")
    assert actor.via == "oidc"


async def test_an_exp_past_year_9999_is_accepted(
    issuer: FakeIssuer, authenticator: Authenticator
) -> None:
    """A token the issuer signed with exp = 10**12 (year 33658) passes PyJWT; the
    Authenticator's datetime.fromtimestamp then raises ValueError: a 500, not a 401."""
    token = issuer.mint(exp=10**12)
    # Refusing it (say TOKEN_CLAIMS) would be as good as accepting it; crashing is not.
    with contextlib.suppress(Unauthenticated):
        await authenticator.authenticate(f"Bearer {token}")


CRAFTED: Final = {
    "payload not JSON": ".".join(
        [b64url(b'{"alg":"RS256","kid":"key-0"}'), b64url(b"not json"), b64url(b"sig")]
    ),
    "payload a list": unsigned({"alg": "RS256", "kid": "key-0"}, [1, 2]),
    "kid not a string": unsigned({"alg": "RS256", "kid": 7}, {"sub": "x"}),
    "unknown crit": unsigned({"alg": "RS256", "kid": "key-0", "crit": ["x"]}, {"sub": "x"}),
}


@pytest.mark.parametrize("token", list(CRAFTED.values()), ids=list(CRAFTED))
async def test_crafted_unsigned_jwts_are_malformed_tokens(
    issuer: FakeIssuer, verifier: OidcVerifier, token: str
) -> None:
    """Anyone can send these (no key needed); each must be refused as Unauthenticated,
    not raise PyJWT's DecodeError / InvalidTokenError out of OidcVerifier.verify."""
    with pytest.raises(Unauthenticated) as refused:
        await verifier.verify(token)
    assert refused.value.reason == "TOKEN_MALFORMED"


# -- through the HTTP app -------------------------------------------------------------------

VIEWER = "{ viewer { user { id subject email displayName } } }"


@dataclass
class OidcApp:
    client: httpx.AsyncClient
    authenticator: Authenticator

    async def post(self, authorization: str, query: str = VIEWER) -> httpx.Response:
        return await self.client.post(
            "/graphql", json={"query": query}, headers={"authorization": authorization}
        )


@pytest.fixture
async def oidc_app(ctx: Context, authenticator: Authenticator) -> AsyncIterator[OidcApp]:
    state = AppState(
        store=ctx.store,
        hub=ctx.hub,
        authenticator=authenticator,
        limiter=RateLimiter(rate_per_minute=600_000, burst=100_000),
    )
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://enclii.test") as client:
        yield OidcApp(client, authenticator)
    await state.connections.close()


async def test_a_jwt_reaches_the_api(issuer: FakeIssuer, oidc_app: OidcApp, store: Store) -> None:
    token = issuer.mint("zoe", email="zoe@example.com", name="Zoe", groups=["developers"])
    response = await oidc_app.post(f"Bearer {token}")
    assert response.status_code == 200, response.text
    user = response.json()["data"]["viewer"]["user"]
    assert (user["subject"], user["email"], user["displayName"]) == (
        f"{issuer.url}|zoe",
        "zoe@example.com",
        "Zoe",
    )
    [row] = await _users(store, f"{issuer.url}|zoe")
    assert row.id == user["id"]
    # Rate limits apply per OIDC user.
    assert response.headers["ratelimit-remaining"] == "99999"


async def test_a_bad_jwt_is_refused_at_the_door(issuer: FakeIssuer, oidc_app: OidcApp) -> None:
    response = await oidc_app.post(f"Bearer {issuer.mint(aud='another-api')}")
    assert response.status_code == 401
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"] == {
        "code": "UNAUTHENTICATED",
        "reason": "TOKEN_AUDIENCE",
    }
    assert "www-authenticate" in response.headers


async def test_jwts_are_refused_when_no_issuer_is_configured(api: Api, issuer: FakeIssuer) -> None:
    response = await api.client.post(
        "/graphql", json={"query": VIEWER}, headers={"authorization": f"Bearer {issuer.mint()}"}
    )
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"] == {
        "code": "UNAUTHENTICATED",
        "reason": "OIDC_NOT_CONFIGURED",
    }
    assert issuer.requests(JWKS_PATH) == 0


def test_role_map_parsing() -> None:
    assert OidcConfig.parse_role_map(" platform=owner, devs=Developer ,") == {
        "platform": Role.OWNER,
        "devs": Role.DEVELOPER,
    }
    with pytest.raises(ValueError, match="is not group=role"):
        OidcConfig.parse_role_map("platform")
    with pytest.raises(ValueError, match="'boss' in 'x=boss' is not a role"):
        OidcConfig.parse_role_map("x=boss")
