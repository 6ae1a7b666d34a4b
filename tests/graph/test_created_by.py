"""Release.createdByUser and Deployment.createdByUser: the person behind createdBy, so the UI
and the CLI can name them; null when the platform itself acted (a controller)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update

from resolvers.context import Context
from store.models import Deployment
from tests.factories import (
    add_deployment,
    add_release,
    make_environment,
    make_project,
    make_service,
)
from tests.helpers import Api, count_statements

QUERY = """
query($ids: [ID!]!) {
  nodes(ids: $ids) {
    ... on Release { createdBy createdByUser { id displayName } }
    ... on Deployment { createdBy createdByUser { id displayName } }
  }
}
"""


async def test_the_creator_is_named_and_a_controller_is_null(api: Api, ctx: Context) -> None:
    project = await make_project(ctx, "shop")
    await make_environment(ctx, project)
    service = await make_service(ctx, "shop", "stage", "api")
    release = await add_release(ctx, service)
    by_person = await add_deployment(ctx, service, release, created_at=datetime.now(UTC))
    by_platform = await add_deployment(ctx, service, release, created_at=datetime.now(UTC))
    async with ctx.store.write() as session:
        await session.execute(
            update(Deployment)
            .where(Deployment.id == by_platform.id)
            .values(created_by="controller:deployments")
        )

    data = await api.data(QUERY, {"ids": [release.id, by_person.id, by_platform.id]})

    owner = {"id": ctx.actor.id, "displayName": "Owner"}
    assert data["nodes"] == [
        {"createdBy": ctx.actor.id, "createdByUser": owner},
        {"createdBy": ctx.actor.id, "createdByUser": owner},
        {"createdBy": "controller:deployments", "createdByUser": None},
    ]


async def test_creators_are_loaded_in_one_statement(api: Api, ctx: Context) -> None:
    project = await make_project(ctx, "shop")
    await make_environment(ctx, project)
    service = await make_service(ctx, "shop", "stage", "api")
    releases = [await add_release(ctx, service) for _ in range(5)]
    with count_statements(ctx.store) as statements:
        await api.data(QUERY, {"ids": [r.id for r in releases]})
    # (The request's own authentication reads its user by id = ?, not IN.)
    assert sum("FROM users" in s and "users.id IN" in s for s in statements) == 1
