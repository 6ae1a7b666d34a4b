"""Entry point of ``enclii`` / ``conductor``."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from client.cli.exit_codes import ExitCode

app = typer.Typer(
    name="enclii",
    help="Enclii: describe a service in enclii.yaml; Enclii builds, deploys, routes and "
    "watches it.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    # A traceback must never print local variables: they hold tokens.
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
db_app = typer.Typer(help="The control-plane store: migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@app.callback()
def connection_options(
    api_url: Annotated[
        str | None,
        typer.Option(
            "--api-url",
            help="The Enclii API (http://host:8000/graphql). [env: ENCLII_API_URL]",
            show_default=False,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", help="A token to use. [env: ENCLII_TOKEN]", show_default=False),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            help="A profile of ~/.config/enclii/config.toml. [env: ENCLII_PROFILE]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Enclii: describe a service in enclii.yaml; Enclii builds, deploys, routes and watches
    it. With no --api-url, ENCLII_API_URL or profile, the CLI finds the Enclii running on
    this machine and its Owner token by itself."""
    from client.cli.session import GLOBALS

    GLOBALS.api_url, GLOBALS.token, GLOBALS.profile = api_url, token, profile


err = Console(stderr=True, soft_wrap=True)

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Where the embedded store, keys and tokens live. [env: ENCLII_DATA_DIR; "
        "default: ~/.enclii]",
        show_default=False,
    ),
]
DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="ENCLII_DATABASE_URL",
        help="PostgreSQL (postgresql://user@host:port/db) instead of the embedded SQLite.",
        show_default=False,
    ),
]


def _data_dir(given: Path | None) -> Path:
    if given is not None:
        return given.expanduser()
    return Path(os.environ.get("ENCLII_DATA_DIR", "~/.enclii")).expanduser()


def _store_url(data_dir: Path, database_url: str | None) -> str:
    from store.db import sqlite_url_for

    return database_url or sqlite_url_for(data_dir)


@app.command(
    epilog="Examples:\n\n"
    "  enclii serve\n\n"
    "  enclii serve --port 9000 --data-dir /var/lib/enclii\n\n"
    "  enclii serve --database-url postgresql://enclii@db:5432/enclii"
)
def serve(
    data_dir: DataDirOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the API, GraphiQL and UI.")] = 8000,
    router_port: Annotated[
        int,
        typer.Option(
            envvar="ENCLII_ROUTER_PORT", help="Port of the router that serves deployed services."
        ),
    ] = 8080,
    database_url: DatabaseUrlOption = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    rate_limit: Annotated[
        float,
        typer.Option(
            envvar="ENCLII_RATE_LIMIT",
            help="Requests per minute each token may make (sustained).",
        ),
    ] = 60,
    rate_burst: Annotated[
        int,
        typer.Option(envvar="ENCLII_RATE_BURST", help="Requests each token may make at once."),
    ] = 120,
    oidc_issuer: Annotated[
        str | None,
        typer.Option(
            envvar="ENCLII_OIDC_ISSUER",
            help="Accept OIDC tokens (JWTs) from this issuer, e.g. https://login.example.com.",
            show_default=False,
        ),
    ] = None,
    oidc_audience: Annotated[
        str | None,
        typer.Option(
            envvar="ENCLII_OIDC_AUDIENCE",
            help="The audience OIDC tokens must name (this server's client ID).",
            show_default=False,
        ),
    ] = None,
    oidc_client_id: Annotated[
        str | None,
        typer.Option(
            envvar="ENCLII_OIDC_CLIENT_ID",
            help="The client ID the web UI signs in with (default: the audience, since the "
            "UI sends ID tokens, whose audience is their client ID).",
            show_default=False,
        ),
    ] = None,
    oidc_jwks_url: Annotated[
        str | None,
        typer.Option(
            envvar="ENCLII_OIDC_JWKS_URL",
            help="Where the issuer's keys are, if not in its discovery document.",
            show_default=False,
        ),
    ] = None,
    oidc_groups_claim: Annotated[
        str, typer.Option(envvar="ENCLII_OIDC_GROUPS_CLAIM", help="The claim listing groups.")
    ] = "groups",
    oidc_roles: Annotated[
        str,
        typer.Option(
            envvar="ENCLII_OIDC_ROLES",
            help="Groups to account roles: 'platform=owner,sre=admin,eng=developer'.",
        ),
    ] = "",
) -> None:
    """Start Enclii: the API, GraphiQL, the UI and the controllers."""
    from graph.server import ServerConfig
    from graph.server import serve as run
    from reconcile.plane import start_local_plane
    from resolvers.identity.oidc import OidcConfig
    from store.errors import ConfigurationError

    oidc = None
    if oidc_issuer is not None or oidc_audience is not None or oidc_client_id is not None:
        if not oidc_issuer or not oidc_audience:
            err.print(
                "[red]error:[/red] --oidc-issuer and --oidc-audience go together"
                + (" (and --oidc-client-id needs them)." if oidc_client_id is not None else ".")
            )
            raise typer.Exit(ExitCode.VALIDATION)
        try:
            role_map = OidcConfig.parse_role_map(oidc_roles)
        except ValueError as exc:
            err.print(f"[red]error:[/red] --oidc-roles: {exc}")
            raise typer.Exit(ExitCode.VALIDATION) from None
        oidc = OidcConfig(
            issuer=oidc_issuer,
            audience=oidc_audience,
            jwks_url=oidc_jwks_url,
            groups_claim=oidc_groups_claim,
            role_map=role_map,
            client_id=oidc_client_id or None,
        )
    config = ServerConfig(
        data_dir=_data_dir(data_dir),
        host=host,
        port=port,
        router_port=router_port,
        database_url=database_url,
        log_level=log_level,
        oidc=oidc,
        rate_per_minute=rate_limit,
        rate_burst=rate_burst,
    )
    if rate_limit <= 0 or rate_burst < 1:
        err.print("[red]error:[/red] --rate-limit and --rate-burst must be positive.")
        raise typer.Exit(ExitCode.VALIDATION)
    try:
        plane = functools.partial(start_local_plane, router_port=router_port, router_host=host)
        import asyncio

        asyncio.run(run(config, plane=plane))
    except ConfigurationError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(ExitCode.VALIDATION) from None
    except KeyboardInterrupt:
        pass


