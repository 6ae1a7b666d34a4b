"""A canary's way through its steps: set a weight, pause, wait for analysis, and the
overrides people give it (pause, promote, abort).

``advance`` is a pure function of the canary's recorded state, its plan (steps and
analysis policy), the clock and the analysis check made now (if one was due). The
deployment controller feeds it and writes the state back on the deployment, so a restarted
controller carries on from the step it was at. What it answers is one of:

- **hold**: stay at the current weight (waiting out a pause, waiting for a passing check,
  paused by a person, or too little traffic to say anything);
- **promote**: every step is done — the canary takes all traffic;
- **abort**: the analysis failed ``failuresToAbort`` checks in a row, a person aborted it,
  or the canary waited ``deadlineSeconds`` for a passing check (counted from when the step
  began to wait, so the pauses before do not use it up) — with "insufficient traffic" when
  its checks had too few requests to judge.

No data is never a reason to move: a pause ends only once the latest check *passed*.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final

from reconcile.canary import AnalysisPolicy, Sample, Side, Verdict, may_promote, should_abort

HISTORY_KEPT: Final = 100  # verdicts kept on the deployment; the stream keeps every sample


@dataclass(frozen=True)
class Step:
    """One of ``deploy.canary.steps``: a weight to set, a pause (None: until promoted) or
    an analysis gate."""

    kind: str  # "setWeight", "pause" or "analysis"
    weight: int | None = None
    seconds: float | None = None

    @classmethod
    def from_spec(cls, step: Mapping[str, Any]) -> Step:
        if "setWeight" in step:
            return cls("setWeight", weight=int(step["setWeight"]))
        if "pause" in step:
            seconds = (step["pause"] or {}).get("seconds")
            return cls("pause", seconds=float(seconds) if seconds is not None else None)
        return cls("analysis")

    def describe(self) -> str:
        if self.kind == "setWeight":
            return f"set weight {self.weight}%"
        if self.kind == "pause":
            return (
                f"pause {self.seconds:g}s" if self.seconds is not None else "pause until promoted"
            )
        return "wait for a passing analysis check"


@dataclass(frozen=True)
class CanaryPlan:
    steps: tuple[Step, ...]
    analysis: AnalysisPolicy
    deadline_s: float
    keep_aborted_s: float

    @classmethod
    def from_spec(
        cls, canary: Mapping[str, Any], steps: Sequence[Mapping[str, Any]] | None = None
    ) -> CanaryPlan:
        """From a normalised ``deploy.canary``; ``steps`` (given on the deploy) win."""
        analysis = canary.get("analysis", {})
        policy = AnalysisPolicy(
            max_error_rate=float(analysis.get("maxErrorRatePercent", 2.0)) / 100,
            max_p95_ratio=float(analysis.get("maxP95Ratio", 1.5)),
            min_requests=int(analysis.get("minRequests", 200)),
            min_errors=int(analysis.get("minErrors", 5)),
            failures_to_abort=int(analysis.get("failuresToAbort", 4)),
            interval_s=float(analysis.get("intervalSeconds", 30)),
            window_s=float(analysis.get("windowSeconds", 120)),
        )
        chosen = steps or canary.get("steps") or DEFAULT_STEPS
        return cls(
            steps=tuple(Step.from_spec(s) for s in chosen),
            analysis=policy,
            deadline_s=float(analysis.get("deadlineSeconds", 1800)),
            keep_aborted_s=float(canary.get("keepAbortedSeconds", 600)),
        )


DEFAULT_STEPS: Final[tuple[Mapping[str, Any], ...]] = (
    {"setWeight": 10},
    {"pause": {"seconds": 300}},
    {"setWeight": 100},
)


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class CanaryState:
    """What the controller records on the deployment (``Deployment.canary``), and the
    overrides the promote, pause and abort mutations write there."""

    step: int = 0
    weight: int = 0
    started_at: datetime | None = None  # when the canary first took traffic
    step_started_at: datetime | None = None
    last_check_at: datetime | None = None
    checks: int = 0
    history: tuple[Verdict, ...] = ()
    step_passed: bool = False  # a check passed since the current step began
    # When the current step began to wait for a passing check: the deadline counts from
    # here, so pauses before it do not use it up.
    waiting_since: datetime | None = None
    last: dict[str, Any] | None = None  # the latest sample, as streamed
    decision: dict[str, Any] | None = None  # what ended it: the sample and the reason
    # Overrides, written by mutations and consumed here.
    paused_by: str | None = None
    promote: str | None = None  # "step" or "full"
    abort_by: str | None = None
    abort_reason: str | None = None
    steps: tuple[dict[str, Any], ...] | None = None  # given on the deploy mutation
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CanaryState:
        known = {
            "step",
            "weight",
            "startedAt",
            "stepStartedAt",
            "lastCheckAt",
            "checks",
            "history",
            "stepPassed",
            "waitingSince",
            "last",
            "decision",
            "pausedBy",
            "promote",
            "abortBy",
            "abortReason",
            "steps",
        }
        steps = data.get("steps")
        return cls(
            step=int(data.get("step", 0)),
            weight=int(data.get("weight", 0)),
            started_at=_time(data.get("startedAt")),
            step_started_at=_time(data.get("stepStartedAt")),
            last_check_at=_time(data.get("lastCheckAt")),
            checks=int(data.get("checks", 0)),
            history=tuple(Verdict(v) for v in data.get("history", [])),
            step_passed=bool(data.get("stepPassed", False)),
            waiting_since=_time(data.get("waitingSince")),
            last=data.get("last"),
            decision=data.get("decision"),
            paused_by=data.get("pausedBy"),
            promote=data.get("promote"),
            abort_by=data.get("abortBy"),
            abort_reason=data.get("abortReason"),
            steps=tuple(steps) if steps else None,
            extra={k: v for k, v in data.items() if k not in known},
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            **self.extra,
            "step": self.step,
            "weight": self.weight,
            "startedAt": _iso(self.started_at),
            "stepStartedAt": _iso(self.step_started_at),
            "lastCheckAt": _iso(self.last_check_at),
            "checks": self.checks,
            "history": [v.value for v in self.history[-HISTORY_KEPT:]],
            "stepPassed": self.step_passed,
            "waitingSince": _iso(self.waiting_since),
            "last": self.last,
            "decision": self.decision,
            "pausedBy": self.paused_by,
            "promote": self.promote,
            "abortBy": self.abort_by,
            "abortReason": self.abort_reason,
            "steps": list(self.steps) if self.steps else None,
        }
        return {k: v for k, v in data.items() if v is not None}


class Outcome(enum.Enum):
    HOLD = "hold"
    PROMOTE = "promote"
    ABORT = "abort"


@dataclass(frozen=True)
class Advance:
    state: CanaryState
    outcome: Outcome
    reason: str  # for the Progressing condition, or why it was aborted
    automated: bool = False  # an abort the analysis decided (not a person)
    next_at: datetime | None = None  # when something is due without any new event


def sample_json(sample: Sample, weight: int, step: int, at: datetime) -> dict[str, Any]:
    def side(s: Side) -> dict[str, Any]:
        return {
            "requests": s.requests,
            "errors": s.errors,
            "errorRate": round(s.error_rate, 6),
            "p95Ms": round(s.p95_ms, 3) if s.p95_ms is not None else None,
        }

    return {
        "at": at.isoformat(),
        "weight": weight,
        "step": step,
        "canary": side(sample.canary),
        "stable": side(sample.stable),
        "verdict": sample.verdict.value,
        "reason": sample.reason,
    }


def next_check_at(state: CanaryState, plan: CanaryPlan, now: datetime) -> datetime:
    """When the next check is due: on a fixed grid from when the canary took traffic
    (started + k·interval), so a check made late does not push every later one back and
    N failing checks take N intervals, not N intervals plus N delays."""
    start = state.started_at or now
    interval = plan.analysis.interval_s
    last = state.last_check_at
    if last is None:
        return start + timedelta(seconds=interval)
    done = int((last - start).total_seconds() // interval)
    return start + timedelta(seconds=interval * (done + 1))


def check_due(state: CanaryState, plan: CanaryPlan, now: datetime) -> bool:
    """Whether an analysis check should be made now: the canary takes some (not all)
    traffic and the next point of its check grid has come."""
    if state.started_at is None or not 0 < state.weight < 100:
        return False
    return now >= next_check_at(state, plan, now)


def begin(state: CanaryState, now: datetime) -> CanaryState:
    """The canary's replicas are all ready: its first step starts now."""
    if state.started_at is not None:
        return state
    return replace(state, started_at=now, step_started_at=now)


