"""Request metrics: what the router records per release, and what the API reads back.

The router counts requests by status class and puts each latency into a fixed log-spaced
histogram; every few seconds it adds its counts to the row of the current window
(``WINDOW_S`` wide), and in the same transaction to the row of the current hour. The
10-second rows serve dashboards and canary analysis and are kept a week; the hourly rows
serve error budgets, whose windows are up to 90 days long (a 30-day window is 720 rows per
release instead of 259,200), and are kept 95 days. One transaction for both keeps them
equal: an hour's row is the sum of its 10-second rows for as long as those are kept.

Percentiles are computed from the merged histograms of a time range, by linear
interpolation inside the bucket that holds the rank — as Prometheus'
``histogram_quantile`` does — so they are real percentiles of every request, accurate to
the bucket width (about 10%).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, cast

from sqlalchemy import Select, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import RequestMetrics, RequestMetricsHourly, utcnow

WINDOW_S: Final = 10
HOUR_S: Final = 3600
# Upper bounds in milliseconds, growing by 10% from 0.05 ms to past a minute; the last
# bucket is everything slower.
BUCKET_GROWTH: Final = 1.1
BOUNDS_MS: Final[tuple[float, ...]] = tuple(
    round(0.05 * BUCKET_GROWTH**i, 6) for i in range(int(math.log(60_000 / 0.05, 1.1)) + 2)
)
STATUS_CLASSES: Final = ("1xx", "2xx", "3xx", "4xx", "5xx")
RETENTION: Final = timedelta(days=7)
# The longest SLO window (90 days) and a few days' grace, so a window never reads a row
# the sweep is about to take.
HOURLY_RETENTION: Final = timedelta(days=95)

# The two tables of counts: the same columns, rows of a different width.
TrafficModel = type[RequestMetrics] | type[RequestMetricsHourly]
Key = tuple[str, str]  # (service id, release id)


def _select(model: TrafficModel) -> Select[RequestMetrics | RequestMetricsHourly]:
    # select() of either class types as their common base; both have the same columns.
    return cast("Select[RequestMetrics | RequestMetricsHourly]", select(model))


def bucket_of(latency_ms: float) -> int:
    """Index of the bucket holding ``latency_ms`` (len(BOUNDS_MS) for slower ones)."""
    return bisect.bisect_left(BOUNDS_MS, latency_ms)


def window_start(at: datetime) -> datetime:
    seconds = int(at.timestamp()) // WINDOW_S * WINDOW_S
    return datetime.fromtimestamp(seconds, tz=at.tzinfo)


def hour_start(at: datetime) -> datetime:
    seconds = int(at.timestamp()) // HOUR_S * HOUR_S
    return datetime.fromtimestamp(seconds, tz=at.tzinfo)


@dataclass
class Tally:
    """Counts for one release over some time: what the router accumulates between
    flushes, and what a summary adds up."""

    requests: int = 0
    by_class: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUS_CLASSES, 0))
    latency_sum_ms: float = 0.0
    histogram: dict[int, int] = field(default_factory=dict)

    def record(self, status: int, latency_ms: float) -> None:
        self.requests += 1
        cls = f"{min(max(status // 100, 1), 5)}xx"
        self.by_class[cls] += 1
        self.latency_sum_ms += latency_ms
        index = bucket_of(latency_ms)
        self.histogram[index] = self.histogram.get(index, 0) + 1

    def add(self, other: Tally) -> None:
        self.requests += other.requests
        for cls, count in other.by_class.items():
            self.by_class[cls] += count
        self.latency_sum_ms += other.latency_sum_ms
        for index, count in other.histogram.items():
            self.histogram[index] = self.histogram.get(index, 0) + count

    def quantile(self, q: float) -> float | None:
        """The q-quantile of latency in ms, or None without requests."""
        total = sum(self.histogram.values())
        if total == 0:
            return None
        rank = q * total
        seen = 0
        for index in sorted(self.histogram):
            count = self.histogram[index]
            if seen + count >= rank:
                lower = BOUNDS_MS[index - 1] if index > 0 else 0.0
                if index >= len(BOUNDS_MS):
                    return lower  # slower than the last bound: all we know is "at least"
                upper = BOUNDS_MS[index]
                return lower + (upper - lower) * ((rank - seen) / count)
            seen += count
        return BOUNDS_MS[-1]

    def slower_than(self, threshold_ms: float) -> float:
        """How many requests took longer than ``threshold_ms``: every request of the buckets
        above the threshold, and of the bucket holding it the share above it, assuming its
        requests spread evenly across the bucket (the same assumption as ``quantile``, so
        ``slower_than(quantile(q))`` is ``(1 - q) * requests``)."""
        index = bucket_of(threshold_ms)
        slower = float(sum(count for i, count in self.histogram.items() if i > index))
        count = self.histogram.get(index, 0)
        if count:
            if index >= len(BOUNDS_MS):
                # Past the last bound (about a minute) all we know is "at least that
                # slow": they count as slower, so an objective is never met thanks to
                # requests too slow to measure.
                slower += count
            else:
                lower = BOUNDS_MS[index - 1] if index > 0 else 0.0
                upper = BOUNDS_MS[index]
                slower += count * (upper - threshold_ms) / (upper - lower)
        return slower


def _row(service_id: str, release_id: str, start: datetime, tally: Tally) -> dict[str, object]:
    return {
        "service_id": service_id,
        "release_id": release_id,
        "window_start": start,
        "requests": tally.requests,
        **{f"status_{cls}": tally.by_class[cls] for cls in STATUS_CLASSES},
        "latency_sum_ms": tally.latency_sum_ms,
        "histogram": {str(k): v for k, v in tally.histogram.items()},
    }


async def add_window(
    session: AsyncSession,
    start: datetime,
    tallies: Mapping[Key, Tally],
    *,
    model: TrafficModel = RequestMetrics,
) -> None:
    """Add ``tallies`` (by (service, release)) to the rows of ``model`` (10-second rows by
    default, or hourly ones) starting at ``start``."""
    if not tallies:
        return
    keys = [(s, r) for s, r in tallies]
    existing = {
        (row.service_id, row.release_id): row
        for row in await session.scalars(
            _select(model)
            .where(model.window_start == start)
            .where(model.service_id.in_({s for s, _ in keys}))
            # One lock order for every writer: two routers adding to the same rows cannot
            # each hold one the other waits for.
            .order_by(model.service_id, model.release_id)
            .with_for_update()
        )
    }
    fresh = []
    for (service_id, release_id), tally in tallies.items():
        row = existing.get((service_id, release_id))
        if row is None:
            fresh.append(_row(service_id, release_id, start, tally))
            continue
        merged = _tally_of(row)
        merged.add(tally)
        row.requests = merged.requests
        for cls in STATUS_CLASSES:
            setattr(row, f"status_{cls}", merged.by_class[cls])
        row.latency_sum_ms = merged.latency_sum_ms
        row.histogram = {str(k): v for k, v in merged.histogram.items()}
    if fresh:
        # Two routers racing for a new window: the loser's insert fails on the primary key
        # and its transaction rolls back; the router keeps the tallies and flushes again,
        # finding the row the next time.
        await session.execute(insert(model), fresh)


def by_hour(windows: Mapping[datetime, Mapping[Key, Tally]]) -> dict[datetime, dict[Key, Tally]]:
    """The tallies of 10-second windows summed per hour, into new tallies (the ones given
    are left as they are: a router keeps them when a flush fails)."""
    hours: dict[datetime, dict[Key, Tally]] = {}
    for start, tallies in windows.items():
        hour = hours.setdefault(hour_start(start), {})
        for key, tally in tallies.items():
            hour.setdefault(key, Tally()).add(tally)
    return hours


async def add_windows(
    session: AsyncSession, windows: Mapping[datetime, Mapping[Key, Tally]]
) -> None:
    """Add the tallies of some 10-second windows to their rows and to their hours' rows, in
    the caller's transaction, so both tables get the counts or neither does."""
    # 10-second rows first, then hourly ones, each in time order: the same lock order for
    # every writer (see add_window).
    for start in sorted(windows):
        await add_window(session, start, windows[start])
    hours = by_hour(windows)
    for start in sorted(hours):
        await add_window(session, start, hours[start], model=RequestMetricsHourly)


