"""Releases remember their source, provenance and built artifact.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_ref", sa.String(length=1000), nullable=True))
        batch_op.add_column(
            sa.Column(
                "provenance",
                sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                nullable=False,
                server_default=sa.text("'{}'"),  # existing releases: nothing recorded
            )
        )
        batch_op.add_column(sa.Column("artifact_path", sa.String(length=1000), nullable=True))
        batch_op.create_index("ix_releases_status", ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.drop_index("ix_releases_status")
        batch_op.drop_column("artifact_path")
        batch_op.drop_column("provenance")
        batch_op.drop_column("source_ref")
