"""The alert controller against the real store (SQLite and PostgreSQL) and a real HTTP
receiver on 127.0.0.1 standing in for Slack (``fake_slack``): what it sends, when it
retries, when it gives up, and that a webhook's secret path never leaves the row.

Time is a controllable clock: a test moves it past a delivery's ``next_attempt_at`` instead
of sleeping, and checks the delays the controller asks for against its backoff rules.
Only the runner test runs on the real clock, with tiny delays and a deadline.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from reconcile.alerts import AlertController
from reconcile.runner import DONE, Runner, again
from resolvers.context import Context
from resolvers.services import apply_service
from store.aio import cancel_and_wait
from store.alerts import enqueue_alerts, redact
from store.db import Store
from store.events import ALERTS_STREAM, EventRecord, project_stream, read_events
from store.models import AlertDelivery, AlertStatus, Service, utcnow
from tests.factories import make_environment, make_project, service_yaml
from tests.helpers import DEADLINE_S, free_port

# The credential of a Slack incoming webhook is the last segment of its path.
SECRET = "xoxWebhookToken0123456789"
SLACK_PATH = f"/services/T0000ALERT/B0000ALERT/{SECRET}"


# -- a fake Slack -----------------------------------------------------------------------------


@dataclass
class Answer:
    """What the fake answers to one request."""

    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # answer only once the test releases it (or never, for the client)
    echo_path: bool = False  # quote the request's path in the body, as some receivers do


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class FakeSlack:
    """A fake Slack incoming-webhook receiver: a real aiohttp server on 127.0.0.1 that
    records every request and answers from a script (200 "ok" once the script runs out)."""

    def __init__(self) -> None:
        self.script: list[Answer] = []
        self.received: list[Received] = []
        self.release = asyncio.Event()
        self.port = 0

    def url(self, path: str = SLACK_PATH) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(Received(request.path_qs, dict(request.headers), body))
        answer = self.script.pop(0) if self.script else Answer()
        if answer.hang:
            await self.release.wait()
        text = f"{answer.body} {request.path_qs}" if answer.echo_path else answer.body
        return web.Response(status=answer.status, text=text, headers=answer.headers)

    async def requests(self, count: int) -> list[Received]:
        """Wait until ``count`` requests have arrived."""
        async with asyncio.timeout(DEADLINE_S):
            while len(self.received) < count:
                await asyncio.sleep(0.01)
        return self.received


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    # No access log: it would print the secret path, and the test of redaction reads logs.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.port = runner.addresses[0][1]
    yield fake
    fake.release.set()
    await runner.cleanup()


# -- the world --------------------------------------------------------------------------------


class Clock:
    """A controllable UTC clock, an hour ahead of the real one so that every delivery
    enqueued (at real time) is due from the start."""

    def __init__(self) -> None:
        self.now = utcnow() + timedelta(hours=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class World:
    ctx: Context
    store: Store
    slack: FakeSlack
    clock: Clock
    project_id: str
    controllers: list[AlertController] = field(default_factory=list)

    def controller(self, **kw: Any) -> AlertController:
        kw.setdefault("clock", self.clock)
        kw.setdefault("jitter", lambda: 1.0)  # backoff exactly as the rule says
        kw.setdefault("backoff_s", 1.0)
        kw.setdefault("request_timeout_s", DEADLINE_S)
        kw.setdefault("trust_env", False)  # a proxy in the environment must not matter here
        controller = AlertController(self.store, **kw)
        self.controllers.append(controller)
        return controller

    async def service(self, alerts: str) -> tuple[Service, dict[str, Any]]:
        """The service shop/stage/api with ``alerts`` (YAML list items) in its spec, and
        its normalised spec body."""
        yaml = service_yaml(extra_spec=f"  alerts:\n{alerts}")
        result = await apply_service(self.ctx, yaml)
        body: dict[str, Any] = result.version.spec["spec"]
        return result.service, body

    async def owe(
        self,
        service: Service,
        spec: dict[str, Any],
        event: str = "rollback",
        title: str = "rolled back",
        fields: dict[str, str] | None = None,
    ) -> list[str]:
        async with self.store.write() as session:
            owed = await enqueue_alerts(
                session,
                service=service,
                project_id=self.project_id,
                service_label="shop/stage/api",
                spec=spec,
                event=event,
                title=title,
                fields=fields or {},
            )
            return [d.id for d in owed]

    async def one(self, url: str | None = None, event: str = "rollback") -> str:
        """One owed delivery, to a policy listening to every event."""
        service, spec = await self.service(policy("oncall", url or self.slack.url()))
        (delivery_id,) = await self.owe(service, spec, event)
        return delivery_id

    async def get(self, delivery_id: str) -> AlertDelivery:
        async with self.store.read() as session:
            row = await session.get(AlertDelivery, delivery_id)
            assert row is not None
            return row

    async def events(self) -> list[EventRecord]:
        async with self.store.read() as session:
            events = await read_events(session, project_stream(self.project_id), 0)
        return [e for e in events if e.type.startswith("alert.")]


def policy(name: str, url: str, events: list[str] | None = None) -> str:
    line = f"      events: [{', '.join(events)}]\n" if events is not None else ""
    return f"    - name: {name}\n      webhook: {url}\n{line}"


ALL_EVENTS = ["rollback", "freeze", "unfreeze", "slo-burn"]


@pytest.fixture
async def world(ctx: Context, store: Store, fake_slack: FakeSlack) -> AsyncIterator[World]:
    project = await make_project(ctx, "shop")
    await make_environment(ctx, project, "stage")
    w = World(ctx, store, fake_slack, Clock(), project.id)
    yield w
    for controller in w.controllers:
        await controller.close()


# -- delivering -------------------------------------------------------------------------------


async def test_an_alert_is_posted_as_slack_json_and_delivered_once(world: World) -> None:
    service, spec = await world.service(policy("oncall", world.slack.url(), ALL_EVENTS))
    (delivery_id,) = await world.owe(
        service,
        spec,
        "rollback",
        "rolled back: 5xx rate 4.8% > 2%",
        {"Deployment": "dep_1", "5xx rate": "4.8% (threshold 2% & 200 requests)"},
    )
    controller = world.controller()
    assert list(await controller.list_keys()) == [delivery_id]

    assert await controller.reconcile(delivery_id) == DONE

    (request,) = world.slack.received
    assert request.path == SLACK_PATH
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("Enclii-Alerts/")
    assert request.headers["X-Enclii-Delivery"] == delivery_id
    assert request.headers["X-Enclii-Attempt"] == "1"
    assert request.headers["X-Enclii-Event"] == "rollback"
    text = ":rewind: shop/stage/api: rolled back: 5xx rate 4.8% &gt; 2%"
    assert request.json() == {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": "*Deployment*\ndep_1"},
                    {
                        "type": "mrkdwn",
                        "text": "*5xx rate*\n4.8% (threshold 2% &amp; 200 requests)",
                    },
                ],
            },
        ],
    }
    row = await world.get(delivery_id)
    assert (row.status, row.attempts, row.last_error) == (AlertStatus.DELIVERED, 1, None)
    assert row.delivered_at == world.clock.now
    assert row.next_attempt_at is None
    (event,) = await world.events()
    assert (event.type, event.entity_id, event.actor_id) == (
        "alert.delivered",
        delivery_id,
        "controller:alerts",
    )
    assert event.payload == {
        "service_id": service.id,
        "policy": "oncall",
        "event": "rollback",
        "target": f"http://127.0.0.1:{world.slack.port}",
        "attempts": 1,
        "error": None,
    }

    # Settled: reconciling again sends nothing and records nothing.
    world.clock.advance(3600)
    assert await controller.reconcile(delivery_id) == DONE
    assert len(world.slack.received) == 1
    assert len(await world.events()) == 1
    assert list(await controller.list_keys()) == []


async def test_a_server_error_is_retried_after_the_backoff_and_then_delivered(
    world: World,
) -> None:
    delivery_id = await world.one()
    world.slack.script = [Answer(500, "boom\n  upstream   down")]
    controller = world.controller(backoff_s=0.5)

    assert await controller.reconcile(delivery_id) == again(0.5)
    row = await world.get(delivery_id)
    assert (row.status, row.attempts) == (AlertStatus.PENDING, 1)
    assert row.last_error == "receiver answered 500 Internal Server Error: boom upstream down"
    assert row.next_attempt_at == world.clock.now + timedelta(seconds=0.5)

    # Not due yet: nothing is sent, the controller asks to come back when it is.
    assert await controller.reconcile(delivery_id) == again(0.5)
    assert len(world.slack.received) == 1

    world.clock.advance(0.5)
    assert await controller.reconcile(delivery_id) == DONE
    first, second = world.slack.received
    assert first.headers["X-Enclii-Delivery"] == second.headers["X-Enclii-Delivery"]
    assert (first.headers["X-Enclii-Attempt"], second.headers["X-Enclii-Attempt"]) == ("1", "2")
    assert first.body == second.body
    row = await world.get(delivery_id)
    assert (row.status, row.attempts) == (AlertStatus.DELIVERED, 2)
    assert [(e.type, e.payload["attempts"]) for e in await world.events()] == [
        ("alert.delivered", 2)
    ]


async def test_the_backoff_doubles_with_each_attempt_and_jitter_spreads_it(
    world: World,
) -> None:
    delivery_id = await world.one()
    world.slack.script = [Answer(503), Answer(502), Answer(504), Answer(500)]
    jitters = iter([1.5, 0.5, 1.0, 1.5])
    controller = world.controller(backoff_s=2.0, max_backoff_s=10.0, jitter=lambda: next(jitters))

    delays = []
    for _ in range(4):
        result = await controller.reconcile(delivery_id)
        assert result.requeue_after is not None
        delays.append(result.requeue_after)
        world.clock.advance(result.requeue_after)
    # 2, 4, 8, 16 seconds, each times its jitter, and never more than the cap.
    assert delays == [3.0, 2.0, 8.0, 10.0]
    assert await controller.reconcile(delivery_id) == DONE
    assert (await world.get(delivery_id)).attempts == 5


@pytest.mark.parametrize(
    ("header", "expected"),
    [("7", 7.0), ("86400", 60.0)],  # honoured, but never past the cap
)
async def test_retry_after_is_honoured_up_to_the_cap(
    world: World, header: str, expected: float
) -> None:
    delivery_id = await world.one()
    world.slack.script = [Answer(429, "rate_limited", {"Retry-After": header})]
    controller = world.controller(backoff_s=0.1, max_backoff_s=60.0)

    assert await controller.reconcile(delivery_id) == again(expected)
    row = await world.get(delivery_id)
    assert row.last_error == "receiver answered 429 Too Many Requests: rate_limited"
    assert row.next_attempt_at == world.clock.now + timedelta(seconds=expected)

    world.clock.advance(expected - 1)
    assert await controller.reconcile(delivery_id) == again(1.0)
    assert len(world.slack.received) == 1
    world.clock.advance(1)
    assert await controller.reconcile(delivery_id) == DONE
    assert len(world.slack.received) == 2


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (404, "no_service", "receiver answered 404 Not Found: no_service"),
        (410, "channel_is_archived", "receiver answered 410 Gone: channel_is_archived"),
        (400, "invalid_payload", "receiver answered 400 Bad Request: invalid_payload"),
        (403, "", "receiver answered 403 Forbidden"),
    ],
)
async def test_a_refusal_fails_at_once_without_a_retry(
    world: World, status: int, body: str, error: str
) -> None:
    delivery_id = await world.one()
    world.slack.script = [Answer(status, body)]
    controller = world.controller()

    assert await controller.reconcile(delivery_id) == DONE
    row = await world.get(delivery_id)
    assert (row.status, row.attempts, row.last_error) == (AlertStatus.FAILED, 1, error)
    assert row.delivered_at is None

    world.clock.advance(3600)
    assert await controller.reconcile(delivery_id) == DONE
    assert len(world.slack.received) == 1
    (event,) = await world.events()
    assert event.type == "alert.failed"
    assert (event.payload["attempts"], event.payload["error"]) == (1, error)


async def test_a_redirect_is_not_followed_with_the_payload(world: World) -> None:
    delivery_id = await world.one()
    elsewhere = world.slack.url("/elsewhere")
    world.slack.script = [Answer(301, "", {"Location": elsewhere})]

    assert await world.controller().reconcile(delivery_id) == DONE
    row = await world.get(delivery_id)
    assert row.status is AlertStatus.FAILED
    assert row.last_error == (
        "receiver answered 301 Moved Permanently (redirects are not followed: "
        "give the policy the final URL)"
    )
    assert [r.path for r in world.slack.received] == [SLACK_PATH]


async def test_a_webhook_url_without_a_host_fails_without_a_call(world: World) -> None:
    # The spec refuses such a URL now; a delivery owed before that check existed (or written
    # by hand) still must not be sent anywhere.
    delivery_id = await world.one()
    async with world.store.write() as session:
        row = await session.get(AlertDelivery, delivery_id)
        assert row is not None
        row.url = "http:///services/hook"

    assert await world.controller().reconcile(delivery_id) == DONE
    row = await world.get(delivery_id)
    assert row.status is AlertStatus.FAILED
    assert row.last_error == "the webhook URL of policy 'oncall' is not a valid http(s) URL"
    assert world.slack.received == []


async def test_a_receiver_that_never_answers_is_bounded_by_the_request_timeout(
    world: World,
) -> None:
    delivery_id = await world.one()
    world.slack.script = [Answer(hang=True)]
    controller = world.controller(request_timeout_s=0.2, backoff_s=0.5)

    assert await controller.reconcile(delivery_id) == again(0.5)
    row = await world.get(delivery_id)
    assert (row.status, row.attempts) == (AlertStatus.PENDING, 1)
    assert row.last_error == "no answer within 0.2 s"

    world.clock.advance(0.5)
    assert await controller.reconcile(delivery_id) == DONE
    assert len(world.slack.received) == 2
    assert (await world.get(delivery_id)).status is AlertStatus.DELIVERED


async def test_a_refused_connection_is_retried_until_max_attempts_then_fails(
    world: World,
) -> None:
    port = free_port()  # nobody listens there
    delivery_id = await world.one(f"http://127.0.0.1:{port}{SLACK_PATH}")
    controller = world.controller(max_attempts=2, backoff_s=0.5)

    assert await controller.reconcile(delivery_id) == again(0.5)
    row = await world.get(delivery_id)
    assert row.last_error == f"connection refused by 127.0.0.1:{port}"
    assert row.status is AlertStatus.PENDING

    world.clock.advance(0.5)
    assert await controller.reconcile(delivery_id) == DONE
    row = await world.get(delivery_id)
    assert (row.status, row.attempts) == (AlertStatus.FAILED, 2)
    assert row.last_error == (
        f"gave up after 2 attempts; the last: connection refused by 127.0.0.1:{port}"
    )
    (event,) = await world.events()
    assert event.type == "alert.failed"
    assert event.payload["error"] == row.last_error


async def test_server_errors_fail_the_delivery_after_max_attempts(world: World) -> None:
    delivery_id = await world.one()
    world.slack.script = [Answer(500, "boom")] * 3
    controller = world.controller(max_attempts=3, backoff_s=1.0)

    delays = []
    while (result := await controller.reconcile(delivery_id)) != DONE:
        assert result.requeue_after is not None
        delays.append(result.requeue_after)
        world.clock.advance(result.requeue_after)
    assert delays == [1.0, 2.0]
    assert len(world.slack.received) == 3
    row = await world.get(delivery_id)
    assert (row.status, row.attempts) == (AlertStatus.FAILED, 3)
    assert row.last_error == (
        "gave up after 3 attempts; the last: receiver answered 500 Internal Server Error: boom"
    )
    assert [e.type for e in await world.events()] == ["alert.failed"]


# -- secrets ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"https://hooks.slack.com{SLACK_PATH}", "https://hooks.slack.com"),
        (
            "https://user:pa55@Hooks.Example.com:8443/x/y?token=abc#f",
            "https://hooks.example.com:8443",
        ),
        ("http://[::1]:8080/hook", "http://[::1]:8080"),
        ("http://127.0.0.1:99999/hook", "<invalid URL>"),
        ("not a url", "<invalid URL>"),
    ],
)
def test_redact_keeps_only_scheme_host_and_port(url: str, shown: str) -> None:
    assert redact(url) == shown


async def test_a_webhook_path_never_reaches_errors_events_or_logs(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    refused = f"http://127.0.0.1:{free_port()}{SLACK_PATH}?key={SECRET}"
    service, spec = await world.service(
        policy("echo", world.slack.url(), ALL_EVENTS) + policy("gone", refused, ALL_EVENTS)
    )
    echoing, unreachable = await world.owe(service, spec)
    # Receivers that quote the request path back: once failing for now, once for good.
    world.slack.script = [
        Answer(500, "cannot post to", echo_path=True),
        Answer(404, "no webhook at", echo_path=True),
    ]
    controller = world.controller(max_attempts=2, backoff_s=0.5)
    # Every logger at every level, from here on: setting the spec up logs it, by design.
    caplog.set_level(logging.DEBUG)
    caplog.clear()

    for delivery_id in (echoing, unreachable):
        assert await controller.reconcile(delivery_id) == again(0.5)
    world.clock.advance(0.5)
    for delivery_id in (echoing, unreachable):
        assert await controller.reconcile(delivery_id) == DONE

    rows = [await world.get(echoing), await world.get(unreachable)]
    assert [r.status for r in rows] == [AlertStatus.FAILED, AlertStatus.FAILED]
    assert rows[0].last_error == "receiver answered 404 Not Found: no webhook at …"
    events = await world.events()
    assert [e.payload["target"] for e in events] == [
        f"http://127.0.0.1:{world.slack.port}",
        refused.split("/services")[0],
    ]
    assert "cannot post to …" in caplog.text  # the retry was logged, scrubbed
    for text in [*(r.last_error or "" for r in rows), json.dumps([e.payload for e in events])]:
        assert SECRET not in text
        assert "/services/" not in text
    assert SECRET not in caplog.text
    assert "/services/" not in caplog.text


async def test_a_secret_cut_off_by_the_excerpt_limit_is_dropped(world: World) -> None:
    delivery_id = await world.one()
    # 38 tokens and a space fill 988 bytes: the 1024-byte excerpt ends 4 characters into
    # the echoed path's token.
    world.slack.script = [Answer(400, f"{SECRET} " * 38 + SLACK_PATH)]

    assert await world.controller().reconcile(delivery_id) == DONE
    error = (await world.get(delivery_id)).last_error
    assert error is not None
    assert error.startswith("receiver answered 400 Bad Request: … … …")
    assert SECRET[:4] not in error
    assert "/services" not in error


# -- who is owed what ------------------------------------------------------------------------


async def test_only_policies_listening_to_an_event_are_sent_it(world: World) -> None:
    service, spec = await world.service(
        policy("deploys", world.slack.url("/deploys"), ["rollback"])
        + policy("budget", world.slack.url("/budget"), ["freeze", "slo-burn"])
        + policy("defaults", world.slack.url("/defaults"))  # rollback, freeze, slo-burn
    )
    freeze = await world.owe(service, spec, "freeze", "deploys frozen")
    assert await world.owe(service, spec, "unfreeze", "deploys unfrozen") == []
    async with world.store.read() as session:
        woken = [e.entity_id for e in await read_events(session, ALERTS_STREAM, 0)]
    assert woken == freeze

    controller = world.controller()
    for delivery_id in freeze:
        assert await controller.reconcile(delivery_id) == DONE
    assert sorted(r.path for r in world.slack.received) == ["/budget", "/defaults"]
    assert sorted([(await world.get(d)).policy for d in freeze]) == ["budget", "defaults"]


async def test_list_keys_names_only_pending_deliveries(world: World) -> None:
    service, spec = await world.service(
        policy("ok", world.slack.url("/ok"))
        + policy("revoked", world.slack.url("/revoked"))
        + policy("flaky", world.slack.url("/flaky"))
        + policy("untouched", world.slack.url("/untouched"))
    )
    ok, revoked, flaky, untouched = await world.owe(service, spec)
    world.slack.script = [Answer(200), Answer(404), Answer(503)]
    controller = world.controller()
    assert await controller.reconcile(ok) == DONE
    assert await controller.reconcile(revoked) == DONE
    assert await controller.reconcile(flaky) == again(1.0)

    assert sorted(await controller.list_keys()) == sorted([flaky, untouched])
    assert await controller.reconcile("alert_does_not_exist") == DONE


# -- at least once, never twice at once ------------------------------------------------------


async def test_two_reconciles_racing_post_once(world: World) -> None:
    delivery_id = await world.one()
    controller = world.controller()

    results = await asyncio.gather(
        controller.reconcile(delivery_id), controller.reconcile(delivery_id)
    )

    assert len(world.slack.received) == 1
    assert DONE in results
    row = await world.get(delivery_id)
    assert (row.status, row.attempts) == (AlertStatus.DELIVERED, 1)
    assert len(await world.events()) == 1


async def test_an_attempt_cut_short_is_retried_after_its_lease(world: World) -> None:
    """The control plane stops mid-call: the attempt was claimed, so the next reconcile
    waits out the lease (request timeout + backoff) and then sends it again, under the
    same delivery ID for the receiver to de-duplicate."""
    delivery_id = await world.one()
    world.slack.script = [Answer(hang=True)]
    controller = world.controller(request_timeout_s=30.0, backoff_s=2.0)

    cut_short = asyncio.get_running_loop().create_task(controller.reconcile(delivery_id))
    await world.slack.requests(1)
    await cancel_and_wait(cut_short)

    row = await world.get(delivery_id)
    assert (row.status, row.attempts) == (AlertStatus.PENDING, 1)
    assert await controller.reconcile(delivery_id) == again(32.0)
    world.clock.advance(32.0)
    assert await controller.reconcile(delivery_id) == DONE
    first, second = world.slack.received
    assert first.headers["X-Enclii-Delivery"] == second.headers["X-Enclii-Delivery"]
    assert second.headers["X-Enclii-Attempt"] == "2"
    assert (await world.get(delivery_id)).status is AlertStatus.DELIVERED


async def test_a_late_answer_does_not_overwrite_the_attempt_that_took_over(
    world: World,
) -> None:
    """A reconcile whose lease ran out mid-call (a replica that lost leadership) gets its
    answer after another reconcile has taken the delivery over: the row keeps the outcome
    of the attempt that took over, and only one event is written."""
    delivery_id = await world.one()
    world.slack.script = [Answer(500, "late", hang=True), Answer(200)]
    controller = world.controller(request_timeout_s=30.0, backoff_s=2.0)

    slow = asyncio.get_running_loop().create_task(controller.reconcile(delivery_id))
    await world.slack.requests(1)
    world.clock.advance(32.0)
    assert await controller.reconcile(delivery_id) == DONE  # attempt 2, delivered
    world.slack.release.set()
    async with asyncio.timeout(DEADLINE_S):
        assert await slow == DONE

    row = await world.get(delivery_id)
    assert (row.status, row.attempts, row.last_error) == (AlertStatus.DELIVERED, 2, None)
    assert [e.type for e in await world.events()] == ["alert.delivered"]


async def test_a_last_attempt_whose_outcome_was_lost_fails_the_delivery(world: World) -> None:
    delivery_id = await world.one()
    world.slack.script = [Answer(hang=True)]
    controller = world.controller(max_attempts=1, request_timeout_s=30.0)

    cut_short = asyncio.get_running_loop().create_task(controller.reconcile(delivery_id))
    await world.slack.requests(1)
    await cancel_and_wait(cut_short)
    world.clock.advance(3600)

    assert await controller.reconcile(delivery_id) == DONE
    row = await world.get(delivery_id)
    assert row.status is AlertStatus.FAILED
    assert row.last_error == ("gave up after 1 attempt; the outcome of the last was never recorded")
    assert len(world.slack.received) == 1


# -- through the runner -----------------------------------------------------------------------


async def test_the_runner_requeues_a_retry_until_it_is_delivered(world: World) -> None:
    delivery_id = await world.one()
    world.slack.script = [Answer(503, "busy")]
    # The real clock, with a delay short enough for a test and a deadline on the wait.
    controller = world.controller(clock=utcnow, backoff_s=0.05)
    runner = Runner(controller, workers=2, resync_interval=3600)
    runner.start()  # the first resync finds the pending delivery through list_keys
    try:
        async with asyncio.timeout(DEADLINE_S):
            while (await world.get(delivery_id)).status is AlertStatus.PENDING:
                await asyncio.sleep(0.02)
    finally:
        await runner.stop()

    row = await world.get(delivery_id)
    assert (row.status, row.attempts) == (AlertStatus.DELIVERED, 2)
    assert len(world.slack.received) == 2
    # Two reconciles at least (the retry came back through the runner's requeue), and
    # none of them failed: a retry is a result, not an error.
    assert runner.stats[delivery_id].reconciles >= 2
    assert runner.stats[delivery_id].failures == 0
    assert runner.stats[delivery_id].last_error is None
