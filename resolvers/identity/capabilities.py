"""What the caller may do, asked in advance.

A client (the web UI) hides or disables what would only be refused. It must ask the same
question the guard asks when the action is attempted — role and token scopes together — or a
button could promise what a scoped token cannot do; so every answer is ``Actor.can``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from resolvers.context import Actor
from resolvers.identity.rbac import Permission


@dataclass(frozen=True, slots=True)
class Capabilities:
    deploy: bool
    routes: bool
    observe: bool
    read_audit: bool
    write_project: bool
    write_environments: bool
    manage_roles: bool
    read_cost: bool


PERMISSIONS: Final[dict[str, Permission]] = {
    "deploy": Permission.DEPLOY,
    "routes": Permission.ROUTES,
    "observe": Permission.OBSERVE,
    "read_audit": Permission.AUDIT_READ,
    "write_project": Permission.PROJECT_WRITE,
    "write_environments": Permission.ENVIRONMENT_WRITE,
    "manage_roles": Permission.ROLES,
    "read_cost": Permission.COST_READ,
}


def capabilities(actor: Actor, project_id: str | None) -> Capabilities:
    """On ``project_id``, or on the account itself when it is None."""
    return Capabilities(
        **{name: actor.can(permission, project_id) for name, permission in PERMISSIONS.items()}
    )
