from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Optional, Union

from .abort_deployment import AbortDeployment
from .add_route import AddRoute
from .apply_service import ApplyService
from .base_client import GqlBaseClient
from .base_model import UNSET, UnsetType
from .canary_info import CanaryInfo
from .create_environment import CreateEnvironment
from .create_project import CreateProject
from .create_release import CreateRelease
from .create_token import CreateToken
from .delivery_stats import DeliveryStats
from .deploy import Deploy
from .deployment_info import DeploymentInfo
from .follow_canary import FollowCanary
from .follow_deployment import FollowDeployment
from .follow_logs import FollowLogs
from .input_types import (
    AbortDeploymentInput,
    AddRouteInput,
    ApplyServiceInput,
    CreateEnvironmentInput,
    CreateProjectInput,
    CreateReleaseInput,
    CreateTokenInput,
    DeployInput,
    PauseDeploymentInput,
    PromoteDeploymentInput,
    RemoveRouteInput,
    RollbackInput,
    ScaleServiceInput,
)
from .logs import Logs
from .pause_deployment import PauseDeployment
from .project_access import ProjectAccess
from .project_by_slug import ProjectBySlug
from .project_environment import ProjectEnvironment
from .promote_deployment import PromoteDeployment
from .release_state import ReleaseState
from .releases import Releases
from .remove_route import RemoveRoute
from .rollback import Rollback
from .routes import Routes
from .scale_service import ScaleService
from .service_by_name import ServiceByName
from .service_guardrails import ServiceGuardrails
from .services import Services
from .whoami import Whoami


def gql(q: str) -> str:
    return q


