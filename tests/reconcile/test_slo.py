"""The SLO controller against the real store (SQLite and PostgreSQL): freezing a service
that spent its error budget, unfreezing it when the bad traffic has left the window or the
SLO is gone, and paging once for a burning budget.

Time is a controllable clock; traffic is written with the store's own functions at the
times a test chooses, so a 30-day window passes in a line.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from reconcile.runner import DONE, Controller, again
from reconcile.slo import ACTOR, SloController
from resolvers.context import Context
from resolvers.deployments import deploy
from resolvers.errors import Frozen
from resolvers.services import apply_service, delete_service
from store.audit import ChainReport, verify_chain
from store.db import Store
from store.events import EventRecord, project_stream, read_events
from store.metrics import hour_start
from store.models import AlertDelivery, AuditEvent, DeploymentStrategy, Service, SloStatus
from store.slo import frozen_status
from tests.factories import (
    add_release,
    make_environment,
    make_project,
    make_service,
    service_yaml,
)
from tests.traffic import record_traffic, traffic

ALERTS = (
    "  alerts:\n"
    "    - name: ops\n"
    "      webhook: http://127.0.0.1:9/hooks/ops\n"
    "      events: [freeze, unfreeze, slo-burn]\n"
)
SLO = ("  slo:\n    availability: 99.9\n    latency: { thresholdMs: 300, percent: 99 }\n") + ALERTS
T0 = datetime(2025, 3, 31, 9, 0, 5, tzinfo=UTC)
SLO_EVENTS = ("service.frozen", "service.unfrozen", "service.slo-burn")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def controller(store: Store, clock: Clock) -> SloController:
    return SloController(store, sync_s=30.0, clock=clock)


@pytest.fixture
async def service(ctx: Context) -> Service:
    project = await make_project(ctx)
    await make_environment(ctx, project)
    return await make_service(ctx, extra_spec=SLO)


async def _status(store: Store, service_id: str) -> SloStatus | None:
    async with store.read() as session:
        return await session.get(SloStatus, service_id)


async def _events(store: Store, service: Service) -> list[EventRecord]:
    async with store.read() as session:
        events = await read_events(session, project_stream(service.project_id), 0, limit=1000)
    return [e for e in events if e.type in SLO_EVENTS]


async def _deliveries(store: Store) -> list[AlertDelivery]:
    async with store.read() as session:
        return list(await session.scalars(select(AlertDelivery).order_by(AlertDelivery.id)))


async def _audits(store: Store) -> list[AuditEvent]:
    async with store.read() as session:
        rows = await session.scalars(
            select(AuditEvent).where(AuditEvent.actor_id == ACTOR).order_by(AuditEvent.seq)
        )
        return list(rows)


async def _chain(store: Store, ctx: Context) -> ChainReport:
    async with store.read() as session:
        return await verify_chain(session, ctx.actor.account_id)


def _types(events: list[EventRecord]) -> list[str]:
    return [e.type for e in events]


async def test_a_service_over_budget_is_frozen_with_an_event_an_alert_and_an_audit_record(
    store: Store, ctx: Context, controller: SloController, clock: Clock, service: Service
) -> None:
    await record_traffic(store, service.id, T0 - timedelta(hours=3), traffic(100_000, errors=312))

    assert await controller.reconcile(service.id) == again(30.0)

    status = await _status(store, service.id)
    assert status is not None
    assert (status.frozen, status.frozen_at, status.computed_at) == (True, T0, T0)
    assert (status.requests, status.window_days, status.burning) == (100_000, 30, False)
    assert status.budget_spent == pytest.approx(3.12)
    reason = "availability 99.9%: 312 of 100 allowed 5xx in 30 days (312% of the budget spent)"
    assert status.reason == reason
    availability, latency = status.objectives["availability"], status.objectives["latency"]
    assert (availability["objective"], availability["bad"], availability["allowed"]) == (
        99.9,
        312,
        100,
    )
    assert (availability["spent"], availability["burnRate"]) == (3.12, 0.0)
    assert (latency["objective"], latency["thresholdMs"], latency["bad"]) == (99, 300, 0)

    (frozen,) = await _events(store, service)
    assert (frozen.type, frozen.entity_id, frozen.actor_id) == (
        "service.frozen",
        service.id,
        ACTOR,
    )
    payload: dict[str, Any] = frozen.payload
    assert (payload["service"], payload["reason"], payload["windowDays"]) == ("api", reason, 30)
    assert payload["requests"] == 100_000
    (objective,) = payload["objectives"]  # only the objective over budget
    assert (objective["name"], objective["objective"]) == ("availability", 99.9)
    assert (objective["bad"], objective["allowed"], objective["spentPercent"]) == (312, 100, 312)

    (delivery,) = await _deliveries(store)
    assert (delivery.event, delivery.policy, delivery.service_id) == ("freeze", "ops", service.id)
    assert delivery.payload["text"] == (
        ":ice_cube: api.stage.shop: deploys frozen: the error budget is spent"
    )
    assert "312 of 100 allowed 5xx" in str(delivery.payload["blocks"])

    (audit,) = await _audits(store)
    assert (audit.action, audit.entity_type, audit.entity_id) == (
        "service.freeze",
        "service",
        service.id,
    )
    assert audit.payload == {
        "before": {"frozen": False},
        "after": {"frozen": True},
        "reason": reason,
    }
    assert (await _chain(store, ctx)).ok

    async with store.read() as session:
        assert await frozen_status(session, service.id) is not None

    # Looking again changes the numbers' time, nothing else: no second event, alert or record.
    clock.now = T0 + timedelta(seconds=30)
    assert await controller.reconcile(service.id) == again(30.0)
    status = await _status(store, service.id)
    assert status is not None and status.frozen and status.frozen_at == T0
    assert status.computed_at == T0 + timedelta(seconds=30)
    assert _types(await _events(store, service)) == ["service.frozen"]
    assert len(await _deliveries(store)) == 1
    assert len(await _audits(store)) == 1


async def test_deploys_unfreeze_once_the_bad_hour_has_left_the_window(
    store: Store, ctx: Context, controller: SloController, clock: Clock, service: Service
) -> None:
    bad_at = T0 - timedelta(hours=3)
    await record_traffic(store, service.id, bad_at, traffic(100_000, errors=312))
    await record_traffic(store, service.id, T0 - timedelta(hours=1), traffic(50_000))
    await controller.reconcile(service.id)
    assert _types(await _events(store, service)) == ["service.frozen"]

    # The bad hour straddles the window's edge: it still counts, whole.
    edge = hour_start(bad_at) + timedelta(days=30)
    clock.now = edge + timedelta(minutes=59)
    await controller.reconcile(service.id)
    status = await _status(store, service.id)
    assert status is not None and status.frozen and status.requests == 150_000

    clock.now = edge + timedelta(hours=1)
    assert await controller.reconcile(service.id) == again(30.0)
    status = await _status(store, service.id)
    assert status is not None
    assert (status.frozen, status.frozen_at, status.requests) == (False, None, 50_000)
    assert status.reason == (
        "availability 99.9%: 0 of 50 allowed 5xx in 30 days (0% of the budget spent)"
    )

    frozen, unfrozen = await _events(store, service)
    assert (frozen.type, unfrozen.type) == ("service.frozen", "service.unfrozen")
    assert unfrozen.entity_id == service.id
    assert unfrozen.payload["reason"] == f"the error budget is no longer spent: {status.reason}"
    assert unfrozen.payload["frozenAt"] == T0.isoformat()
    assert [d.event for d in await _deliveries(store)] == ["freeze", "unfreeze"]
    assert [a.action for a in await _audits(store)] == ["service.freeze", "service.unfreeze"]
    assert (await _chain(store, ctx)).ok
    async with store.read() as session:
        assert await frozen_status(session, service.id) is None


async def test_a_burning_budget_pages_once_and_again_only_after_it_cooled(
    store: Store, controller: SloController, clock: Clock, service: Service
) -> None:
    # Plenty of good traffic earlier in the window: the budget holds, it is only burning.
    await record_traffic(store, service.id, T0 - timedelta(days=10), traffic(10_000_000))
    await record_traffic(store, service.id, T0 - timedelta(minutes=10), traffic(1000, errors=50))

    for seconds in (0, 30, 60):
        clock.now = T0 + timedelta(seconds=seconds)
        await controller.reconcile(service.id)
    status = await _status(store, service.id)
    assert status is not None
    assert status.burning and not status.frozen
    assert status.burn_rate == pytest.approx(50.0)
    (burn,) = await _events(store, service)
    assert burn.type == "service.slo-burn"
    assert burn.payload["burnRate"] == pytest.approx(50.0)
    assert (burn.payload["burnRateAlert"], burn.payload["burnWindowSeconds"]) == (14.4, 3600)
    assert burn.payload["requests"] == 1000
    assert [o["name"] for o in burn.payload["objectives"]] == ["availability"]
    (delivery,) = await _deliveries(store)
    assert delivery.event == "slo-burn"
    assert delivery.payload["text"].endswith("error budget burning 50.0x faster than it lasts")

    # An hour later the burst has left the burn window: the alert re-arms, silently.
    clock.now = T0 + timedelta(hours=2)
    await controller.reconcile(service.id)
    status = await _status(store, service.id)
    assert status is not None and not status.burning and status.burn_rate == 0.0
    assert len(await _events(store, service)) == 1

    # A new burst pages again.
    await record_traffic(
        store, service.id, clock.now - timedelta(minutes=5), traffic(2000, errors=100)
    )
    await controller.reconcile(service.id)
    assert _types(await _events(store, service)) == ["service.slo-burn", "service.slo-burn"]
    assert [d.event for d in await _deliveries(store)] == ["slo-burn", "slo-burn"]


async def test_one_error_in_two_requests_does_not_page(
    store: Store, controller: SloController, service: Service
) -> None:
    await record_traffic(store, service.id, T0 - timedelta(days=10), traffic(10_000_000))
    await record_traffic(store, service.id, T0 - timedelta(minutes=1), traffic(2, errors=1))
    await controller.reconcile(service.id)
    status = await _status(store, service.id)
    assert status is not None
    assert status.burn_rate == pytest.approx(500.0)
    assert not status.burning
    assert await _events(store, service) == []
    assert await _deliveries(store) == []


async def test_removing_the_slo_unfreezes_the_service_and_forgets_its_budget(
    store: Store, ctx: Context, controller: SloController, service: Service
) -> None:
    await record_traffic(store, service.id, T0 - timedelta(hours=3), traffic(1000, errors=500))
    await controller.reconcile(service.id)
    assert service.id in await controller.list_keys()

    await apply_service(ctx, service_yaml(extra_spec=ALERTS))
    # Still listed: its status row says it is frozen.
    assert service.id in await controller.list_keys()
    assert await controller.reconcile(service.id) == DONE

    assert await _status(store, service.id) is None
    frozen, unfrozen = await _events(store, service)
    assert (frozen.type, unfrozen.type) == ("service.frozen", "service.unfrozen")
    assert unfrozen.payload["reason"] == "the service's spec no longer has an slo"
    assert [d.event for d in await _deliveries(store)] == ["freeze", "unfreeze"]
    assert [a.action for a in await _audits(store)] == ["service.freeze", "service.unfreeze"]
    assert service.id not in await controller.list_keys()
    assert await controller.reconcile(service.id) == DONE  # and nothing more happens
    assert len(await _events(store, service)) == 2


async def test_a_deleted_service_loses_its_status(
    store: Store, ctx: Context, controller: SloController, service: Service
) -> None:
    await record_traffic(store, service.id, T0 - timedelta(hours=3), traffic(1000, errors=500))
    await controller.reconcile(service.id)
    await delete_service(ctx, service.id)

    assert service.id in await controller.list_keys()
    assert await controller.reconcile(service.id) == DONE
    assert await _status(store, service.id) is None
    assert service.id not in await controller.list_keys()


async def test_only_services_with_an_slo_or_a_status_are_listed(
    store: Store, ctx: Context, controller: SloController, service: Service
) -> None:
    plain = await make_service(ctx, name="web")
    assert set(await controller.list_keys()) == {service.id}
    # A service without an SLO is done at once and leaves no row.
    assert await controller.reconcile(plain.id) == DONE
    assert await _status(store, plain.id) is None
    # An idle service with an SLO spends nothing.
    assert await controller.reconcile(service.id) == again(30.0)
    status = await _status(store, service.id)
    assert status is not None
    assert (status.frozen, status.requests, status.reason) == (False, 0, "no requests in 30 days")


async def test_it_is_a_controller(store: Store) -> None:
    controller: Controller = SloController(store)
    assert controller.name == "slo"


async def test_a_frozen_service_deploys_only_a_canary_fix(
    store: Store, ctx: Context, controller: SloController, service: Service
) -> None:
    """The issue's acceptance test, from the controller's row to the deploy mutation."""
    release = await add_release(ctx, service)
    await record_traffic(store, service.id, T0 - timedelta(hours=3), traffic(100_000, errors=312))
    await controller.reconcile(service.id)

    with pytest.raises(Frozen) as refused:
        await deploy(ctx, service.id, release.id, DeploymentStrategy.ROLLING)
    assert "312 bad of 100 allowed" in refused.value.message
    (spent,) = [o for o in refused.value.objectives if o.spent >= 1.0]
    assert (spent.name, spent.objective_percent, spent.bad) == ("availability", 99.9, 312)
    with pytest.raises(Frozen):
        await deploy(ctx, service.id, release.id, DeploymentStrategy.CANARY)

    fix = await deploy(ctx, service.id, release.id, DeploymentStrategy.CANARY, fix=True)
    assert fix.strategy is DeploymentStrategy.CANARY
