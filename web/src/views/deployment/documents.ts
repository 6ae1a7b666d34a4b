import { graphql } from "../../gql";

graphql(`
  fragment CanarySampleFields on CanarySample {
    sequence
    at
    weight
    step
    verdict
    reason
    canary { requests errors errorRate p95Ms }
    stable { requests errors errorRate p95Ms }
  }
`);

graphql(`
  fragment DeploymentFields on Deployment {
    id
    kind
    strategy
    phase
    reason
    fix
    generation
    createdBy
    createdByUser { displayName }
    createdAt
    startedAt
    deadlineAt
    finishedAt
    conditions { type status reason message lastTransitionTime }
    fromRelease { id gitSha }
    toRelease { id gitSha }
    service { id name environment { name } project { slug viewerCan { deploy } } }
    canary {
      step
      weight
      checks
      pausedBy
      lastCheckAt
      steps { setWeight pauseSeconds pauseUntilPromoted analysis }
      analysis { intervalSeconds windowSeconds maxErrorRatePercent maxP95Ratio minRequests failuresToAbort }
      decision { reason automated sample { ...CanarySampleFields } }
    }
  }
`);

export const DeploymentDocument = graphql(`
  query Deployment($id: ID!) {
    deployment(id: $id) { ...DeploymentFields }
  }
`);

export const DeploymentStatusSubscription = graphql(`
  subscription DeploymentLive($id: ID!) {
    deploymentStatus(deploymentId: $id) { sequence deployment { ...DeploymentFields } }
  }
`);

export const CanaryMetricsSubscription = graphql(`
  subscription CanaryLive($id: ID!, $after: Int) {
    canaryMetrics(deploymentId: $id, after: $after) { ...CanarySampleFields }
  }
`);

export const PromoteMutation = graphql(`
  mutation Promote($input: PromoteDeploymentInput!) {
    promoteDeployment(input: $input) {
      __typename
      ... on DeploymentOverrideSuccess { deployment { id phase } }
      ... on Error { message code }
    }
  }
`);

export const PauseMutation = graphql(`
  mutation Pause($input: PauseDeploymentInput!) {
    pauseDeployment(input: $input) {
      __typename
      ... on DeploymentOverrideSuccess { deployment { id phase } }
      ... on Error { message code }
    }
  }
`);

export const AbortMutation = graphql(`
  mutation Abort($input: AbortDeploymentInput!) {
    abortDeployment(input: $input) {
      __typename
      ... on DeploymentOverrideSuccess { deployment { id phase } }
      ... on Error { message code }
    }
  }
`);
