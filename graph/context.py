"""What every GraphQL resolver gets as ``info.context``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.types import Info as StrawberryInfo

from graph.loaders import Loaders
from resolvers.context import Context
from resolvers.identity.authenticate import Authenticator
from store.blobs import BlobStore

if TYPE_CHECKING:
    from graph.websockets import Connections


@dataclass
class GraphContext:
    ctx: Context
    request: Request | WebSocket | None
    response: Response | None
    authenticator: Authenticator | None = None
    connections: Connections | None = None
    blobs: BlobStore | None = None  # where uploads go
    # Set by Strawberry from a websocket's connection_init payload.
    connection_params: dict[str, Any] | None = None
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders()


Info = StrawberryInfo[GraphContext, Any]
