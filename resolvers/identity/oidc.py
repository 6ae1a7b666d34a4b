"""Validating OIDC bearer tokens (JWTs) from one configured issuer.

Signing keys come from the issuer's JWKS (discovered from
``{issuer}/.well-known/openid-configuration`` unless a JWKS URL is given), cached, and
fetched again when a token names a key id the cache does not hold — which is how key
rotation is followed. PyJWT does the verification; its blocking fetches run in a thread.
Every way a token can be wrong maps to its own reason, so a client can tell an expired token
from one meant for another audience.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import jwt
from jwt import PyJWKClient

from resolvers.errors import Unauthenticated
from resolvers.identity.rbac import strongest
from store.models import Role

ALGORITHMS: Final = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")
DISCOVERY_TIMEOUT_S: Final = 10.0


def fetch_discovery(issuer: str) -> dict[str, Any]:
    """The issuer's OpenID discovery document (blocking; run it in a thread)."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    with urllib.request.urlopen(url, timeout=DISCOVERY_TIMEOUT_S) as response:
        document = json.load(response)
    if not isinstance(document, dict):
        raise ValueError(f"{url} is not a JSON object")
    return document


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    audience: str
    jwks_url: str | None = None
    groups_claim: str = "groups"
    role_map: Mapping[str, Role] = field(default_factory=dict)
    leeway_s: float = 60.0
    jwks_lifespan_s: float = 300.0
    # After a fetch, an unknown key id waits this long before the next fetch, so forged key
    # ids cannot make us hammer the issuer.
    jwks_cooldown_s: float = 10.0
    # The client the web UI signs in as. Unset, it is the audience: the UI sends its ID
    # token, whose audience is the client that asked for it, so the two must agree.
    client_id: str | None = None

    @property
    def ui_client_id(self) -> str:
        return self.client_id or self.audience

    @staticmethod
    def parse_role_map(text: str) -> dict[str, Role]:
        """``platform=owner,devs=developer`` → {"platform": OWNER, "devs": DEVELOPER}."""
        mapping: dict[str, Role] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            group, sep, role = part.partition("=")
            if not sep or not group.strip():
                raise ValueError(f"{part!r} is not group=role")
            try:
                mapping[group.strip()] = Role(role.strip().lower())
            except ValueError:
                roles = ", ".join(r.value for r in Role)
                raise ValueError(f"{role.strip()!r} in {part!r} is not a role ({roles})") from None
        return mapping


@dataclass(frozen=True)
class Identity:
    subject: str  # "{issuer}|{sub}", unique across issuers
    email: str | None
    name: str
    groups: tuple[str, ...]
    expires_at: float


class OidcVerifier:
    def __init__(self, config: OidcConfig) -> None:
        self.config = config
        self._client: PyJWKClient | None = None
        self._lock = asyncio.Lock()

    async def _jwks(self) -> PyJWKClient:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    url = self.config.jwks_url
                    if url is None:
                        url = await asyncio.to_thread(self._discover)
                    self._client = PyJWKClient(
                        url,
                        cache_jwk_set=True,
                        lifespan=self.config.jwks_lifespan_s,
                        timeout=DISCOVERY_TIMEOUT_S,
                        cooldown_duration=self.config.jwks_cooldown_s,
                    )
        return self._client

    def _discover(self) -> str:
        try:
            document = fetch_discovery(self.config.issuer)
        except Exception as exc:
            raise Unauthenticated(
                "OIDC_UNAVAILABLE", f"cannot reach the OIDC issuer's discovery document ({exc})"
            ) from None
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise Unauthenticated("OIDC_UNAVAILABLE", "the issuer publishes no jwks_uri")
        return jwks_uri

    async def verify(self, token: str) -> Identity:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated(
                "TOKEN_MALFORMED", "the bearer token is not a well-formed JWT"
            ) from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise Unauthenticated(
                "TOKEN_ALGORITHM",
                f"tokens signed with {algorithm!r} are not accepted; the issuer must use one of "
                f"{', '.join(ALGORITHMS)}",
            )
        client = await self._jwks()
        try:
            key = await asyncio.to_thread(client.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientConnectionError as exc:
            raise Unauthenticated(
                "OIDC_UNAVAILABLE", f"cannot fetch the issuer's keys ({exc})"
            ) from None
        except jwt.PyJWKClientError:
            raise Unauthenticated(
                "TOKEN_SIGNATURE",
                f"the token is signed with a key the issuer does not publish "
                f"(kid {header.get('kid')!r})",
            ) from None
        except jwt.PyJWTError as exc:  # a kid that is not a string, a broken payload…
            raise Unauthenticated("TOKEN_MALFORMED", f"the token is not valid: {exc}") from None
        claims = self._decode(token, key.key, algorithm)
        return self._identity(claims)

    def _decode(self, token: str, key: Any, algorithm: str) -> dict[str, Any]:
        config = self.config
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=config.audience,
                issuer=config.issuer,
                leeway=config.leeway_s,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("TOKEN_EXPIRED", "the token has expired; sign in again") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated(
                "TOKEN_NOT_YET_VALID", "the token is not valid yet (nbf or iat in the future)"
            ) from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated(
                "TOKEN_AUDIENCE",
                f"the token is not meant for this server (audience must be {config.audience!r})",
            ) from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated(
                "TOKEN_ISSUER", f"the token was not issued by {config.issuer!r}"
            ) from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated(
                "TOKEN_SIGNATURE", "the token's signature does not verify against the issuer's keys"
            ) from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(
                "TOKEN_CLAIMS", f"the token lacks the {exc.claim!r} claim"
            ) from None
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated("TOKEN_MALFORMED", f"the token is not valid: {exc}") from None
        return claims

    def _identity(self, claims: dict[str, Any]) -> Identity:
        groups_claim = claims.get(self.config.groups_claim, [])
        groups = (
            tuple(str(g) for g in groups_claim)
            if isinstance(groups_claim, list)
            else (str(groups_claim),)
            if groups_claim
            else ()
        )
        raw_email = claims.get("email")
        email = raw_email.strip().lower() if isinstance(raw_email, str) else None
        name = claims.get("name") or email or str(claims["sub"])
        return Identity(
            subject=f"{claims['iss']}|{claims['sub']}",
            email=email,
            name=str(name)[:200],
            groups=groups,
            expires_at=float(claims["exp"]),
        )

    def role_for(self, groups: tuple[str, ...]) -> Role | None:
        return strongest(*(self.config.role_map.get(g) for g in groups))
