"""logs: a service's build and runtime lines, searched or followed.

``-f`` follows the ``logs`` subscription from a cursor (the sequence of the last line
printed). When the connection drops — the server restarts, a proxy cuts it — it reconnects
with backoff and resumes from that cursor, so nothing is missed and nothing repeated.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Final

import typer

from client.cli.deploys import EnvOption, ProjectOption, find_service
from client.cli.i18n import t
from client.cli.output import Output
from client.cli.session import client, fail, run
from client.cli.target import target

if TYPE_CHECKING:
    from client.api.client import EncliiClient
    from client.api.fragments import LogLineView

RECONNECT_FIRST_S: Final = 0.5
RECONNECT_MAX_S: Final = 15.0
PAGE: Final = 500  # lines per page when catching up with --since
_DURATION: Final = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(value: str) -> datetime:
    """``30s``, ``15m``, ``2h``, ``7d`` ago, or an ISO 8601 instant with its offset."""
    found = _DURATION.match(value.strip())
    if found:
        return datetime.now(UTC) - timedelta(seconds=float(found[1]) * _UNITS[found[2]])
    try:
        instant = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        fail(f"--since {value!r}: give a duration (30s, 15m, 2h, 7d) or an ISO 8601 time")
    if instant.tzinfo is None:
        fail(f"--since {value!r}: give the time with its offset (…Z or …+02:00)")
    return instant


def logs(
    service: Annotated[str | None, typer.Argument(help="Service name.")] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
    env: EnvOption = None,
    project: ProjectOption = None,
    grep: Annotated[
        str | None, typer.Option("--grep", "-g", help="Only lines containing this (any case).")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="From this long ago (15m, 2h, 7d) or this ISO time.")
    ] = None,
    tail: Annotated[int, typer.Option("--tail", "-n", help="Lines to show first.")] = 100,
    release: Annotated[
        str | None,
        typer.Option("--release", help="Only this release's lines (its build and replicas)."),
    ] = None,
    json_: Annotated[
        bool, typer.Option("--json", help="NDJSON: one line object per line.")
    ] = False,
) -> None:
    """Print a service's log lines (builds and replicas); -f follows them live."""
    out = Output(json=json_)

    async def verb() -> None:
        start = parse_since(since) if since is not None else None
        if tail < 1 or tail > 1000:
            fail("--tail is 1..1000")
        chosen = target(service, env, project)
        async with client() as api:
            service_id = await find_service(api, chosen.project, chosen.environment, chosen.service)
            cursor = await backlog(api, out, service_id, grep, start, tail, release)
            if cursor is None and not follow:
                out.note(t("logs.empty", service=chosen.service))
            if follow:
                await keep_following(api, out, service_id, grep, cursor, release)

    run(out, verb)


async def backlog(
    api: EncliiClient,
    out: Output,
    service_id: str,
    grep: str | None,
    start: datetime | None,
    tail: int,
    release: str | None = None,
) -> int | None:
    """Print what is there already; the cursor to follow from (None: no line yet)."""
    if start is None:
        page = (await api.logs(service_id, tail, grep=grep, release_id=release)).logs
        for line in page.lines:
            show(out, line)
        return page.cursor
    cursor: int | None = None
    page = (await api.logs(service_id, PAGE, since=start, grep=grep, release_id=release)).logs
    while True:
        for line in page.lines:
            show(out, line)
        cursor = page.cursor if page.cursor is not None else cursor
        if not page.has_more or cursor is None:
            break
        page = (await api.logs(service_id, PAGE, after=cursor, grep=grep, release_id=release)).logs
    if cursor is None:
        # Nothing since then: follow from the newest line, not from the beginning.
        newest = (await api.logs(service_id, 1)).logs
        cursor = newest.cursor
    return cursor


async def keep_following(
    api: EncliiClient,
    out: Output,
    service_id: str,
    grep: str | None,
    cursor: int | None,
    release: str | None = None,
) -> None:
    """Until interrupted: a stream that ends (the server stopping) or breaks is resumed
    from the last line printed, after a growing, jittered pause."""
    import asyncio

    from client.api.base_client import ApiUnreachable

    delay = RECONNECT_FIRST_S
    while True:
        try:
            async for update in api.follow_logs(service_id, grep=grep, after=cursor or 0):
                for line in update.log_batches.lines:
                    if cursor is not None and line.sequence <= cursor:
                        continue  # already printed (a replay overlapping the backlog)
                    if release is None or line.release_id == release:
                        show(out, line)
                    cursor = line.sequence
                delay = RECONNECT_FIRST_S
            reason = "the server ended the stream"
        except ApiUnreachable as exc:
            reason = str(exc)
        wait = delay * (0.5 + random.random())
        out.note(t("logs.reconnecting", error=reason, delay=wait, cursor=cursor or 0))
        await asyncio.sleep(wait)
        delay = min(RECONNECT_MAX_S, delay * 2)


def show(out: Output, line: LogLineView) -> None:
    if out.json:
        out.record(line.model_dump(mode="json", by_alias=True))
        return
    when = line.ts.astimezone().strftime("%H:%M:%S.%f")[:-3]
    where = line.source if not line.release_id else f"{line.source} {line.release_id[-6:]}"
    level = "" if line.level in ("info", "") else f" {line.level.upper()}"
    out.line(f"{when} [{where}]{level} {line.message}")
