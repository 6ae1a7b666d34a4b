"""Error budgets: how much of its SLO a service has spent, from what the router measured.

An SLO says what share of requests must be good over a window (30 days by default): an
availability objective counts 5xx answers as bad, a latency objective requests slower than
its threshold. What the objective leaves over — 0.1% of the window's requests for 99.9% —
is the error budget. Once any objective has spent all of its budget the service's deploys
are frozen: change is what spends budgets, so it waits until reliability is won back (the
SLO controller decides and records it in ``SloStatus``; the deploy mutation reads that).

The burn rate says how fast the budget goes: the bad share over a short window (an hour by
default) divided by the share the objective allows, which is the same as the share of that
short window's own budget spent. At 1 the budget lasts exactly the window; at 14.4 a 30-day
budget loses 2% in an hour, the rate at which the SRE workbook pages someone.

The window reads the hourly rollups (a 30-day window is 720 rows per release, not 259,200);
the burn window, an hour or less, reads the 10-second rows. The maths is pure; the read
functions take the caller's session and a ``now``, so tests move the clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from store.metrics import Tally, hour_start, read_total, window_start
from store.models import RequestMetrics, RequestMetricsHourly, SloStatus
from store.spec.model import Slo

# Below this many requests in the burn window, one error makes any objective of 99% or
# more burn faster than 14.4: that is no evidence, and paging on it teaches people to
# ignore pages. (Freezing needs no such floor: the window is long, and its budget is what
# the objective says it is.)
MIN_BURN_REQUESTS: Final = 100

ObjectiveKind = Literal["availability", "latency"]


def _number(value: float) -> str:
    """A count or a percentage for people: whole when it is, else one decimal."""
    return f"{value:.1f}".removesuffix(".0")


def _days(days: int) -> str:
    return "1 day" if days == 1 else f"{days} days"


@dataclass(frozen=True, slots=True)
class Objective:
    """One objective of an SLO: ``percent`` of requests must be good."""

    kind: ObjectiveKind
    percent: float
    threshold_ms: float | None = None  # latency objectives: slower than this is bad

    @property
    def label(self) -> str:
        if self.kind == "latency":
            return f"latency {self.percent:g}% under {self.threshold_ms:g} ms"
        return f"availability {self.percent:g}%"

    @property
    def bad_noun(self) -> str:
        if self.kind == "latency":
            return f"requests slower than {self.threshold_ms:g} ms"
        return "5xx"

    def bad(self, tally: Tally) -> float:
        """The requests of ``tally`` this objective counts as bad (fractional for latency:
        the histogram bucket holding the threshold is split by interpolation)."""
        if self.kind == "latency":
            assert self.threshold_ms is not None
            return tally.slower_than(self.threshold_ms)
        return float(tally.by_class["5xx"])

    def allowed(self, requests: int) -> float:
        """How many of ``requests`` may be bad."""
        # In decimal, from the objective as written: 0.1% of 100,000 is 100, not
        # 99.99999999999432, so exactly the allowed number of errors spends the budget.
        return float(Decimal(requests) * (100 - Decimal(str(self.percent))) / 100)

    def as_json(self) -> dict[str, Any]:
        # "objective" is the percent, as SloStatus.objectives documents it.
        out: dict[str, Any] = {"name": self.kind, "objective": self.percent}
        if self.threshold_ms is not None:
            out["thresholdMs"] = self.threshold_ms
        return out


@dataclass(frozen=True, slots=True)
class SloPolicy:
    """A service's SLO as the controller uses it."""

    objectives: tuple[Objective, ...]
    window_days: int = 30
    burn_rate_alert: float = 14.4
    burn_window_s: int = 3600

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> SloPolicy | None:
        """The SLO of a normalised spec body (``ServiceSpecVersion.spec["spec"]``), or None
        when it has none. Raises ``ValueError`` when the stored SLO does not validate."""
        raw = spec.get("slo")
        if not raw:
            return None
        slo = Slo.model_validate(raw)
        objectives: list[Objective] = []
        if slo.availability is not None:
            objectives.append(Objective("availability", slo.availability))
        if slo.latency is not None:
            objectives.append(Objective("latency", slo.latency.percent, slo.latency.threshold_ms))
        return cls(
            objectives=tuple(objectives),
            window_days=slo.window_days,
            burn_rate_alert=slo.burn_rate_alert,
            burn_window_s=slo.burn_window_seconds,
        )


@dataclass(frozen=True, slots=True)
class Budget:
    """One objective over some requests: how many were bad, how many might have been."""

    objective: Objective
    requests: int
    bad: float
    allowed: float
    spent: float  # bad / allowed: 1.0 is the whole budget; over a burn window, the burn rate

    @property
    def remaining(self) -> float:
        """The share of the budget left (0 once it is spent, however far over)."""
        return max(0.0, 1.0 - self.spent)

    @property
    def exhausted(self) -> bool:
        return self.spent >= 1.0

    def counts(self, window_days: int) -> str:
        """E.g. "312 of 100 allowed 5xx in 30 days (312% of the budget spent)"."""
        return (
            f"{_number(self.bad)} of {_number(self.allowed)} allowed "
            f"{self.objective.bad_noun} in {_days(window_days)} "
            f"({_number(self.spent * 100)}% of the budget spent)"
        )

    def describe(self, window_days: int) -> str:
        """E.g. "availability 99.9%: 312 of 100 allowed 5xx in 30 days (312% of the
        budget spent)"."""
        return f"{self.objective.label}: {self.counts(window_days)}"

    def as_json(self) -> dict[str, Any]:
        return {
            **self.objective.as_json(),
            "requests": self.requests,
            "bad": self.bad,
            "allowed": self.allowed,
            "spent": self.spent,
            "spentPercent": round(self.spent * 100, 2),
            "remaining": self.remaining,
        }


