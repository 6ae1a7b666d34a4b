"""The Subscription root: live streams from the durable event log."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

import strawberry

from graph.context import Info
from graph.queries import Event
from resolvers import events


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
