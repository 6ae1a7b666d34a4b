"""The alert controller: delivers the webhook calls ``store.alerts`` owes, at least once.

An alert is only worth something if it arrives while someone can still act on it, and a
webhook receiver is another team's server on the internet: it answers slowly, fails for a
minute, rate-limits, or has been revoked for good. So each ``AlertDelivery`` row is an
outbox entry, and its key here is the delivery ID. A reconcile reads the row every time:
anything not PENDING is settled; a PENDING row whose ``next_attempt_at`` has not come yet
waits; otherwise one POST is made and its outcome written back.

* 2xx: DELIVERED.
* 408, 429, 5xx, timeouts, refused or broken connections: the receiver may recover, so the
  attempt is retried with exponential backoff and jitter (never sooner than a Retry-After
  asks, and never later than a cap), and FAILED after ``max_attempts``.
* Any other answer (a revoked Slack webhook says 404 or 410; a 3xx points somewhere we will
  not follow with the payload): FAILED at once, because repeating it cannot help.

Every final outcome is an ``alert.delivered`` or ``alert.failed`` event on the project's
stream, so the UI and chatops see what was (not) told.

Each attempt is claimed before the POST, by a guarded update (the row must still be PENDING
with the attempt count read) that also pushes ``next_attempt_at`` past the request timeout.
Two reconcilers of one delivery (a replica that lost leadership mid-call and the new
leader) therefore never POST the same attempt twice, and a control plane that dies mid-call
retries after that lease instead of at once. Delivery remains at-least-once (an answer lost
on the way back means a second POST), so every request carries ``X-Enclii-Delivery`` for
receivers to de-duplicate on. No transaction is held open across the HTTP call.

Webhook URLs are secrets (Slack's carry a token in the path): logs, errors and events name
only ``scheme://host[:port]`` (``redact``), and receivers' answers are scrubbed of the URL
before they are kept.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

import aiohttp
from sqlalchemy import Update, select, update

from reconcile.runner import DONE, Result, again
from store.alerts import redact
from store.db import Store
from store.events import append_event, project_stream
from store.models import AlertDelivery, AlertStatus, utcnow

log = logging.getLogger(__name__)

ACTOR: Final = "controller:alerts"
USER_AGENT: Final = "Enclii-Alerts/1 (+https://enclii.dev)"
DELIVERY_HEADER: Final = "X-Enclii-Delivery"
ATTEMPT_HEADER: Final = "X-Enclii-Attempt"
EVENT_HEADER: Final = "X-Enclii-Event"
# Statuses that say "not now" rather than "never": a timeout, rate limiting, server trouble.
RETRYABLE_STATUSES: Final = frozenset({408, 425, 429})
# Enough of a receiver's answer to explain a refusal; more would only fill the database.
BODY_EXCERPT_BYTES: Final = 1024
BODY_EXCERPT_CHARS: Final = 200
# Path segments and query values at least this long are treated as credentials when
# scrubbing a receiver's answer (Slack's token is 24 characters; its IDs are shorter).
SECRET_MIN_CHARS: Final = 16
# The database and event work around the POST; the request timeout bounds the rest.
DB_ALLOWANCE_S: Final = 30.0


def _scrub(text: str, url: str) -> str:
    """``text`` with anything secret of ``url`` replaced by "…": receivers sometimes echo
    the path or the token in an error page, and that page ends up in ``last_error``."""
    secrets = {url}
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is not None:
        if parts.path not in ("", "/"):
            secrets.add(parts.path + (f"?{parts.query}" if parts.query else ""))
            secrets.add(parts.path)
        if parts.query:
            secrets.add(parts.query)
        if parts.password:
            secrets.add(parts.password)
        secrets.update(s for s in parts.path.split("/") if len(s) >= SECRET_MIN_CHARS)
        secrets.update(v for _, v in parse_qsl(parts.query) if len(v) >= SECRET_MIN_CHARS)
    # Longest first, so a whole URL goes before its path is looked for.
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "…")
    return text


def retry_after_s(value: str | None, now: datetime) -> float | None:
    """Seconds a Retry-After header asks for (delay-seconds or an HTTP date); None when
    absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True, slots=True)
