"""Delivery statistics: deployments counted per UTC day by the database.

A dashboard over a whole account spans hundreds of services and thousands of deployments,
so nothing here loads deployments to count them: two GROUP BY statements return at most a
row per day (and per ending phase). Deployments of deleted services are left out, as they
are everywhere else in the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, TypeVar

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Deployment, DeploymentKind, DeploymentPhase, Project, Service
from store.sqlfuncs import utc_day

# Quoted, so that only the type checker evaluates it.
S = TypeVar("S", bound="Select[*tuple[Any, ...]]")

# How a finished deployment counts. SUPERSEDED ones are neither successes nor failures: a
# newer deployment replaced them before they ended.
ENDINGS: Final = {
    DeploymentPhase.HEALTHY: "succeeded",
    DeploymentPhase.FAILED: "failed",
    DeploymentPhase.ROLLED_BACK: "rolled_back",
}


@dataclass(frozen=True, slots=True)
class Scope:
    """The projects counted: ``project_ids`` of the account, or all of them (None)."""

    account_id: str
    project_ids: tuple[str, ...] | None = None


@dataclass(slots=True)
class DayCounts:
    day: date
    deploys: int = 0  # created that day, whatever their kind and phase
    succeeded: int = 0  # these three: finished that day
    failed: int = 0
    rolled_back: int = 0


def start_of(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def _scoped(statement: S, scope: Scope) -> S:
    statement = (
        statement.join(Service, Service.id == Deployment.service_id)
        .join(Project, Project.id == Service.project_id)
        .where(Project.account_id == scope.account_id, Service.deleted_at.is_(None))
    )
    if scope.project_ids is not None:
        statement = statement.where(Service.project_id.in_(scope.project_ids))
    return statement


async def daily_counts(
    session: AsyncSession, scope: Scope, first_day: date, last_day: date
) -> list[DayCounts]:
    """One entry per UTC day from ``first_day`` to ``last_day``, days without deployments
    included."""
    since, until = start_of(first_day), start_of(last_day + timedelta(days=1))
    days = {
        first_day + timedelta(days=n): DayCounts(first_day + timedelta(days=n))
        for n in range((last_day - first_day).days + 1)
    }

    created_day = utc_day(Deployment.created_at)
    created = _scoped(select(created_day, func.count()).select_from(Deployment), scope).where(
        Deployment.created_at >= since, Deployment.created_at < until
    )
    for day, count in await session.execute(created.group_by(created_day)):
        days[date.fromisoformat(day)].deploys = count

    finished_day = utc_day(Deployment.finished_at)
    finished = _scoped(
        select(finished_day, Deployment.phase, func.count()).select_from(Deployment), scope
    ).where(
        Deployment.finished_at >= since,
        Deployment.finished_at < until,
        Deployment.phase.in_(list(ENDINGS)),
    )
    for day, phase, count in await session.execute(
        finished.group_by(finished_day, Deployment.phase)
    ):
        setattr(days[date.fromisoformat(day)], ENDINGS[phase], count)
    return list(days.values())


async def recent_rollbacks(
    session: AsyncSession, scope: Scope, since: datetime, limit: int
) -> list[Deployment]:
    """Rollbacks, and the deployments they rolled back, created or finished since
    ``since``; newest first."""
    statement = _scoped(select(Deployment), scope).where(
        or_(
            Deployment.kind == DeploymentKind.ROLLBACK,
            Deployment.phase == DeploymentPhase.ROLLED_BACK,
        ),
        or_(Deployment.created_at >= since, Deployment.finished_at >= since),
    )
    ordered = statement.order_by(Deployment.created_at.desc(), Deployment.id.desc()).limit(limit)
    return list((await session.scalars(ordered)).all())
