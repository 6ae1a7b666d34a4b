"""The Service Spec's canary, SLO and alert sections (store/spec/model.py): defaults made
explicit only where they apply, and precise problems for what cannot work."""

from __future__ import annotations

from typing import Any

import pytest

from store.spec import load_spec
from store.spec.model import Canary, CanaryStep
from tests.store.test_spec import HEADER, _line, _only_problem

DEFAULT_CANARY: dict[str, Any] = {
    "steps": [{"setWeight": 10}, {"pause": {"seconds": 300}}, {"setWeight": 100}],
    "analysis": {
        "intervalSeconds": 30.0,
        "windowSeconds": 120.0,
        "maxErrorRatePercent": 2.0,
        "maxP95Ratio": 1.5,
        "minRequests": 200,
        "minErrors": 5,
        "failuresToAbort": 4,
        "deadlineSeconds": 1800,
    },
    "keepAbortedSeconds": 600,
}


def _deploy(text: str) -> dict[str, Any]:
    deploy: dict[str, Any] = load_spec(text).normalised()["spec"]["deploy"]
    return deploy


def _canary(settings: str, strategy: str = "canary") -> str:
    """A spec with ``deploy.canary`` written as the given lines (indented under it)."""
    lines = "".join(f"      {line}\n" for line in settings.splitlines())
    return HEADER + f"spec:\n  deploy:\n    strategy: {strategy}\n    canary:\n{lines}"


# -- defaults ------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["rolling", "blue-green"])
def test_other_strategies_get_no_canary_section(strategy: str) -> None:
    assert _deploy(HEADER + f"spec:\n  deploy:\n    strategy: {strategy}\n") == {
        "strategy": strategy,
        "progressDeadlineSeconds": 300,
        "rollbackWindowSeconds": 600,
    }
    assert "canary" not in _deploy(HEADER)


def test_the_canary_strategy_gets_every_canary_default() -> None:
    assert _deploy(HEADER + "spec:\n  deploy:\n    strategy: canary\n") == {
        "strategy": "canary",
        "progressDeadlineSeconds": 300,
        "rollbackWindowSeconds": 600,
        "canary": DEFAULT_CANARY,
    }
    assert Canary().model_dump(mode="json", by_alias=True, exclude_none=True) == DEFAULT_CANARY


def test_partial_canary_settings_are_completed() -> None:
    deploy = _deploy(
        _canary(
            "steps: [{setWeight: 25}, {pause: {}}, {analysis: {}}, {setWeight: 100}]\n"
            "analysis: {intervalSeconds: 5, windowSeconds: 20}"
        )
    )
    assert deploy["canary"] == {
        "steps": [{"setWeight": 25}, {"pause": {}}, {"analysis": {}}, {"setWeight": 100}],
        "analysis": {**DEFAULT_CANARY["analysis"], "intervalSeconds": 5.0, "windowSeconds": 20.0},
        "keepAbortedSeconds": 600,
    }


def test_explicit_defaults_give_the_same_digest_as_the_implicit_canary() -> None:
    implicit = load_spec(HEADER + "spec:\n  deploy:\n    strategy: canary\n")
    explicit = load_spec(
        _canary(
            "steps: [{setWeight: 10}, {pause: {seconds: 300}}, {setWeight: 100}]\n"
            "keepAbortedSeconds: 600"
        )
    )
    assert explicit.digest == implicit.digest


def test_canary_steps_know_their_kind() -> None:
    steps: list[dict[str, Any]] = [
        {"setWeight": 5},
        {"pause": {}},
        {"pause": {"seconds": 3}},
        {"analysis": {}},
    ]
    kinds = [CanaryStep.model_validate(step).kind for step in steps]
    assert kinds == ["setWeight", "pause", "pause", "analysis"]


# -- refused canary settings ---------------------------------------------------------------------

EXACTLY_ONE = (
    "a canary step is exactly one of setWeight: N, pause: {seconds: N} (or {}), analysis: {}"
)


@pytest.mark.parametrize(
    "step",
    [
        "{setWeight: 10, pause: {seconds: 5}}",
        "{pause: {}, analysis: {}}",
        "{setWeight: 10, analysis: {}}",
        "{}",
    ],
)
def test_a_step_is_exactly_one_kind(step: str) -> None:
    text = _canary(f"steps:\n  - {{setWeight: 5}}\n  - {step}")
    assert _only_problem(text) == (
        f"spec.deploy.canary.steps[1]: {EXACTLY_ONE} (line {_line(text, step)})"
    )


def test_an_analysis_step_takes_no_settings() -> None:
    text = _canary("steps: [{setWeight: 5}, {analysis: {minRequests: 3}}]")
    assert _only_problem(text) == (
        "spec.deploy.canary.steps[1]: analysis takes no settings here: write `analysis: {}` "
        f"(line {_line(text, 'minRequests')})"
    )


@pytest.mark.parametrize(
    "steps",
    ["[{pause: {seconds: 60}}, {analysis: {}}]", "[{pause: {seconds: 60}}, {setWeight: 100}]"],
)
def test_the_first_step_must_set_a_weight(steps: str) -> None:
    # At weight 0 no check is ever made: a pause or gate before the first weight never ends.
    text = _canary(f"steps: {steps}")
    assert _only_problem(text) == (
        "spec.deploy.canary.steps: the first canary step must be setWeight: a canary without "
        "traffic cannot be judged, so a pause or analysis before it would never end "
        f"(line {_line(text, 'steps:')})"
    )


