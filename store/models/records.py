"""What happened: the audit trail, cost samples and the durable event log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, JSONType, created_at_column, enum_column, id_column
from store.models.enums import AuditOutcome


class AuditEvent(Base):
    """One mutation, written in the same transaction as the change it records.

    Rows form a hash chain per account (see store.audit): ``seq`` counts without gaps and
    ``hash`` covers the row's content and the previous row's hash, so an edited, deleted or
    inserted row breaks the chain where it happened."""

    __tablename__ = "audit_events"

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[str | None] = mapped_column(String(40))
    actor_id: Mapped[str] = mapped_column(String(200))
    actor_display: Mapped[str] = mapped_column(String(300))
    action: Mapped[str] = mapped_column(String(100))
    outcome: Mapped[AuditOutcome] = mapped_column(enum_column(AuditOutcome))
    entity_type: Mapped[str | None] = mapped_column(String(40))
    entity_id: Mapped[str | None] = mapped_column(String(40))
    # {"before": {...} | None, "after": {...} | None, "reason": ...}
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    request_id: Mapped[str | None] = mapped_column(String(80))
    source_address: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = created_at_column()

    __table_args__ = (
        UniqueConstraint("account_id", "seq"),
        Index("ix_audit_events_account_id_id", "account_id", "id"),
        Index("ix_audit_events_entity_id", "entity_id"),
        Index("ix_audit_events_project_id_id", "project_id", "id"),
        Index("ix_audit_events_actor_id", "actor_id"),
    )


class AuditChainHead(Base):
    """The newest link of an account's audit chain. Appending locks this row, so links are
    added one at a time; verification also compares it with the newest row, which is how
    a deleted tail is noticed."""

    __tablename__ = "audit_chain_heads"

    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))


class CostSample(Base):
    __tablename__ = "cost_samples"

    id: Mapped[str] = id_column()
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    service_id: Mapped[str | None] = mapped_column(ForeignKey("services.id", ondelete="SET NULL"))
    cpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    mem_gib_hours: Mapped[float] = mapped_column(Float, default=0.0)
    storage_gib_hours: Mapped[float] = mapped_column(Float, default=0.0)
    egress_gib: Mapped[float] = mapped_column(Float, default=0.0)
    ts: Mapped[datetime] = mapped_column()

    __table_args__ = (
        Index("ix_cost_samples_environment_id_ts", "environment_id", "ts"),
        Index("ix_cost_samples_service_id_ts", "service_id", "ts"),
    )


class _TrafficCounts:
    """Counts by status class and a latency histogram (bucket bounds in ``store.metrics``),
    merged by adding."""

    release_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(primary_key=True)
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    status_1xx: Mapped[int] = mapped_column(BigInteger, default=0)
    status_2xx: Mapped[int] = mapped_column(BigInteger, default=0)
    status_3xx: Mapped[int] = mapped_column(BigInteger, default=0)
    status_4xx: Mapped[int] = mapped_column(BigInteger, default=0)
    status_5xx: Mapped[int] = mapped_column(BigInteger, default=0)
    latency_sum_ms: Mapped[float] = mapped_column(Float, default=0.0)
    # Sparse: {"<bucket index>": count}.
    histogram: Mapped[dict[str, int]] = mapped_column(JSONType, default=dict)


class RequestMetrics(_TrafficCounts, Base):
    """What the router saw of one release in one 10-second window: what dashboards and
    canary analysis read (kept a week)."""

    __tablename__ = "request_metrics"

    service_id: Mapped[str] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), primary_key=True, sort_order=-1
    )

    __table_args__ = (Index("ix_request_metrics_window_start", "window_start"),)


class RequestMetricsHourly(_TrafficCounts, Base):
    """The same counts per hour, written beside the 10-second rows and kept long enough
    for error budgets (a 90-day SLO window reads 2,160 rows, not 777,600)."""

    __tablename__ = "request_metrics_hourly"

    service_id: Mapped[str] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), primary_key=True, sort_order=-1
    )

    __table_args__ = (Index("ix_request_metrics_hourly_window_start", "window_start"),)


class EventStream(Base):
    """The head of one event stream. Taking the next sequence updates this row, which
    serialises writers of a stream until commit, so sequences commit in order."""

    __tablename__ = "event_streams"

    stream: Mapped[str] = mapped_column(String(120), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)


class Event(Base):
    """One entry of the durable event log that subscriptions replay and follow."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    stream: Mapped[str] = mapped_column(String(120))
    seq: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(80))
    entity_id: Mapped[str | None] = mapped_column(String(40))
    actor_id: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = created_at_column()

    __table_args__ = (UniqueConstraint("stream", "seq"),)


class LogLine(Base):
    """One line a build or a replica wrote. ``seq`` counts a service's lines without gaps,
    in commit order (taken from LogHead like event sequences), so a cursor resumes exactly."""

    __tablename__ = "log_lines"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger)
    release_id: Mapped[str | None] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(40))  # build, replica-0, …
    stream: Mapped[str] = mapped_column(String(10))  # stdout, stderr, build
    level: Mapped[str] = mapped_column(String(10))
    message: Mapped[str] = mapped_column(Text)
    fields: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    ts: Mapped[datetime] = mapped_column()

    __table_args__ = (
        UniqueConstraint("service_id", "seq"),
        Index("ix_log_lines_service_id_ts", "service_id", "ts"),
    )


class LogHead(Base):
    __tablename__ = "log_heads"

    service_id: Mapped[str] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), primary_key=True
    )
    last_seq: Mapped[int] = mapped_column(BigInteger)
