"""How delivery is going: deployments, successes, failures and rollbacks per UTC day, over
one project or every project the caller may see (the dashboard's figures)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from resolvers.context import Context
from resolvers.errors import BadRequest
from resolvers.lookup import get_project
from resolvers.projects import visible_project_ids
from store import delivery
from store.delivery import DayCounts, Scope
from store.models import Deployment, utcnow

MAX_DAYS: Final = 90
MAX_ROLLBACKS: Final = 50


@dataclass(frozen=True, slots=True)
class DeliveryStats:
    scope: Scope
    since: datetime  # the first day's midnight, UTC
    days: list[DayCounts]  # oldest first, today last

    @property
    def deploys(self) -> int:
        return sum(d.deploys for d in self.days)

    @property
    def succeeded(self) -> int:
        return sum(d.succeeded for d in self.days)

    @property
    def failed(self) -> int:
        return sum(d.failed for d in self.days)

    @property
    def rolled_back(self) -> int:
        return sum(d.rolled_back for d in self.days)

    @property
    def success_rate(self) -> float | None:
        """Of the deployments that finished in the window; None when none did."""
        ended = self.succeeded + self.failed + self.rolled_back
        return self.succeeded / ended if ended else None


async def delivery_stats(
    ctx: Context, project_id: str | None, days: int, *, now: datetime | None = None
) -> DeliveryStats:
    """The last ``days`` UTC days, today included. A project the caller may not see is
    reported as not found, like any other."""
    if not 1 <= days <= MAX_DAYS:
        raise BadRequest(f"days must be between 1 and {MAX_DAYS}, got {days}", ("days",))
    today = (now or utcnow()).date()
    first_day = today - timedelta(days=days - 1)
    async with ctx.store.read() as session:
        if project_id is not None:
            # get_project refuses what the caller may not VIEW, which is all this needs.
            project = await get_project(session, ctx, project_id)
            scope = Scope(ctx.actor.account_id, (project.id,))
        else:
            ids = visible_project_ids(ctx.actor)
            scope = Scope(ctx.actor.account_id, None if ids is None else tuple(ids))
        counts = await delivery.daily_counts(session, scope, first_day, today)
    return DeliveryStats(scope, delivery.start_of(first_day), counts)


async def recent_rollbacks(ctx: Context, stats: DeliveryStats, first: int) -> list[Deployment]:
    """Rollbacks and rolled-back deployments of the window, newest first."""
    if not 0 <= first <= MAX_ROLLBACKS:
        raise BadRequest(f"first must be between 0 and {MAX_ROLLBACKS}, got {first}", ("first",))
    async with ctx.store.read() as session:
        return await delivery.recent_rollbacks(session, stats.scope, stats.since, first)
