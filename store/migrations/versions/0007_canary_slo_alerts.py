"""Canary deploys keep their progress on the deployment; hourly request metrics for error
budgets; each service's SLO status; the alert outbox.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("canary", JSON, nullable=False, server_default="{}"))
        batch.add_column(
            sa.Column("fix", sa.Boolean(), nullable=False, server_default=sa.false())
        )

    op.create_table(
        "request_metrics_hourly",
        sa.Column("service_id", sa.String(length=40), nullable=False),
        sa.Column("release_id", sa.String(length=40), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("status_1xx", sa.BigInteger(), nullable=False),
        sa.Column("status_2xx", sa.BigInteger(), nullable=False),
        sa.Column("status_3xx", sa.BigInteger(), nullable=False),
        sa.Column("status_4xx", sa.BigInteger(), nullable=False),
        sa.Column("status_5xx", sa.BigInteger(), nullable=False),
        sa.Column("latency_sum_ms", sa.Float(), nullable=False),
        sa.Column("histogram", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["services.id"],
            name=op.f("fk_request_metrics_hourly_service_id_services"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "service_id", "release_id", "window_start", name=op.f("pk_request_metrics_hourly")
        ),
    )
    op.create_index(
        "ix_request_metrics_hourly_window_start", "request_metrics_hourly", ["window_start"]
    )

    op.create_table(
        "slo_status",
        sa.Column("service_id", sa.String(length=40), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("objectives", JSON, nullable=False),
        sa.Column("budget_spent", sa.Float(), nullable=False),
        sa.Column("burn_rate", sa.Float(), nullable=False),
        sa.Column("burning", sa.Boolean(), nullable=False),
        sa.Column("frozen", sa.Boolean(), nullable=False),
        sa.Column("frozen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["services.id"],
            name=op.f("fk_slo_status_service_id_services"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("service_id", name=op.f("pk_slo_status")),
    )

    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("service_id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("policy", sa.String(length=63), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["services.id"],
            name=op.f("fk_alert_deliveries_service_id_services"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_deliveries")),
    )
    op.create_index(
        "ix_alert_deliveries_service_id_id", "alert_deliveries", ["service_id", "id"]
    )
    op.create_index("ix_alert_deliveries_status", "alert_deliveries", ["status"])


def downgrade() -> None:
    op.drop_index("ix_alert_deliveries_status", table_name="alert_deliveries")
    op.drop_index("ix_alert_deliveries_service_id_id", table_name="alert_deliveries")
    op.drop_table("alert_deliveries")
    op.drop_table("slo_status")
    op.drop_index("ix_request_metrics_hourly_window_start", table_name="request_metrics_hourly")
    op.drop_table("request_metrics_hourly")
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("fix")
        batch.drop_column("canary")