def budget(objective: Objective, tally: Tally) -> Budget:
    """``objective`` judged over ``tally``. Without requests nothing is spent: no traffic
    is not a failure."""
    bad = objective.bad(tally)
    allowed = objective.allowed(tally.requests)
    # An objective is under 100% (the spec says so), so with requests something is allowed.
    spent = bad / allowed if tally.requests and bad else 0.0
    return Budget(objective, tally.requests, bad, allowed, spent)


def burn_rate(objective: Objective, tally: Tally) -> float:
    """The bad share of ``tally`` divided by the share ``objective`` allows."""
    return budget(objective, tally).spent


@dataclass(frozen=True, slots=True)
class SloReport:
    """Where a service stands: every objective over the SLO window and the burn window."""

    policy: SloPolicy
    since: datetime  # start of the SLO window (on the hour)
    until: datetime  # now
    window: tuple[Budget, ...]  # per objective, over the SLO window
    burn: tuple[Budget, ...]  # per objective, over the burn window (spent = burn rate)

    @property
    def requests(self) -> int:
        return self.window[0].requests if self.window else 0

    @property
    def burn_requests(self) -> int:
        return self.burn[0].requests if self.burn else 0

    @property
    def budget_spent(self) -> float:
        """The most spent objective's share (1.0 = the whole budget)."""
        return max((b.spent for b in self.window), default=0.0)

    @property
    def burn_rate(self) -> float:
        return max((b.spent for b in self.burn), default=0.0)

    @property
    def over_budget(self) -> tuple[Budget, ...]:
        return tuple(b for b in self.window if b.exhausted)

    @property
    def frozen(self) -> bool:
        """Whether deploys should be frozen: some objective has spent its whole budget."""
        return bool(self.over_budget)

    def burning(self, min_requests: int = MIN_BURN_REQUESTS) -> bool:
        """Whether the budget burns at the alerting rate, on enough requests to say so."""
        return self.burn_requests >= min_requests and self.burn_rate >= self.policy.burn_rate_alert

    @property
    def reason(self) -> str:
        """Why deploys are frozen; when they are not, how the most spent objective stands."""
        days = self.policy.window_days
        if self.over_budget:
            return "; ".join(b.describe(days) for b in self.over_budget)
        if self.requests == 0:
            return f"no requests in {_days(days)}"
        most = max(self.window, key=lambda b: b.spent)
        return most.describe(days)

    def objectives_json(self) -> dict[str, Any]:
        """Per objective, the window's numbers and the burn window's, as ``SloStatus``
        keeps them."""
        out: dict[str, Any] = {}
        for window, burn in zip(self.window, self.burn, strict=True):
            out[window.objective.kind] = {
                **window.as_json(),
                "burnRate": burn.spent,
                "burnBad": burn.bad,
                "burnRequests": burn.requests,
            }
        return out


def assess(
    policy: SloPolicy, window: Tally, burn: Tally, *, since: datetime, until: datetime
) -> SloReport:
    """Judge every objective of ``policy`` over the SLO window's and the burn window's
    traffic."""
    return SloReport(
        policy=policy,
        since=since,
        until=until,
        window=tuple(budget(o, window) for o in policy.objectives),
        burn=tuple(budget(o, burn) for o in policy.objectives),
    )


def window_since(policy: SloPolicy, now: datetime) -> datetime:
    """Where the SLO window starts: ``window_days`` ago, back to the hour. The hour that
    straddles the edge is counted whole, so a bad request stays counted until every request
    of its hour has left the window, never less than ``window_days``."""
    return hour_start(now - timedelta(days=policy.window_days))


def burn_since(policy: SloPolicy, now: datetime) -> datetime:
    return window_start(now - timedelta(seconds=policy.burn_window_s))


async def assess_service(
    session: AsyncSession, service_id: str, policy: SloPolicy, now: datetime
) -> SloReport:
    """Read a service's traffic (all releases) over the SLO and burn windows ending at
    ``now`` and judge it."""
    since = window_since(policy, now)
    window = await read_total(session, service_id, since, now, model=RequestMetricsHourly)
    burn = await read_total(session, service_id, burn_since(policy, now), now, model=RequestMetrics)
    return assess(policy, window, burn, since=since, until=now)


async def read_status(session: AsyncSession, service_id: str) -> SloStatus | None:
    """The error budget as the SLO controller last computed it (None: no SLO, or not yet)."""
    return await session.get(SloStatus, service_id)


async def frozen_status(session: AsyncSession, service_id: str) -> SloStatus | None:
    """The status row when the service's deploys are frozen, else None: what a deploy
    mutation checks (``reason`` and the per-objective numbers explain the freeze)."""
    status = await read_status(session, service_id)
    return status if status is not None and status.frozen else None
