"""Canary analysis (reconcile/canary.py): the rules that known tools get wrong — idle
canaries judged as failures, averages instead of percentiles, single blips aborting."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reconcile.canary import AnalysisPolicy, Verdict, judge, may_promote, should_abort
from store.metrics import Tally

POLICY = AnalysisPolicy()


def traffic(requests: int, errors: int = 0, latency_ms: float = 20.0, slow: int = 0) -> Tally:
    """``requests`` answered in ``latency_ms`` (the last ``slow`` of them ten times
    slower), the first ``errors`` of them 5xx."""
    tally = Tally()
    for i in range(requests):
        status = 503 if i < errors else 200
        tally.record(status, latency_ms * 10 if i >= requests - slow else latency_ms)
    return tally


def test_too_few_canary_requests_is_inconclusive_never_a_failure() -> None:
    # 199 requests, all of them errors: still no verdict.
    sample = judge(traffic(199, errors=199), traffic(5000), POLICY)
    assert sample.verdict is Verdict.INCONCLUSIVE
    assert sample.reason == "insufficient traffic: 199 of 200 canary requests in the window"


def test_an_error_rate_over_the_threshold_fails_with_the_numbers() -> None:
    sample = judge(traffic(1000, errors=50), traffic(5000, errors=5), POLICY)
    assert sample.verdict is Verdict.FAIL
    assert sample.reason == "5xx rate 5.0% > 2.0% (50 of 1000 requests)"
    assert (sample.canary.errors, sample.stable.errors) == (50, 5)


def test_too_few_errors_cannot_fail_a_canary_however_high_the_rate() -> None:
    # With a smaller minimum sample, 4 errors in 50 requests is 8%, yet 4 errors are not
    # evidence enough; the fifth is.
    policy = AnalysisPolicy(min_requests=50)
    assert judge(traffic(50, errors=4), traffic(5000), policy).verdict is Verdict.PASS
    assert judge(traffic(50, errors=5), traffic(5000), policy).verdict is Verdict.FAIL


def test_latency_is_judged_on_the_p95_not_the_average() -> None:
    # 5.5% of the canary's requests are ten times slower: its mean is 1.495x stable's —
    # under the 1.5x threshold, so an average-based check would let it through — but its
    # P95 lies in the slow tail.
    canary = traffic(1000, latency_ms=20.0, slow=55)
    stable = traffic(5000, latency_ms=20.0)
    assert canary.latency_sum_ms / canary.requests < 1.5 * 20.0
    sample = judge(canary, stable, POLICY)
    assert sample.verdict is Verdict.FAIL
    assert sample.reason.startswith("P95 ")
    assert "> 1.5x stable's 20 ms" in sample.reason
    # 4% slow stays under the 95th percentile: the canary passes.
    assert judge(traffic(1000, slow=40), stable, POLICY).verdict is Verdict.PASS


def test_a_spike_that_hits_both_releases_is_not_the_canarys_fault() -> None:
    slow_everywhere = judge(
        traffic(1000, latency_ms=300.0), traffic(5000, latency_ms=280.0), POLICY
    )
    assert slow_everywhere.verdict is Verdict.PASS


def test_without_stable_traffic_latency_is_not_compared() -> None:
    sample = judge(traffic(500, latency_ms=900.0), Tally(), POLICY)
    assert sample.verdict is Verdict.PASS
    assert "no stable traffic to compare latency with" in sample.reason


def test_both_failures_are_named() -> None:
    sample = judge(traffic(1000, errors=100, slow=200), traffic(5000), POLICY)
    assert sample.verdict is Verdict.FAIL
    assert "5xx rate 10.0%" in sample.reason and "P95" in sample.reason


def test_abort_needs_consecutive_failures_and_silence_breaks_the_run() -> None:
    fail, ok, unknown = Verdict.FAIL, Verdict.PASS, Verdict.INCONCLUSIVE
    assert not should_abort([fail, fail, fail], POLICY)
    assert should_abort([fail, fail, fail, fail], POLICY)
    assert should_abort([ok, fail, fail, fail, fail], POLICY)
    assert not should_abort([fail, fail, unknown, fail, fail], POLICY)
    assert not should_abort([fail, fail, fail, ok], POLICY)


def test_promotion_only_on_a_pass() -> None:
    assert may_promote([Verdict.PASS])
    assert not may_promote([])
    assert not may_promote([Verdict.PASS, Verdict.INCONCLUSIVE])
    assert not may_promote([Verdict.PASS, Verdict.FAIL])


@given(requests=st.integers(0, 199), errors=st.integers(0, 199))
def test_below_the_minimum_sample_nothing_but_inconclusive(requests: int, errors: int) -> None:
    sample = judge(traffic(requests, errors=min(errors, requests)), traffic(1000), POLICY)
    assert sample.verdict is Verdict.INCONCLUSIVE


@given(
    requests=st.integers(200, 3000),
    error_share=st.floats(0, 0.2),
    stable_errors=st.integers(0, 100),
)
def test_more_errors_never_turn_a_failure_into_a_pass(
    requests: int, error_share: float, stable_errors: int
) -> None:
    errors = int(requests * error_share)
    stable = traffic(2000, errors=stable_errors)
    first = judge(traffic(requests, errors=errors), stable, POLICY).verdict
    worse = judge(traffic(requests, errors=min(requests, errors + 10)), stable, POLICY).verdict
    if first is Verdict.FAIL:
        assert worse is Verdict.FAIL
