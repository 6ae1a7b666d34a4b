"""Roles and permissions, as the product spec's Appendix C fixes them.

``MATRIX`` is the appendix as data; tests are generated from it, cell by cell. Every API
operation names the one permission it needs (``graph.permissions`` maps them), and a
token's scopes can only narrow what its owner's role allows.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from store.models import Role


class Permission(StrEnum):
    VIEW = "view"  # read projects, environments, services, releases… (every member)
    PROJECT_WRITE = "project:write"  # Create/Update Project
    ENVIRONMENT_WRITE = "environment:write"  # Create/Update Env
    DEPLOY = "deploy"  # Deploy/Scale/Rollback (and applying or deleting a service)
    SECRETS_SERVICE = "secrets:service"  # Secrets: Read/Write (service scope)
    SECRETS_SCOPE = "secrets:scope"  # Secrets: Project/Env scope
    ROUTES = "routes"  # Manage Routes/Domains
    OBSERVE = "observe"  # View Logs/Metrics/Traces (and the activity stream)
    COST_READ = "cost:read"  # Cost Reports
    BUDGETS = "budgets"  # Manage Budgets
    ROLES = "roles"  # Manage Roles (and other people's tokens)
    AUDIT_READ = "audit:read"  # not in Appendix C: the audit trail is for Owners and Admins


_ALL: Final = frozenset(Role)
_ADMINS: Final = frozenset({Role.OWNER, Role.ADMIN})
_DEVELOPERS: Final = frozenset({Role.OWNER, Role.ADMIN, Role.DEVELOPER})

MATRIX: Final[dict[Permission, frozenset[Role]]] = {
    Permission.VIEW: _ALL,
    Permission.PROJECT_WRITE: _ADMINS,
    Permission.ENVIRONMENT_WRITE: _ADMINS,
    Permission.DEPLOY: _DEVELOPERS,
    Permission.SECRETS_SERVICE: _DEVELOPERS,
    Permission.SECRETS_SCOPE: _ADMINS,
    Permission.ROUTES: _DEVELOPERS,
    Permission.OBSERVE: _ALL,
    Permission.COST_READ: _ALL,
    Permission.BUDGETS: _ADMINS,
    Permission.ROLES: _ADMINS,
    Permission.AUDIT_READ: _ADMINS,
}

# Strongest first: a member's effective role on a project is the strongest of their
# account-wide and project roles.
ROLE_ORDER: Final = (Role.OWNER, Role.ADMIN, Role.DEVELOPER, Role.READONLY)

# What each personal-access-token scope grants. VIEW needs no scope: a token that may do
# anything may also see what it acts on.
SCOPES: Final[dict[str, frozenset[Permission]]] = {
    "projects:write": frozenset({Permission.PROJECT_WRITE}),
    "environments:write": frozenset({Permission.ENVIRONMENT_WRITE}),
    "deploy:write": frozenset({Permission.DEPLOY}),
    "routes:write": frozenset({Permission.ROUTES}),
    "secrets:read": frozenset({Permission.SECRETS_SERVICE, Permission.SECRETS_SCOPE}),
    "secrets:write": frozenset({Permission.SECRETS_SERVICE, Permission.SECRETS_SCOPE}),
    "logs:read": frozenset({Permission.OBSERVE}),
    "metrics:read": frozenset({Permission.OBSERVE}),
    "cost:read": frozenset({Permission.COST_READ}),
    "budgets:write": frozenset({Permission.BUDGETS}),
    "roles:write": frozenset({Permission.ROLES}),
    "audit:read": frozenset({Permission.AUDIT_READ}),
    "*": frozenset(Permission),
}


def strongest(*roles: Role | None) -> Role | None:
    present = [r for r in roles if r is not None]
    if not present:
        return None
    return min(present, key=ROLE_ORDER.index)


def at_least(role: Role, floor: Role) -> bool:
    return ROLE_ORDER.index(role) <= ROLE_ORDER.index(floor)


def allowed(role: Role | None, permission: Permission) -> bool:
    return role is not None and role in MATRIX[permission]


def weakest_role_for(permission: Permission) -> Role:
    return max(MATRIX[permission], key=ROLE_ORDER.index)


def granted_by_scopes(scopes: frozenset[str]) -> frozenset[Permission]:
    granted: set[Permission] = {Permission.VIEW}
    for scope in scopes:
        granted |= SCOPES.get(scope, frozenset())
    return frozenset(granted)
