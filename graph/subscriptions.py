"""The Subscription root: live streams from the durable event log."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

import strawberry

from graph.context import Info
from graph.queries import Event, LogBatch, LogLine
from graph.types.guardrails import CanarySample
from graph.types.nodes import Deployment
from resolvers import canary as canary_resolvers
from resolvers import deployments as deployment_resolvers
from resolvers import events
from resolvers import logs as log_resolvers


@strawberry.type(description="A deployment as it was after one of its changes.")
class DeploymentStatus:
    sequence: int = strawberry.field(description="Position in the deployment's own stream.")
    deployment: Deployment


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="A project's activity. With `after`, replays every event after that "
        "sequence first, so reconnecting with the last sequence seen misses nothing; without "
        "it, starts from now."
    )
    async def events(
        self, info: Info, project_id: strawberry.ID, after: int | None = None
    ) -> AsyncGenerator[Event, None]:
        # aclosing: the hub forgets the subscriber as soon as the client unsubscribes.
        async with aclosing(
            events.follow_project(info.context.ctx, str(project_id), after)
        ) as stream:
            async for record in stream:
                yield Event.from_record(record)

    @strawberry.subscription(
        description="A service's log lines as they are written. With `after` (a sequence "
        "from the logs query or an earlier line), every line after it first; reconnecting "
        "with the last sequence seen misses nothing and repeats nothing."
    )
    async def logs(
        self,
        info: Info,
        service_id: strawberry.ID,
        grep: str | None = None,
        after: int | None = None,
    ) -> AsyncGenerator[LogLine, None]:
        async with aclosing(
            log_resolvers.follow_logs(info.context.ctx, str(service_id), grep=grep, after=after)
        ) as stream:
            async for record in stream:
                yield LogLine.from_record(record)

    @strawberry.subscription(
        description="The logs subscription in batches: the lines stored together arrive in "
        "one message (at most 1,000, oldest first), so following a service that writes "
        "thousands of lines a second costs a message per write, not per line. Same `grep` "
        "and `after` as `logs`; resume with the last batch's cursor."
    )
    async def log_batches(
        self,
        info: Info,
        service_id: strawberry.ID,
        grep: str | None = None,
        after: int | None = None,
    ) -> AsyncGenerator[LogBatch, None]:
        async with aclosing(
            log_resolvers.follow_log_batches(
                info.context.ctx, str(service_id), grep=grep, after=after
            )
        ) as stream:
            async for batch in stream:
                yield LogBatch.from_records(batch)

    @strawberry.subscription(
        description="A deployment as it changes: its phase (queued, building, deploying, "
        "healthy, failed, rolled-back, superseded), its conditions (replicas ready…) and a "
        "canary's step and weight — first as it is now, then after each change; the stream "
        "completes once the deployment has ended."
    )
    async def deployment_status(
        self, info: Info, deployment_id: strawberry.ID
    ) -> AsyncGenerator[DeploymentStatus, None]:
        async with aclosing(
            deployment_resolvers.follow_deployment(info.context.ctx, str(deployment_id))
        ) as stream:
            async for update in stream:
                yield DeploymentStatus(
                    sequence=update.sequence, deployment=Deployment.from_row(update.deployment)
                )

    @strawberry.subscription(
        description="A canary deployment's analysis: every check (weight, requests, 5xx rate "
        "and P95 for canary and stable, verdict, reason) — those after `after` first (all "
        "of them without it), then each new one; completes when the deployment ends."
    )
    async def canary_metrics(
        self, info: Info, deployment_id: strawberry.ID, after: int | None = None
    ) -> AsyncGenerator[CanarySample, None]:
        async with aclosing(
            canary_resolvers.follow_canary(info.context.ctx, str(deployment_id), after)
        ) as stream:
            async for record in stream:
                yield CanarySample.from_json(record.payload, record.sequence)