class Delivered:
    status: int


@dataclass(frozen=True, slots=True)
class Retry:
    """Worth trying again: ``error`` says what went wrong, ``retry_after`` what the
    receiver asked for (seconds), if it did."""

    error: str
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    """Repeating the call cannot help."""

    error: str


Outcome = Delivered | Retry | Refused


@dataclass(frozen=True, slots=True)
class _Owed:
    """What a reconcile read of a delivery: a copy, so no session outlives the read."""

    id: str
    service_id: str
    project_id: str
    policy: str
    event: str
    url: str
    payload: dict[str, Any]
    status: AlertStatus
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None

    @classmethod
    def from_row(cls, row: AlertDelivery) -> _Owed:
        return cls(
            id=row.id,
            service_id=row.service_id,
            project_id=row.project_id,
            policy=row.policy,
            event=row.event,
            url=row.url,
            payload=dict(row.payload),
            status=row.status,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            last_error=row.last_error,
        )


class AlertController:
    """Sends pending alert deliveries; see the module docstring for the rules."""

    name = "alerts"

    def __init__(
        self,
        store: Store,
        *,
        request_timeout_s: float = 10.0,
        max_attempts: int = 8,
        backoff_s: float = 2.0,
        max_backoff_s: float = 300.0,
        clock: Callable[[], datetime] = utcnow,
        jitter: Callable[[], float] = lambda: 0.5 + random.random(),
        trust_env: bool = True,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.store = store
        self.request_timeout_s = request_timeout_s
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.clock = clock
        self.jitter = jitter
        # HTTPS_PROXY and friends: a control plane's only way out is often a proxy.
        self.trust_env = trust_env
        self.timeout = request_timeout_s + DB_ALLOWANCE_S
        self._session: aiohttp.ClientSession | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running loop, and reused: one connection pool
        # for every receiver instead of a TLS handshake per alert.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.request_timeout_s),
                headers={"User-Agent": USER_AGENT},
                # Webhooks are stateless: a receiver's cookies must not reach the next call.
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=self.trust_env,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- the controller protocol ----------------------------------------------------------

    async def list_keys(self) -> Iterable[str]:
        async with self.store.read() as session:
            rows = await session.scalars(
                select(AlertDelivery.id)
                .where(AlertDelivery.status == AlertStatus.PENDING)
                .order_by(AlertDelivery.created_at)
            )
            return list(rows)

    async def reconcile(self, key: str) -> Result:
        owed = await self._read(key)
        if owed is None or owed.status is not AlertStatus.PENDING:
            return DONE
        now = self.clock()
        if owed.next_attempt_at is not None and owed.next_attempt_at > now:
            return again((owed.next_attempt_at - now).total_seconds())
        if owed.attempts >= self.max_attempts:
            # The last attempt was claimed but its outcome never written (the control
            # plane stopped mid-call) and its lease has run out: there is no attempt left.
            return await self._finish(owed, owed.attempts, _out_of_attempts(owed))
        attempt = owed.attempts + 1
        lease = self.request_timeout_s + self._backoff(attempt)
        if not await self._claim(owed, attempt, now + timedelta(seconds=lease)):
            return await self._look_again(key)
        outcome = await self._send(owed, attempt)
        return await self._finish(owed, attempt, outcome)

    # -- reading and writing the row ------------------------------------------------------

    async def _read(self, key: str) -> _Owed | None:
        async with self.store.read() as session:
            row = await session.get(AlertDelivery, key)
            return None if row is None else _Owed.from_row(row)

    async def _look_again(self, key: str) -> Result:
        """Someone else changed the row since it was read: go by what it says now."""
        owed = await self._read(key)
        if owed is None or owed.status is not AlertStatus.PENDING:
            return DONE
        wait = 0.0
        if owed.next_attempt_at is not None:
            wait = (owed.next_attempt_at - self.clock()).total_seconds()
        return again(max(wait, 0.0))

    @staticmethod
    def _guarded(owed: _Owed, attempts: int) -> Update:
        # Only the row as this reconcile last saw it: still PENDING, at that attempt count.
        return update(AlertDelivery).where(
            AlertDelivery.id == owed.id,
            AlertDelivery.status == AlertStatus.PENDING,
            AlertDelivery.attempts == attempts,
        )

    async def _claim(self, owed: _Owed, attempt: int, lease_until: datetime) -> bool:
        async with self.store.write() as session:
            result = await session.execute(
                self._guarded(owed, owed.attempts)
                .values(attempts=attempt, next_attempt_at=lease_until)
                .execution_options(synchronize_session=False)
            )
            return _rowcount(result) == 1

    async def _finish(self, owed: _Owed, attempt: int, outcome: Outcome) -> Result:
        now = self.clock()
        target = redact(owed.url)
        values: dict[str, Any]
        result: Result
        if isinstance(outcome, Delivered):
            values = {"status": AlertStatus.DELIVERED, "delivered_at": now, "next_attempt_at": None}
            event, error, result = "alert.delivered", None, DONE
        elif isinstance(outcome, Retry) and attempt < self.max_attempts:
            delay = self._delay(attempt, outcome.retry_after)
            values = {
                "last_error": outcome.error,
                "next_attempt_at": now + timedelta(seconds=delay),
            }
            event, error, result = None, outcome.error, again(delay)
        else:
            error = outcome.error
            if isinstance(outcome, Retry):
                error = f"gave up after {_attempts(attempt)}; the last: {outcome.error}"
            values = {"status": AlertStatus.FAILED, "last_error": error, "next_attempt_at": None}
            event, result = "alert.failed", DONE
        async with self.store.write() as session:
            written = await session.execute(
                self._guarded(owed, attempt)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if _rowcount(written) != 1:
                # Our lease ran out and another reconcile took the delivery over; its
                # outcome, not ours, is the one on record.
                lost = True
            else:
                lost = False
                if event is not None:
                    await append_event(
                        session,
                        project_stream(owed.project_id),
                        event,
                        entity_id=owed.id,
                        actor_id=ACTOR,
                        payload={
                            "service_id": owed.service_id,
                            "policy": owed.policy,
                            "event": owed.event,
                            "target": target,
                            "attempts": attempt,
                            "error": error,
                        },
                    )
        if lost:
            log.info(
                "alert %s: taken over by another reconcile during attempt %d", owed.id, attempt
            )
            return await self._look_again(owed.id)
        self._log(owed, attempt, target, event, error, result)
        return result

    @staticmethod
    def _log(
        owed: _Owed, attempt: int, target: str, event: str | None, error: str | None, result: Result
    ) -> None:
        what = f"alert {owed.id} ({owed.event}, policy {owed.policy!r}) to {target}"
        if event == "alert.delivered":
            log.info("%s delivered on attempt %d", what, attempt)
        elif event == "alert.failed":
            log.warning("%s failed: %s", what, error)
        else:
            log.warning(
                "%s: attempt %d: %s; retrying in %.1fs", what, attempt, error, result.requeue_after
            )

    # -- timing -------------------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        """The backoff after ``attempt`` before jitter: doubling from ``backoff_s``, capped."""
        # The exponent stops growing long after the cap is reached, so nothing overflows.
        return min(self.max_backoff_s, self.backoff_s * 2.0 ** min(attempt - 1, 30))

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """The backoff with jitter (so receivers that failed together are not retried
        together), or longer when the receiver asked for longer (Retry-After is the least it
        wants us to wait), but never past the cap: a receiver must not be able to park an
        alert for a day."""
        delay = self._backoff(attempt) * self.jitter()
        if retry_after is not None:
            delay = max(delay, retry_after)
        return float(min(delay, self.max_backoff_s))

    # -- the call -----------------------------------------------------------------------------

    async def _send(self, owed: _Owed, attempt: int) -> Outcome:
        if not _is_http_url(owed.url):
            # The spec admits only http(s) URLs, but the row is what is sent: check it.
            return Refused(f"the webhook URL of policy {owed.policy!r} is not a valid http(s) URL")
        body = json.dumps(owed.payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            DELIVERY_HEADER: owed.id,
            ATTEMPT_HEADER: str(attempt),
            EVENT_HEADER: owed.event,
        }
        try:
            async with asyncio.timeout(self.request_timeout_s):
                async with self._client().post(
                    owed.url, data=body, headers=headers, allow_redirects=False
                ) as response:
                    excerpt = await _excerpt(response)
                    status, reason = response.status, response.reason
                    retry_after = response.headers.get("Retry-After")
        except TimeoutError:
            # Also aiohttp's own connect and read timeouts, which are TimeoutErrors.
            return Retry(f"no answer within {self.request_timeout_s:g} s")
        except aiohttp.ClientConnectorError as exc:
            return Retry(_connect_error(exc))
        except (aiohttp.InvalidURL, ValueError):
            # After the connection errors: a certificate error is a ValueError too.
            return Refused(f"the webhook URL of policy {owed.policy!r} is not a valid http(s) URL")
        except aiohttp.ServerDisconnectedError:
            return Retry(f"{redact(owed.url)} closed the connection without answering")
        except (aiohttp.ClientError, OSError) as exc:
            # aiohttp's messages may quote the URL; the class says what happened.
            return Retry(f"the call to {redact(owed.url)} broke off ({exc.__class__.__name__})")
        return self._judge(owed.url, status, reason, excerpt, retry_after)

    def _judge(
        self, url: str, status: int, reason: str | None, excerpt: str, retry_after: str | None
    ) -> Outcome:
        if 200 <= status < 300:
            return Delivered(status)
        phrase = reason or _phrase(status)
        error = f"receiver answered {status} {phrase}".rstrip()
        if 300 <= status < 400:
            error += " (redirects are not followed: give the policy the final URL)"
        elif excerpt:
            # Scrubbed before it is clipped, so no secret is cut into an unrecognisable part.
            error += f": {_clip(_scrub(excerpt, url), BODY_EXCERPT_CHARS)}"
        if status in RETRYABLE_STATUSES or status >= 500:
            return Retry(error, retry_after_s(retry_after, self.clock()))
        return Refused(error)


def _attempts(count: int) -> str:
    return f"{count} attempt" if count == 1 else f"{count} attempts"


def _out_of_attempts(owed: _Owed) -> Refused:
    """A delivery due again with no attempt left: its last attempt was claimed and never
    recorded (the control plane stopped mid-call), or ``max_attempts`` was lowered."""
    if owed.last_error is None:
        return Refused(
            f"gave up after {_attempts(owed.attempts)}; the outcome of the last was never recorded"
        )
    return Refused(
        f"gave up after {_attempts(owed.attempts)}; the last error recorded: {owed.last_error}"
    )


async def _excerpt(response: aiohttp.ClientResponse) -> str:
    """The start of the body, as one line of text (reading a short body to its end also
    lets the connection be reused)."""
    data = b""
    while len(data) < BODY_EXCERPT_BYTES:
        chunk = await response.content.read(BODY_EXCERPT_BYTES - len(data))
        if not chunk:
            break
        data += chunk
    words = data.decode("utf-8", errors="replace").split()
    if len(data) >= BODY_EXCERPT_BYTES and words:
        # The last word may be cut short, and a secret cut short escapes scrubbing.
        words[-1] = "…"
    return " ".join(words)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _connect_error(exc: aiohttp.ClientConnectorError) -> str:
    where = f"{exc.host}:{exc.port}"
    cause = exc.os_error
    if isinstance(cause, socket.gaierror):
        return f"could not resolve {exc.host}"
    if isinstance(cause, ConnectionRefusedError):
        return f"connection refused by {where}"
    if isinstance(exc, aiohttp.ClientSSLError):
        return f"TLS with {where} failed ({cause.__class__.__name__})"
    detail = cause.strerror or cause.__class__.__name__
    return f"could not connect to {where}: {detail}"


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a port out of range)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
