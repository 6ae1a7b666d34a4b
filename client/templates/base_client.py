"""The transport under Enclii's generated client: gql's aiohttp transport for queries and
mutations (a GraphQL multipart request when a variable holds an ``Upload``), gql's
websockets transport speaking graphql-transport-ws for subscriptions.

This file is a template: ``python -m client.codegen`` copies it into ``client/api/`` as
``base_client.py`` beside the code it generates. Edit it here, then regenerate.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

from gql import FileVar, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import (
    TransportClosed,
    TransportConnectionFailed,
    TransportProtocolError,
    TransportQueryError,
    TransportServerError,
)
from gql.transport.websockets import WebsocketsTransport
from graphql import ExecutionResult
from pydantic import BaseModel as PydanticBaseModel

from .base_model import UNSET, Upload


@dataclass(frozen=True)
class GraphQLError:
    """One entry of a response's ``errors``."""

    message: str
    code: str | None = None  # extensions.code: UNAUTHENTICATED, FORBIDDEN, BAD_USER_INPUT, …
    reason: str | None = None  # extensions.reason: TOKEN_EXPIRED, …
    path: tuple[str | int, ...] = ()
    extensions: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> GraphQLError:
        extensions = raw.get("extensions") or {}
        return cls(
            message=str(raw.get("message", "")),
            code=extensions.get("code"),
            reason=extensions.get("reason"),
            path=tuple(raw.get("path") or ()),
            extensions=dict(extensions),
        )


class ApiError(Exception):
    """The server answered with errors (and perhaps partial data)."""

    def __init__(self, errors: list[GraphQLError], data: dict[str, Any] | None = None) -> None:
        super().__init__("; ".join(e.message for e in errors) or "the server answered an error")
        self.errors = errors
        self.data = data

    @property
    def code(self) -> str | None:
        return self.errors[0].code if self.errors else None


class ApiUnreachable(Exception):
    """No answer from the server: not listening, a broken connection, or not GraphQL."""


class GqlBaseClient:
    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        ws_url: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.token = token
        self.timeout = timeout
        self.ws_url = ws_url or ("ws" + url[4:] if url.startswith("http") else url)
        self.headers = dict(headers or {})
        if token:
            self.headers["authorization"] = f"Bearer {token}"
        self._http: AIOHTTPTransport | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._http is not None:
            http, self._http = self._http, None
            await http.close()

    async def _transport(self) -> AIOHTTPTransport:
        if self._http is None:
            http = AIOHTTPTransport(
                url=self.url,
                headers=self.headers,
                timeout=int(self.timeout),
                ssl=self.url.startswith("https"),
            )
            await http.connect()
            self._http = http
        return self._http

    async def execute(
        self,
        query: str,
        operation_name: str | None = None,
        variables: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> ExecutionResult:
        values, uploads = _variables(variables)
        request = GraphQLRequest(query, variable_values=values, operation_name=operation_name)
        transport = await self._transport()
        try:
            return await transport.execute(request, upload_files=uploads)
        except TransportServerError as exc:
            raise ApiUnreachable(f"{self.url} answered HTTP {exc.code}: {exc}") from exc
        except (TransportConnectionFailed, TransportProtocolError, TransportClosed) as exc:
            raise ApiUnreachable(f"no GraphQL answer from {self.url}: {exc}") from exc

    def get_data(self, response: ExecutionResult) -> dict[str, Any]:
        if response.errors:
            raise ApiError(_errors(response.errors), response.data)
        return dict(response.data or {})

    async def execute_ws(
        self,
        query: str,
        operation_name: str | None = None,
        variables: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[dict[str, Any]]:
        values, _ = _variables(variables)
        request = GraphQLRequest(query, variable_values=values, operation_name=operation_name)
        transport = WebsocketsTransport(
            url=self.ws_url,
            init_payload={"authorization": f"Bearer {self.token}"} if self.token else {},
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
            connect_timeout=self.timeout,
            ack_timeout=self.timeout,
            close_timeout=5,
            # Ping, and expect the server's pong: a dead connection is noticed.
            ping_interval=20,
            pong_timeout=20,
        )
        try:
            await transport.connect()
        except (
            OSError,
            TransportConnectionFailed,
            TransportProtocolError,
            TransportServerError,
        ) as exc:
            if _close_code(exc) == UNAUTHORIZED_CLOSE:
                raise ApiError(
                    [GraphQLError(_close_reason(exc) or str(exc), code="UNAUTHENTICATED")]
                ) from exc
            raise ApiUnreachable(f"no websocket at {self.ws_url}: {exc}") from exc
        try:
            async for result in transport.subscribe(request):
                if result.errors:
                    raise ApiError(_errors(result.errors))
                yield dict(result.data or {})
        except TransportQueryError as exc:
            raise ApiError(_errors(exc.errors or []) or [GraphQLError(str(exc))]) from exc
        except (
            TransportConnectionFailed,
            TransportClosed,
            TransportProtocolError,
            TransportServerError,
        ) as exc:
            if _close_code(exc) == UNAUTHORIZED_CLOSE:
                raise ApiError(
                    [GraphQLError(_close_reason(exc) or str(exc), code="UNAUTHENTICATED")]
                ) from exc
            raise ApiUnreachable(f"the subscription's connection was lost: {exc}") from exc
        finally:
            await transport.close()


UNAUTHORIZED_CLOSE = 4401  # the server closes a socket whose token is refused or revoked


def _closed(exc: BaseException) -> Any:
    """The websocket close frame behind a transport error, if there is one."""
    seen: BaseException | None = exc
    while seen is not None:
        frame = getattr(seen, "rcvd", None)
        if frame is not None:
            return frame
        seen = seen.__cause__ or seen.__context__
    return None


def _close_code(exc: BaseException) -> int | None:
    frame = _closed(exc)
    return getattr(frame, "code", None)


def _close_reason(exc: BaseException) -> str | None:
    frame = _closed(exc)
    return getattr(frame, "reason", None) or None


def _errors(raw: Sequence[Any]) -> list[GraphQLError]:
    """gql hands over the response's error objects as they came (dicts); graphql-core's
    typing says GraphQLError, which formats to the same shape."""
    return [GraphQLError.from_dict(e if isinstance(e, dict) else dict(e.formatted)) for e in raw]


def _variables(variables: dict[str, Any] | None) -> tuple[dict[str, Any], bool]:
    """Variables as JSON values (pydantic inputs dumped by alias, unset ones left out), with
    each ``Upload`` turned into gql's ``FileVar``; and whether there was one."""
    found = False

    def convert(value: Any) -> Any:
        nonlocal found
        if isinstance(value, PydanticBaseModel):
            return convert(value.model_dump(by_alias=True, exclude_unset=True))
        if isinstance(value, Upload):
            found = True
            return FileVar(value.content, filename=value.filename, content_type=value.content_type)
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items() if v is not UNSET}
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    converted = {k: convert(v) for k, v in (variables or {}).items() if v is not UNSET}
    return converted, found
