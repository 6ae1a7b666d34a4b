"""Deployments and runtimes as the deployment controller drives them; router metrics.

Deployment phases become the ones users watch (queued → building → deploying → healthy);
runtimes gain their traffic weight, their replicas as observed, and how long they stay warm.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
PHASES_BEFORE_AFTER = [
    ("pending", "queued"),
    ("progressing", "deploying"),
    ("paused", "deploying"),
    ("succeeded", "healthy"),
]


def upgrade() -> None:
    op.create_table(
        "request_metrics",
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
            name=op.f("fk_request_metrics_service_id_services"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "service_id", "release_id", "window_start", name=op.f("pk_request_metrics")
        ),
    )
    op.create_index("ix_request_metrics_window_start", "request_metrics", ["window_start"])

    with op.batch_alter_table("deployments") as batch:
        batch.add_column(
            sa.Column(
                "kind",
                sa.Enum("deploy", "rollback", name="deploymentkind", native_enum=False, length=32),
                nullable=False,
                server_default="deploy",
            )
        )
        batch.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
    for before, after in PHASES_BEFORE_AFTER:
        op.execute(
            sa.text("UPDATE deployments SET phase = :after WHERE phase = :before").bindparams(
                before=before, after=after
            )
        )

    with op.batch_alter_table("runtimes") as batch:
        batch.add_column(sa.Column("weight", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("replicas", JSON, nullable=False, server_default="[]"))
        batch.add_column(sa.Column("warm_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runtimes") as batch:
        batch.drop_column("warm_until")
        batch.drop_column("replicas")
        batch.drop_column("weight")
    # Phases 0004 did not know fold into the nearest one it did.
    for before, after in [*PHASES_BEFORE_AFTER, ("pending", "building"), ("failed", "superseded")]:
        op.execute(
            sa.text("UPDATE deployments SET phase = :before WHERE phase = :after").bindparams(
                before=before, after=after
            )
        )
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("started_at")
        batch.drop_column("deadline_at")
        batch.drop_column("reason")
        batch.drop_column("kind")
    op.drop_index("ix_request_metrics_window_start", table_name="request_metrics")
    op.drop_table("request_metrics")
