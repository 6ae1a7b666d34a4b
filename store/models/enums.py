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
    PENDING = "pending"
    PROGRESSING = "progressing"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled-back"


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
