"""The SLO controller: a service's error budget, and the deploy freeze when it is spent.

Its key is a service ID. A reconcile reads the service's newest spec and, if it declares
an SLO, the service's traffic over the SLO window and the burn window (``store.slo``), and
writes the numbers to the service's ``SloStatus`` row — which the deploy mutation reads to
refuse a deploy while the service is frozen. Nothing wakes it when traffic arrives, so it
looks again every ``sync_s`` seconds while the service has an SLO.

Freezing and unfreezing are decided from the numbers alone, compared with what the row says
now: over budget and not frozen freezes, within budget (or no SLO any more) and frozen
unfreezes. Each transition is written in the same transaction as the row: an event on the
project's stream, an audit record (actor ``controller:slo``) and the alerts its policies
want. The burn alert fires when the burn rate first reaches the spec's ``burnRateAlert``
and not again until it has dropped below it, so a bad hour pages once, not every
``sync_s``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from pydantic import ValidationError
from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from reconcile.runner import DONE, PermanentError, Result, again
from store.alerts import enqueue_alerts
from store.audit import append_audit
from store.db import Store
from store.events import append_event, project_stream
from store.ids import new_id
from store.models import (
    AuditEvent,
    AuditOutcome,
    Environment,
    Project,
    Service,
    ServiceSpecVersion,
    SloStatus,
    utcnow,
)
from store.slo import MIN_BURN_REQUESTS, SloPolicy, SloReport, assess_service

log = logging.getLogger(__name__)

ACTOR: Final = "controller:slo"
ACTOR_DISPLAY: Final = "SLO controller"
SYNC_S: Final = 30.0


@dataclass(frozen=True)
class _Facts:
    service: Service
    project: Project
    label: str  # service.environment.project, as alerts name a service
    spec: dict[str, Any]  # the newest spec's body
    policy: SloPolicy | None


def _days(days: int) -> str:
    return "1 day" if days == 1 else f"{days} days"


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.1f}".removesuffix(".0") + "%"


class SloController:
    name = "slo"
    timeout = 60.0

    def __init__(
        self,
        store: Store,
        *,
        sync_s: float = SYNC_S,
        clock: Callable[[], datetime] = utcnow,
        min_burn_requests: int = MIN_BURN_REQUESTS,
    ) -> None:
        self.store = store
        self.sync_s = sync_s
        self.clock = clock
        self.min_burn_requests = min_burn_requests

    async def list_keys(self) -> Iterable[str]:
        """Services whose newest spec has an SLO, and services with a status row (so one
        whose SLO was removed, or which was deleted, is unfrozen and its row removed)."""
        async with self.store.read() as session:
            newest = (
                select(
                    ServiceSpecVersion.service_id,
                    func.max(ServiceSpecVersion.version).label("version"),
                )
                .group_by(ServiceSpecVersion.service_id)
                .subquery()
            )
            specs = await session.execute(
                select(ServiceSpecVersion.service_id, ServiceSpecVersion.spec)
                .join(
                    newest,
                    and_(
                        newest.c.service_id == ServiceSpecVersion.service_id,
                        newest.c.version == ServiceSpecVersion.version,
                    ),
                )
                .join(Service, Service.id == ServiceSpecVersion.service_id)
                .where(Service.deleted_at.is_(None))
            )
            with_slo = {service_id for service_id, spec in specs if spec.get("spec", {}).get("slo")}
            with_status = set(await session.scalars(select(SloStatus.service_id)))
        return with_slo | with_status

    async def _facts(self, session: AsyncSession, service_id: str) -> _Facts | None:
        found = (
            await session.execute(
                select(Service, Environment, Project)
                .join(Environment, Environment.id == Service.environment_id)
                .join(Project, Project.id == Service.project_id)
                .where(Service.id == service_id, Service.deleted_at.is_(None))
            )
        ).one_or_none()
        if found is None:
            return None
        service, environment, project = found[0], found[1], found[2]
        newest = await session.scalar(
            select(ServiceSpecVersion)
            .where(ServiceSpecVersion.service_id == service_id)
            .order_by(ServiceSpecVersion.version.desc())
            .limit(1)
        )
        spec: dict[str, Any] = newest.spec.get("spec", {}) if newest is not None else {}
        try:
            policy = SloPolicy.from_spec(spec)
        except ValidationError as exc:
            # Stored specs were valid when applied; only a change of the model breaks one,
            # and retrying will not mend it.
            raise PermanentError(
                f"the stored slo of service {service_id} is invalid: {exc}"
            ) from None
        label = f"{service.name}.{environment.name}.{project.slug}"
        return _Facts(service, project, label, spec, policy)

    async def reconcile(self, key: str) -> Result:
        now = self.clock()
        # Read (and add up the metrics) outside the write transaction: on SQLite a write
        # holds the one database lock, which the router's flushes are waiting for.
        async with self.store.read() as session:
            facts = await self._facts(session, key)
            report = None
            if facts is not None and facts.policy is not None:
                report = await assess_service(session, key, facts.policy, now)
        async with self.store.write() as session:
            status = await session.get(SloStatus, key, with_for_update=True)
            if facts is None:
                # Deleted: nothing can deploy to it, so nothing to announce; the row goes.
                if status is not None:
                    await session.delete(status)
                return DONE
            if report is None:
                if status is not None:
                    if status.frozen:
                        await self._unfreeze(
                            session, facts, status, "the service's spec no longer has an slo"
                        )
                    await session.delete(status)
                return DONE
            await self._update(session, facts, status, report, now)
        return again(self.sync_s)

    async def _update(
        self,
        session: AsyncSession,
        facts: _Facts,
        status: SloStatus | None,
        report: SloReport,
        now: datetime,
    ) -> None:
        if status is None:
            status = SloStatus(service_id=facts.service.id, frozen=False, burning=False)
            session.add(status)
        status.computed_at = now
        status.window_days = report.policy.window_days
        status.requests = report.requests
        status.objectives = report.objectives_json()
        status.budget_spent = report.budget_spent
        status.burn_rate = report.burn_rate
        status.reason = report.reason
        if report.frozen and not status.frozen:
            status.frozen, status.frozen_at = True, now
            await self._freeze(session, facts, report)
        elif not report.frozen and status.frozen:
            await self._unfreeze(
                session, facts, status, f"the error budget is no longer spent: {report.reason}"
            )
        if not status.burning and report.burning(self.min_burn_requests):
            status.burning = True
            await self._burning(session, facts, report)
        elif status.burning and report.burn_rate < report.policy.burn_rate_alert:
            # Only a rate under the threshold re-arms the alert; a quiet spell with too few
            # requests to judge does not, or a flapping burn would page on every return.
            status.burning = False
        await session.flush()

    # -- transitions ----------------------------------------------------------------------

    async def _freeze(self, session: AsyncSession, facts: _Facts, report: SloReport) -> None:
        days = report.policy.window_days
        over = report.over_budget
        log.warning("%s: deploys frozen: %s", facts.label, report.reason)
        await self._record(
            session,
            facts,
            "service.frozen",
            {
                "service": facts.service.name,
                "reason": report.reason,
                "windowDays": days,
                "requests": report.requests,
                "budgetSpent": report.budget_spent,
                "objectives": [b.as_json() for b in over],
            },
            audit_action="service.freeze",
            frozen=True,
        )
        fields = {"Requests": f"{report.requests:,} in {_days(days)}"}
        for b in over:
            fields[b.objective.label] = b.counts(days)
        await self._alert(
            session, facts, "freeze", "deploys frozen: the error budget is spent", fields
        )

    async def _unfreeze(
        self, session: AsyncSession, facts: _Facts, status: SloStatus, reason: str
    ) -> None:
        log.info("%s: deploys unfrozen: %s", facts.label, reason)
        frozen_at = status.frozen_at
        status.frozen, status.frozen_at = False, None
        await self._record(
            session,
            facts,
            "service.unfrozen",
            {
                "service": facts.service.name,
                "reason": reason,
                "frozenAt": frozen_at.isoformat() if frozen_at is not None else None,
                "windowDays": status.window_days,
                "budgetSpent": status.budget_spent,
            },
            audit_action="service.unfreeze",
            frozen=False,
        )
        await self._alert(session, facts, "unfreeze", "deploys unfrozen", {"Reason": reason})

    async def _burning(self, session: AsyncSession, facts: _Facts, report: SloReport) -> None:
        policy = report.policy
        burning = [b for b in report.burn if b.spent >= policy.burn_rate_alert]
        log.warning("%s: error budget burning at %.1fx", facts.label, report.burn_rate)
        await append_event(
            session,
            project_stream(facts.project.id),
            "service.slo-burn",
            entity_id=facts.service.id,
            actor_id=ACTOR,
            payload={
                "service": facts.service.name,
                "burnRate": report.burn_rate,
                "burnRateAlert": policy.burn_rate_alert,
                "burnWindowSeconds": policy.burn_window_s,
                "requests": report.burn_requests,
                "budgetSpent": report.budget_spent,
                "objectives": [
                    {**b.objective.as_json(), "bad": b.bad, "burnRate": b.spent} for b in burning
                ],
            },
        )
        fields = {
            "Burn rate": f"{report.burn_rate:.1f}x (alert at {policy.burn_rate_alert:g}x)",
            "Window": f"last {policy.burn_window_s:,} s",
            "Requests": f"{report.burn_requests:,}",
            "Budget spent": _pct(report.budget_spent),
        }
        for b in burning:
            fields[b.objective.label] = f"{b.bad:,.0f} {b.objective.bad_noun} of {b.requests:,}"
        title = f"error budget burning {report.burn_rate:.1f}x faster than it lasts"
        await self._alert(session, facts, "slo-burn", title, fields)

    async def _record(
        self,
        session: AsyncSession,
        facts: _Facts,
        event: str,
        payload: dict[str, Any],
        *,
        audit_action: str,
        frozen: bool,
    ) -> None:
        """The event subscribers see and the audit trail's record of the same change."""
        await append_event(
            session,
            project_stream(facts.project.id),
            event,
            entity_id=facts.service.id,
            actor_id=ACTOR,
            payload=payload,
        )
        await append_audit(
            session,
            AuditEvent(
                id=new_id("audit_event"),
                account_id=facts.project.account_id,
                project_id=facts.project.id,
                actor_id=ACTOR,
                actor_display=ACTOR_DISPLAY,
                action=audit_action,
                outcome=AuditOutcome.SUCCEEDED,
                entity_type="service",
                entity_id=facts.service.id,
                payload={
                    "before": {"frozen": not frozen},
                    "after": {"frozen": frozen},
                    "reason": payload["reason"],
                },
            ),
        )

    async def _alert(
        self,
        session: AsyncSession,
        facts: _Facts,
        event: str,
        title: str,
        fields: dict[str, str],
    ) -> None:
        await enqueue_alerts(
            session,
            service=facts.service,
            project_id=facts.project.id,
            service_label=facts.label,
            spec=facts.spec,
            event=event,
            title=title,
            fields=fields,
        )
