"""Runtimes record when and why the autoscaler last changed their replica count, so that
scaling down can wait out its stabilisation window across control-plane restarts.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runtimes") as batch:
        batch.add_column(sa.Column("scaled_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("scale_reason", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runtimes") as batch:
        batch.drop_column("scale_reason")
        batch.drop_column("scaled_at")