def advance(
    state: CanaryState, plan: CanaryPlan, now: datetime, sample: Sample | None = None
) -> Advance:
    """Where the canary goes from ``state``, given the check made now (if any)."""
    policy = plan.analysis
    if sample is not None:
        state = replace(
            state,
            last_check_at=now,
            checks=state.checks + 1,
            history=(*state.history, sample.verdict)[-HISTORY_KEPT:],
            step_passed=state.step_passed or sample.verdict is Verdict.PASS,
            last=sample_json(sample, state.weight, state.step, now),
        )
    if state.abort_by is not None:
        reason = f"aborted by {state.abort_by}" + (
            f": {state.abort_reason}" if state.abort_reason else ""
        )
        return _abort(state, reason, automated=False)
    if should_abort(state.history, policy):
        last = state.last or {}
        reason = (
            f"automated rollback after {policy.failures_to_abort} failed analysis checks in a "
            f"row: {last.get('reason', 'analysis failed')}"
        )
        return _abort(state, reason, automated=True)
    if state.promote == "full":
        return _promote(replace(state, promote=None, paused_by=None), "promoted in full")

    while state.step < len(plan.steps):
        step = plan.steps[state.step]
        if step.kind == "setWeight":
            assert step.weight is not None
            state = _next_step(replace(state, weight=step.weight), now)
            if step.weight >= 100:
                return _promote(state, "every canary step passed")
            continue
        manual = state.promote == "step"
        if manual:
            state = _next_step(replace(state, promote=None, paused_by=None), now)
            continue
        if state.paused_by is not None:
            return _hold(state, plan, now, f"paused by {state.paused_by} at {state.weight}%")
        if step.kind == "pause" and step.seconds is None:
            return _hold(state, plan, now, f"paused at {state.weight}% until promoted")
        if step.kind == "pause":
            assert step.seconds is not None and state.step_started_at is not None
            ends = state.step_started_at + timedelta(seconds=step.seconds)
            if now < ends:
                left = (ends - now).total_seconds()
                return _hold(
                    state, plan, now, f"at {state.weight}% for {left:.0f}s more", until=ends
                )
            if not (may_promote(state.history) and _checked_since(state, state.step_started_at)):
                return _waiting(state, plan, now)
            state = _next_step(state, now)
            continue
        if not state.step_passed:  # an analysis gate
            return _waiting(state, plan, now)
        state = _next_step(state, now)
    return _promote(replace(state, weight=100), "every canary step passed")


