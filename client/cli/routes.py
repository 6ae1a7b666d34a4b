"""routes add|list|remove: hosts and path prefixes bound to a service, besides the spec's."""

from __future__ import annotations

from typing import Annotated

import typer

from client.cli.deploys import EnvOption, JsonOption, ProjectOption, find_service, missing_service
from client.cli.i18n import t
from client.cli.output import Output
from client.cli.session import client, expect, fail, run
from client.cli.target import target

routes_app = typer.Typer(
    help="Hosts and paths that reach a service (the spec's routes, and ones added here).",
    no_args_is_help=True,
)

ServiceOption = Annotated[
    str | None, typer.Option("--service", "-s", help="Service (default: from enclii.yaml).")
]
HostOption = Annotated[str, typer.Option("--host", help="A hostname, e.g. api.example.com.")]
PathOption = Annotated[str, typer.Option("--path", help="A path prefix.")]


@routes_app.command(
    "add", epilog="Example:\n\n  enclii routes add --host api.example.com --service api --env prod"
)
def add(
    host: HostOption,
    path: PathOption = "/",
    service: ServiceOption = None,
    env: EnvOption = None,
    project: ProjectOption = None,
    json_: JsonOption = False,
) -> None:
    """Bind a host (and path prefix) to a service."""
    out = Output(json=json_)

    async def verb() -> None:
        from client.api.add_route import AddRouteAddRouteAddRouteSuccess
        from client.api.input_types import AddRouteInput

        chosen = target(service, env, project)
        async with client() as api:
            service_id = await find_service(api, chosen.project, chosen.environment, chosen.service)
            result = (
                await api.add_route(AddRouteInput(service_id=service_id, host=host, path=path))
            ).add_route
            route = expect(result, AddRouteAddRouteAddRouteSuccess).route
            if out.json:
                out.document(route.model_dump(mode="json", by_alias=True))
            else:
                out.note(t("route.added", host=route.host, path=route.path, service=chosen.service))
                out.line(route.id)

    run(out, verb)


@routes_app.command("list", epilog="Example:\n\n  enclii routes list --service api --env prod")
def list_(
    service: ServiceOption = None,
    env: EnvOption = None,
    project: ProjectOption = None,
    json_: JsonOption = False,
) -> None:
    """A service's routes: from its spec, and added with `routes add`."""
    out = Output(json=json_)

    async def verb() -> None:
        chosen = target(service, env, project)
        assert chosen.service is not None
        async with client() as api:
            found = (await api.routes(chosen.project, chosen.environment, chosen.service)).service
            if found is None:
                missing_service(chosen.project, chosen.environment, chosen.service)
            rows = found.routes.nodes
            if out.json:
                out.document([r.model_dump(mode="json", by_alias=True) for r in rows])
                return
            if not rows:
                out.note(t("empty.routes", service=chosen.service))
                return
            out.table(
                ["ROUTE", "HOST", "PATH", "FROM"],
                [[r.id, r.host, r.path, r.source.value.lower()] for r in rows],
            )

    run(out, verb)


@routes_app.command(
    "remove",
    epilog="Example:\n\n  enclii routes remove --host api.example.com --service api --env prod",
)
def remove(
    host: HostOption,
    path: PathOption = "/",
    service: ServiceOption = None,
    env: EnvOption = None,
    project: ProjectOption = None,
    json_: JsonOption = False,
) -> None:
    """Unbind a host (and path prefix) added with `routes add` (spec routes stay: edit the
    spec)."""
    out = Output(json=json_)

    async def verb() -> None:
        from client.api.input_types import RemoveRouteInput
        from client.api.remove_route import RemoveRouteRemoveRouteRemoveRouteSuccess

        chosen = target(service, env, project)
        assert chosen.service is not None
        async with client() as api:
            found = (await api.routes(chosen.project, chosen.environment, chosen.service)).service
            if found is None:
                missing_service(chosen.project, chosen.environment, chosen.service)
            wanted = host.lower().rstrip(".")
            match = [
                r
                for r in found.routes.nodes
                if r.host == wanted and r.path == (path.rstrip("/") or "/")
            ]
            if not match:
                known = ", ".join(f"{r.host}{r.path}" for r in found.routes.nodes) or "none"
                fail(f"{chosen.service} has no route {host}{path} (its routes: {known})")
            result = (await api.remove_route(RemoveRouteInput(id=match[0].id))).remove_route
            removed = expect(result, RemoveRouteRemoveRouteRemoveRouteSuccess)
            if out.json:
                out.document({"removedRouteId": removed.removed_route_id})
            else:
                out.note(t("route.removed", host=match[0].host, path=match[0].path))

    run(out, verb)
