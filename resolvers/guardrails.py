"""Reading a service's guardrails: its SLO status (error budget, freeze) and the alerts
sent about it. Callers have checked that the service is visible."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from resolvers.context import Context
from store.models import AlertDelivery, SloStatus

MAX_DELIVERIES = 100


async def slo_of_services(ctx: Context, service_ids: Sequence[str]) -> dict[str, SloStatus]:
    """Each service's SLO status, for any number of services in one statement."""
    if not service_ids:
        return {}
    async with ctx.store.read() as session:
        rows = await session.scalars(
            select(SloStatus).where(SloStatus.service_id.in_(list(service_ids)))
        )
        return {row.service_id: row for row in rows}


async def alert_deliveries(ctx: Context, service_id: str, first: int) -> list[AlertDelivery]:
    """The newest ``first`` alerts of a service, newest first."""
    limit = max(1, min(first, MAX_DELIVERIES))
    async with ctx.store.read() as session:
        return list(
            await session.scalars(
                select(AlertDelivery)
                .where(AlertDelivery.service_id == service_id)
                .order_by(AlertDelivery.id.desc())
                .limit(limit)
            )
        )
