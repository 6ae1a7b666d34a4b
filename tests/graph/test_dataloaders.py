"""The dashboard query costs the same number of SQL statements for 10 services as for 200."""

from __future__ import annotations

from typing import Any

from resolvers.context import Context
from store.db import Store
from tests.factories import add_release, add_runtime, make_environment, make_project, make_service
from tests.helpers import Api, count_statements

DASHBOARD = """
query Dashboard($slug: String!) {
  project(slug: $slug) {
    id name
    environments(first: 10) {
      nodes {
        id name
        services(first: 100) {
          totalCount
          pageInfo { hasNextPage endCursor }
          nodes {
            id name type
            latestRelease { id status gitSha }
            runtime { replicasDesired replicasReady status }
            routes(first: 10) { nodes { host path } }
          }
        }
      }
    }
  }
}
"""


async def _seed(ctx: Context, services: int) -> None:
    project = await make_project(ctx, "shop")
    envs = ["dev", "stage", "prod"]
    for env in envs:
        await make_environment(ctx, project, env)
    for i in range(services):
        env = envs[i % len(envs)]
        service = await make_service(
            ctx, "shop", env, f"svc-{i:03d}", routes=[(f"svc-{i:03d}.{env}.shop.test", "/")]
        )
        release = await add_release(ctx, service)
        await add_runtime(ctx, service, release)


async def _dashboard(api: Api, store: Store) -> tuple[int, dict[str, Any]]:
    await api.data("{ viewer { user { id } } }")  # authenticate once; the cache holds it
    with count_statements(store) as statements:
        data = await api.data(DASHBOARD, {"slug": "shop"})
    return len(statements), data


async def test_dashboard_statement_count_does_not_grow_with_services(
    api: Api, ctx: Context, store: Store
) -> None:
    await _seed(ctx, 10)
    small, small_data = await _dashboard(api, store)
    shown = sum(len(e["services"]["nodes"]) for e in small_data["project"]["environments"]["nodes"])
    assert shown == 10

    for i in range(10, 200):
        env = ["dev", "stage", "prod"][i % 3]
        service = await make_service(ctx, "shop", env, f"svc-{i:03d}")
        await add_runtime(ctx, service, await add_release(ctx, service))
    large, large_data = await _dashboard(api, store)
    environments = large_data["project"]["environments"]["nodes"]
    assert sum(len(e["services"]["nodes"]) for e in environments) == 200
    assert sum(e["services"]["totalCount"] for e in environments) == 200
    every = [s for e in environments for s in e["services"]["nodes"]]
    assert all(s["latestRelease"]["status"] == "READY" for s in every)
    assert all(s["runtime"]["replicasReady"] == 2 for s in every)

    assert large == small, f"{small} statements for 10 services but {large} for 200"
    # project, environments, services, totalCount, latest release, runtime, routes.
    assert small <= 8
