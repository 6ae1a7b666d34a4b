"""Traffic through the router, as GraphQL shows it: for the metrics query and on each
service (``Service.traffic``, which ``enclii ps`` reads for every service at once)."""

from __future__ import annotations

import strawberry

from store.metrics import Summary


@strawberry.type(description="Requests through the router, by status class.")
class StatusClassCounts:
    informational: int = strawberry.field(name="status1xx")
    success: int = strawberry.field(name="status2xx")
    redirection: int = strawberry.field(name="status3xx")
    client_error: int = strawberry.field(name="status4xx")
    server_error: int = strawberry.field(name="status5xx")


@strawberry.type(description="Traffic over a window, from the router's histograms.")
class TrafficSummary:
    requests: int
    requests_per_second: float
    error_rate: float = strawberry.field(description="Share of requests answered 5xx (0..1).")
    p50_ms: float | None = strawberry.field(description="Median latency; null without traffic.")
    p95_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    by_status_class: StatusClassCounts

    @classmethod
    def from_summary(cls, summary: Summary) -> TrafficSummary:
        return cls(
            requests=summary.requests,
            requests_per_second=summary.requests_per_s,
            error_rate=summary.error_rate,
            p50_ms=summary.p50_ms,
            p95_ms=summary.p95_ms,
            p99_ms=summary.p99_ms,
            mean_ms=summary.mean_ms,
            by_status_class=StatusClassCounts(
                informational=summary.by_class["1xx"],
                success=summary.by_class["2xx"],
                redirection=summary.by_class["3xx"],
                client_error=summary.by_class["4xx"],
                server_error=summary.by_class["5xx"],
            ),
        )
