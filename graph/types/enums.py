"""The store's vocabularies registered as GraphQL enums (names upper-case, values as
stored). strawberry.enum marks the store's own classes, so GraphQL types annotate fields with
``models.Role`` and the like directly; importing this module is what registers them."""

from __future__ import annotations

import strawberry

from store import models

Role = strawberry.enum(models.Role, description="What a member may do (product spec App. C).")
ServiceType = strawberry.enum(models.ServiceType)
ReleaseStatus = strawberry.enum(models.ReleaseStatus)
DeploymentStrategy = strawberry.enum(models.DeploymentStrategy)
DeploymentPhase = strawberry.enum(models.DeploymentPhase)
DeploymentKind = strawberry.enum(models.DeploymentKind)
RuntimeStatus = strawberry.enum(models.RuntimeStatus)
SecretScope = strawberry.enum(models.SecretScope)
JobRunStatus = strawberry.enum(models.JobRunStatus)
RouteSource = strawberry.enum(
    models.RouteSource, description="SPEC routes follow enclii.yaml; API routes come from addRoute."
)
AuditOutcome = strawberry.enum(models.AuditOutcome)
AlertStatus = strawberry.enum(models.AlertStatus)
