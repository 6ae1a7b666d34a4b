"""A fake OIDC provider for browser sign-in: no real identity provider can run on a test
machine, so this one plays it over a real local HTTP socket, with real RSA keys.

It speaks the authorization-code flow with PKCE as a public client needs it: discovery,
``/authorize`` (approving at once as the configured person, as an IdP with a live session
would), ``/token`` (which refuses a code whose verifier does not hash to its challenge), and
the JWKS the API verifies ID tokens with. Discovery, JWKS and token answer CORS, as real
providers do for single-page apps.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

KID = "fake-key-1"


@dataclass
class Person:
    sub: str
    name: str
    email: str
    groups: list[str]


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class FakeOidcProvider:
    client_id: str
    person: Person
    refused_exchanges: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._grants: dict[str, _Grant] = {}
        self._lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider._get(self)

            def do_POST(self) -> None:
                provider._post(self)

            def do_OPTIONS(self) -> None:
                provider._reply(self, 204, b"", "text/plain")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _reply(self, request: BaseHTTPRequestHandler, status: int, body: bytes, kind: str) -> None:
        request.send_response(status)
        request.send_header("content-type", kind)
        request.send_header("content-length", str(len(body)))
        request.send_header("access-control-allow-origin", "*")
        request.send_header("access-control-allow-headers", "content-type")
        request.end_headers()
        request.wfile.write(body)

    def _json(self, request: BaseHTTPRequestHandler, status: int, document: Any) -> None:
        self._reply(request, status, json.dumps(document).encode(), "application/json")

    def _get(self, request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        if url.path == "/.well-known/openid-configuration":
            self._json(
                request,
                200,
                {
                    "issuer": self.url,
                    "authorization_endpoint": f"{self.url}/authorize",
                    "token_endpoint": f"{self.url}/token",
                    "jwks_uri": f"{self.url}/jwks",
                    "code_challenge_methods_supported": ["S256"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                },
            )
        elif url.path == "/jwks":
            jwk = RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
            jwk.update(kid=KID, use="sig", alg="RS256")
            self._json(request, 200, {"keys": [jwk]})
        elif url.path == "/authorize":
            self._authorize(request, {k: v[0] for k, v in parse_qs(url.query).items()})
        else:
            self._json(request, 404, {"error": "not_found"})

    def _authorize(self, request: BaseHTTPRequestHandler, q: dict[str, str]) -> None:
        problems = [
            name
            for name, ok in (
                ("response_type", q.get("response_type") == "code"),
                ("client_id", q.get("client_id") == self.client_id),
                ("code_challenge_method", q.get("code_challenge_method") == "S256"),
                ("code_challenge", bool(q.get("code_challenge"))),
                ("redirect_uri", bool(q.get("redirect_uri"))),
                ("openid scope", "openid" in q.get("scope", "").split()),
            )
            if not ok
        ]
        if problems:
            self._json(request, 400, {"error": "invalid_request", "error_description": problems})
            return
        code = secrets.token_urlsafe(16)
        with self._lock:
            self._grants[code] = _Grant(
                self.client_id, q["redirect_uri"], q["code_challenge"], q.get("nonce")
            )
        back = q["redirect_uri"] + "?" + urlencode({"code": code, "state": q.get("state", "")})
        request.send_response(302)
        request.send_header("location", back)
        request.send_header("content-length", "0")
        request.end_headers()

    def _post(self, request: BaseHTTPRequestHandler) -> None:
        if urlsplit(request.path).path != "/token":
            self._json(request, 404, {"error": "not_found"})
            return
        length = int(request.headers.get("content-length", "0"))
        form = {k: v[0] for k, v in parse_qs(request.rfile.read(length).decode()).items()}
        with self._lock:
            grant = self._grants.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "")
        why = (
            "unknown or used code"
            if grant is None
            else "client_id differs"
            if form.get("client_id") != grant.client_id
            else "redirect_uri differs"
            if form.get("redirect_uri") != grant.redirect_uri
            else "code_verifier does not match the challenge"
            if s256(verifier) != grant.challenge
            else None
        )
        if why is not None or grant is None:
            self.refused_exchanges.append(why or "?")
            self._json(request, 400, {"error": "invalid_grant", "error_description": why})
            return
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": self.client_id,
            "sub": self.person.sub,
            "name": self.person.name,
            "email": self.person.email,
            "groups": self.person.groups,
            "iat": now,
            "exp": now + 3600,
            **({"nonce": grant.nonce} if grant.nonce else {}),
        }
        id_token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": KID})
        self._json(request, 200, {"id_token": id_token, "token_type": "Bearer", "expires_in": 3600})
