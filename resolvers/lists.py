"""Every paginated list of the data model, in one place: parent, order and filter."""

from __future__ import annotations

from resolvers.pagination import ListSpec
from store.models import (
    ApiToken,
    AuditEvent,
    CostSample,
    Deployment,
    Environment,
    Job,
    JobRun,
    Membership,
    Project,
    Release,
    Route,
    Runtime,
    Secret,
    SecretVersion,
    Service,
    ServiceSpecVersion,
    User,
    Volume,
)

PROJECTS_OF_ACCOUNT = ListSpec("projects", Project, Project.account_id, (Project.slug,))
USERS_OF_ACCOUNT = ListSpec("users", User, User.account_id, (User.id,))
MEMBERSHIPS_OF_ACCOUNT = ListSpec(
    "memberships", Membership, Membership.account_id, (Membership.id,)
)
MEMBERSHIPS_OF_PROJECT = ListSpec(
    "projectMemberships", Membership, Membership.project_id, (Membership.id,)
)
TOKENS_OF_USER = ListSpec("apiTokens", ApiToken, ApiToken.user_id, (ApiToken.id,), descending=True)
AUDIT_OF_ACCOUNT = ListSpec(
    "auditEvents", AuditEvent, AuditEvent.account_id, (AuditEvent.id,), descending=True
)
AUDIT_OF_PROJECT = ListSpec(
    "projectAuditEvents", AuditEvent, AuditEvent.project_id, (AuditEvent.id,), descending=True
)
ENVIRONMENTS_OF_PROJECT = ListSpec(
    "environments", Environment, Environment.project_id, (Environment.id,)
)
SERVICES_OF_ENVIRONMENT = ListSpec(
    "services",
    Service,
    Service.environment_id,
    (Service.name, Service.id),
    where=(Service.deleted_at.is_(None),),
)
SPEC_VERSIONS_OF_SERVICE = ListSpec(
    "specVersions",
    ServiceSpecVersion,
    ServiceSpecVersion.service_id,
    (ServiceSpecVersion.version,),
    descending=True,
)
RELEASES_OF_SERVICE = ListSpec(
    "releases", Release, Release.service_id, (Release.id,), descending=True
)
DEPLOYMENTS_OF_SERVICE = ListSpec(
    "deployments", Deployment, Deployment.service_id, (Deployment.id,), descending=True
)
RUNTIMES_OF_SERVICE = ListSpec(
    "runtimes", Runtime, Runtime.service_id, (Runtime.id,), descending=True
)
ROUTES_OF_SERVICE = ListSpec("routes", Route, Route.service_id, (Route.host, Route.path, Route.id))
ROUTES_OF_ENVIRONMENT = ListSpec(
    "environmentRoutes", Route, Route.environment_id, (Route.host, Route.path, Route.id)
)
VOLUMES_OF_ENVIRONMENT = ListSpec(
    "environmentVolumes", Volume, Volume.environment_id, (Volume.name, Volume.id)
)
VOLUMES_OF_SERVICE = ListSpec("volumes", Volume, Volume.service_id, (Volume.name, Volume.id))
JOBS_OF_ENVIRONMENT = ListSpec("environmentJobs", Job, Job.environment_id, (Job.name, Job.id))
JOBS_OF_SERVICE = ListSpec("jobs", Job, Job.service_id, (Job.name, Job.id))
RUNS_OF_JOB = ListSpec("runs", JobRun, JobRun.job_id, (JobRun.id,), descending=True)
SECRETS_OF_SCOPE = ListSpec("secrets", Secret, Secret.scope_ref, (Secret.name, Secret.id))
VERSIONS_OF_SECRET = ListSpec(
    "secretVersions",
    SecretVersion,
    SecretVersion.secret_id,
    (SecretVersion.version,),
    descending=True,
)
COSTS_OF_SERVICE = ListSpec(
    "costSamples", CostSample, CostSample.service_id, (CostSample.id,), descending=True
)
COSTS_OF_ENVIRONMENT = ListSpec(
    "environmentCostSamples",
    CostSample,
    CostSample.environment_id,
    (CostSample.id,),
    descending=True,
)