@dataclass(frozen=True, slots=True)
class Summary:
    window_s: float
    requests: int
    requests_per_s: float
    error_rate: float  # share of requests answered 5xx
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    by_class: dict[str, int]
    mean_ms: float | None


def summarise(tally: Tally, window_s: float) -> Summary:
    return Summary(
        window_s=window_s,
        requests=tally.requests,
        requests_per_s=tally.requests / window_s if window_s > 0 else 0.0,
        error_rate=tally.by_class["5xx"] / tally.requests if tally.requests else 0.0,
        p50_ms=tally.quantile(0.50),
        p95_ms=tally.quantile(0.95),
        p99_ms=tally.quantile(0.99),
        by_class=dict(tally.by_class),
        mean_ms=tally.latency_sum_ms / tally.requests if tally.requests else None,
    )


async def read_tallies(
    session: AsyncSession,
    service_id: str,
    since: datetime,
    release_ids: Sequence[str] | None = None,
) -> dict[str, Tally]:
    """Per release, everything recorded in windows starting at or after ``since``."""
    query = select(RequestMetrics).where(
        RequestMetrics.service_id == service_id, RequestMetrics.window_start >= since
    )
    if release_ids is not None:
        query = query.where(RequestMetrics.release_id.in_(release_ids))
    tallies: dict[str, Tally] = {}
    for row in await session.scalars(query):
        tallies.setdefault(row.release_id, Tally()).add(_tally_of(row))
    return tallies


