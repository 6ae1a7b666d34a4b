"""Request metrics of a service, from what the router recorded: rate, errors, latency
percentiles — for the service and for each release (which is what a canary compares)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from resolvers.context import Context
from resolvers.errors import BadRequest
from resolvers.identity.guard import require
from resolvers.identity.rbac import Permission
from resolvers.lookup import get_service
from store.metrics import (
    WINDOW_S,
    Summary,
    read_tallies,
    read_totals,
    summarise,
    total,
    window_start,
)
from store.models import utcnow

MIN_WINDOW_S: Final = WINDOW_S
MAX_WINDOW_S: Final = 7 * 24 * 3600


@dataclass(frozen=True)
class ServiceMetrics:
    service_id: str
    overall: Summary
    by_release: dict[str, Summary]


def _check_window(window_s: int) -> None:
    if not MIN_WINDOW_S <= window_s <= MAX_WINDOW_S:
        raise BadRequest(
            f"window must be between {MIN_WINDOW_S} and {MAX_WINDOW_S} seconds, got {window_s}",
            ("window",),
        )


async def traffic_of_services(
    ctx: Context, service_ids: Sequence[str], window_s: int
) -> dict[str, Summary]:
    """Each service's traffic over the window (the caller checked it may see them)."""
    _check_window(window_s)
    now = utcnow()
    since = window_start(now - timedelta(seconds=window_s))
    async with ctx.store.read() as session:
        tallies = await read_totals(session, service_ids, since)
    span = (now - since).total_seconds()
    return {service_id: summarise(tally, span) for service_id, tally in tallies.items()}


async def service_metrics(ctx: Context, service_id: str, window_s: int = 300) -> ServiceMetrics:
    _check_window(window_s)
    async with ctx.store.read() as session:
        service, _env, project = await get_service(session, ctx, service_id, ("serviceId",))
        require(ctx, Permission.OBSERVE, project)
        # Whole windows only: the oldest one that overlaps the range is counted in full,
        # so rates are over the span actually counted.
        now = utcnow()
        since = window_start(now - timedelta(seconds=window_s))
        tallies = await read_tallies(session, service.id, since)
    span = (now - since).total_seconds()
    return ServiceMetrics(
        service_id=service.id,
        overall=summarise(total(tallies.values()), span),
        by_release={r: summarise(t, span) for r, t in sorted(tallies.items())},
    )
