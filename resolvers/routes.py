"""Binding hosts and path prefixes to services outside the Service Spec."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from resolvers.context import Context
from resolvers.errors import Conflict, NotFound, Problem, ValidationFailed
from resolvers.identity.guard import require
from resolvers.identity.rbac import Permission
from resolvers.lookup import find_node, get_service
from resolvers.mutation import mutate, snapshot
from store.events import DEPLOYMENTS_STREAM, append_event
from store.ids import new_id
from store.models import Environment, Project, Route, RouteSource, Service
from store.names import host_problem, normalise_path, path_problem


def _conflict(env: Environment, existing_id: str | None) -> Conflict:
    return Conflict(
        f"Route conflict: host already bound in env {env.name!r}.",
        ("input", "host"),
        existing_id=existing_id,
    )


async def add_route(
    ctx: Context, service_id: str, host: str, path: str | None, tls_cert_ref: str | None
) -> Route:
    host = host.strip().lower()
    path = path or "/"
    problems = []
    if text := host_problem(host):
        problems.append(Problem(("input", "host"), text))
    if text := path_problem(path):
        problems.append(Problem(("input", "path"), text))
    if problems:
        raise ValidationFailed(problems)
    path = normalise_path(path)
    async with mutate(ctx, "route.add") as change:
        session = change.session
        service, env, project = await get_service(session, ctx, service_id, ("input", "serviceId"))
        require(ctx, Permission.ROUTES, project)
        existing = await session.scalar(
            select(Route.id).where(
                Route.environment_id == env.id, Route.host == host, Route.path == path
            )
        )
        if existing is not None:
            raise _conflict(env, existing)
        route = Route(
            id=new_id("route"),
            environment_id=env.id,
            service_id=service.id,
            host=host,
            path=path,
            tls_cert_ref=tls_cert_ref,
            source=RouteSource.API,
        )
        session.add(route)
        try:
            await session.flush()
        except IntegrityError:
            raise _conflict(env, None) from None
        change.record(
            entity_type="route",
            entity_id=route.id,
            project_id=project.id,
            before=None,
            after=snapshot(route),
        )
        await change.emit(
            project.id,
            "route.added",
            route.id,
            {"host": host, "path": path, "service": service.name, "environment": env.name},
        )
        # The deployment controller puts it in the router's table.
        await append_event(session, DEPLOYMENTS_STREAM, "route.added", entity_id=service.id)
    return route


async def remove_route(ctx: Context, route_id: str) -> Route:
    async with mutate(ctx, "route.remove") as change:
        session = change.session
        route = await find_node(session, ctx, route_id)
        if not isinstance(route, Route):
            raise NotFound(f"Route {route_id!r} not found.", ("input", "id"))
        service = await session.get(Service, route.service_id)
        env = await session.get(Environment, route.environment_id)
        assert service is not None and env is not None
        project = await session.get(Project, env.project_id)
        assert project is not None
        require(ctx, Permission.ROUTES, project)
        if route.source is RouteSource.SPEC:
            raise Conflict(
                f"Route {route.host}{route.path} comes from the Service Spec of "
                f"{service.name!r}; remove it from enclii.yaml and apply again.",
                ("input", "id"),
                existing_id=route.id,
            )
        before = snapshot(route)
        await session.delete(route)
        await session.flush()
        change.record(
            entity_type="route",
            entity_id=route.id,
            project_id=service.project_id,
            before=before,
            after=None,
        )
        await change.emit(
            service.project_id,
            "route.removed",
            route.id,
            {
                "host": route.host,
                "path": route.path,
                "service": service.name,
                "environment": env.name,
            },
        )
        await append_event(session, DEPLOYMENTS_STREAM, "route.removed", entity_id=service.id)
    return route