async def read_totals(
    session: AsyncSession, service_ids: Sequence[str], since: datetime
) -> dict[str, Tally]:
    """Per service (all its releases together), everything recorded since ``since``: one
    statement for any number of services."""
    tallies: dict[str, Tally] = {service_id: Tally() for service_id in service_ids}
    if not service_ids:
        return tallies
    query = select(RequestMetrics).where(
        RequestMetrics.service_id.in_(service_ids), RequestMetrics.window_start >= since
    )
    for row in await session.scalars(query):
        tallies[row.service_id].add(_tally_of(row))
    return tallies


async def read_total(
    session: AsyncSession,
    service_id: str,
    since: datetime,
    until: datetime,
    *,
    model: TrafficModel = RequestMetrics,
) -> Tally:
    """One service, all its releases together, in the rows of ``model`` that start in
    [``since``, ``until``]."""
    query = _select(model).where(
        model.service_id == service_id,
        model.window_start >= since,
        model.window_start <= until,
    )
    result = Tally()
    for row in await session.scalars(query):
        result.add(_tally_of(row))
    return result


def _tally_of(row: RequestMetrics | RequestMetricsHourly) -> Tally:
    return Tally(
        row.requests,
        {cls: getattr(row, f"status_{cls}") for cls in STATUS_CLASSES},
        row.latency_sum_ms,
        {int(k): v for k, v in row.histogram.items()},
    )


def total(tallies: Iterable[Tally]) -> Tally:
    result = Tally()
    for tally in tallies:
        result.add(tally)
    return result


async def prune_metrics(
    session: AsyncSession,
    *,
    older_than: timedelta = RETENTION,
    hourly_older_than: timedelta = HOURLY_RETENTION,
    now: datetime | None = None,
) -> int:
    """Remove 10-second rows older than ``older_than`` and hourly rows older than
    ``hourly_older_than``; return how many rows went."""
    now = now or utcnow()
    removed = 0
    for model, age in ((RequestMetrics, older_than), (RequestMetricsHourly, hourly_older_than)):
        result = await session.execute(delete(model).where(model.window_start < now - age))
        removed += int(getattr(result, "rowcount", 0) or 0)
    return removed
