"""Who owns what: accounts, projects, environments, people, their roles and tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import (
    Base,
    JSONType,
    created_at_column,
    enum_column,
    id_column,
    updated_at_column,
)
from store.models.enums import Role


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(200))
    sso_provider: Mapped[str | None] = mapped_column(String(500))
    billing_profile: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = created_at_column()


class User(Base):
    """A person or robot that acts on Enclii; OIDC subjects and token owners map to one."""

    __tablename__ = "users"

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(300))
    email: Mapped[str | None] = mapped_column(String(300))
    display_name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_at_column()

    __table_args__ = (UniqueConstraint("account_id", "subject"),)


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(63))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    __table_args__ = (UniqueConstraint("account_id", "slug"),)


class Environment(Base):
    """dev, stage, prod or an ephemeral preview-*, with its own limits and budget."""

    __tablename__ = "environments"

    id: Mapped[str] = id_column()
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    region: Mapped[str] = mapped_column(String(63))
    cpu_limit_millicores: Mapped[int | None] = mapped_column(Integer)
    memory_limit_mib: Mapped[int | None] = mapped_column(Integer)
    egress_limit_gib: Mapped[int | None] = mapped_column(Integer)
    budget_limit_cents: Mapped[int | None] = mapped_column(BigInteger)
    policy_refs: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    __table_args__ = (UniqueConstraint("project_id", "name"),)


class Membership(Base):
    """A user's role on the whole account (project_id NULL) or on one project."""

    __tablename__ = "memberships"

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    project_id: Mapped[str | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # project_id when set, else account_id: unique (scope_ref, user_id) without NULL semantics.
    scope_ref: Mapped[str] = mapped_column(String(40))
    role: Mapped[Role] = mapped_column(enum_column(Role))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    __table_args__ = (
        UniqueConstraint("scope_ref", "user_id"),
        Index("ix_memberships_user_id", "user_id"),
    )


class ApiToken(Base):
    """A personal access token. Only its hash is stored; the secret is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    project_id: Mapped[str | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    display_prefix: Mapped[str] = mapped_column(String(32))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = created_at_column()
