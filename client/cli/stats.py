"""stats: how delivery went over the last days — deploys, successes, failures and rollbacks
per UTC day, the success rate, and the recent rollbacks (the web UI dashboard's figures)."""

from __future__ import annotations

from typing import Annotated

import typer

from client.cli.deploys import JsonOption
from client.cli.i18n import t
from client.cli.output import Output
from client.cli.session import client, fail, run

TIME = "%Y-%m-%d %H:%M:%S"


def stats(
    project: Annotated[
        str | None,
        typer.Option("--project", "-p", help="One project (default: every project you may see)."),
    ] = None,
    days: Annotated[
        int, typer.Option("--days", help="How many UTC days, today included (1 to 90).")
    ] = 14,
    json_: JsonOption = False,
) -> None:
    """Delivery health: deploys per day, how many became healthy, failed or were rolled
    back, the success rate, and the latest rollbacks."""
    out = Output(json=json_)

    async def verb() -> None:
        # The range of --days is the API's to enforce: its message is the one to show.
        async with client() as api:
            project_id = None
            if project is not None:
                found = (await api.project_by_slug(project)).project
                if found is None:
                    fail(t("missing.project", project=project))
                project_id = found.id
            result = (await api.delivery_stats(days, project_id=project_id)).delivery_stats
        if out.json:
            out.document({"project": project, **result.model_dump(mode="json", by_alias=True)})
            return
        rate = (
            t("stats.rate", rate=f"{result.success_rate:.0%}")
            if result.success_rate is not None
            else t("stats.unfinished")
        )
        out.line(
            t(
                "stats.summary",
                scope=t("stats.project", project=project) if project else t("stats.all"),
                first=result.days[0].day if result.days else "",
                last=result.days[-1].day if result.days else "",
                deploys=result.deploys,
                succeeded=result.succeeded,
                failed=result.failed,
                rolled_back=result.rolled_back,
                rate=rate,
            )
        )
        out.line("")
        out.table(
            ["DAY", "DEPLOYS", "HEALTHY", "FAILED", "ROLLED BACK"],
            [[d.day, d.deploys, d.succeeded, d.failed, d.rolled_back] for d in result.days],
        )
        out.line("")
        if not result.recent_rollbacks:
            out.line(t("stats.no_rollbacks"))
            return
        out.line(t("stats.rollbacks"))
        out.table(
            ["SERVICE", "ENV", "PHASE/KIND", "REASON", "WHEN"],
            [
                [
                    # Across projects a service's name alone is ambiguous.
                    d.service.name if project else f"{d.service.project.slug}/{d.service.name}",
                    d.service.environment.name,
                    f"{d.phase.value.lower()}/{d.kind.value.lower()}",
                    d.reason or "",
                    (d.finished_at or d.created_at).strftime(TIME),
                ]
                for d in result.recent_rollbacks
            ],
        )

    run(out, verb)
