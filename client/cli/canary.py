"""Canary verbs: promote, pause and abort a canary deployment by its ID, and the analysis
lines `enclii deploy --strategy canary --wait` prints as each check arrives."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from client.cli.i18n import t
from client.cli.output import Output
from client.cli.session import client, expect, run

if TYPE_CHECKING:
    from client.api.client import EncliiClient
    from client.api.fragments import CanarySampleView, DeploymentView

DeploymentArg = Annotated[str, typer.Argument(help="A canary deployment's ID (dep_…).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
DRAIN_S = 5.0


def promote(
    deployment_id: DeploymentArg,
    full: Annotated[
        bool, typer.Option("--full", help="All traffic now, skipping the remaining steps.")
    ] = False,
    json_: JsonOption = False,
) -> None:
    """End the canary's current pause or analysis step (or a manual pause) and go on."""
    from client.api.input_types import PromoteDeploymentInput
    from client.api.promote_deployment import (
        PromoteDeploymentPromoteDeploymentDeploymentOverrideSuccess as Success,
    )

    async def call(api: EncliiClient) -> DeploymentView:
        result = await api.promote_deployment(
            PromoteDeploymentInput(deployment_id=deployment_id, full=full)
        )
        return expect(result.promote_deployment, Success).deployment

    _override(json_, call, "canary.promoted" if not full else "canary.promoted_full")


def pause(deployment_id: DeploymentArg, json_: JsonOption = False) -> None:
    """Hold the canary at its weight until `enclii promote` (a failing canary is still
    rolled back)."""
    from client.api.input_types import PauseDeploymentInput
    from client.api.pause_deployment import (
        PauseDeploymentPauseDeploymentDeploymentOverrideSuccess as Success,
    )

    async def call(api: EncliiClient) -> DeploymentView:
        result = await api.pause_deployment(PauseDeploymentInput(deployment_id=deployment_id))
        return expect(result.pause_deployment, Success).deployment

    _override(json_, call, "canary.paused")


def abort(
    deployment_id: DeploymentArg,
    reason: Annotated[str | None, typer.Option("--reason", help="Recorded with it.")] = None,
    json_: JsonOption = False,
) -> None:
    """Roll the canary back now: traffic returns to the stable release within a second."""
    from client.api.abort_deployment import (
        AbortDeploymentAbortDeploymentDeploymentOverrideSuccess as Success,
    )
    from client.api.input_types import AbortDeploymentInput

    async def call(api: EncliiClient) -> DeploymentView:
        result = await api.abort_deployment(
            AbortDeploymentInput(deployment_id=deployment_id, reason=reason)
        )
        return expect(result.abort_deployment, Success).deployment

    _override(json_, call, "canary.aborted")


def _override(json_: bool, call: Any, message: str) -> None:
    out = Output(json=json_)

    async def verb() -> None:
        async with client() as api:
            deployment = await call(api)
        out.note(t(message, deployment=deployment.id))
        if out.json:
            out.document({"deployment": deployment.model_dump(mode="json", by_alias=True)})
        else:
            out.line(deployment.id)

    run(out, verb)


def sample_line(sample: CanarySampleView) -> str:
    """One analysis check, as a person reads it."""

    def side(requests: int, rate: float, p95: float | None) -> str:
        latency = f"P95 {p95:.0f} ms" if p95 is not None else "P95 —"
        return f"{requests} req, 5xx {rate:.1%}, {latency}"

    canary, stable = sample.canary, sample.stable
    return t(
        "canary.sample",
        weight=sample.weight,
        verdict=sample.verdict.value.lower(),
        canary=side(canary.requests, canary.error_rate, canary.p_95_ms),
        stable=side(stable.requests, stable.error_rate, stable.p_95_ms),
        reason=sample.reason,
    )


async def follow_analysis(
    api: EncliiClient, out: Output, deployment_id: str, seen: list[dict[str, Any]]
) -> None:
    """Print each analysis check of a canary as it arrives (and keep it in ``seen``); the
    stream completes when the deployment ends. A dropped stream resumes after the last
    check seen, so none is printed twice."""
    import asyncio

    from client.api.base_client import ApiUnreachable

    after: int | None = None
    while True:
        try:
            async for update in api.follow_canary(deployment_id, after=after):
                sample = update.canary_metrics
                after = sample.sequence
                seen.append(sample.model_dump(mode="json", by_alias=True))
                out.note(sample_line(sample))  # also in CI logs, not only at a terminal
            return
        except ApiUnreachable:
            await asyncio.sleep(1.0)