@db_app.command("upgrade", epilog="Example:\n\n  enclii db upgrade --database-url $DATABASE_URL")
def db_upgrade(data_dir: DataDirOption = None, database_url: DatabaseUrlOption = None) -> None:
    """Apply every pending migration (serve does this itself on start)."""
    from store.errors import ConfigurationError
    from store.migrate import current_revision, head_revision, upgrade

    directory = _data_dir(data_dir)
    if database_url is None:
        directory.mkdir(parents=True, exist_ok=True)
    url = _store_url(directory, database_url)
    try:
        import asyncio

        before = asyncio.run(current_revision(url))
        upgrade(url)
    except ConfigurationError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(ExitCode.VALIDATION) from None
    head = head_revision()
    if before == head:
        err.print(f"Already at the newest revision ({head}).")
    else:
        err.print(f"Migrated from {before or 'an empty database'} to {head}.")


@db_app.command("current", epilog="Example:\n\n  enclii db current --database-url $DATABASE_URL")
def db_current(data_dir: DataDirOption = None, database_url: DatabaseUrlOption = None) -> None:
    """Print the store's migration revision and the newest one this build knows."""
    from store.migrate import current_revision, head_revision

    url = _store_url(_data_dir(data_dir), database_url)
    import asyncio

    current = asyncio.run(current_revision(url))
    head = head_revision()
    state = "up to date" if current == head else "needs `enclii db upgrade`"
    typer.echo(f"{current or 'empty'} (newest: {head}; {state})")


@app.command(epilog="Example:\n\n  enclii version")
def version() -> None:
    """Print the version of this Enclii."""
    from importlib.metadata import version as dist_version

    typer.echo(dist_version("enclii"))


def _register() -> None:
    """Verbs live in modules of their own; they import the client only when they run, so
    ``enclii --help`` stays fast."""
    from client.cli import (
        api_verb,
        auth,
        canary,
        deploys,
        guardrails,
        logs,
        routes,
        scaffold,
        services,
        stats,
    )

    examples = {
        "deploy": "  enclii deploy --env stage --wait\n\n"
        "  enclii deploy --env prod --strategy canary --wait\n\n"
        "  enclii deploy --env prod --strategy canary --fix --wait\n\n"
        "  enclii deploy --env prod --release rel_01H… --strategy blue-green --wait",
        "rollback": "  enclii rollback api --env prod\n\n  enclii rollback api --to rel_01H… --wait",
        "status": "  enclii status dep_01H… --wait",
        "promote": "  enclii promote dep_01H…\n\n  enclii promote dep_01H… --full",
        "pause": "  enclii pause dep_01H…",
        "abort": "  enclii abort dep_01H… --reason 'checkout errors in the canary'",
        "releases": "  enclii releases api --env prod --json",
        "logs": "  enclii logs api --env prod -f\n\n  enclii logs api --grep timeout --since 2h --json",
        "init": "  enclii init --template api --lang python --project shop",
        "up": "  enclii up\n\n  enclii up --json",
        "ps": "  enclii ps --env prod\n\n  enclii ps --env prod --json",
        "scale": "  enclii scale api --min 2 --max 8 --env prod",
        "slo": "  enclii slo api --env prod\n\n  enclii slo api --env prod --json",
        "alerts": "  enclii alerts api --env prod --limit 5",
        "stats": "  enclii stats\n\n  enclii stats --project shop --days 30 --json",
        "api": "  enclii api '{ viewer { user { displayName } } }'\n\n"
        "  enclii api 'query($id: ID!) { deployment(id: $id) { phase } }' --var id=dep_01H…",
    }
    for name, function in (
        ("init", scaffold.init),
        ("up", scaffold.up),
        ("deploy", deploys.deploy),
        ("rollback", deploys.rollback),
        ("status", deploys.status),
        ("promote", canary.promote),
        ("pause", canary.pause),
        ("abort", canary.abort),
        ("releases", deploys.releases),
        ("logs", logs.logs),
        ("ps", services.ps),
        ("scale", services.scale),
        ("slo", guardrails.slo),
        ("alerts", guardrails.alerts),
        ("stats", stats.stats),
        ("api", api_verb.api),
    ):
        app.command(name, epilog="Examples:\n\n" + examples[name])(function)
    app.add_typer(routes.routes_app, name="routes")
    app.add_typer(auth.auth_app, name="auth")


_register()


USAGE_ERROR = 2  # what click exits with for an unknown option or a missing argument


def main() -> None:
    try:
        app()
    except SystemExit as exit_:
        # A malformed command line is a request refused as given: the spec's 10.
        if exit_.code == USAGE_ERROR:
            raise SystemExit(ExitCode.VALIDATION) from None
        raise


if __name__ == "__main__":
    main()
