"""Guardrails: where each service stands against its SLO, and the alerts sent about it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, JSONType, created_at_column, enum_column, id_column
from store.models.enums import AlertStatus


class SloStatus(Base):
    """A service's error budget as the SLO controller last computed it, and whether its
    deploys are frozen. One row per service with an SLO."""

    __tablename__ = "slo_status"

    service_id: Mapped[str] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), primary_key=True
    )
    computed_at: Mapped[datetime] = mapped_column()
    window_days: Mapped[int] = mapped_column(Integer)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    # Per objective: {"objective": 99.9, "bad": n, "allowed": x, "spent": fraction, ...}
    objectives: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # The larger of the objectives' spent fractions (1.0 = the whole budget).
    budget_spent: Mapped[float] = mapped_column(Float, default=0.0)
    burn_rate: Mapped[float] = mapped_column(Float, default=0.0)
    burning: Mapped[bool] = mapped_column(Boolean, default=False)
    frozen: Mapped[bool] = mapped_column(Boolean, default=False)
    frozen_at: Mapped[datetime | None] = mapped_column()
    reason: Mapped[str | None] = mapped_column(Text)


class AlertDelivery(Base):
    """One webhook call owed to an alert policy: written in the same transaction as what
    it reports (an outbox), so an alert is neither lost nor sent for something that did
    not happen; the alert controller delivers it, retrying with backoff until a deadline."""

    __tablename__ = "alert_deliveries"

    id: Mapped[str] = id_column()
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    project_id: Mapped[str] = mapped_column(String(40))
    policy: Mapped[str] = mapped_column(String(63))
    event: Mapped[str] = mapped_column(String(40))  # rollback, freeze, unfreeze, slo-burn
    url: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[AlertStatus] = mapped_column(enum_column(AlertStatus))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = created_at_column()
    delivered_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        Index("ix_alert_deliveries_service_id_id", "service_id", "id"),
        Index("ix_alert_deliveries_status", "status"),
    )
