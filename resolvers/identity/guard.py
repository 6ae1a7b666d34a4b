"""Checking a permission, with a message that says exactly what is missing."""

from __future__ import annotations

from resolvers.context import Actor, Context
from resolvers.errors import Forbidden
from resolvers.identity.rbac import MATRIX, SCOPES, Permission, weakest_role_for
from store.models import Project

ACTIONS: dict[Permission, str] = {
    Permission.VIEW: "seeing this",
    Permission.PROJECT_WRITE: "creating or changing projects",
    Permission.ENVIRONMENT_WRITE: "creating or changing environments",
    Permission.DEPLOY: "deploying, scaling, rolling back or changing services",
    Permission.SECRETS_SERVICE: "reading or writing service secrets",
    Permission.SECRETS_SCOPE: "reading or writing project and environment secrets",
    Permission.ROUTES: "managing routes and domains",
    Permission.OBSERVE: "viewing logs, metrics and activity",
    Permission.COST_READ: "viewing cost reports",
    Permission.BUDGETS: "managing budgets",
    Permission.ROLES: "managing roles and other people's tokens",
    Permission.AUDIT_READ: "reading the audit trail",
}


def denial(actor: Actor, permission: Permission, project_id: str | None, where: str) -> str:
    """Why ``actor`` may not use ``permission`` here, in words a person can act on."""
    action = ACTIONS[permission]
    if actor.token_project_id is not None and project_id != actor.token_project_id:
        return f"Forbidden: this token is limited to one project and cannot act on {where}."
    role = actor.role_on(project_id)
    if role is None or role not in MATRIX[permission]:
        needed = weakest_role_for(permission).value
        have = f"you are {role.value}" if role is not None else "you have no role there"
        return f"Forbidden: {action} needs the {needed} role on {where}; {have}."
    scopes = sorted(s for s, granted in SCOPES.items() if permission in granted and s != "*")
    return (
        f"Forbidden: this token's scopes do not allow {action}; create a token with "
        f"{' or '.join(scopes)}."
    )


def require(ctx: Context, permission: Permission, project: Project | None = None) -> None:
    """Raise Forbidden unless the caller may use ``permission`` on ``project`` (None: on
    the account)."""
    if project is None:
        require_id(ctx, permission, None)
    elif not ctx.actor.can(permission, project.id):
        where = f"project {project.slug!r}"
        raise Forbidden(
            denial(ctx.actor, permission, project.id, where), permission.value, project.id
        )


def require_id(ctx: Context, permission: Permission, project_id: str | None) -> None:
    """``require`` when only the project's ID is at hand (nested GraphQL fields)."""
    if not ctx.actor.can(permission, project_id):
        where = f"project {project_id}" if project_id is not None else "the account"
        raise Forbidden(
            denial(ctx.actor, permission, project_id, where), permission.value, project_id
        )
