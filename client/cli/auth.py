"""auth login|logout|whoami and auth token create."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from client.cli.deploys import JsonOption
from client.cli.i18n import t
from client.cli.output import Output
from client.cli.session import GLOBALS, client, connection, expect, fail, run
from client.config import (
    Connection,
    config_path,
    forget_token,
    normalise_url,
    profile_name,
    read_config,
    save_profile,
)

if TYPE_CHECKING:
    from client.api.enums import Role
    from client.api.fragments import CapabilitiesView

auth_app = typer.Typer(
    help="Who you are to Enclii: sign in, out, and tokens.", no_args_is_help=True
)
token_app = typer.Typer(help="Personal access tokens, for CI and scripts.", no_args_is_help=True)
auth_app.add_typer(token_app, name="token")


@auth_app.command(
    "login",
    epilog="Examples:\n\n  enclii auth login --api-url https://enclii.example.com --token-stdin < token.txt\n\n"
    "  enclii --profile prod auth login --api-url https://enclii.example.com",
)
def login(
    api_url: Annotated[
        str | None, typer.Option("--api-url", help="The Enclii API to sign in to.")
    ] = None,
    token_stdin: Annotated[
        bool, typer.Option("--token-stdin", help="Read the token from standard input.")
    ] = False,
    profile: Annotated[
        str | None, typer.Option("--profile", help="Save as this profile (default: 'default').")
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Check a token against the API and save it in a profile (mode 0600)."""
    out = Output(json=json_)

    async def verb() -> None:
        given = api_url or GLOBALS.api_url
        # A new profile has no URL yet: ask the configuration only when none is given.
        url = normalise_url(given or connection().url)
        if token_stdin:
            secret = sys.stdin.readline().strip()
        elif GLOBALS.token:
            secret = GLOBALS.token
        elif sys.stdin.isatty():
            secret = typer.prompt("Token (enclii_pat_…)", hide_input=True).strip()
        else:
            fail("give the token on standard input with --token-stdin, or with --token")
        if not secret:
            fail("the token is empty")
        async with client(Connection(url, secret, "login")) as api:
            viewer = (await api.whoami()).viewer
        name = profile or GLOBALS.profile or "default"
        path = save_profile(name, url, secret)
        out.note(t("auth.saved", url=url, user=viewer.user.display_name, profile=name, path=path))
        if out.json:
            out.document(
                {"profile": name, "url": url, "user": viewer.user.model_dump(by_alias=True)}
            )

    run(out, verb)


@auth_app.command("logout", epilog="Example:\n\n  enclii --profile prod auth logout")
def logout(
    profile: Annotated[str, typer.Option("--profile", help="The profile to sign out of.")] = "",
) -> None:
    """Forget a profile's token (the profile's URL stays)."""
    out = Output()

    async def verb() -> None:
        name = profile_name(profile or GLOBALS.profile, read_config()) or "default"
        if forget_token(name):
            out.note(t("auth.forgot", profile=name))
        else:
            out.note(t("auth.nothing", profile=name))

    run(out, verb)


@auth_app.command(
    "whoami",
    epilog="Examples:\n\n  enclii auth whoami --json\n\n  enclii auth whoami --project shop",
)
def whoami(
    project: Annotated[
        str | None,
        typer.Option("--project", "-p", help="Also your role and what you may do in this project."),
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Who the API says you are, where, your role, and what you may do with this token."""
    out = Output(json=json_)

    async def verb() -> None:
        conn = connection()
        async with client(conn) as api:
            viewer = (await api.whoami()).viewer
            access = None
            if project is not None:
                access = (await api.project_access(project)).project
                if access is None:
                    fail(t("missing.project", project=project))
        if out.json:
            document: dict[str, Any] = {
                "url": conn.url,
                "source": conn.source,
                "user": viewer.user.model_dump(mode="json", by_alias=True),
                "account": viewer.account.model_dump(mode="json", by_alias=True),
                "role": viewer.role.value if viewer.role else None,
                "can": viewer.can.model_dump(mode="json", by_alias=True),
            }
            if access is not None:
                document["project"] = {
                    "id": access.id,
                    "slug": access.slug,
                    "role": access.viewer_role.value if access.viewer_role else None,
                    "can": access.viewer_can.model_dump(mode="json", by_alias=True),
                }
            out.document(document)
            return
        user = viewer.user
        rows = [
            ["user", f"{user.display_name} ({user.id})"],
            ["email", user.email or ""],
            ["account", viewer.account.name],
            ["role", _role(viewer.role)],
            ["may", _may(viewer.can)],
        ]
        if access is not None:
            rows += [
                ["project", access.slug],
                ["project role", _role(access.viewer_role)],
                ["project may", _may(access.viewer_can)],
            ]
        rows += [
            ["api", conn.url],
            ["from", conn.source if conn.source != "login" else str(config_path())],
        ]
        out.table(["FIELD", "VALUE"], rows)

    run(out, verb)


def _role(role: Role | None) -> str:
    return role.value.lower() if role is not None else t("role.none")


def _may(can: CapabilitiesView) -> str:
    """The capabilities that are true, in words, in the API's order (tests/client/test_i18n.py
    checks every field of the fragment has its words)."""
    allowed = [t(f"can.{name}") for name, value in can if value is True]
    return ", ".join(allowed) or t("can.nothing")


@token_app.command(
    "create",
    epilog="Examples:\n\n  enclii auth token create ci --scopes deploy:write,logs:read --expires 30d\n\n"
    "  enclii auth token create reader --scopes logs:read --project shop --json",
)
def token_create(
    name: Annotated[str, typer.Argument(help="What the token is for.")],
    scopes: Annotated[
        str, typer.Option("--scopes", help="Comma-separated: deploy:write,logs:read,… or *.")
    ] = "*",
    expires: Annotated[
        str | None, typer.Option("--expires", help="How long it lives: 30d, 12h (default 90d).")
    ] = None,
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="Limit it to one project (its slug).")
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Create a personal access token; it is printed once, on stdout."""
    out = Output(json=json_)

    async def verb() -> None:
        from client.api.create_token import CreateTokenCreateTokenCreateTokenSuccess
        from client.api.input_types import CreateTokenInput

        wanted = [s.strip() for s in scopes.split(",") if s.strip()]
        if not wanted:
            fail("--scopes names nothing")
        async with client() as api:
            project_id = None
            if project is not None:
                found = (await api.project_by_slug(project)).project
                if found is None:
                    fail(t("missing.project", project=project))
                project_id = found.id
            result = (
                await api.create_token(
                    CreateTokenInput(
                        name=name, scopes=wanted, project_id=project_id, expires_in=expires
                    )
                )
            ).create_token
            made = expect(result, CreateTokenCreateTokenCreateTokenSuccess)
        if out.json:
            out.document(
                {"secret": made.secret, "token": made.token.model_dump(mode="json", by_alias=True)}
            )
            return
        out.note(t("token.created", name=made.token.name))
        out.line(made.secret)

    run(out, verb)
