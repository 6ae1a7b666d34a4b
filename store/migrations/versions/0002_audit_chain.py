"""The audit trail becomes a hash chain per account.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

Existing audit rows are linked in the order they were written (their IDs sort by time). The
hashing is written out here rather than imported, so this migration keeps producing the
same chain whatever later code does.
"""

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64
COLUMNS = (
    "id", "account_id", "seq", "project_id", "actor_id", "actor_display", "action",
    "outcome", "entity_type", "entity_id", "payload", "request_id", "source_address",
    "created_at",
)  # fmt: skip


def _hash(prev: str, row: dict[str, object]) -> str:
    values = dict(row)
    created = values["created_at"]
    if isinstance(created, str):  # SQLite hands back text
        created = datetime.fromisoformat(created)
    assert isinstance(created, datetime)
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    values["created_at"] = created.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(values["payload"], str):
        values["payload"] = json.loads(values["payload"])
    canonical = json.dumps(
        {k: values[k] for k in COLUMNS}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(prev.encode() + canonical.encode()).hexdigest()


def upgrade() -> None:
    op.create_table(
        "audit_chain_heads",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_audit_chain_heads_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_audit_chain_heads")),
    )
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("hash", sa.String(length=64), nullable=True))

    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT id, account_id, project_id, actor_id, actor_display, action, outcome, "
            "entity_type, entity_id, payload, request_id, source_address, created_at "
            "FROM audit_events ORDER BY account_id, id"
        )
    ).mappings()
    heads: dict[str, tuple[int, str]] = {}
    for row in list(rows):
        seq, prev = heads.get(row["account_id"], (0, GENESIS))
        values = dict(row, seq=seq + 1)
        digest = _hash(prev, values)
        bind.execute(
            sa.text(
                "UPDATE audit_events SET seq = :seq, prev_hash = :prev, hash = :hash WHERE id = :id"
            ),
            {"seq": seq + 1, "prev": prev, "hash": digest, "id": row["id"]},
        )
        heads[row["account_id"]] = (seq + 1, digest)
    for account_id, (seq, digest) in heads.items():
        bind.execute(
            sa.text(
                "INSERT INTO audit_chain_heads (account_id, last_seq, last_hash) "
                "VALUES (:a, :s, :h)"
            ),
            {"a": account_id, "s": seq, "h": digest},
        )

    with op.batch_alter_table("audit_events") as batch:
        batch.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch.create_unique_constraint(
            op.f("uq_audit_events_account_id_seq"), ["account_id", "seq"]
        )
        batch.create_index("ix_audit_events_actor_id", ["actor_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_index("ix_audit_events_actor_id")
        batch.drop_constraint(op.f("uq_audit_events_account_id_seq"), type_="unique")
        batch.drop_column("hash")
        batch.drop_column("prev_hash")
        batch.drop_column("seq")
    op.drop_table("audit_chain_heads")
