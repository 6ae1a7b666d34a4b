"""slo and alerts: where a service stands against its error budget, and what on-call was
told about it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from client.cli.deploys import EnvOption, JsonOption, ProjectOption, missing_service
from client.cli.i18n import t
from client.cli.output import Output
from client.cli.session import client, fail, run
from client.cli.target import target

if TYPE_CHECKING:
    from client.api.service_guardrails import ServiceGuardrailsService

ServiceArg = Annotated[str | None, typer.Argument(help="Service name (default: enclii.yaml's).")]


async def _guardrails(
    service: str | None, env: str | None, project: str | None, first: int
) -> ServiceGuardrailsService:
    chosen = target(service, env, project)
    assert chosen.service is not None
    async with client() as api:
        found = (
            await api.service_guardrails(chosen.project, chosen.environment, chosen.service, first)
        ).service
    if found is None:
        missing_service(chosen.project, chosen.environment, chosen.service)
    return found


def slo(
    service: ServiceArg = None,
    env: EnvOption = None,
    project: ProjectOption = None,
    json_: JsonOption = False,
) -> None:
    """The service's error budget against spec.slo, its burn rate, and whether deploys are
    frozen (then only `enclii deploy --strategy canary --fix` goes out)."""
    out = Output(json=json_)

    async def verb() -> None:
        found = await _guardrails(service, env, project, 1)
        status = found.slo
        if out.json:
            out.document(
                {
                    "service": found.name,
                    "slo": status.model_dump(mode="json", by_alias=True) if status else None,
                }
            )
            return
        if status is None:
            out.note(t("slo.none", service=found.name))
            return
        out.table(
            ["OBJECTIVE", "TARGET", "BAD", "ALLOWED", "BUDGET SPENT", "BURN RATE"],
            [
                [
                    o.name + (f" < {o.threshold_ms:g} ms" if o.threshold_ms is not None else ""),
                    f"{o.objective_percent:g}%",
                    o.bad,
                    f"{o.allowed:.1f}",
                    f"{o.budget_spent:.0%}",
                    f"{o.burn_rate:.1f}x" if o.burn_rate is not None else "—",
                ]
                for o in status.objectives
            ],
        )
        key = "slo.frozen" if status.frozen else "slo.open"
        out.note(
            t(
                key,
                service=found.name,
                days=status.window_days,
                requests=status.requests,
                spent=f"{status.budget_spent:.0%}",
            )
        )

    run(out, verb)


def alerts(
    service: ServiceArg = None,
    env: EnvOption = None,
    project: ProjectOption = None,
    limit: Annotated[int, typer.Option(help="How many, newest first (at most 100).")] = 20,
    json_: JsonOption = False,
) -> None:
    """Alerts sent to the service's spec.alerts webhooks (rollback, freeze, unfreeze,
    slo-burn): delivered, retrying or failed, and why."""
    out = Output(json=json_)
    if not 1 <= limit <= 100:
        fail(f"--limit {limit}: give 1 to 100")

    async def verb() -> None:
        found = await _guardrails(service, env, project, limit)
        rows = found.alert_deliveries
        if out.json:
            out.document(
                {
                    "service": found.name,
                    "alerts": [r.model_dump(mode="json", by_alias=True) for r in rows],
                }
            )
            return
        if not rows:
            out.note(t("alerts.none", service=found.name))
            return
        out.table(
            ["WHEN", "EVENT", "POLICY", "TO", "STATUS", "TRIES", "MESSAGE / ERROR"],
            [
                [
                    r.created_at,
                    r.event,
                    r.policy,
                    r.destination,
                    r.status.value.lower(),
                    r.attempts,
                    r.last_error if r.status.value == "FAILED" and r.last_error else r.text,
                ]
                for r in rows
            ],
        )

    run(out, verb)
