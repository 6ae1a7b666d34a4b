"""What the caller may do (``Viewer.can``, ``Project.viewerCan``), so a client can hide or
disable what would be refused rather than let people find out by trying."""

from __future__ import annotations

import strawberry

from resolvers.context import Actor
from resolvers.identity import capabilities as caps

_WHO = "the caller (their role and their token's scopes together) may"


@strawberry.type(
    description="What the caller may do here: their role and their token's scopes together, "
    "exactly as the API will decide when they try."
)
class Capabilities:
    deploy: bool = strawberry.field(
        description=f"Whether {_WHO} apply, deploy, scale, roll back or delete services."
    )
    routes: bool = strawberry.field(description=f"Whether {_WHO} add and remove routes.")
    observe: bool = strawberry.field(
        description=f"Whether {_WHO} read logs, metrics and the activity stream."
    )
    read_audit: bool = strawberry.field(description=f"Whether {_WHO} read the audit trail.")
    write_project: bool = strawberry.field(
        description=f"Whether {_WHO} create projects and change them."
    )
    write_environments: bool = strawberry.field(
        description=f"Whether {_WHO} create environments and change them."
    )
    manage_roles: bool = strawberry.field(
        description=f"Whether {_WHO} invite members, change or remove their roles, and "
        "revoke other people's tokens."
    )
    read_cost: bool = strawberry.field(description=f"Whether {_WHO} read cost reports.")

    @classmethod
    def of(cls, actor: Actor, project_id: str | None) -> Capabilities:
        found = caps.capabilities(actor, project_id)
        return cls(
            deploy=found.deploy,
            routes=found.routes,
            observe=found.observe,
            read_audit=found.read_audit,
            write_project=found.write_project,
            write_environments=found.write_environments,
            manage_roles=found.manage_roles,
            read_cost=found.read_cost,
        )
