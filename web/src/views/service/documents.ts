import { graphql } from "../../gql";

export const ServiceDocument = graphql(`
  query Service($project: String!, $env: String!, $name: String!) {
    service(project: $project, environment: $env, name: $name) {
      id
      name
      type
      generation
      project { id slug name viewerCan { deploy routes observe } }
      environment { id name }
      spec { version spec }
      slo { frozen budgetSpent reason }
      traffic(window: 300) { requests requestsPerSecond errorRate p50Ms p95Ms p99Ms }
      runtimes(first: 10) {
        nodes {
          id
          status
          weight
          replicasDesired
          replicasReady
          warmUntil
          scaleReason
          release { id gitSha }
          replicas { name phase ready restarts message lastExitCode }
        }
      }
      releases(first: 25) {
        nodes {
          id
          status
          statusReason
          gitSha
          digest
          signature
          sbomUri
          provenance
          createdAt
          createdBy
          createdByUser { displayName }
        }
      }
      deployments(first: 15) {
        nodes {
          id
          kind
          strategy
          phase
          reason
          createdAt
          finishedAt
          createdBy
          createdByUser { displayName }
          fromRelease { id gitSha }
          toRelease { id gitSha }
        }
      }
      routes(first: 50) { nodes { id host path source } }
    }
  }
`);

export const DeployMutation = graphql(`
  mutation Deploy($input: DeployInput!) {
    deploy(input: $input) {
      __typename
      ... on DeploySuccess { deployment { id } }
      ... on Error { message code }
      ... on ValidationError { problems { path message line } }
    }
  }
`);

export const RollbackMutation = graphql(`
  mutation Rollback($input: RollbackInput!) {
    rollback(input: $input) {
      __typename
      ... on RollbackSuccess { deployment { id } }
      ... on Error { message code }
      ... on ValidationError { problems { path message line } }
    }
  }
`);

export const ScaleMutation = graphql(`
  mutation Scale($input: ScaleServiceInput!) {
    scaleService(input: $input) {
      __typename
      ... on ApplyServiceSuccess { service { id } }
      ... on Error { message code }
      ... on ValidationError { problems { path message line } }
    }
  }
`);

export const AddRouteMutation = graphql(`
  mutation AddRoute($input: AddRouteInput!) {
    addRoute(input: $input) {
      __typename
      ... on AddRouteSuccess { route { id } }
      ... on Error { message code }
      ... on ValidationError { problems { path message line } }
    }
  }
`);

export const RemoveRouteMutation = graphql(`
  mutation RemoveRoute($input: RemoveRouteInput!) {
    removeRoute(input: $input) {
      __typename
      ... on Error { message code }
    }
  }
`);
