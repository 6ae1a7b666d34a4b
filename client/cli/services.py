"""ps and scale: what runs, how it does, and how many of it."""

from __future__ import annotations

from typing import Annotated

import typer

from client.cli.deploys import EnvOption, JsonOption, ProjectOption, find_service
from client.cli.i18n import t
from client.cli.output import Output
from client.cli.session import client, expect, fail, run
from client.cli.target import target


def ps(
    env: EnvOption = None,
    project: ProjectOption = None,
    window: Annotated[int, typer.Option(help="Seconds of traffic behind P95 and errors.")] = 300,
    json_: JsonOption = False,
) -> None:
    """Services of an environment: release, replicas ready/desired, health, P95, error rate."""
    out = Output(json=json_)

    async def verb() -> None:
        from client.api.services import ServicesProjectEnvironmentServicesNodes as Row

        chosen = target(None, env, project, need_service=False)
        rows: list[Row] = []
        async with client() as api:
            after: str | None = None
            while True:
                found = (
                    await api.services(chosen.project, chosen.environment, window, after=after)
                ).project
                if found is None:
                    fail(t("missing.project", project=chosen.project))
                if found.environment is None:
                    fail(
                        t(
                            "missing.environment",
                            environment=chosen.environment,
                            project=chosen.project,
                        )
                    )
                page = found.environment.services
                rows.extend(page.nodes)
                if not page.page_info.has_next_page:
                    break
                after = page.page_info.end_cursor
        if out.json:
            out.document(
                {
                    "project": chosen.project,
                    "environment": chosen.environment,
                    "windowSeconds": window,
                    "services": [r.model_dump(mode="json", by_alias=True) for r in rows],
                }
            )
            return
        if not rows:
            out.note(t("empty.services", project=chosen.project, environment=chosen.environment))
            return
        table = []
        for s in rows:
            runtime, traffic = s.runtime, s.traffic
            table.append(
                [
                    s.name,
                    s.type_.value.lower(),
                    runtime.release.id if runtime else "—",
                    f"{runtime.replicas_ready}/{runtime.replicas_desired}" if runtime else "0/0",
                    runtime.status.value.lower().replace("_", "-") if runtime else "not deployed",
                    f"{traffic.p_95_ms:.0f} ms" if traffic.p_95_ms is not None else "—",
                    f"{traffic.error_rate * 100:.1f}%" if traffic.requests else "—",
                    f"{traffic.requests_per_second:.1f}" if traffic.requests else "—",
                ]
            )
        out.table(["SERVICE", "TYPE", "RELEASE", "READY", "HEALTH", "P95", "5XX", "REQ/S"], table)

    run(out, verb)


def scale(
    service: Annotated[str | None, typer.Argument(help="Service name.")] = None,
    minimum: Annotated[int | None, typer.Option("--min", help="replicas.min (0..100).")] = None,
    maximum: Annotated[int | None, typer.Option("--max", help="replicas.max (1..100).")] = None,
    env: EnvOption = None,
    project: ProjectOption = None,
    json_: JsonOption = False,
) -> None:
    """Set a service's replica bounds (the autoscaler's range). Takes effect at once."""
    out = Output(json=json_)

    async def verb() -> None:
        from client.api.input_types import ScaleServiceInput
        from client.api.scale_service import ScaleServiceScaleServiceApplyServiceSuccess

        if minimum is None and maximum is None:
            fail("give --min, --max or both")
        chosen = target(service, env, project)
        async with client() as api:
            service_id = await find_service(api, chosen.project, chosen.environment, chosen.service)
            result = (
                await api.scale_service(
                    ScaleServiceInput(service_id=service_id, min=minimum, max=maximum)
                )
            ).scale_service
            scaled = expect(result, ScaleServiceScaleServiceApplyServiceSuccess)
        replicas = scaled.version.spec.get("spec", {}).get("runtime", {}).get("replicas", {})
        if out.json:
            out.document(
                {
                    "service": scaled.service.model_dump(by_alias=True),
                    "version": scaled.version.version,
                    "unchanged": scaled.unchanged,
                    "replicas": replicas,
                }
            )
            return
        out.note(
            t(
                "scaled",
                service=chosen.service,
                min=replicas.get("min"),
                max=replicas.get("max"),
                version=scaled.version.version,
                note=t("spec.unchanged") if scaled.unchanged else "",
            )
        )

    run(out, verb)
