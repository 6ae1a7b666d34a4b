"""Error budgets (store/slo.py) and the hourly rollups they read (store/metrics.py): the
maths on its own, then the read functions against real SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from resolvers.context import Context
from store.db import Store
from store.metrics import (
    BOUNDS_MS,
    Tally,
    add_windows,
    by_hour,
    hour_start,
    prune_metrics,
    read_total,
    window_start,
)
from store.models import RequestMetrics, RequestMetricsHourly
from store.slo import (
    Objective,
    SloPolicy,
    assess,
    assess_service,
    budget,
    burn_rate,
    window_since,
)
from tests.factories import make_environment, make_project, make_service
from tests.traffic import record_traffic, traffic

NOW = datetime(2025, 3, 31, 12, 34, 56, tzinfo=UTC)
AVAILABILITY = Objective("availability", 99.9)
LATENCY = Objective("latency", 99.0, 300.0)
POLICY = SloPolicy((AVAILABILITY, LATENCY))

# -- budgets ----------------------------------------------------------------------------------


def test_an_availability_budget_counts_5xx_against_what_the_objective_allows() -> None:
    spent = budget(AVAILABILITY, traffic(100_000, errors=312))
    assert (spent.bad, spent.allowed, spent.spent) == (312, 100, 3.12)
    assert spent.exhausted and spent.remaining == 0.0
    assert spent.describe(30) == (
        "availability 99.9%: 312 of 100 allowed 5xx in 30 days (312% of the budget spent)"
    )
    within = budget(AVAILABILITY, traffic(100_000, errors=25))
    assert (within.spent, within.remaining, within.exhausted) == (0.25, 0.75, False)


def test_exactly_the_allowed_errors_spend_the_whole_budget() -> None:
    # 0.1% of 100,000 in binary floating point is 99.99999999999432; the budget is 100.
    assert budget(AVAILABILITY, traffic(100_000, errors=100)).exhausted
    assert not budget(AVAILABILITY, traffic(100_000, errors=99)).exhausted


def test_no_requests_spend_nothing() -> None:
    idle = budget(AVAILABILITY, Tally())
    assert (idle.spent, idle.remaining, idle.exhausted) == (0.0, 1.0, False)
    report = assess(POLICY, Tally(), Tally(), since=window_since(POLICY, NOW), until=NOW)
    assert not report.frozen and report.burn_rate == 0.0
    assert report.reason == "no requests in 30 days"


def test_a_latency_budget_counts_requests_slower_than_the_threshold() -> None:
    spent = budget(LATENCY, traffic(1000, slow=20, slow_ms=900.0))
    assert (spent.bad, spent.allowed, spent.spent) == (20, 10, 2.0)
    assert spent.describe(7) == (
        "latency 99% under 300 ms: 20 of 10 allowed requests slower than 300 ms in 7 days "
        "(200% of the budget spent)"
    )
    # 5xx answers are no concern of a latency objective, nor slowness of availability.
    assert budget(LATENCY, traffic(1000, errors=500)).bad == 0
    assert budget(AVAILABILITY, traffic(1000, slow=500)).bad == 0


def test_the_burn_rate_is_the_bad_share_over_the_share_allowed() -> None:
    # 2% bad against 0.1% allowed: the budget goes 20 times faster than it lasts.
    assert burn_rate(AVAILABILITY, traffic(1000, errors=20)) == pytest.approx(20.0)
    assert burn_rate(AVAILABILITY, Tally()) == 0.0


def test_frozen_when_any_objective_is_over_budget_with_every_one_in_the_reason() -> None:
    window = traffic(100_000, errors=312, slow=2000, slow_ms=900.0)
    report = assess(POLICY, window, Tally(), since=window_since(POLICY, NOW), until=NOW)
    assert report.frozen
    assert report.budget_spent == pytest.approx(3.12)
    assert report.reason == (
        "availability 99.9%: 312 of 100 allowed 5xx in 30 days (312% of the budget spent); "
        "latency 99% under 300 ms: 2000 of 1000 allowed requests slower than 300 ms in 30 days "
        "(200% of the budget spent)"
    )
    fine = assess(POLICY, traffic(100_000, errors=50), Tally(), since=NOW, until=NOW)
    assert not fine.frozen
    assert fine.reason == (
        "availability 99.9%: 50 of 100 allowed 5xx in 30 days (50% of the budget spent)"
    )


def test_burning_needs_the_rate_and_enough_requests_to_show_it() -> None:
    one_in_two = assess(POLICY, Tally(), traffic(2, errors=1), since=NOW, until=NOW)
    assert one_in_two.burn_rate == pytest.approx(500.0)
    assert not one_in_two.burning()
    burst = assess(POLICY, Tally(), traffic(1000, errors=15), since=NOW, until=NOW)
    assert burst.burn_rate == pytest.approx(15.0) and burst.burning()
    assert not assess(POLICY, Tally(), traffic(1000, errors=14), since=NOW, until=NOW).burning()


def test_the_window_starts_on_the_hour_so_a_straddling_hour_counts_whole() -> None:
    assert window_since(POLICY, NOW) == datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    week = SloPolicy((AVAILABILITY,), window_days=7)
    assert window_since(week, NOW) == datetime(2025, 3, 24, 12, 0, tzinfo=UTC)


def test_a_policy_from_the_stored_spec_body() -> None:
    assert SloPolicy.from_spec({"runtime": {}}) is None
    policy = SloPolicy.from_spec(
        {"slo": {"availability": 99.5, "latency": {"thresholdMs": 250, "percent": 95}}}
    )
    assert policy == SloPolicy(
        (Objective("availability", 99.5), Objective("latency", 95.0, 250.0)),
        window_days=30,
        burn_rate_alert=14.4,
        burn_window_s=3600,
    )
    with pytest.raises(ValueError, match="availability"):
        SloPolicy.from_spec({"slo": {"availability": 100}})


# -- properties -------------------------------------------------------------------------------

latencies = st.lists(
    # Not in the first bucket, which spreads its requests from 0 ms, nor past the last one.
    st.floats(min_value=0.1, max_value=BOUNDS_MS[-1] * 0.999),
    min_size=1,
    max_size=200,
)


def _tally_of(values: list[float]) -> Tally:
    tally = Tally()
    for value in values:
        tally.record(200, value)
    return tally


@given(latencies, st.floats(min_value=0.0, max_value=1.0))
def test_slower_than_inverts_the_quantile(values: list[float], q: float) -> None:
    tally = _tally_of(values)
    quantile = tally.quantile(q)
    assert quantile is not None
    assert tally.slower_than(quantile) == pytest.approx((1 - q) * len(values), abs=1e-6)


@given(
    latencies,
    st.floats(min_value=0.001, max_value=100_000.0),
    st.floats(min_value=0.001, max_value=100_000.0),
)
def test_slower_than_falls_as_the_threshold_rises(values: list[float], a: float, b: float) -> None:
    tally = _tally_of(values)
    low, high = sorted((a, b))
    assert len(values) >= tally.slower_than(low) >= tally.slower_than(high) - 1e-9 >= -1e-9
    # Exact where no bucket is split: below every request, or above all of them.
    assert tally.slower_than(min(values) / 1.2) == len(values)
    assert tally.slower_than(max(values) * 1.2) == 0


def test_requests_too_slow_to_measure_count_as_slower() -> None:
    tally = _tally_of([BOUNDS_MS[-1] * 2])
    assert tally.slower_than(BOUNDS_MS[-1] * 5) == 1


@given(
    st.sampled_from([90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.999]),
    st.integers(min_value=1, max_value=100_000),
)
def test_the_budget_is_exhausted_at_exactly_the_allowed_errors(percent: float, scale: int) -> None:
    objective = Objective("availability", percent)
    requests = scale * 100_000  # a whole number of errors allowed at every percent sampled
    allowed = objective.allowed(requests)
    assert allowed == round(allowed) > 0
    assert budget(objective, traffic(requests, errors=int(allowed))).exhausted
    assert not budget(objective, traffic(requests, errors=int(allowed) - 1)).exhausted


@given(
    st.floats(min_value=50.0, max_value=99.999),
    st.integers(min_value=1, max_value=10**9),
    st.data(),
)
def test_spent_is_the_bad_share_over_the_allowed_share(
    percent: float, requests: int, data: st.DataObject
) -> None:
    errors = data.draw(st.integers(min_value=0, max_value=requests))
    spent = budget(Objective("availability", percent), traffic(requests, errors=errors)).spent
    assert spent == pytest.approx((errors / requests) / (1 - percent / 100), rel=1e-9)


# -- hourly rollups ---------------------------------------------------------------------------


def test_windows_add_up_per_hour_without_touching_the_tallies_given() -> None:
    first, second = traffic(10, errors=1), traffic(5, slow=5)
    at = datetime(2025, 3, 31, 12, 59, 50, tzinfo=UTC)
    hours = by_hour(
        {
            at - timedelta(minutes=10): {("svc", "rel"): first},
            at: {("svc", "rel"): second},
            at + timedelta(seconds=10): {("svc", "rel"): traffic(7)},
        }
    )
    twelve, one = datetime(2025, 3, 31, 12, tzinfo=UTC), datetime(2025, 3, 31, 13, tzinfo=UTC)
    assert sorted(hours) == [twelve, one]
    assert hours[twelve][("svc", "rel")].requests == 15
    assert hours[twelve][("svc", "rel")].by_class["5xx"] == 1
    assert hours[one][("svc", "rel")].requests == 7
    assert (first.requests, second.requests) == (10, 5)


@pytest.fixture
async def service_id(ctx: Context) -> str:
    project = await make_project(ctx)
    await make_environment(ctx, project)
    return (await make_service(ctx)).id


async def _rows(store: Store, model: Any) -> list[tuple[datetime, int, int]]:
    async with store.read() as session:
        rows = await session.scalars(select(model).order_by(model.window_start))
        return [(r.window_start, r.requests, r.status_5xx) for r in rows]


async def test_ten_second_rows_and_hourly_rows_are_written_together(
    store: Store, service_id: str
) -> None:
    twelve = datetime(2025, 3, 31, 12, tzinfo=UTC)
    async with store.write() as session:
        await add_windows(
            session,
            {
                twelve + timedelta(minutes=5): {(service_id, "rel_a"): traffic(10, errors=2)},
                twelve + timedelta(minutes=55): {(service_id, "rel_a"): traffic(20)},
                twelve + timedelta(minutes=65): {(service_id, "rel_a"): traffic(4, errors=4)},
            },
        )
    # A second flush into the same windows adds to the rows.
    await record_traffic(store, service_id, twelve + timedelta(minutes=5), traffic(1, errors=1))

    assert await _rows(store, RequestMetrics) == [
        (twelve + timedelta(minutes=5), 11, 3),
        (twelve + timedelta(minutes=55), 20, 0),
        (twelve + timedelta(minutes=65), 4, 4),
    ]
    assert await _rows(store, RequestMetricsHourly) == [
        (twelve, 31, 3),
        (twelve + timedelta(hours=1), 4, 4),
    ]
    # The hour's row is its 10-second rows added up, histogram and all.
    async with store.read() as session:
        hourly = await read_total(session, service_id, twelve, twelve, model=RequestMetricsHourly)
        ten_second = await read_total(
            session, service_id, twelve, twelve + timedelta(minutes=59, seconds=50)
        )
    assert hourly == ten_second
    assert sum(hourly.histogram.values()) == 31


async def test_hourly_rows_are_kept_longer_than_ten_second_rows(
    store: Store, service_id: str
) -> None:
    for age in (timedelta(days=1), timedelta(days=8), timedelta(days=94), timedelta(days=96)):
        await record_traffic(store, service_id, NOW - age, traffic(1))
    async with store.write() as session:
        removed = await prune_metrics(session, now=NOW)
    # Three 10-second rows past a week, one hourly row past 95 days.
    assert removed == 4
    ages = [NOW - start for start, _, _ in await _rows(store, RequestMetrics)]
    assert [age.days for age in ages] == [1]
    hourly = [NOW - start for start, _, _ in await _rows(store, RequestMetricsHourly)]
    assert sorted(age.days for age in hourly) == [1, 8, 94]


# -- reading a service's budget ---------------------------------------------------------------


async def test_a_service_is_judged_on_the_hours_of_its_window_and_the_seconds_of_its_burn(
    store: Store, service_id: str
) -> None:
    since = window_since(POLICY, NOW)
    # Inside the hour that straddles the window's edge: counted, whole.
    await record_traffic(store, service_id, since + timedelta(minutes=1), traffic(1000, errors=5))
    # The hour before it has left the window.
    await record_traffic(store, service_id, since - timedelta(seconds=10), traffic(900, errors=900))
    # Two hours ago: in the window, not in the hour the burn rate looks at.
    await record_traffic(
        store, service_id, NOW - timedelta(hours=2), traffic(500, errors=50, slow=25)
    )
    # In the burn window, from two releases.
    await record_traffic(store, service_id, NOW - timedelta(minutes=30), traffic(2000, errors=20))
    await record_traffic(
        store, service_id, NOW - timedelta(seconds=5), traffic(500, errors=5), "rel_b"
    )
    # After now (a clock a test moved back): nowhere.
    await record_traffic(store, service_id, NOW + timedelta(hours=1), traffic(77, errors=77))

    async with store.read() as session:
        report = await assess_service(session, service_id, POLICY, NOW)

    availability, latency = report.window
    assert report.since == since and report.until == NOW
    assert report.requests == 1000 + 500 + 2000 + 500
    assert availability.bad == 5 + 50 + 20 + 5
    assert availability.allowed == pytest.approx(4.0)
    assert latency.bad == pytest.approx(25)
    assert report.frozen and report.budget_spent == pytest.approx(80 / 4)
    burn_availability, burn_latency = report.burn
    assert report.burn_requests == 2500
    assert burn_availability.bad == 25 and burn_latency.bad == 0
    assert report.burn_rate == pytest.approx((25 / 2500) / 0.001)
    assert report.objectives_json()["availability"]["burnRequests"] == 2500


async def test_rows_of_other_services_are_not_counted(
    ctx: Context, store: Store, service_id: str
) -> None:
    other = (await make_service(ctx, name="web")).id
    await record_traffic(store, other, NOW - timedelta(minutes=1), traffic(100, errors=100))
    await record_traffic(store, service_id, NOW - timedelta(minutes=1), traffic(100))
    async with store.read() as session:
        report = await assess_service(session, service_id, POLICY, NOW)
        count = await session.scalar(select(func.count()).select_from(RequestMetricsHourly))
    assert count == 2
    assert (report.requests, report.budget_spent, report.burn_rate) == (100, 0.0, 0.0)


def test_hour_start() -> None:
    assert hour_start(NOW) == datetime(2025, 3, 31, 12, tzinfo=UTC)
    assert window_start(NOW) == datetime(2025, 3, 31, 12, 34, 50, tzinfo=UTC)
