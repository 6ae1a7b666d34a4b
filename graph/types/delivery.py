"""The dashboard's delivery figures (``Query.deliveryStats``) as GraphQL shows them."""

from __future__ import annotations

import strawberry

from graph.context import Info
from graph.types.nodes import Deployment
from resolvers import delivery
from store.delivery import DayCounts


@strawberry.type(description="One UTC day of deliveries.")
class DeliveryDay:
    day: str = strawberry.field(description="The UTC day, YYYY-MM-DD.")
    deploys: int = strawberry.field(
        description="Deployments created that day (deploys and rollbacks alike)."
    )
    succeeded: int = strawberry.field(description="Deployments that became healthy that day.")
    failed: int = strawberry.field(description="Deployments that failed that day.")
    rolled_back: int = strawberry.field(
        description="Deployments that ended rolled back that day (their rollback replaced them)."
    )

    @classmethod
    def from_counts(cls, counts: DayCounts) -> DeliveryDay:
        return cls(
            day=counts.day.isoformat(),
            deploys=counts.deploys,
            succeeded=counts.succeeded,
            failed=counts.failed,
            rolled_back=counts.rolled_back,
        )


@strawberry.type(
    description="How delivery went over the last days (UTC): counts per day and in total. "
    "Deployments of deleted services are not counted."
)
class DeliveryStats:
    _stats: strawberry.Private[delivery.DeliveryStats]
    days: list[DeliveryDay] = strawberry.field(
        description="One per UTC day, oldest first, today last; days without deployments included."
    )
    deploys: int = strawberry.field(description="Deployments created in the window.")
    succeeded: int = strawberry.field(description="Deployments that became healthy in it.")
    failed: int = strawberry.field(description="Deployments that failed in it.")
    rolled_back: int = strawberry.field(description="Deployments that ended rolled back in it.")
    success_rate: float | None = strawberry.field(
        description="succeeded / (succeeded + failed + rolledBack), over the deployments that "
        "finished in the window (superseded and unfinished ones do not count); null when none "
        "finished."
    )

    @classmethod
    def from_stats(cls, stats: delivery.DeliveryStats) -> DeliveryStats:
        return cls(
            _stats=stats,
            days=[DeliveryDay.from_counts(d) for d in stats.days],
            deploys=stats.deploys,
            succeeded=stats.succeeded,
            failed=stats.failed,
            rolled_back=stats.rolled_back,
            success_rate=stats.success_rate,
        )

    @strawberry.field(
        description="Rollbacks, and the deployments they rolled back, created or finished in "
        f"the window; newest first, at most {delivery.MAX_ROLLBACKS}."
    )
    async def recent_rollbacks(self, info: Info, first: int = 10) -> list[Deployment]:
        rows = await delivery.recent_rollbacks(info.context.ctx, self._stats, first)
        return [Deployment.from_row(row) for row in rows]
