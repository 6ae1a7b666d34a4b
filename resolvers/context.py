"""Who is asking, on what store: the one argument every resolver function takes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from resolvers.identity.rbac import Permission, allowed, granted_by_scopes, strongest
from store.db import Store
from store.hub import EventHub
from store.models import Role

NO_PROJECT_ROLES: Mapping[str, Role] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Actor:
    """An authenticated identity and everything needed to decide what it may do.

    ``account_role`` comes from an account-wide membership (or OIDC groups);
    ``project_roles`` from project memberships. A personal access token narrows both: to its
    ``scopes`` and, when it has one, to its project."""

    id: str
    display: str
    account_id: str
    account_role: Role | None = None
    project_roles: Mapping[str, Role] = field(default_factory=lambda: NO_PROJECT_ROLES)
    scopes: frozenset[str] | None = None  # None: not a token, the role decides alone
    token_id: str | None = None
    token_project_id: str | None = None
    expires_at: datetime | None = None
    via: str = "token"  # "token" (PAT), "oidc", or "system"

    def role_on(self, project_id: str | None) -> Role | None:
        """The effective role on a project (None: the account itself)."""
        if project_id is None:
            return self.account_role
        if self.token_project_id is not None and project_id != self.token_project_id:
            return None
        return strongest(self.account_role, self.project_roles.get(project_id))

    def can(self, permission: Permission, project_id: str | None = None) -> bool:
        if project_id is None and self.token_project_id is not None:
            # A project token acts inside its project only.
            return False
        if not allowed(self.role_on(project_id), permission):
            return False
        return self.scopes is None or permission in granted_by_scopes(self.scopes)

    def sees_project(self, project_id: str) -> bool:
        return self.can(Permission.VIEW, project_id)


@dataclass(slots=True)
class Context:
    store: Store
    hub: EventHub
    actor: Actor
    request_id: str | None = None
    source_address: str | None = None
    # Per-request scratch space for the GraphQL layer (its DataLoaders live here).
    extras: dict[str, object] = field(default_factory=dict)
