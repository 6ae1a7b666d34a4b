"""Which permission each root field of the API needs (Appendix C; see
resolvers.identity.rbac). The resolvers enforce it — this table says it in one place, for
people reading the API and for the tests that check every cell of the matrix against every
field."""

from __future__ import annotations

from typing import Final

from resolvers.identity.rbac import Permission

ROOT_FIELDS: Final[dict[str, Permission]] = {
    "Query.viewer": Permission.VIEW,
    "Query.node": Permission.VIEW,
    "Query.nodes": Permission.VIEW,
    "Query.projects": Permission.VIEW,
    "Query.project": Permission.VIEW,
    "Query.service": Permission.VIEW,
    "Query.projectEvents": Permission.OBSERVE,
    "Query.logs": Permission.OBSERVE,
    "Query.deployment": Permission.VIEW,
    "Query.runtime": Permission.VIEW,
    "Query.deliveryStats": Permission.VIEW,  # counts only the projects you may see
    "Query.metrics": Permission.OBSERVE,
    "Query.auditEvents": Permission.AUDIT_READ,
    "Query.verifyAudit": Permission.AUDIT_READ,
    "Mutation.createProject": Permission.PROJECT_WRITE,
    "Mutation.updateProject": Permission.PROJECT_WRITE,
    "Mutation.createEnvironment": Permission.ENVIRONMENT_WRITE,
    "Mutation.updateEnvironment": Permission.ENVIRONMENT_WRITE,  # + BUDGETS for a budget
    "Mutation.applyService": Permission.DEPLOY,
    "Mutation.scaleService": Permission.DEPLOY,
    "Mutation.deleteService": Permission.DEPLOY,
    "Mutation.createRelease": Permission.DEPLOY,
    "Mutation.deploy": Permission.DEPLOY,
    "Mutation.rollback": Permission.DEPLOY,
    "Mutation.promoteDeployment": Permission.DEPLOY,
    "Mutation.pauseDeployment": Permission.DEPLOY,
    "Mutation.abortDeployment": Permission.DEPLOY,
    "Mutation.addRoute": Permission.ROUTES,
    "Mutation.removeRoute": Permission.ROUTES,
    "Mutation.createToken": Permission.VIEW,  # your own, never stronger than you
    "Mutation.revokeToken": Permission.VIEW,  # your own; ROLES for anyone else's
    "Mutation.inviteMember": Permission.ROLES,
    "Mutation.changeRole": Permission.ROLES,
    "Mutation.removeMember": Permission.ROLES,
    "Subscription.events": Permission.OBSERVE,
    "Subscription.logs": Permission.OBSERVE,
    "Subscription.logBatches": Permission.OBSERVE,
    "Subscription.deploymentStatus": Permission.VIEW,
    "Subscription.canaryMetrics": Permission.VIEW,
}

# Nested fields that need more than seeing their parent.
NESTED_FIELDS: Final[dict[str, Permission]] = {
    "Account.users": Permission.VIEW,  # account members only
    "Account.memberships": Permission.VIEW,  # account members only
    "Account.auditEvents": Permission.AUDIT_READ,
    "Project.auditEvents": Permission.AUDIT_READ,
    "Project.secrets": Permission.SECRETS_SCOPE,
    "Environment.secrets": Permission.SECRETS_SCOPE,
    "Environment.costSamples": Permission.COST_READ,
    "Service.secrets": Permission.SECRETS_SERVICE,
    "Service.costSamples": Permission.COST_READ,
    "User.apiTokens": Permission.ROLES,  # unless it is you
}
