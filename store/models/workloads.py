"""What runs: services, their versioned specs, releases, deployments and runtimes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import (
    Base,
    JSONType,
    created_at_column,
    enum_column,
    id_column,
    updated_at_column,
)
from store.models.enums import (
    DeploymentKind,
    DeploymentPhase,
    DeploymentStrategy,
    ReleaseStatus,
    RuntimeStatus,
    ServiceType,
)


class Service(Base):
    """A named workload in one environment. Deletion is a tombstone (deleted_at) so that
    controllers can finalise what runs before the row is forgotten; the name is free again
    at once."""

    __tablename__ = "services"

    id: Mapped[str] = id_column()
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    type: Mapped[ServiceType] = mapped_column(enum_column(ServiceType))
    # Bumped by every new spec version; controllers report observedGeneration against it.
    generation: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
    deleted_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        Index(
            "uq_services_live_name",
            "environment_id",
            "name",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index("ix_services_project_id", "project_id"),
    )


class ServiceSpecVersion(Base):
    """One immutable applied Service Spec: the YAML as rendered and its normalised form."""

    __tablename__ = "service_spec_versions"

    id: Mapped[str] = id_column()
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType)
    spec_yaml: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(80))
    git_sha: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_at_column()

    __table_args__ = (UniqueConstraint("service_id", "version"),)


class Release(Base):
    """An immutable, signed build of a service."""

    __tablename__ = "releases"

    id: Mapped[str] = id_column()
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    spec_version_id: Mapped[str | None] = mapped_column(
        ForeignKey("service_spec_versions.id", ondelete="SET NULL")
    )
    image_ref: Mapped[str | None] = mapped_column(String(500))
    build_id: Mapped[str | None] = mapped_column(String(80))
    git_sha: Mapped[str | None] = mapped_column(String(64))
    digest: Mapped[str | None] = mapped_column(String(80))
    sbom_uri: Mapped[str | None] = mapped_column(String(500))
    signature: Mapped[str | None] = mapped_column(Text)
    status: Mapped[ReleaseStatus] = mapped_column(enum_column(ReleaseStatus))
    status_reason: Mapped[str | None] = mapped_column(Text)
    # Where the source is: "path:/abs/folder" (embedded default only) or "blob:<key>" (an
    # uploaded tarball in the blob store).
    source_ref: Mapped[str | None] = mapped_column(String(1000))
    # How it was built: builder and version, git SHA, times, command, package count, SBOM
    # hash, signing key, build log — what `enclii releases` and the UI show as provenance.
    provenance: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    artifact_path: Mapped[str | None] = mapped_column(String(1000))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    __table_args__ = (
        Index("ix_releases_service_id_id", "service_id", "id"),
        Index("ix_releases_status", "status"),
    )


class Deployment(Base):
    """The desired move of a service from one release to another, and how it is going."""

    __tablename__ = "deployments"

    id: Mapped[str] = id_column()
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    from_release_id: Mapped[str | None] = mapped_column(
        ForeignKey("releases.id", ondelete="SET NULL")
    )
    to_release_id: Mapped[str] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"))
    strategy: Mapped[DeploymentStrategy] = mapped_column(enum_column(DeploymentStrategy))
    kind: Mapped[DeploymentKind] = mapped_column(
        enum_column(DeploymentKind), default=DeploymentKind.DEPLOY
    )
    phase: Mapped[DeploymentPhase] = mapped_column(enum_column(DeploymentPhase))
    # Why it ended as it did (FAILED, ROLLED_BACK, SUPERSEDED), in words a person can act on.
    reason: Mapped[str | None] = mapped_column(Text)
    # [{type, status, reason, message, observedGeneration, lastTransitionTime}]
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    # Set when replicas start: a restarted controller keeps the deadline it had.
    deadline_at: Mapped[datetime | None] = mapped_column()
    # A canary's progress as the controller keeps it (step, weight, checks, what decided
    # it) and the overrides people asked for (pause, promote, abort): see reconcile.canary.
    canary: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Deployed as a fix: a canary marked so may deploy while the error budget is frozen.
    fix: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (Index("ix_deployments_service_id_id", "service_id", "id"),)


class Runtime(Base):
    """What actually runs of one release of a service: replicas wanted and ready."""

    __tablename__ = "runtimes"

    id: Mapped[str] = id_column()
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    release_id: Mapped[str] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"))
    replicas_desired: Mapped[int] = mapped_column(Integer, default=0)
    replicas_ready: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[RuntimeStatus] = mapped_column(enum_column(RuntimeStatus))
    metrics_ref: Mapped[str | None] = mapped_column(String(500))
    # Percent of the service's traffic the router sends to this release (0..100).
    weight: Mapped[int] = mapped_column(Integer, default=0)
    # What the driver observed of each replica: [{name, index, phase, ready, restarts, …}].
    replicas: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    # A release out of traffic stays running until then, so a rollback is instant.
    warm_until: Mapped[datetime | None] = mapped_column()
    # The autoscaler's last change of replicas_desired, and why (utilisation vs. target).
    scaled_at: Mapped[datetime | None] = mapped_column()
    scale_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    __table_args__ = (
        UniqueConstraint("service_id", "release_id"),
        Index("ix_runtimes_service_id_id", "service_id", "id"),
    )
