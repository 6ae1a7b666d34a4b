"""Canary analysis, error budgets and alerts as GraphQL shows them: views over the
canary state a deployment records, the samples its analysis streams, the SLO controller's
numbers and the alert outbox. Built from plain data (the store's JSON), never from GraphQL."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import strawberry

from store import models
from store.alerts import redact


@strawberry.enum(description="What one analysis check concluded.")
class CanaryVerdict(enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@strawberry.type(description="One release's traffic in a check's window.")
class CanarySide:
    requests: int
    errors: int = strawberry.field(description="Requests answered 5xx.")
    error_rate: float = strawberry.field(description="Share answered 5xx (0..1).")
    p95_ms: float | None = strawberry.field(description="From the latency histogram.")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CanarySide:
        return cls(
            requests=int(data.get("requests", 0)),
            errors=int(data.get("errors", 0)),
            error_rate=float(data.get("errorRate", 0.0)),
            p95_ms=data.get("p95Ms"),
        )


@strawberry.type(
    description="One analysis check of a canary: the canary and the stable release over "
    "the same window, and the verdict."
)
class CanarySample:
    sequence: int | None = strawberry.field(
        description="Position in the canary's stream (resume canaryMetrics after it)."
    )
    at: datetime
    weight: int = strawberry.field(description="Percent of traffic the canary had.")
    step: int = strawberry.field(description="Index of the canary step (0-based).")
    canary: CanarySide
    stable: CanarySide
    verdict: CanaryVerdict
    reason: str

    @classmethod
    def from_json(cls, data: dict[str, Any], sequence: int | None = None) -> CanarySample:
        return cls(
            sequence=sequence,
            at=datetime.fromisoformat(str(data["at"])),
            weight=int(data.get("weight", 0)),
            step=int(data.get("step", 0)),
            canary=CanarySide.from_json(data.get("canary", {})),
            stable=CanarySide.from_json(data.get("stable", {})),
            verdict=CanaryVerdict(data.get("verdict", "inconclusive")),
            reason=str(data.get("reason", "")),
        )


@strawberry.type(description="One canary step: a weight, a pause, or an analysis gate.")
class CanaryStep:
    set_weight: int | None = strawberry.field(description="Percent sent to the canary.")
    pause_seconds: int | None = strawberry.field(description="A pause of this length.")
    pause_until_promoted: bool = strawberry.field(description="A pause until promoted.")
    analysis: bool = strawberry.field(description="Holds until a check passes.")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CanaryStep:
        pause = data.get("pause")
        seconds = pause.get("seconds") if isinstance(pause, dict) else None
        return cls(
            set_weight=data.get("setWeight"),
            pause_seconds=seconds,
            pause_until_promoted=isinstance(pause, dict) and seconds is None,
            analysis="analysis" in data,
        )


@strawberry.type(description="How a canary is judged (spec.deploy.canary.analysis).")
class CanaryAnalysisPolicy:
    interval_seconds: float
    window_seconds: float
    max_error_rate_percent: float
    max_p95_ratio: float
    min_requests: int
    min_errors: int
    failures_to_abort: int
    deadline_seconds: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CanaryAnalysisPolicy:
        return cls(
            interval_seconds=float(data.get("intervalSeconds", 30)),
            window_seconds=float(data.get("windowSeconds", 120)),
            max_error_rate_percent=float(data.get("maxErrorRatePercent", 2.0)),
            max_p95_ratio=float(data.get("maxP95Ratio", 1.5)),
            min_requests=int(data.get("minRequests", 200)),
            min_errors=int(data.get("minErrors", 5)),
            failures_to_abort=int(data.get("failuresToAbort", 4)),
            deadline_seconds=int(data.get("deadlineSeconds", 1800)),
        )


@strawberry.type(description="Why a canary ended the way it did.")
class CanaryDecision:
    reason: str
    automated: bool = strawberry.field(description="Decided by the analysis, not a person.")
    sample: CanarySample | None = strawberry.field(description="The check that decided it.")


@strawberry.type(description="Where a canary deployment is: its step, weight and checks.")
class CanaryStatus:
    step: int = strawberry.field(description="Index of the current step (0-based).")
    steps: list[CanaryStep]
    weight: int = strawberry.field(description="Percent of traffic the canary takes.")
    started_at: datetime | None = strawberry.field(
        description="When it took traffic (its replicas all ready)."
    )
    checks: int
    last_check_at: datetime | None
    paused_by: str | None = strawberry.field(description="Set while paused by a person.")
    latest: CanarySample | None
    decision: CanaryDecision | None
    analysis: CanaryAnalysisPolicy
    keep_aborted_seconds: int

    @classmethod
    def from_json(cls, state: dict[str, Any], settings: dict[str, Any]) -> CanaryStatus:
        def when(key: str) -> datetime | None:
            value = state.get(key)
            return datetime.fromisoformat(value) if isinstance(value, str) else None

        latest = state.get("last")
        decided = state.get("decision")
        decision = None
        if isinstance(decided, dict):
            sample = decided.get("sample")
            decision = CanaryDecision(
                reason=str(decided.get("reason", "")),
                automated=bool(decided.get("automated", False)),
                sample=CanarySample.from_json(sample) if isinstance(sample, dict) else None,
            )
        return cls(
            step=int(state.get("step", 0)),
            steps=[CanaryStep.from_json(s) for s in settings.get("steps", [])],
            weight=int(state.get("weight", 0)),
            started_at=when("startedAt"),
            checks=int(state.get("checks", 0)),
            last_check_at=when("lastCheckAt"),
            paused_by=state.get("pausedBy"),
            latest=CanarySample.from_json(latest) if isinstance(latest, dict) else None,
            decision=decision,
            analysis=CanaryAnalysisPolicy.from_json(settings.get("analysis", {})),
            keep_aborted_seconds=int(settings.get("keepAbortedSeconds", 600)),
        )


@strawberry.input(description="One canary step; set exactly one field.")
class CanaryStepInput:
    set_weight: int | None = strawberry.field(default=None, description="Percent, 1..100.")
    pause_seconds: int | None = strawberry.field(default=None, description="Hold this long.")
    pause_until_promoted: bool | None = strawberry.field(
        default=None, description="true: hold until promoteDeployment."
    )
    analysis: bool | None = strawberry.field(
        default=None, description="true: hold until an analysis check passes."
    )

    def to_spec(self) -> dict[str, Any]:
        """As written in enclii.yaml (``deploy.canary.steps``)."""
        step: dict[str, Any] = {}
        if self.set_weight is not None:
            step["setWeight"] = self.set_weight
        if self.pause_seconds is not None:
            step["pause"] = {"seconds": self.pause_seconds}
        if self.pause_until_promoted:
            if "pause" in step:
                step["analysis"] = {}  # two kinds in one step: the spec check says so
            step["pause"] = {}
        if self.analysis:
            step["analysis"] = {}
        return step


@strawberry.type(description="One SLO objective and its error budget over the window.")
class SloObjective:
    name: str = strawberry.field(description="availability or latency.")
    objective_percent: float
    threshold_ms: float | None = strawberry.field(description="For latency: the threshold.")
    bad: int = strawberry.field(description="Requests that missed it in the window.")
    allowed: float = strawberry.field(description="Bad requests the budget allows.")
    budget_spent: float = strawberry.field(description="Share of the budget spent (1 = all).")
    burn_rate: float | None = strawberry.field(
        description="How many times faster than sustainable the budget burns now."
    )

    @classmethod
    def from_json(cls, name: str, data: dict[str, Any]) -> SloObjective:
        threshold = data.get("thresholdMs")
        burn = data.get("burnRate")
        return cls(
            name=name,
            objective_percent=float(data.get("objective", 0.0)),
            threshold_ms=float(threshold) if threshold is not None else None,
            bad=int(data.get("bad", 0)),
            allowed=float(data.get("allowed", 0.0)),
            budget_spent=float(data.get("spent", 0.0)),
            burn_rate=float(burn) if burn is not None else None,
        )


@strawberry.type(description="A service's error budget, and whether its deploys are frozen.")
class SloStatus:
    computed_at: datetime
    window_days: int
    requests: int = strawberry.field(description="Requests in the window.")
    objectives: list[SloObjective]
    budget_spent: float = strawberry.field(
        description="The most spent objective's share of its budget (1 = all of it)."
    )
    burn_rate: float
    burning: bool = strawberry.field(description="Burning faster than the alert threshold.")
    frozen: bool = strawberry.field(
        description="Deploys refused (FrozenError) except canary deploys marked as a fix."
    )
    frozen_at: datetime | None
    reason: str | None

    @classmethod
    def from_row(cls, row: models.SloStatus) -> SloStatus:
        return cls(
            computed_at=row.computed_at,
            window_days=row.window_days,
            requests=row.requests,
            objectives=[
                SloObjective.from_json(name, figures)
                for name, figures in sorted(row.objectives.items())
                if isinstance(figures, dict)
            ],
            budget_spent=row.budget_spent,
            burn_rate=row.burn_rate,
            burning=row.burning,
            frozen=row.frozen,
            frozen_at=row.frozen_at,
            reason=row.reason,
        )


@strawberry.type(description="One alert sent (or owed) to a policy's webhook.")
class AlertDelivery:
    id: strawberry.ID
    policy: str
    event: str = strawberry.field(description="rollback, freeze, unfreeze or slo-burn.")
    destination: str = strawberry.field(description="The webhook's scheme and host only.")
    text: str = strawberry.field(description="The message's text.")
    status: models.AlertStatus
    attempts: int
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime | None

    @classmethod
    def from_row(cls, row: models.AlertDelivery) -> AlertDelivery:
        return cls(
            id=strawberry.ID(row.id),
            policy=row.policy,
            event=row.event,
            destination=redact(row.url),
            text=str(row.payload.get("text", "")),
            status=row.status,
            attempts=row.attempts,
            last_error=row.last_error,
            created_at=row.created_at,
            delivered_at=row.delivered_at,
            next_attempt_at=row.next_attempt_at,
        )
