"""The closed vocabularies of the data model, shared by the API and the controllers."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    DEVELOPER = "developer"
    READONLY = "readonly"


class ServiceType(StrEnum):
    API = "api"
    WORKER = "worker"
    JOB = "job"


class ReleaseStatus(StrEnum):
    PENDING = "pending"
    BUILDING = "building"
    READY = "ready"
    FAILED = "failed"


class DeploymentStrategy(StrEnum):
    ROLLING = "rolling"
    BLUE_GREEN = "blue-green"
    CANARY = "canary"


class DeploymentPhase(StrEnum):
    QUEUED = "queued"  # waiting for its release, or for the service's earlier deployment
    BUILDING = "building"  # its release is being built
    DEPLOYING = "deploying"  # replicas starting, traffic moving
    HEALTHY = "healthy"  # every replica ready and all traffic on the release
    FAILED = "failed"  # build, verification, start or deadline failed; the reason says which
    ROLLED_BACK = "rolled-back"  # a rollback replaced it
    SUPERSEDED = "superseded"  # a newer deployment of the service replaced it before the end


TERMINAL_PHASES: frozenset[DeploymentPhase] = frozenset(
    {
        DeploymentPhase.HEALTHY,
        DeploymentPhase.FAILED,
        DeploymentPhase.ROLLED_BACK,
        DeploymentPhase.SUPERSEDED,
    }
)


class DeploymentKind(StrEnum):
    DEPLOY = "deploy"
    ROLLBACK = "rollback"


class RuntimeStatus(StrEnum):
    PENDING = "pending"
    STARTING = "starting"
    RUNNING = "running"
    DEGRADED = "degraded"
    CRASH_LOOP = "crash-loop"
    STOPPED = "stopped"


class SecretScope(StrEnum):
    PROJECT = "project"
    ENVIRONMENT = "environment"
    SERVICE = "service"


class AlertStatus(StrEnum):
    PENDING = "pending"  # not yet delivered; retried with backoff
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # gave up: every attempt failed, or the receiver refused it (4xx)


class JobRunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RouteSource(StrEnum):
    """Where a route came from: the Service Spec (replaced on every apply) or addRoute."""

    SPEC = "spec"
    API = "api"


class AuditOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    DENIED = "denied"
