"""What a service is given: routes, volumes, jobs and their runs, secrets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import (
    Base,
    JSONType,
    created_at_column,
    enum_column,
    id_column,
    updated_at_column,
)
from store.models.enums import JobRunStatus, RouteSource, SecretScope


class Route(Base):
    """A host and path prefix bound to a service. (host, path) is unique per environment."""

    __tablename__ = "routes"

    id: Mapped[str] = id_column()
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    host: Mapped[str] = mapped_column(String(253))
    path: Mapped[str] = mapped_column(String(500))
    tls_cert_ref: Mapped[str | None] = mapped_column(String(500))
    source: Mapped[RouteSource] = mapped_column(enum_column(RouteSource))
    created_at: Mapped[datetime] = created_at_column()

    __table_args__ = (
        UniqueConstraint("environment_id", "host", "path"),
        Index("ix_routes_service_id", "service_id"),
    )


class Volume(Base):
    __tablename__ = "volumes"

    id: Mapped[str] = id_column()
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    service_id: Mapped[str | None] = mapped_column(ForeignKey("services.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(63))
    mount_path: Mapped[str] = mapped_column(String(500))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    storage_class: Mapped[str] = mapped_column(String(63))
    backup_policy: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    __table_args__ = (
        UniqueConstraint("environment_id", "name"),
        Index("ix_volumes_service_id", "service_id"),
    )


class Job(Base):
    """A cron (schedule set) or on-demand (schedule NULL) job of a service."""

    __tablename__ = "jobs"

    id: Mapped[str] = id_column()
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    schedule: Mapped[str | None] = mapped_column(String(120))
    image_ref: Mapped[str | None] = mapped_column(String(500))
    args: Mapped[list[str]] = mapped_column(JSON, default=list)
    retries: Mapped[int] = mapped_column(Integer, default=0)
    last_run_at: Mapped[datetime | None] = mapped_column()
    next_run_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    __table_args__ = (
        UniqueConstraint("environment_id", "name"),
        Index("ix_jobs_service_id", "service_id"),
    )


class JobRun(Base):
    __tablename__ = "job_runs"

    id: Mapped[str] = id_column()
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    release_id: Mapped[str | None] = mapped_column(ForeignKey("releases.id", ondelete="SET NULL"))
    status: Mapped[JobRunStatus] = mapped_column(enum_column(JobRunStatus))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    triggered_by: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = created_at_column()

    __table_args__ = (Index("ix_job_runs_job_id_id", "job_id", "id"),)


class Secret(Base):
    """A named secret on a project, an environment or a service. Values live in
    SecretVersion rows, sealed; this row carries only metadata."""

    __tablename__ = "secrets"

    id: Mapped[str] = id_column()
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    environment_id: Mapped[str | None] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE")
    )
    service_id: Mapped[str | None] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    scope: Mapped[SecretScope] = mapped_column(enum_column(SecretScope))
    # The id of the project, environment or service the secret belongs to: one column, so
    # that (scope_ref, name) is unique without relying on how a backend compares NULLs.
    scope_ref: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(253))
    current_version: Mapped[int] = mapped_column(Integer, default=0)
    rotated_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    __table_args__ = (
        UniqueConstraint("scope_ref", "name"),
        Index("ix_secrets_project_id", "project_id"),
        Index("ix_secrets_environment_id", "environment_id"),
        Index("ix_secrets_service_id", "service_id"),
    )


class SecretVersion(Base):
    __tablename__ = "secret_versions"

    id: Mapped[str] = id_column()
    secret_id: Mapped[str] = mapped_column(ForeignKey("secrets.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_at_column()

    __table_args__ = (UniqueConstraint("secret_id", "version"),)
