"""The data model. Importing this package registers every table on ``Base.metadata``."""

from store.models.base import Base, utcnow
from store.models.enums import (
    AuditOutcome,
    DeploymentPhase,
    DeploymentStrategy,
    JobRunStatus,
    ReleaseStatus,
    Role,
    RouteSource,
    RuntimeStatus,
    SecretScope,
    ServiceType,
)
from store.models.records import (
    AuditChainHead,
    AuditEvent,
    CostSample,
    Event,
    EventStream,
    LogHead,
    LogLine,
)
from store.models.resources import Job, JobRun, Route, Secret, SecretVersion, Volume
from store.models.tenancy import Account, ApiToken, Environment, Membership, Project, User
from store.models.workloads import (
    Deployment,
    Release,
    Runtime,
    Service,
    ServiceSpecVersion,
)

__all__ = [
    "Account",
    "ApiToken",
    "AuditChainHead",
    "AuditEvent",
    "AuditOutcome",
    "Base",
    "CostSample",
    "Deployment",
    "DeploymentPhase",
    "DeploymentStrategy",
    "Environment",
    "Event",
    "EventStream",
    "Job",
    "JobRun",
    "JobRunStatus",
    "LogHead",
    "LogLine",
    "Membership",
    "Project",
    "Release",
    "ReleaseStatus",
    "Role",
    "Route",
    "RouteSource",
    "Runtime",
    "RuntimeStatus",
    "Secret",
    "SecretScope",
    "SecretVersion",
    "Service",
    "ServiceSpecVersion",
    "ServiceType",
    "User",
    "Volume",
    "utcnow",
]