class EncliiClient(GqlBaseClient):
    async def whoami(self, **kwargs: Any) -> Whoami:
        query = gql("""
            query Whoami {
              viewer {
                user {
                  id
                  subject
                  displayName
                  email
                }
                account {
                  id
                  name
                }
                role
                can {
                  ...CapabilitiesView
                }
              }
            }

            fragment CapabilitiesView on Capabilities {
              deploy
              routes
              observe
              readAudit
              writeProject
              writeEnvironments
              manageRoles
              readCost
            }
            """)
        variables: dict[str, object] = {}
        response = await self.execute(
            query=query, operation_name="Whoami", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return Whoami.model_validate(data)

    async def project_access(self, slug: str, **kwargs: Any) -> ProjectAccess:
        query = gql("""
            query ProjectAccess($slug: String!) {
              project(slug: $slug) {
                id
                slug
                viewerRole
                viewerCan {
                  ...CapabilitiesView
                }
              }
            }

            fragment CapabilitiesView on Capabilities {
              deploy
              routes
              observe
              readAudit
              writeProject
              writeEnvironments
              manageRoles
              readCost
            }
            """)
        variables: dict[str, object] = {"slug": slug}
        response = await self.execute(
            query=query, operation_name="ProjectAccess", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return ProjectAccess.model_validate(data)

    async def create_token(self, input: CreateTokenInput, **kwargs: Any) -> CreateToken:
        query = gql("""
            mutation CreateToken($input: CreateTokenInput!) {
              createToken(input: $input) {
                __typename
                ... on CreateTokenSuccess {
                  secret
                  token {
                    id
                    name
                    displayPrefix
                    scopes
                    expiresAt
                    project {
                      slug
                    }
                  }
                }
                ...Problem
              }
            }

            fragment Problem on Error {
              message
              code
              path
            }
            """)
        variables: dict[str, object] = {"input": input}
        response = await self.execute(
            query=query, operation_name="CreateToken", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return CreateToken.model_validate(data)

    async def create_release(
        self, input: CreateReleaseInput, **kwargs: Any
    ) -> CreateRelease:
        query = gql("""
            mutation CreateRelease($input: CreateReleaseInput!) {
              createRelease(input: $input) {
                __typename
                ... on CreateReleaseSuccess {
                  release {
                    id
                    status
                  }
                }
                ...Problem
              }
            }

            fragment Problem on Error {
              message
              code
              path
            }
            """)
        variables: dict[str, object] = {"input": input}
        response = await self.execute(
            query=query, operation_name="CreateRelease", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return CreateRelease.model_validate(data)

    async def release_state(self, id: str, **kwargs: Any) -> ReleaseState:
        query = gql("""
            query ReleaseState($id: ID!) {
              node(id: $id) {
                __typename
                ... on Release {
                  id
                  status
                  statusReason
                }
              }
            }
            """)
        variables: dict[str, object] = {"id": id}
        response = await self.execute(
            query=query, operation_name="ReleaseState", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return ReleaseState.model_validate(data)

    async def rollback(self, input: RollbackInput, **kwargs: Any) -> Rollback:
        query = gql("""
            mutation Rollback($input: RollbackInput!) {
              rollback(input: $input) {
                __typename
                ... on RollbackSuccess {
                  deployment {
                    ...DeploymentView
                  }
                }
                ...Problem
              }
            }

            fragment DeploymentView on Deployment {
              id
              kind
              strategy
              phase
              reason
              createdAt
              startedAt
              finishedAt
              conditions {
                type
                status
                reason
                message
              }
              fromRelease {
                id
              }
              toRelease {
                id
                status
              }
              service {
                id
                name
                environment {
                  name
                }
                project {
                  slug
                }
              }
            }

            fragment Problem on Error {
              message
              code
              path
            }
            """)
        variables: dict[str, object] = {"input": input}
        response = await self.execute(
            query=query, operation_name="Rollback", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return Rollback.model_validate(data)

    async def deployment_info(self, id: str, **kwargs: Any) -> DeploymentInfo:
        query = gql("""
            query DeploymentInfo($id: ID!) {
              deployment(id: $id) {
                ...DeploymentView
              }
            }

            fragment DeploymentView on Deployment {
              id
              kind
              strategy
              phase
              reason
              createdAt
              startedAt
              finishedAt
              conditions {
                type
                status
                reason
                message
              }
              fromRelease {
                id
              }
              toRelease {
                id
                status
              }
              service {
                id
                name
                environment {
                  name
                }
                project {
                  slug
                }
              }
            }
            """)
        variables: dict[str, object] = {"id": id}
        response = await self.execute(
            query=query, operation_name="DeploymentInfo", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return DeploymentInfo.model_validate(data)

    async def follow_deployment(
        self, id: str, **kwargs: Any
    ) -> AsyncIterator[FollowDeployment]:
        query = gql("""
            subscription FollowDeployment($id: ID!) {
              deploymentStatus(deploymentId: $id) {
                sequence
                deployment {
                  ...DeploymentView
                }
              }
            }

            fragment DeploymentView on Deployment {
              id
              kind
              strategy
              phase
              reason
              createdAt
              startedAt
              finishedAt
              conditions {
                type
                status
                reason
                message
              }
              fromRelease {
                id
              }
              toRelease {
                id
                status
              }
              service {
                id
                name
                environment {
                  name
                }
                project {
                  slug
                }
              }
            }
            """)
        variables: dict[str, object] = {"id": id}
        async for data in self.execute_ws(
            query=query,
            operation_name="FollowDeployment",
            variables=variables,
            **kwargs,
        ):
            yield FollowDeployment.model_validate(data)

    async def deploy(self, input: DeployInput, **kwargs: Any) -> Deploy:
        query = gql("""
            mutation Deploy($input: DeployInput!) {
              deploy(input: $input) {
                __typename
                ... on DeploySuccess {
                  deployment {
                    ...DeploymentView
                  }
                }
                ... on FrozenError {
                  windowDays
                  budgetSpent
                  frozenSince
                  objectives {
                    name
                    objectivePercent
                    bad
                    allowed
                    budgetSpent
                  }
                }
                ...Problem
              }
            }

            fragment DeploymentView on Deployment {
              id
              kind
              strategy
              phase
              reason
              createdAt
              startedAt
              finishedAt
              conditions {
                type
                status
                reason
                message
              }
              fromRelease {
                id
              }
              toRelease {
                id
                status
              }
              service {
                id
                name
                environment {
                  name
                }
                project {
                  slug
                }
              }
            }

            fragment Problem on Error {
              message
              code
              path
            }
            """)
        variables: dict[str, object] = {"input": input}
        response = await self.execute(
            query=query, operation_name="Deploy", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return Deploy.model_validate(data)

    async def promote_deployment(
        self, input: PromoteDeploymentInput, **kwargs: Any
    ) -> PromoteDeployment:
        query = gql("""
            mutation PromoteDeployment($input: PromoteDeploymentInput!) {
              promoteDeployment(input: $input) {
                __typename
                ... on DeploymentOverrideSuccess {
                  deployment {
                    ...DeploymentView
                  }
                }
                ...Problem
              }
            }

            fragment DeploymentView on Deployment {
              id
              kind
              strategy
              phase
              reason
              createdAt
              startedAt
              finishedAt
              conditions {
                type
                status
                reason
                message
              }
              fromRelease {
                id
              }
              toRelease {
                id
                status
              }
              service {
                id
                name
                environment {
                  name
                }
                project {
                  slug
                }
              }
            }

            fragment Problem on Error {
              message
              code
              path
            }
            """)
        variables: dict[str, object] = {"input": input}
        response = await self.execute(
            query=query,
            operation_name="PromoteDeployment",
            variables=variables,
            **kwargs,
        )
        data = self.get_data(response)
        return PromoteDeployment.model_validate(data)

    async def pause_deployment(
        self, input: PauseDeploymentInput, **kwargs: Any
    ) -> PauseDeployment:
        query = gql("""
            mutation PauseDeployment($input: PauseDeploymentInput!) {
              pauseDeployment(input: $input) {
                __typename
                ... on DeploymentOverrideSuccess {
                  deployment {
                    ...DeploymentView
                  }
                }
                ...Problem
              }
            }

            fragment DeploymentView on Deployment {
              id
              kind
              strategy
              phase
              reason
              createdAt
              startedAt
              finishedAt
              conditions {
                type
                status
                reason
                message
              }
              fromRelease {
                id
              }
              toRelease {
                id
                status
              }
              service {
                id
                name
                environment {
                  name
                }
                project {
                  slug
                }
              }
            }

            fragment Problem on Error {
              message
              code
              path
            }
            """)
        variables: dict[str, object] = {"input": input}
        response = await self.execute(
            query=query, operation_name="PauseDeployment", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return PauseDeployment.model_validate(data)

    async def abort_deployment(
        self, input: AbortDeploymentInput, **kwargs: Any
    ) -> AbortDeployment:
        query = gql("""
            mutation AbortDeployment($input: AbortDeploymentInput!) {
              abortDeployment(input: $input) {
                __typename
                ... on DeploymentOverrideSuccess {
                  deployment {
                    ...DeploymentView
                  }
                }
                ...Problem
              }
            }

            fragment DeploymentView on Deployment {
              id
              kind
              strategy
              phase
              reason
              createdAt
              startedAt
              finishedAt
              conditions {
                type
                status
                reason
                message
              }
              fromRelease {
                id
              }
              toRelease {
                id
                status
              }
              service {
                id
                name
                environment {
                  name
                }
                project {
                  slug
                }
              }
            }

            fragment Problem on Error {
              message
              code
              path
            }
            """)
        variables: dict[str, object] = {"input": input}
        response = await self.execute(
            query=query, operation_name="AbortDeployment", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return AbortDeployment.model_validate(data)

    async def canary_info(self, id: str, **kwargs: Any) -> CanaryInfo:
        query = gql("""
            query CanaryInfo($id: ID!) {
              deployment(id: $id) {
                id
                phase
                reason
                canary {
                  step
                  weight
                  checks
                  pausedBy
                  steps {
                    setWeight
                    pauseSeconds
                    pauseUntilPromoted
                    analysis
                  }
                  latest {
                    ...CanarySampleView
                  }
                  decision {
                    reason
                    automated
                    sample {
                      ...CanarySampleView
                    }
                  }
                }
              }
            }

            fragment CanarySampleView on CanarySample {
              sequence
              at
              weight
              step
              verdict
              reason
              canary {
                requests
                errors
                errorRate
                p95Ms
              }
              stable {
                requests
                errors
                errorRate
                p95Ms
              }
            }
            """)
        variables: dict[str, object] = {"id": id}
        response = await self.execute(
            query=query, operation_name="CanaryInfo", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return CanaryInfo.model_validate(data)

    async def follow_canary(
        self, id: str, after: Union[Optional[int], UnsetType] = UNSET, **kwargs: Any
    ) -> AsyncIterator[FollowCanary]:
        query = gql("""
            subscription FollowCanary($id: ID!, $after: Int) {
              canaryMetrics(deploymentId: $id, after: $after) {
                ...CanarySampleView
              }
            }

            fragment CanarySampleView on CanarySample {
              sequence
              at
              weight
              step
              verdict
              reason
              canary {
                requests
                errors
                errorRate
                p95Ms
              }
              stable {
                requests
                errors
                errorRate
                p95Ms
              }
            }
            """)
        variables: dict[str, object] = {"id": id, "after": after}
        async for data in self.execute_ws(
            query=query, operation_name="FollowCanary", variables=variables, **kwargs
        ):
            yield FollowCanary.model_validate(data)

    async def logs(
        self,
        service_id: str,
        limit: int,
        after: Union[Optional[int], UnsetType] = UNSET,
        since: Union[Optional[datetime], UnsetType] = UNSET,
        grep: Union[Optional[str], UnsetType] = UNSET,
        release_id: Union[Optional[str], UnsetType] = UNSET,
        **kwargs: Any,
    ) -> Logs:
        query = gql("""
            query Logs($serviceId: ID!, $limit: Int!, $after: Int, $since: DateTime, $grep: String, $releaseId: ID) {
              logs(
                serviceId: $serviceId
                limit: $limit
                after: $after
                since: $since
                grep: $grep
                releaseId: $releaseId
              ) {
                hasMore
                cursor
                lines {
                  ...LogLineView
                }
              }
            }

            fragment LogLineView on LogLine {
              sequence
              ts
              level
              message
              source
              stream
              releaseId
              fields
            }
            """)
        variables: dict[str, object] = {
            "serviceId": service_id,
            "limit": limit,
            "after": after,
            "since": since,
            "grep": grep,
            "releaseId": release_id,
        }
        response = await self.execute(
            query=query, operation_name="Logs", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return Logs.model_validate(data)

    async def follow_logs(
        self,
        service_id: str,
        grep: Union[Optional[str], UnsetType] = UNSET,
        after: Union[Optional[int], UnsetType] = UNSET,
        **kwargs: Any,
    ) -> AsyncIterator[FollowLogs]:
        query = gql("""
            subscription FollowLogs($serviceId: ID!, $grep: String, $after: Int) {
              logBatches(serviceId: $serviceId, grep: $grep, after: $after) {
                lines {
                  ...LogLineView
                }
              }
            }

            fragment LogLineView on LogLine {
              sequence
              ts
              level
              message
              source
              stream
              releaseId
              fields
            }
            """)
        variables: dict[str, object] = {
            "serviceId": service_id,
            "grep": grep,
            "after": after,
        }
        async for data in self.execute_ws(
            query=query, operation_name="FollowLogs", variables=variables, **kwargs
        ):
            yield FollowLogs.model_validate(data)

    async def project_environment(
        self, project: str, environment: str, **kwargs: Any
    ) -> ProjectEnvironment:
        query = gql("""
            query ProjectEnvironment($project: String!, $environment: String!) {
              project(slug: $project) {
                id
                slug
                environment(name: $environment) {
                  id
                  name
                  isPreview
                }
              }
            }
            """)
        variables: dict[str, object] = {"project": project, "environment": environment}
        response = await self.execute(
            query=query,
            operation_name="ProjectEnvironment",
            variables=variables,
            **kwargs,
        )
        data = self.get_data(response)
        return ProjectEnvironment.model_validate(data)

    async def create_project(
        self, input: CreateProjectInput, **kwargs: Any
    ) -> CreateProject:
        query = gql("""
            mutation CreateProject($input: CreateProjectInput!) {
              createProject(input: $input) {
                __typename
                ... on CreateProjectSuccess {
                  project {
                    id
                    slug
                  }
                }
                ...Problem
              }
            }

            fragment Problem on Error {
              message
              code
              path
            }
            """)
        variables: dict[str, object] = {"input": input}
        response = await self.execute(
            query=query, operation_name="CreateProject", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return CreateProject.model_validate(data)

    async def create_environment(
        self, input: CreateEnvironmentInput, **kwargs: Any
    ) -> CreateEnvironment:
        query = gql("""
            mutation CreateEnvironment($input: CreateEnvironmentInput!) {
              createEnvironment(input: $input) {
                __typename
                ... on CreateEnvironmentSuccess {
                  environment {
                    id
                    name
                    isPreview
                  }
                }
                ...Problem
              }
            }

            fragment Problem on Error {
              message
              code
              path
            }
            """)
        variables: dict[str, object] = {"input": input}
        response = await self.execute(
            query=query,
            operation_name="CreateEnvironment",
            variables=variables,
            **kwargs,
        )
        data = self.get_data(response)
        return CreateEnvironment.model_validate(data)

    async def project_by_slug(self, slug: str, **kwargs: Any) -> ProjectBySlug:
        query = gql("""
            query ProjectBySlug($slug: String!) {
              project(slug: $slug) {
                id
                slug
                name
              }
            }
            """)
        variables: dict[str, object] = {"slug": slug}
        response = await self.execute(
            query=query, operation_name="ProjectBySlug", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return ProjectBySlug.model_validate(data)

    async def routes(
        self, project: str, environment: str, name: str, **kwargs: Any
    ) -> Routes:
        query = gql("""
            query Routes($project: String!, $environment: String!, $name: String!) {
              service(project: $project, environment: $environment, name: $name) {
                id
                routes(first: 100) {
                  nodes {
                    id
                    host
                    path
                    source
                    createdAt
                  }
                }
              }
            }
            """)
        variables: dict[str, object] = {
            "project": project,
            "environment": environment,
            "name": name,
        }
        response = await self.execute(
            query=query, operation_name="Routes", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return Routes.model_validate(data)

    async def add_route(self, input: AddRouteInput, **kwargs: Any) -> AddRoute:
        query = gql("""
            mutation AddRoute($input: AddRouteInput!) {
              addRoute(input: $input) {
                __typename
                ... on AddRouteSuccess {
                  route {
                    id
                    host
                    path
                    source
                  }
                }
                ...Problem
              }
            }

            fragment Problem on Error {
              message
              code
              path
            }
            """)
        variables: dict[str, object] = {"input": input}
        response = await self.execute(
            query=query, operation_name="AddRoute", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return AddRoute.model_validate(data)

    async def remove_route(self, input: RemoveRouteInput, **kwargs: Any) -> RemoveRoute:
        query = gql("""
            mutation RemoveRoute($input: RemoveRouteInput!) {
              removeRoute(input: $input) {
                __typename
                ... on RemoveRouteSuccess {
                  removedRouteId
                }
                ...Problem
              }
            }

            fragment Problem on Error {
              message
              code
              path
            }
            """)
        variables: dict[str, object] = {"input": input}
        response = await self.execute(
            query=query, operation_name="RemoveRoute", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return RemoveRoute.model_validate(data)

    async def service_by_name(
        self, project: str, environment: str, name: str, **kwargs: Any
    ) -> ServiceByName:
        query = gql("""
            query ServiceByName($project: String!, $environment: String!, $name: String!) {
              service(project: $project, environment: $environment, name: $name) {
                id
                name
                type
              }
            }
            """)
        variables: dict[str, object] = {
            "project": project,
            "environment": environment,
            "name": name,
        }
        response = await self.execute(
            query=query, operation_name="ServiceByName", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return ServiceByName.model_validate(data)

    async def apply_service(
        self, input: ApplyServiceInput, **kwargs: Any
    ) -> ApplyService:
        query = gql("""
            mutation ApplyService($input: ApplyServiceInput!) {
              applyService(input: $input) {
                __typename
                ... on ApplyServiceSuccess {
                  created
                  unchanged
                  service {
                    id
                    name
                  }
                  version {
                    version
                  }
                  changes {
                    path
                    kind
                    before
                    after
                  }
                }
                ...Problem
              }
            }

            fragment Problem on Error {
              message
              code
              path
            }
            """)
        variables: dict[str, object] = {"input": input}
        response = await self.execute(
            query=query, operation_name="ApplyService", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return ApplyService.model_validate(data)

    async def releases(
        self, project: str, environment: str, name: str, first: int, **kwargs: Any
    ) -> Releases:
        query = gql("""
            query Releases($project: String!, $environment: String!, $name: String!, $first: Int!) {
              service(project: $project, environment: $environment, name: $name) {
                id
                runtime {
                  release {
                    id
                  }
                }
                releases(first: $first) {
                  totalCount
                  nodes {
                    id
                    status
                    statusReason
                    gitSha
                    digest
                    createdAt
                    createdBy
                    createdByUser {
                      displayName
                    }
                  }
                }
              }
            }
            """)
        variables: dict[str, object] = {
            "project": project,
            "environment": environment,
            "name": name,
            "first": first,
        }
        response = await self.execute(
            query=query, operation_name="Releases", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return Releases.model_validate(data)

    async def services(
        self,
        project: str,
        environment: str,
        window: int,
        after: Union[Optional[str], UnsetType] = UNSET,
        **kwargs: Any,
    ) -> Services:
        query = gql("""
            query Services($project: String!, $environment: String!, $window: Int!, $after: String) {
              project(slug: $project) {
                environment(name: $environment) {
                  services(first: 100, after: $after) {
                    totalCount
                    pageInfo {
                      hasNextPage
                      endCursor
                    }
                    nodes {
                      id
                      name
                      type
                      runtime {
                        status
                        replicasDesired
                        replicasReady
                        release {
                          id
                        }
                      }
                      traffic(window: $window) {
                        requests
                        requestsPerSecond
                        errorRate
                        p95Ms
                      }
                    }
                  }
                }
              }
            }
            """)
        variables: dict[str, object] = {
            "project": project,
            "environment": environment,
            "window": window,
            "after": after,
        }
        response = await self.execute(
            query=query, operation_name="Services", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return Services.model_validate(data)

    async def scale_service(
        self, input: ScaleServiceInput, **kwargs: Any
    ) -> ScaleService:
        query = gql("""
            mutation ScaleService($input: ScaleServiceInput!) {
              scaleService(input: $input) {
                __typename
                ... on ApplyServiceSuccess {
                  unchanged
                  service {
                    id
                    name
                  }
                  version {
                    version
                    spec
                  }
                }
                ...Problem
              }
            }

            fragment Problem on Error {
              message
              code
              path
            }
            """)
        variables: dict[str, object] = {"input": input}
        response = await self.execute(
            query=query, operation_name="ScaleService", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return ScaleService.model_validate(data)

    async def service_guardrails(
        self, project: str, environment: str, name: str, first: int, **kwargs: Any
    ) -> ServiceGuardrails:
        query = gql("""
            query ServiceGuardrails($project: String!, $environment: String!, $name: String!, $first: Int!) {
              service(project: $project, environment: $environment, name: $name) {
                id
                name
                slo {
                  computedAt
                  windowDays
                  requests
                  budgetSpent
                  burnRate
                  burning
                  frozen
                  frozenAt
                  reason
                  objectives {
                    name
                    objectivePercent
                    thresholdMs
                    bad
                    allowed
                    budgetSpent
                    burnRate
                  }
                }
                alertDeliveries(first: $first) {
                  id
                  policy
                  event
                  destination
                  text
                  status
                  attempts
                  lastError
                  createdAt
                  deliveredAt
                }
              }
            }
            """)
        variables: dict[str, object] = {
            "project": project,
            "environment": environment,
            "name": name,
            "first": first,
        }
        response = await self.execute(
            query=query,
            operation_name="ServiceGuardrails",
            variables=variables,
            **kwargs,
        )
        data = self.get_data(response)
        return ServiceGuardrails.model_validate(data)

    async def delivery_stats(
        self,
        days: int,
        project_id: Union[Optional[str], UnsetType] = UNSET,
        **kwargs: Any,
    ) -> DeliveryStats:
        query = gql("""
            query DeliveryStats($projectId: ID, $days: Int!) {
              deliveryStats(projectId: $projectId, days: $days) {
                days {
                  day
                  deploys
                  succeeded
                  failed
                  rolledBack
                }
                deploys
                succeeded
                failed
                rolledBack
                successRate
                recentRollbacks {
                  ...DeploymentView
                }
              }
            }

            fragment DeploymentView on Deployment {
              id
              kind
              strategy
              phase
              reason
              createdAt
              startedAt
              finishedAt
              conditions {
                type
                status
                reason
                message
              }
              fromRelease {
                id
              }
              toRelease {
                id
                status
              }
              service {
                id
                name
                environment {
                  name
                }
                project {
                  slug
                }
              }
            }
            """)
        variables: dict[str, object] = {"projectId": project_id, "days": days}
        response = await self.execute(
            query=query, operation_name="DeliveryStats", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return DeliveryStats.model_validate(data)
