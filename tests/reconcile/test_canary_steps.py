"""The canary's step machine (reconcile/canary_steps.py): weights, pauses, analysis gates,
the deadline and the overrides people give it, on a clock the tests move by hand.

Every state goes through JSON between two decisions, as the deployment controller keeps it
on the deployment row: what a restarted controller reads back is all ``advance`` gets."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconcile.canary import AnalysisPolicy, Sample, Verdict, judge
from reconcile.canary_steps import (
    DEFAULT_STEPS,
    HISTORY_KEPT,
    Advance,
    CanaryPlan,
    CanaryState,
    Outcome,
    Step,
    advance,
    begin,
    check_due,
    sample_json,
)
from store.errors import SpecError
from store.metrics import Tally
from store.spec import load_spec

T0: Final = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
POLICY: Final = AnalysisPolicy()


def traffic(requests: int, errors: int = 0, latency_ms: float = 20.0, slow: int = 0) -> Tally:
    """``requests`` answered in ``latency_ms`` (the last ``slow`` of them ten times
    slower), the first ``errors`` of them 5xx."""
    tally = Tally()
    for i in range(requests):
        tally.record(
            503 if i < errors else 200, latency_ms * 10 if i >= requests - slow else latency_ms
        )
    return tally


STABLE: Final = traffic(9000)
HEALTHY: Final = judge(traffic(1000), STABLE, POLICY)
FAILING: Final = judge(traffic(1000, errors=50), STABLE, POLICY)
SLOW: Final = judge(traffic(1000, slow=100), STABLE, POLICY)
QUIET: Final = judge(traffic(150), STABLE, POLICY)
HEALTHY_REASON: Final = "5xx rate 0.0% (1000 requests); P95 20 ms vs stable's 20 ms"
FAILING_REASON: Final = "5xx rate 5.0% > 2.0% (50 of 1000 requests)"
QUIET_REASON: Final = "insufficient traffic: 150 of 200 canary requests in the window"


def test_the_samples_say_what_the_tests_rely_on() -> None:
    assert (HEALTHY.verdict, HEALTHY.reason) == (Verdict.PASS, HEALTHY_REASON)
    assert (FAILING.verdict, FAILING.reason) == (Verdict.FAIL, FAILING_REASON)
    assert (SLOW.verdict, SLOW.reason) == (Verdict.FAIL, "P95 210 ms > 1.5x stable's 20 ms")
    assert (QUIET.verdict, QUIET.reason) == (Verdict.INCONCLUSIVE, QUIET_REASON)


@dataclass
class Clock:
    now: datetime = T0

    def at(self, seconds: float) -> datetime:
        """Move to ``seconds`` after T0 (never back)."""
        moved = T0 + timedelta(seconds=seconds)
        assert moved >= self.now, "the clock only moves forward"
        self.now = moved
        return moved


def through_json(state: CanaryState) -> CanaryState:
    """What the controller reads back from the deployment row."""
    return CanaryState.from_json(json.loads(json.dumps(state.to_json())))


def plan_of(
    steps: Sequence[Mapping[str, Any]] | None = None,
    **analysis: float,
) -> CanaryPlan:
    canary: dict[str, Any] = {"analysis": analysis}
    if steps is not None:
        canary["steps"] = list(steps)
    return CanaryPlan.from_spec(canary)


@dataclass
class Canary:
    """One canary as the controller drives it: a check whenever one is due, the state
    kept as JSON between decisions, overrides written into that JSON as the mutations do."""

    plan: CanaryPlan = field(default_factory=lambda: plan_of())
    clock: Clock = field(default_factory=Clock)
    state: CanaryState = field(default_factory=CanaryState)
    moves: list[Advance] = field(default_factory=list)

    def start(self) -> Advance:
        self.state = begin(self.state, self.clock.now)
        return self.decide()

    def decide(self, sample: Sample | None = None) -> Advance:
        moved = advance(self.state, self.plan, self.clock.now, sample)
        self.state = through_json(moved.state)
        assert self.state == moved.state, "the state must survive its trip through JSON"
        self.moves.append(moved)
        return moved

    def check(self, at: float, sample: Sample) -> Advance:
        """Move the clock to ``at`` and make the check that is due there."""
        self.clock.at(at)
        assert check_due(self.state, self.plan, self.clock.now), f"no check due at {at}s"
        return self.decide(sample)

    def checks(self, samples: Sequence[Sample], start: float | None = None) -> list[Advance]:
        """A check every interval from ``start`` (default: the next one due), until the
        canary ends (promoted or aborted: no check is made after that)."""
        interval = self.plan.analysis.interval_s
        at = start if start is not None else self.next_check()
        moves: list[Advance] = []
        for i, sample in enumerate(samples):
            moves.append(self.check(at + i * interval, sample))
            if moves[-1].outcome is not Outcome.HOLD:
                break
        return moves

    def next_check(self) -> float:
        since = self.state.last_check_at or self.state.started_at
        assert since is not None
        return (since - T0).total_seconds() + self.plan.analysis.interval_s

    def override(self, **changes: Any) -> None:
        data = {**self.state.to_json()}
        for key, value in changes.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        self.state = CanaryState.from_json(json.loads(json.dumps(data)))


# -- the plan ----------------------------------------------------------------------------------


def test_the_default_plan_is_ten_percent_for_five_minutes_then_all() -> None:
    plan = CanaryPlan.from_spec({})
    assert plan.steps == (
        Step("setWeight", weight=10),
        Step("pause", seconds=300.0),
        Step("setWeight", weight=100),
    )
    assert plan.analysis == AnalysisPolicy()
    assert (plan.deadline_s, plan.keep_aborted_s) == (1800.0, 600.0)
    assert [s.describe() for s in plan.steps] == [
        "set weight 10%",
        "pause 300s",
        "set weight 100%",
    ]


def test_the_plan_of_a_normalised_canary_spec_is_the_default_plan() -> None:
    text = (
        "apiVersion: enclii.dev/v1\nkind: Service\n"
        "metadata: {project: shop, environment: dev, name: web}\n"
        "spec:\n  deploy:\n    strategy: canary\n"
    )
    canary = load_spec(text).normalised()["spec"]["deploy"]["canary"]
    assert canary["steps"] == list(DEFAULT_STEPS)
    assert CanaryPlan.from_spec(canary) == CanaryPlan.from_spec({})


def test_the_plan_reads_every_analysis_setting_and_steps_given_on_the_deploy_win() -> None:
    canary = {
        "steps": [{"setWeight": 5}, {"analysis": {}}, {"setWeight": 100}],
        "analysis": {
            "intervalSeconds": 2,
            "windowSeconds": 10,
            "maxErrorRatePercent": 5,
            "maxP95Ratio": 2,
            "minRequests": 20,
            "minErrors": 2,
            "failuresToAbort": 3,
            "deadlineSeconds": 60,
        },
        "keepAbortedSeconds": 30,
    }
    plan = CanaryPlan.from_spec(canary)
    assert plan.analysis == AnalysisPolicy(
        max_error_rate=0.05,
        max_p95_ratio=2.0,
        min_requests=20,
        min_errors=2,
        failures_to_abort=3,
        interval_s=2.0,
        window_s=10.0,
    )
    assert (plan.deadline_s, plan.keep_aborted_s) == (60.0, 30.0)
    assert [s.kind for s in plan.steps] == ["setWeight", "analysis", "setWeight"]
    given_on_deploy: list[dict[str, Any]] = [{"setWeight": 30}, {"pause": {}}, {"setWeight": 100}]
    overridden = CanaryPlan.from_spec(canary, given_on_deploy)
    assert overridden.steps == (
        Step("setWeight", weight=30),
        Step("pause", seconds=None),
        Step("setWeight", weight=100),
    )
    assert overridden.steps[1].describe() == "pause until promoted"
    assert overridden.analysis == plan.analysis


# -- starting ----------------------------------------------------------------------------------


def test_a_canary_takes_its_first_weight_when_it_begins() -> None:
    canary = Canary()
    assert canary.state.started_at is None
    first = canary.start()
    assert first.outcome is Outcome.HOLD
    assert (first.state.step, first.state.weight) == (1, 10)
    assert first.state.started_at == first.state.step_started_at == T0
    assert first.reason == "at 10% for 300s more"
    assert first.next_at == T0 + timedelta(seconds=30)  # the first check
    # Beginning again (a second reconcile) changes nothing.
    assert begin(canary.state, T0 + timedelta(seconds=5)) == canary.state


# -- pauses ------------------------------------------------------------------------------------


def test_a_pause_ends_after_its_duration_once_the_latest_check_passed() -> None:
    canary = Canary()
    canary.start()
    during = canary.checks([HEALTHY] * 9)  # 30 s … 270 s
    assert {(m.outcome, m.state.weight, m.state.step) for m in during} == {(Outcome.HOLD, 10, 1)}
    assert during[-1].reason == "at 10% for 30s more"
    done = canary.check(300, HEALTHY)
    assert done.outcome is Outcome.PROMOTE
    assert done.reason == "every canary step passed"
    assert (done.state.weight, done.state.step, done.state.checks) == (100, 3, 10)
    assert done.automated is False


def test_a_pause_that_ended_without_a_passing_check_holds_until_one_passes() -> None:
    canary = Canary()
    canary.start()
    canary.checks([HEALTHY] * 8 + [FAILING])  # the latest, at 270 s, failed
    held = canary.decide()  # at 270 s: still in the pause
    assert held.outcome is Outcome.HOLD
    canary.clock.at(300)
    over = canary.decide()  # the pause is over; no check is due yet
    assert over.outcome is Outcome.HOLD
    assert over.reason == f"at 10%, waiting for a passing check (latest: {FAILING_REASON})"
    quiet = canary.check(300, QUIET)
    assert quiet.outcome is Outcome.HOLD
    assert quiet.reason == f"at 10%, holding: {QUIET_REASON}"
    assert canary.check(330, HEALTHY).outcome is Outcome.PROMOTE


def test_a_pause_may_end_on_the_latest_check_without_a_new_one() -> None:
    # Checks every 45 s: the last one in the pause is at 270 s; the pause ends at 300 s.
    canary = Canary(plan=plan_of(intervalSeconds=45))
    canary.start()
    moves = canary.checks([HEALTHY] * 6)  # 45 … 270 s
    assert moves[-1].next_at == T0 + timedelta(seconds=300)  # the pause's end comes first
    canary.clock.at(300)
    assert not check_due(canary.state, canary.plan, canary.clock.now)
    assert canary.decide().outcome is Outcome.PROMOTE


def test_an_idle_canary_holds_until_the_deadline_then_rolls_back_for_insufficient_traffic() -> None:
    canary = Canary()
    canary.start()
    # 30 s … 2070 s: never enough traffic to judge. The deadline counts from the end of
    # the 300 s pause, when the canary began to wait for a passing check.
    moves = canary.checks([QUIET] * 69)
    assert {(m.outcome, m.state.weight) for m in moves} == {(Outcome.HOLD, 10)}
    # Past its pause it holds, waiting, with the deadline as its next moment.
    assert moves[-1].reason == f"at 10%, holding: {QUIET_REASON}"
    assert moves[-1].state.waiting_since == T0 + timedelta(seconds=300)
    ended = canary.check(2100, QUIET)
    assert ended.outcome is Outcome.ABORT
    assert ended.automated is True
    assert ended.reason == (
        "insufficient traffic: 150 of 200 canary requests in the last 120s after waiting "
        "1800s for a passing analysis check"
    )
    decision = ended.state.decision
    assert decision is not None
    assert (decision["reason"], decision["automated"]) == (ended.reason, True)
    assert decision["sample"]["canary"]["requests"] == 150
    assert decision["sample"]["verdict"] == "inconclusive"


def test_an_idle_canary_is_never_promoted_and_never_aborted_before_its_deadline() -> None:
    # Ten silent checks past its pause: it holds; the first pass promotes it.
    canary = Canary(plan=plan_of(deadlineSeconds=600))
    canary.start()
    moves = canary.checks([QUIET] * 10)  # 30 … 300 s
    assert [m.outcome for m in moves] == [Outcome.HOLD] * 10
    assert canary.check(330, HEALTHY).outcome is Outcome.PROMOTE


def test_without_any_check_by_the_deadline_the_reason_counts_no_requests() -> None:
    # An interval longer than the deadline: no check is ever due in time.
    canary = Canary(
        plan=plan_of(
            [{"setWeight": 10}, {"pause": {"seconds": 5}}],
            intervalSeconds=120,
            windowSeconds=120,
            deadlineSeconds=60,
        )
    )
    canary.start()
    canary.clock.at(5)
    waiting = canary.decide()
    assert waiting.outcome is Outcome.HOLD
    assert waiting.reason == "at 10%, waiting for the first analysis check"
    # The wait began when the pause ended (5 s); its deadline comes before any check.
    assert waiting.next_at == T0 + timedelta(seconds=65)
    canary.clock.at(64)
    assert canary.decide().outcome is Outcome.HOLD
    canary.clock.at(65)
    ended = canary.decide()
    assert ended.outcome is Outcome.ABORT
    assert ended.reason.startswith("insufficient traffic: 0 of 200 canary requests")


# -- analysis gates ------------------------------------------------------------------------------


def test_an_analysis_step_waits_for_a_pass_made_during_the_step() -> None:
    plan = plan_of(
        [
            {"setWeight": 10},
            {"pause": {"seconds": 60}},
            {"analysis": {}},
            {"setWeight": 50},
            {"analysis": {}},
            {"setWeight": 100},
        ]
    )
    canary = Canary(plan=plan)
    canary.start()
    canary.check(30, HEALTHY)
    # The pass at 60 s ends the pause; it was made before the gate, so the gate waits.
    gate = canary.check(60, HEALTHY)
    assert gate.outcome is Outcome.HOLD
    assert (gate.state.step, gate.state.weight) == (2, 10)
    assert gate.reason == f"at 10%, waiting for a passing check (latest: {HEALTHY_REASON})"
    for at, sample in ((90, FAILING), (120, QUIET)):
        held = canary.check(at, sample)
        assert (held.outcome, held.state.step, held.state.weight) == (Outcome.HOLD, 2, 10)
    second = canary.check(150, HEALTHY)
    assert (second.outcome, second.state.step, second.state.weight) == (Outcome.HOLD, 4, 50)
    assert canary.check(180, HEALTHY).outcome is Outcome.PROMOTE


def test_an_analysis_gate_right_after_the_first_weight_needs_its_own_pass() -> None:
    canary = Canary(plan=plan_of([{"setWeight": 25}, {"analysis": {}}, {"setWeight": 100}]))
    first = canary.start()
    assert (first.outcome, first.state.weight, first.state.step) == (Outcome.HOLD, 25, 1)
    assert first.reason == "at 25%, waiting for the first analysis check"
    assert canary.check(30, QUIET).outcome is Outcome.HOLD
    done = canary.check(60, HEALTHY)
    assert (done.outcome, done.state.weight) == (Outcome.PROMOTE, 100)


# -- failing checks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failing", "named"),
    [(FAILING, FAILING_REASON), (SLOW, "P95 210 ms > 1.5x stable's 20 ms")],
    ids=["5xx", "p95"],
)
def test_consecutive_failed_checks_abort_naming_the_failing_metric(
    failing: Sample, named: str
) -> None:
    canary = Canary()
    canary.start()
    held = canary.checks([failing] * 3)
    assert [m.outcome for m in held] == [Outcome.HOLD] * 3
    ended = canary.check(120, failing)
    assert ended.outcome is Outcome.ABORT
    assert ended.automated is True
    assert ended.reason == f"automated rollback after 4 failed analysis checks in a row: {named}"
    assert ended.state.decision == {
        "reason": ended.reason,
        "automated": True,
        "sample": ended.state.last,
    }
    assert ended.state.last is not None
    assert ended.state.last["verdict"] == "fail"
    assert ended.state.last["weight"] == 10


def test_failures_to_abort_is_the_plans() -> None:
    canary = Canary(plan=plan_of(failuresToAbort=2))
    canary.start()
    assert canary.check(30, FAILING).outcome is Outcome.HOLD
    ended = canary.check(60, FAILING)
    assert ended.outcome is Outcome.ABORT
    assert ended.reason.startswith("automated rollback after 2 failed analysis checks in a row")


@pytest.mark.parametrize("between", [QUIET, HEALTHY], ids=["inconclusive", "pass"])
def test_a_check_that_did_not_fail_in_between_resets_the_run(between: Sample) -> None:
    canary = Canary(
        plan=plan_of([{"setWeight": 10}, {"pause": {"seconds": 600}}, {"setWeight": 100}])
    )
    canary.start()
    moves = canary.checks([FAILING] * 3 + [between] + [FAILING] * 3)
    assert [m.outcome for m in moves] == [Outcome.HOLD] * 7
    assert canary.checks([FAILING])[0].outcome is Outcome.ABORT


# -- overrides ----------------------------------------------------------------------------------


def test_a_paused_canary_holds_past_its_pause_yet_is_still_rolled_back_when_failing() -> None:
    canary = Canary()
    canary.start()
    canary.check(30, HEALTHY)
    canary.override(pausedBy="ana")
    moves = canary.checks([HEALTHY] * 19)  # 60 … 600 s: well past the 300 s pause
    assert {(m.outcome, m.reason, m.state.weight) for m in moves} == {
        (Outcome.HOLD, "paused by ana at 10%", 10)
    }
    assert moves[-1].next_at == T0 + timedelta(seconds=630)  # the next check
    failing = canary.checks([FAILING] * 4)
    assert [m.outcome for m in failing] == [Outcome.HOLD] * 3 + [Outcome.ABORT]
    assert failing[-1].automated is True


def test_promoting_a_paused_canary_ends_its_pause_and_its_step() -> None:
    canary = Canary()
    canary.start()
    canary.check(30, HEALTHY)
    canary.override(pausedBy="ana")
    assert canary.decide().outcome is Outcome.HOLD
    canary.override(promote="step", pausedBy=None)  # what promoteDeployment writes
    done = canary.decide()
    assert (done.outcome, done.state.weight) == (Outcome.PROMOTE, 100)
    assert (done.state.paused_by, done.state.promote) == (None, None)


def test_a_pause_until_promoted_holds_whatever_the_checks_say_until_promoted() -> None:
    canary = Canary(plan=plan_of([{"setWeight": 20}, {"pause": {}}, {"setWeight": 100}]))
    first = canary.start()
    assert first.reason == "paused at 20% until promoted"
    # An hour of checks — past the 30-minute deadline — passing and silent by turns.
    moves = canary.checks([HEALTHY, QUIET] * 60)
    assert {(m.outcome, m.reason, m.state.weight) for m in moves} == {
        (Outcome.HOLD, "paused at 20% until promoted", 20)
    }
    assert moves[-1].next_at == canary.clock.now + timedelta(seconds=30)
    canary.override(promote="step")
    done = canary.decide()
    assert (done.outcome, done.state.weight, done.state.promote) == (Outcome.PROMOTE, 100, None)


def test_promoting_a_step_moves_to_the_next_step_only() -> None:
    steps: list[dict[str, Any]] = [
        {"setWeight": 10},
        {"pause": {}},
        {"setWeight": 50},
        {"pause": {}},
        {"setWeight": 100},
    ]
    canary = Canary(plan=plan_of(steps))
    canary.start()
    canary.override(promote="step")
    moved = canary.decide()
    assert (moved.outcome, moved.state.step, moved.state.weight) == (Outcome.HOLD, 3, 50)
    assert moved.state.promote is None
    assert moved.reason == "paused at 50% until promoted"
    # Consumed: deciding again stays where it is.
    assert canary.decide().state.step == 3
    canary.override(promote="step")
    assert canary.decide().outcome is Outcome.PROMOTE


def test_promoting_a_timed_pause_ends_it_before_its_time() -> None:
    canary = Canary()
    canary.start()
    canary.check(30, QUIET)  # no passing check is needed for a person's promote
    canary.override(promote="step")
    assert canary.decide().outcome is Outcome.PROMOTE


def test_promoting_in_full_skips_every_remaining_step() -> None:
    steps: list[dict[str, Any]] = [
        {"setWeight": 10},
        {"analysis": {}},
        {"setWeight": 50},
        {"pause": {}},
        {"setWeight": 100},
    ]
    canary = Canary(plan=plan_of(steps))
    canary.start()
    canary.check(30, FAILING)
    canary.override(promote="full", pausedBy="ana")
    done = canary.decide()
    assert done.outcome is Outcome.PROMOTE
    assert done.reason == "promoted in full"
    assert (done.state.weight, done.state.promote, done.state.paused_by) == (100, None, None)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [("error budget", "aborted by ana: error budget"), (None, "aborted by ana")],
)
def test_an_abort_override_wins_over_everything(reason: str | None, expected: str) -> None:
    canary = Canary()
    canary.start()
    canary.checks([FAILING] * 3)
    canary.override(abortBy="ana", abortReason=reason, promote="full", pausedBy="bo")
    ended = canary.decide(FAILING)  # the fourth failure too: the person decided first
    assert ended.outcome is Outcome.ABORT
    assert ended.automated is False
    assert ended.reason == expected
    assert ended.state.decision is not None
    assert (ended.state.decision["reason"], ended.state.decision["automated"]) == (expected, False)


def test_an_abort_override_ends_a_pause_until_promoted() -> None:
    canary = Canary(plan=plan_of([{"setWeight": 20}, {"pause": {}}, {"setWeight": 100}]))
    canary.start()
    canary.override(abortBy="ana")
    assert canary.decide().outcome is Outcome.ABORT


# -- when checks are due, and when to look again ---------------------------------------------------


@pytest.mark.parametrize(
    ("state", "seconds", "due"),
    [
        (CanaryState(), 1000, False),  # not started
        (CanaryState(weight=0, started_at=T0), 1000, False),  # no traffic to judge
        (CanaryState(weight=100, started_at=T0), 1000, False),  # all traffic: nothing to compare
        (CanaryState(weight=10, started_at=T0), 29.9, False),
        (CanaryState(weight=10, started_at=T0), 30, True),
        (CanaryState(weight=99, started_at=T0), 30, True),
        # A check made late (at 50 s for the 30 s point) does not move the grid: the next
        # one is due at 60 s, not 80 s.
        (CanaryState(weight=1, started_at=T0, last_check_at=T0 + timedelta(seconds=50)), 59, False),
        (CanaryState(weight=1, started_at=T0, last_check_at=T0 + timedelta(seconds=50)), 60, True),
    ],
)
def test_a_check_is_due_with_some_traffic_once_an_interval_has_passed(
    state: CanaryState, seconds: float, due: bool
) -> None:
    assert check_due(state, plan_of(), T0 + timedelta(seconds=seconds)) is due


def test_next_at_is_the_earlier_of_the_next_check_and_the_steps_end() -> None:
    canary = Canary(plan=plan_of(intervalSeconds=45, deadlineSeconds=1000))
    canary.start()
    early = canary.check(45, HEALTHY)
    assert early.next_at == T0 + timedelta(seconds=90)  # the next check
    late = canary.checks([HEALTHY] * 4)[-1]  # at 225 s; next check 270 s
    assert late.next_at == T0 + timedelta(seconds=270)
    last = canary.check(270, HEALTHY)  # next check 315 s; the pause ends at 300 s
    assert last.next_at == T0 + timedelta(seconds=300)


def test_next_at_of_a_waiting_canary_is_the_deadline_when_it_comes_first() -> None:
    # The 300 s pause is found over at the check at 315 s: the wait, and its 1000 s
    # deadline, start there.
    canary = Canary(plan=plan_of(intervalSeconds=45, deadlineSeconds=1000))
    canary.start()
    moves = canary.checks([QUIET] * 29)  # 45 … 1305 s; the next would be at 1350 s
    assert moves[-1].state.waiting_since == T0 + timedelta(seconds=315)
    assert moves[-1].next_at == T0 + timedelta(seconds=1315)
    assert moves[-2].next_at == T0 + timedelta(seconds=1305)


# -- state as JSON -------------------------------------------------------------------------------

times = st.one_of(
    st.none(),
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
)
texts = st.one_of(st.none(), st.text(min_size=1, max_size=20))
json_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**9), 10**9), st.text(max_size=10)
)
json_objects = st.dictionaries(st.text(max_size=8), json_leaves, max_size=4)
KNOWN_KEYS: Final = {
    "step",
    "weight",
    "startedAt",
    "stepStartedAt",
    "lastCheckAt",
    "checks",
    "history",
    "stepPassed",
    "last",
    "decision",
    "pausedBy",
    "promote",
    "abortBy",
    "abortReason",
    "steps",
}
states = st.builds(
    CanaryState,
    step=st.integers(0, 30),
    weight=st.integers(0, 100),
    started_at=times,
    step_started_at=times,
    last_check_at=times,
    checks=st.integers(0, 10_000),
    history=st.lists(st.sampled_from(Verdict), max_size=HISTORY_KEPT).map(tuple),
    step_passed=st.booleans(),
    last=st.one_of(st.none(), json_objects),
    decision=st.one_of(st.none(), json_objects),
    paused_by=texts,
    promote=st.sampled_from([None, "step", "full"]),
    abort_by=texts,
    abort_reason=texts,
    steps=st.one_of(
        st.none(),
        st.lists(
            st.sampled_from(
                [{"setWeight": 10}, {"pause": {}}, {"pause": {"seconds": 5}}, {"analysis": {}}]
            ),
            min_size=1,
            max_size=5,
        ).map(tuple),
    ),
    extra=st.dictionaries(
        st.text(max_size=8).filter(lambda k: k not in KNOWN_KEYS),
        json_leaves.filter(lambda v: v is not None),
        max_size=3,
    ),
)


@given(states)
def test_the_state_survives_json_unchanged(state: CanaryState) -> None:
    data = state.to_json()
    assert json.loads(json.dumps(data)) == data  # plain JSON: nothing but the standard types
    assert CanaryState.from_json(json.loads(json.dumps(data))) == state


def test_unknown_keys_are_kept_and_missing_ones_default() -> None:
    assert CanaryState.from_json({}) == CanaryState()
    kept = CanaryState.from_json({"step": 2, "note": {"by": "a newer controller"}})
    assert kept.step == 2
    assert kept.to_json()["note"] == {"by": "a newer controller"}
    # Nothing unset is written: a fresh state is only its counters.
    assert CanaryState().to_json() == {
        "step": 0,
        "weight": 0,
        "checks": 0,
        "history": [],
        "stepPassed": False,
    }


def test_the_history_kept_is_bounded_and_the_latest_sample_is_what_streams() -> None:
    canary = Canary(plan=plan_of([{"setWeight": 10}, {"pause": {}}, {"setWeight": 100}]))
    canary.start()
    canary.checks([HEALTHY, QUIET] * (HISTORY_KEPT // 2 + 5))
    assert len(canary.state.history) == HISTORY_KEPT
    assert canary.state.checks == HISTORY_KEPT + 10
    assert canary.state.history[-1] is Verdict.INCONCLUSIVE
    now = canary.clock.now
    assert canary.state.last == sample_json(QUIET, 10, 1, now)
    assert canary.state.last == {
        "at": now.isoformat(),
        "weight": 10,
        "step": 1,
        "canary": {"requests": 150, "errors": 0, "errorRate": 0.0, "p95Ms": 20.171},
        "stable": {"requests": 9000, "errors": 0, "errorRate": 0.0, "p95Ms": 20.171},
        "verdict": "inconclusive",
        "reason": QUIET_REASON,
    }


# -- bugs ------------------------------------------------------------------------------------


def test_a_healthy_canary_reaching_an_analysis_gate_after_the_deadline_is_not_aborted() -> None:
    canary = Canary(
        plan=plan_of(
            [{"setWeight": 10}, {"pause": {"seconds": 1800}}, {"analysis": {}}, {"setWeight": 100}]
        )
    )
    canary.start()
    moves = canary.checks([HEALTHY] * 62)  # every check of its life passes
    assert moves[-1].outcome is Outcome.PROMOTE, moves[-1].reason


def test_one_failed_check_at_the_end_of_a_long_pause_is_not_an_abort() -> None:
    canary = Canary(
        plan=plan_of([{"setWeight": 10}, {"pause": {"seconds": 3600}}, {"setWeight": 100}])
    )
    canary.start()
    moves = canary.checks([HEALTHY] * 119 + [FAILING] + [HEALTHY])  # one blip at 3600 s
    assert moves[-1].outcome is Outcome.PROMOTE, moves[-1].reason


def test_every_plan_the_spec_accepts_can_promote_a_healthy_canary() -> None:
    text = (
        "apiVersion: enclii.dev/v1\nkind: Service\n"
        "metadata: {project: shop, environment: dev, name: web}\n"
        "spec:\n  deploy:\n    strategy: canary\n    canary:\n"
        "      steps: [{pause: {seconds: 60}}, {setWeight: 100}]\n"
    )
    try:
        canary_spec = load_spec(text).normalised()["spec"]["deploy"]["canary"]
    except SpecError:
        return  # refused: a fine answer too
    canary = Canary(plan=CanaryPlan.from_spec(canary_spec))
    moved = canary.start()
    for seconds in range(30, 3600, 30):
        if moved.outcome is not Outcome.HOLD:
            break
        canary.clock.at(seconds)
        due = check_due(canary.state, canary.plan, canary.clock.now)
        moved = canary.decide(HEALTHY if due else None)
    assert moved.outcome is Outcome.PROMOTE, moved.reason