@pytest.mark.parametrize(
    ("step", "where"),
    [
        ("{setWeight: 0}", "steps[0].setWeight"),
        ("{setWeight: 101}", "steps[0].setWeight"),
        ("{pause: {seconds: 0}}", "steps[0].pause.seconds"),
        ("{pause: {seconds: 86401}}", "steps[0].pause.seconds"),
        ("{pause: {minutes: 5}}", "steps[0].pause"),
    ],
)
def test_weights_and_pauses_out_of_range_are_refused(step: str, where: str) -> None:
    text = _canary(f"steps: [{step}, {{setWeight: 100}}]")
    assert _only_problem(text).startswith(f"spec.deploy.canary.{where}")


def test_an_analysis_window_shorter_than_its_interval_is_refused() -> None:
    text = _canary("analysis: {intervalSeconds: 30, windowSeconds: 10}")
    assert _only_problem(text) == (
        "spec.deploy.canary.analysis: windowSeconds 10 is shorter than intervalSeconds 30: "
        f"checks would skip traffic (line {_line(text, 'analysis:')})"
    )
    # Equal is fine: every request is judged once.
    assert load_spec(_canary("analysis: {intervalSeconds: 10, windowSeconds: 10}"))


def test_unknown_canary_settings_are_refused() -> None:
    problem = _only_problem(_canary("analysis: {maxErrorRate: 5}"))
    assert problem.startswith("spec.deploy.canary.analysis.maxErrorRate: ")


# -- SLOs and alerts -----------------------------------------------------------------------------


def test_an_slo_gets_its_defaults() -> None:
    spec = load_spec(HEADER + "spec:\n  slo: {availability: 99.9}\n").normalised()["spec"]
    assert spec["slo"] == {
        "availability": 99.9,
        "windowDays": 30,
        "burnRateAlert": 14.4,
        "burnWindowSeconds": 3600,
    }
    assert "slo" not in load_spec(HEADER).normalised()["spec"]


def test_a_latency_objective_alone_is_an_slo() -> None:
    text = HEADER + "spec:\n  slo:\n    latency: {thresholdMs: 300, percent: 99}\n"
    slo = load_spec(text).normalised()["spec"]["slo"]
    assert slo["latency"] == {"thresholdMs": 300.0, "percent": 99.0}


def test_an_slo_without_objectives_is_refused() -> None:
    text = HEADER + "spec:\n  slo: {windowDays: 7}\n"
    assert _only_problem(text) == (
        "spec.slo: an slo needs availability (percent) or latency {thresholdMs, percent} "
        f"(line {_line(text, 'slo:')})"
    )


@pytest.mark.parametrize("availability", ["0", "100", "120"])
def test_availability_is_a_percent_strictly_between_0_and_100(availability: str) -> None:
    text = HEADER + f"spec:\n  slo: {{availability: {availability}}}\n"
    assert _only_problem(text).startswith("spec.slo.availability: Input should be")


def test_alerts_get_their_default_events() -> None:
    text = HEADER + "spec:\n  alerts:\n    - {name: ops, webhook: 'https://hooks.test/x'}\n"
    assert load_spec(text).normalised()["spec"]["alerts"] == [
        {
            "name": "ops",
            "webhook": "https://hooks.test/x",
            "events": ["rollback", "freeze", "slo-burn"],
        }
    ]


def test_duplicate_alert_names_are_refused() -> None:
    text = HEADER + (
        "spec:\n  alerts:\n"
        "    - {name: ops, webhook: 'https://a.test/x'}\n"
        "    - {name: ops, webhook: 'https://b.test/y', events: [freeze]}\n"
    )
    assert (
        _only_problem(text)
        == f"spec.alerts: alert 'ops' appears twice (line {_line(text, 'alerts:')})"
    )


@pytest.mark.parametrize(
    "webhook",
    ["ftp://hooks.test/x", "hooks.test/x", "mailto:ops@example.test", "file:///etc", "https://"],
)
def test_a_webhook_must_be_http_or_https(webhook: str) -> None:
    text = HEADER + f"spec:\n  alerts:\n    - {{name: ops, webhook: '{webhook}'}}\n"
    assert _only_problem(text) == (
        "spec.alerts[0].webhook: webhook must be an http(s) URL with a host, e.g. "
        f"https://hooks.slack.com/services/… (line {_line(text, 'webhook')})"
    )


@pytest.mark.parametrize(
    "webhook", ["http://127.0.0.1:9000/hook", "https://hooks.slack.test/T/B/x"]
)
def test_http_and_https_webhooks_are_accepted(webhook: str) -> None:
    text = HEADER + f"spec:\n  alerts:\n    - {{name: ops, webhook: '{webhook}'}}\n"
    assert load_spec(text).normalised()["spec"]["alerts"][0]["webhook"] == webhook


def test_unknown_alert_events_are_refused() -> None:
    text = HEADER + (
        "spec:\n  alerts:\n    - {name: ops, webhook: 'https://a.test/x', events: [deploy]}\n"
    )
    assert _only_problem(text).startswith("spec.alerts[0].events[0]: Input should be 'rollback'")


def test_an_alert_needs_at_least_one_event() -> None:
    text = HEADER + "spec:\n  alerts:\n    - {name: ops, webhook: 'https://a.test/x', events: []}\n"
    assert _only_problem(text).startswith("spec.alerts[0].events: List should have at least 1")
