"""Running a verb against the API: the connection (client/config.py), the typed client, and
the one place where failures become messages and exit codes.

Exit codes are the product spec's (section 7.1): 0 success, 10 the request was refused as
given (validation, not found, conflict), 20 a build failed, 30 a deployment failed, 40 a
wait ran out, 50 authentication or permission. Anything else — the server unreachable, an
unexpected answer — is 1.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer

from client.cli.exit_codes import ExitCode
from client.cli.i18n import t
from client.cli.output import Output
from client.config import ConfigError, Connection, resolve

if TYPE_CHECKING:
    from client.api.client import EncliiClient

T = TypeVar("T")

GENERAL_FAILURE = 1
INTERRUPTED = 130


@dataclass
class Globals:
    """Options given before the verb: ``enclii --profile work ps``."""

    api_url: str | None = None
    token: str | None = None
    profile: str | None = None


GLOBALS = Globals()


class CliError(Exception):
    def __init__(
        self,
        message: str,
        code: int,
        hint: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.hint = hint
        self.details = details or {}


def fail(
    message: str,
    code: int = ExitCode.VALIDATION,
    hint: str | None = None,
    details: dict[str, Any] | None = None,
) -> NoReturn:
    """Stop the verb. With --json, ``details`` go into the error document beside
    ``error`` (a failed deployment's report, say), so stdout still holds one document."""
    raise CliError(message, code, hint, details)


def connection() -> Connection:
    return resolve(GLOBALS.api_url, GLOBALS.token, GLOBALS.profile)


def client(conn: Connection | None = None) -> EncliiClient:
    from client.api.client import EncliiClient

    conn = conn or connection()
    return EncliiClient(conn.url, conn.token)


def expect(result: object, success: type[T]) -> T:
    """The success member of a mutation's result union; one of its errors stops the verb
    with the server's message (ForbiddenError: exit 50; the others: 10)."""
    if isinstance(result, success):
        return result
    typename = str(getattr(result, "typename__", type(result).__name__))
    message = str(getattr(result, "message", typename))
    fail(message, ExitCode.AUTH if typename == "ForbiddenError" else ExitCode.VALIDATION)


_AUTH_CODES = {"UNAUTHENTICATED", "FORBIDDEN"}
# The request was refused as given: what it names is wrong or missing.
_REFUSED_CODES = {
    "BAD_USER_INPUT",
    "VALIDATION_FAILED",
    "NOT_FOUND",
    "CONFLICT",
    "GRAPHQL_VALIDATION_FAILED",
    "QUERY_TOO_COSTLY",
}


def run(out: Output, verb: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``verb`` and turn what can go wrong into a message and an exit code."""
    import asyncio

    from client.api.base_client import ApiError, ApiUnreachable

    code = 0
    try:
        asyncio.run(verb())
    except CliError as exc:
        code = exc.code
        _report(out, exc.message, code, exc.hint, details=exc.details)
    except ConfigError as exc:
        code = ExitCode.VALIDATION
        _report(out, str(exc), code, None)
    except ApiError as exc:
        if exc.code == "RATE_LIMITED":
            code = GENERAL_FAILURE
        elif exc.code in _AUTH_CODES:
            code = ExitCode.AUTH
        elif exc.code in _REFUSED_CODES:
            code = ExitCode.VALIDATION
        else:
            code = GENERAL_FAILURE
        hint = t("hint.auth") if exc.code == "UNAUTHENTICATED" else None
        _report(out, str(exc), code, hint, exc.code)
    except ApiUnreachable as exc:
        code = GENERAL_FAILURE
        _report(out, str(exc), code, t("hint.unreachable"))
    except KeyboardInterrupt:
        code = INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`enclii logs -f | head`): stop quietly, as Unix tools do;
        # point stdout at nothing so the interpreter's last flush does not complain.
        import os
        import sys

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if code:
        raise typer.Exit(code)


def _report(
    out: Output,
    message: str,
    code: int,
    hint: str | None,
    kind: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    out.error(message)
    if hint:
        out.hint(hint)
    if out.json:
        error: dict[str, Any] = {"message": message, "exitCode": int(code)}
        if kind:
            error["code"] = kind
        out.final({**(details or {}), "error": error})
