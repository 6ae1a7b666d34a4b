from enum import Enum


class AlertStatus(str, Enum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


class AuditOutcome(str, Enum):
    SUCCEEDED = "SUCCEEDED"
    DENIED = "DENIED"


class CanaryVerdict(str, Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"


class DeploymentKind(str, Enum):
    DEPLOY = "DEPLOY"
    ROLLBACK = "ROLLBACK"


class DeploymentPhase(str, Enum):
    QUEUED = "QUEUED"
    BUILDING = "BUILDING"
    DEPLOYING = "DEPLOYING"
    HEALTHY = "HEALTHY"
    FAILED = "FAILED"
    ROLLED_BACK = "ROLLED_BACK"
    SUPERSEDED = "SUPERSEDED"


class DeploymentStrategy(str, Enum):
    ROLLING = "ROLLING"
    BLUE_GREEN = "BLUE_GREEN"
    CANARY = "CANARY"


class JobRunStatus(str, Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class ReleaseStatus(str, Enum):
    PENDING = "PENDING"
    BUILDING = "BUILDING"
    READY = "READY"
    FAILED = "FAILED"


class Role(str, Enum):
    OWNER = "OWNER"
    ADMIN = "ADMIN"
    DEVELOPER = "DEVELOPER"
    READONLY = "READONLY"


class RouteSource(str, Enum):
    SPEC = "SPEC"
    API = "API"


class RuntimeStatus(str, Enum):
    PENDING = "PENDING"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    DEGRADED = "DEGRADED"
    CRASH_LOOP = "CRASH_LOOP"
    STOPPED = "STOPPED"


class SecretScope(str, Enum):
    PROJECT = "PROJECT"
    ENVIRONMENT = "ENVIRONMENT"
    SERVICE = "SERVICE"


class ServiceType(str, Enum):
    API = "API"
    WORKER = "WORKER"
    JOB = "JOB"