def _next_step(state: CanaryState, now: datetime) -> CanaryState:
    return replace(
        state, step=state.step + 1, step_started_at=now, step_passed=False, waiting_since=None
    )


def _checked_since(state: CanaryState, since: datetime | None) -> bool:
    """Whether the latest check was made at or after ``since`` (a pause ends on a check of
    the weight it held, not on one from before it)."""
    return state.last_check_at is not None and (since is None or state.last_check_at >= since)


def _promote(state: CanaryState, reason: str) -> Advance:
    return Advance(replace(state, weight=100, promote=None), Outcome.PROMOTE, reason)


def _abort(state: CanaryState, reason: str, *, automated: bool) -> Advance:
    decision = {"reason": reason, "automated": automated, "sample": state.last}
    return Advance(replace(state, decision=decision), Outcome.ABORT, reason, automated=automated)


def abort_now(state: CanaryState, reason: str) -> Advance:
    """An automated abort for a reason the analysis does not see (a crash-looping canary)."""
    return _abort(state, reason, automated=True)


def _waiting(state: CanaryState, plan: CanaryPlan, now: datetime) -> Advance:
    """Held for analysis: a check must pass before the canary moves on — and if none has
    by the deadline, it rolls back."""
    if state.waiting_since is None:
        state = replace(state, waiting_since=now)
    assert state.waiting_since is not None
    deadline = state.waiting_since + timedelta(seconds=plan.deadline_s)
    latest = state.history[-1] if state.history else None
    if now >= deadline:
        if latest is None or latest is Verdict.INCONCLUSIVE:
            got = (state.last or {}).get("canary", {}).get("requests", 0)
            reason = (
                f"insufficient traffic: {got} of {plan.analysis.min_requests} canary requests "
                f"in the last {plan.analysis.window_s:g}s after waiting {plan.deadline_s:g}s "
                "for a passing analysis check"
            )
        else:
            reason = (
                f"no passing analysis check within the {plan.deadline_s:g}s deadline "
                f"(latest: {(state.last or {}).get('reason', latest.value)})"
            )
        return _abort(state, reason, automated=True)
    if latest is None:
        why = "waiting for the first analysis check"
    elif latest is Verdict.INCONCLUSIVE:
        why = f"holding: {(state.last or {}).get('reason', 'insufficient traffic')}"
    else:
        why = f"waiting for a passing check (latest: {(state.last or {}).get('reason', '')})"
    return _hold(state, plan, now, f"at {state.weight}%, {why}", until=deadline)


def _hold(
    state: CanaryState,
    plan: CanaryPlan,
    now: datetime,
    reason: str,
    until: datetime | None = None,
) -> Advance:
    next_check = next_check_at(state, plan, now)
    due = min(next_check, until) if until is not None else next_check
    return Advance(state, Outcome.HOLD, reason, next_at=due)
