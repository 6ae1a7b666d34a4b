"""deliveryStats: deployments, successes, failures and rollbacks per UTC day, counted by the
database on both backends, over the projects the caller may see; recentRollbacks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pytest
from sqlalchemy import select, text

from resolvers.context import Context
from resolvers.delivery import delivery_stats
from resolvers.identity.tokens import create_token
from resolvers.services import delete_service
from store import delivery
from store.db import Store
from store.models import DeploymentKind, DeploymentPhase, Project, Role, Service, utcnow
from tests.factories import (
    add_deployment,
    add_release,
    make_environment,
    make_project,
    make_service,
)
from tests.graph.test_members import add_member
from tests.helpers import Api, count_statements

NOW: Final = datetime(2030, 3, 10, 12, 0, tzinfo=UTC)
STATS: Final = """
query($project: ID, $days: Int!, $first: Int! = 10) {
  deliveryStats(projectId: $project, days: $days) {
    days { day deploys succeeded failed rolledBack }
    deploys succeeded failed rolledBack successRate
    recentRollbacks(first: $first) { id kind phase service { name } }
  }
}
"""
P = DeploymentPhase


def at(day: int, hour: int = 12, minute: int = 0, second: float = 0) -> datetime:
    whole = int(second)
    return datetime(2030, 3, day, hour, minute, whole, int((second - whole) * 1e6), tzinfo=UTC)


async def _project_with_service(ctx: Context, slug: str, name: str = "api") -> Service:
    project = await make_project(ctx, slug)
    await make_environment(ctx, project)
    return await make_service(ctx, slug, "stage", name)


async def _seed_week(ctx: Context) -> Service:
    """A week of deliveries of shop/api around NOW (2030-03-10 12:00 UTC), with every case
    that must or must not count."""
    api = await _project_with_service(ctx, "shop")
    release = await add_release(ctx, api)

    async def deployment(created: datetime, phase: P, finished: datetime | None, **kw: Any) -> None:
        await add_deployment(
            ctx, api, release, created_at=created, phase=phase, finished_at=finished, **kw
        )

    await deployment(at(10, 9), P.HEALTHY, at(10, 9, 5))
    # Created the last instant of the 9th, failed on the first of the 10th.
    await deployment(at(9, 23, 59, 59.5), P.FAILED, at(10, 0))
    await deployment(at(8, 9), P.ROLLED_BACK, at(8, 10, 1))
    await deployment(at(8, 10), P.HEALTHY, at(8, 10, 1), kind=DeploymentKind.ROLLBACK)
    await deployment(at(7), P.SUPERSEDED, at(7, 13))  # a deploy, but neither outcome
    await deployment(at(10, 11), P.DEPLOYING, None)  # a deploy, not finished
    await deployment(at(1), P.HEALTHY, at(5))  # created before the window, finished in it
    await deployment(at(3, 23, 59, 59), P.FAILED, at(3, 23, 59, 59))  # before the window
    await deployment(at(11, 9), P.HEALTHY, at(11, 9, 5))  # after today
    return api


async def test_counts_per_utc_day_with_zero_days(ctx: Context) -> None:
    await _seed_week(ctx)
    stats = await delivery_stats(ctx, None, 7, now=NOW)
    rows = [
        (d.day.isoformat(), d.deploys, d.succeeded, d.failed, d.rolled_back) for d in stats.days
    ]
    assert rows == [
        ("2030-03-04", 0, 0, 0, 0),
        ("2030-03-05", 0, 1, 0, 0),
        ("2030-03-06", 0, 0, 0, 0),
        ("2030-03-07", 1, 0, 0, 0),
        ("2030-03-08", 2, 1, 0, 1),
        ("2030-03-09", 1, 0, 0, 0),
        ("2030-03-10", 2, 1, 1, 0),
    ]
    assert (stats.deploys, stats.succeeded, stats.failed, stats.rolled_back) == (6, 3, 1, 1)
    assert stats.success_rate == pytest.approx(3 / 5)
    assert stats.since == at(4, 0)


async def test_one_day_is_today(ctx: Context) -> None:
    await _seed_week(ctx)
    stats = await delivery_stats(ctx, None, 1, now=NOW)
    assert [(d.day.isoformat(), d.deploys, d.succeeded, d.failed) for d in stats.days] == [
        ("2030-03-10", 2, 1, 1)
    ]
    assert stats.success_rate == pytest.approx(1 / 2)


async def test_no_finished_deployment_has_no_success_rate(ctx: Context) -> None:
    api = await _project_with_service(ctx, "shop")
    release = await add_release(ctx, api)
    await add_deployment(ctx, api, release, created_at=at(10, 9), phase=P.DEPLOYING)
    await add_deployment(
        ctx, api, release, created_at=at(9), phase=P.SUPERSEDED, finished_at=at(9, 13)
    )
    stats = await delivery_stats(ctx, None, 14, now=NOW)
    assert len(stats.days) == 14
    assert (stats.deploys, stats.succeeded, stats.failed, stats.rolled_back) == (2, 0, 0, 0)
    assert stats.success_rate is None


async def test_the_day_is_the_utc_day_whatever_the_session_time_zone(
    ctx: Context, store: Store
) -> None:
    """On PostgreSQL a timestamptz's date follows the session's zone; Kiritimati (UTC+14)
    would move every deployment of the afternoon to the next day."""
    await _seed_week(ctx)
    project_id = await _project_id(store, "shop")
    async with store.read() as session:
        if store.backend == "postgresql":
            await session.execute(text("SET LOCAL TIME ZONE 'Pacific/Kiritimati'"))
        days = await delivery.daily_counts(
            session,
            delivery.Scope(ctx.actor.account_id, (project_id,)),
            at(8).date(),
            at(10).date(),
        )
    assert [(d.day.isoformat(), d.deploys, d.succeeded, d.failed) for d in days] == [
        ("2030-03-08", 2, 1, 0),
        ("2030-03-09", 1, 0, 0),
        ("2030-03-10", 2, 1, 1),
    ]


async def _project_id(store: Store, slug: str) -> str:
    async with store.read() as session:
        found = await session.scalar(select(Project.id).where(Project.slug == slug))
    assert found is not None
    return found


async def test_deleted_services_and_other_projects_are_left_out(ctx: Context) -> None:
    api = await _seed_week(ctx)
    gone = await make_service(ctx, "shop", "stage", "gone")
    blog = await _project_with_service(ctx, "blog", "web")
    for service in (gone, blog):
        release = await add_release(ctx, service)
        await add_deployment(ctx, service, release, created_at=at(10, 8), finished_at=at(10, 8, 1))
    await delete_service(ctx, gone.id)

    shop_only = await delivery_stats(ctx, api.project_id, 7, now=NOW)
    assert (shop_only.deploys, shop_only.succeeded) == (6, 3)
    everything = await delivery_stats(ctx, None, 7, now=NOW)
    assert (everything.deploys, everything.succeeded) == (7, 4)
    blog_only = await delivery_stats(ctx, blog.project_id, 7, now=NOW)
    assert (blog_only.deploys, blog_only.succeeded, blog_only.success_rate) == (1, 1, 1.0)


# -- over GraphQL ----------------------------------------------------------------------------


async def test_the_window_ends_today_over_graphql(api: Api, ctx: Context) -> None:
    service = await _project_with_service(ctx, "shop")
    release = await add_release(ctx, service)
    now = utcnow()
    await add_deployment(
        ctx, service, release, created_at=now - timedelta(minutes=5), finished_at=now
    )
    data = (await api.data(STATS, {"days": 14}))["deliveryStats"]
    today = now.date()
    assert [d["day"] for d in data["days"]] == [
        (today - timedelta(days=n)).isoformat() for n in range(13, -1, -1)
    ]
    assert data["days"][-1]["deploys"] == 1
    assert sum(d["deploys"] for d in data["days"][:-1]) == 0
    assert (data["deploys"], data["succeeded"], data["successRate"]) == (1, 1, 1.0)
    assert data["recentRollbacks"] == []


async def test_recent_rollbacks_newest_first(api: Api, ctx: Context) -> None:
    service = await _project_with_service(ctx, "shop")
    release = await add_release(ctx, service)
    now = utcnow()
    ids = []
    for minutes, phase, kind in [
        (50, P.ROLLED_BACK, DeploymentKind.DEPLOY),
        (40, P.HEALTHY, DeploymentKind.ROLLBACK),
        (30, P.HEALTHY, DeploymentKind.DEPLOY),  # not a rollback
        (20, P.FAILED, DeploymentKind.ROLLBACK),
        (10, P.DEPLOYING, DeploymentKind.ROLLBACK),
    ]:
        created = now - timedelta(minutes=minutes)
        finished = None if phase is P.DEPLOYING else created + timedelta(minutes=1)
        row = await add_deployment(
            ctx, service, release, created_at=created, phase=phase, finished_at=finished, kind=kind
        )
        ids.append(row.id)
    old = now - timedelta(days=30)  # outside the window
    await add_deployment(
        ctx, service, release, created_at=old, finished_at=old, kind=DeploymentKind.ROLLBACK
    )

    data = (await api.data(STATS, {"days": 14}))["deliveryStats"]
    assert [d["id"] for d in data["recentRollbacks"]] == [ids[4], ids[3], ids[1], ids[0]]
    assert data["recentRollbacks"][0] == {
        "id": ids[4],
        "kind": "ROLLBACK",
        "phase": "DEPLOYING",
        "service": {"name": "api"},
    }
    two = (await api.data(STATS, {"days": 14, "first": 2}))["deliveryStats"]
    assert [d["id"] for d in two["recentRollbacks"]] == [ids[4], ids[3]]
    assert data["rolledBack"] == 1


@pytest.mark.parametrize(
    ("variables", "message", "argument"),
    [
        ({"days": 0}, "days must be between 1 and 90, got 0", "days"),
        ({"days": 91}, "days must be between 1 and 90, got 91", "days"),
        ({"days": -3}, "days must be between 1 and 90, got -3", "days"),
        ({"days": 7, "first": 51}, "first must be between 0 and 50, got 51", "first"),
        ({"days": 7, "first": -1}, "first must be between 0 and 50, got -1", "first"),
    ],
)
async def test_bad_arguments_are_precise(
    api: Api, variables: dict[str, Any], message: str, argument: str
) -> None:
    body = await api.execute(STATS, variables)
    [error] = body["errors"]
    assert error["message"] == message
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": argument}


async def test_the_limits_themselves_are_allowed(api: Api, ctx: Context) -> None:
    await _project_with_service(ctx, "shop")
    data = (await api.data(STATS, {"days": 90, "first": 50}))["deliveryStats"]
    assert len(data["days"]) == 90
    one = (await api.data(STATS, {"days": 1, "first": 0}))["deliveryStats"]
    assert len(one["days"]) == 1


async def test_only_projects_the_caller_may_see_count(api: Api, ctx: Context, store: Store) -> None:
    shop = await _project_with_service(ctx, "shop")
    blog = await _project_with_service(ctx, "blog", "web")
    now = utcnow()
    for service, count in ((shop, 1), (blog, 3)):
        release = await add_release(ctx, service)
        for _ in range(count):
            await add_deployment(
                ctx, service, release, created_at=now, finished_at=now, kind=DeploymentKind.ROLLBACK
            )
    member = await add_member(
        store, api, ctx.actor.account_id, "dev", Role.DEVELOPER, shop.project_id
    )

    everything = (await api.data(STATS, {"days": 3}))["deliveryStats"]
    assert everything["deploys"] == 4
    mine = (await member.api.data(STATS, {"days": 3}))["deliveryStats"]
    assert mine["deploys"] == 1
    assert {d["service"]["name"] for d in mine["recentRollbacks"]} == {"api"}
    shop_stats = await member.api.data(STATS, {"days": 3, "project": shop.project_id})
    assert shop_stats["deliveryStats"]["deploys"] == 1

    # A project the caller may not see is reported exactly like one that does not exist.
    for project_id in (blog.project_id, "prj_01HZZZZZZZZZZZZZZZZZZZZZZZ"):
        body = await member.api.execute(STATS, {"days": 3, "project": project_id})
        [error] = body["errors"]
        assert error["message"] == f"Project {project_id!r} not found."
        assert error["extensions"] == {"code": "NOT_FOUND", "argument": "projectId"}
        assert body["data"] is None

    # A project token counts its own project only, even for an Owner.
    token = await create_token(ctx, "shop only", ["*"], shop.project_id, None)
    limited = Api(api.client, {"authorization": f"Bearer {token.secret}"})
    assert (await limited.data(STATS, {"days": 3}))["deliveryStats"]["deploys"] == 1


async def test_the_statements_do_not_grow_with_deployments(
    api: Api, ctx: Context, store: Store
) -> None:
    async def ask() -> int:
        await api.data("{ viewer { user { id } } }")  # authenticated and cached
        with count_statements(store) as statements:
            await api.data(STATS, {"days": 30})
        return len(statements)

    service = await _project_with_service(ctx, "shop")
    release = await add_release(ctx, service)
    now = utcnow()
    await add_deployment(
        ctx, service, release, created_at=now, finished_at=now, kind=DeploymentKind.ROLLBACK
    )
    small = await ask()
    for n in range(1, 6):
        other = await make_service(ctx, "shop", "stage", f"svc-{n}")
        other_release = await add_release(ctx, other)
        for day in range(20):
            when = now - timedelta(days=day, minutes=n)
            await add_deployment(
                ctx,
                other,
                other_release,
                created_at=when,
                finished_at=when,
                phase=(P.HEALTHY, P.FAILED, P.ROLLED_BACK)[day % 3],
            )
    large = await ask()
    # The two counts and the rollbacks, plus the rollbacks' services through one loader.
    assert large == small <= 4
