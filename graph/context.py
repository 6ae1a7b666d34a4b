"""What every GraphQL resolver gets as ``info.context``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.types import Info as StrawberryInfo

from graph.loaders import Loaders
from resolvers.context import Context


@dataclass
class GraphContext:
    ctx: Context
    request: Request | WebSocket
    response: Response | None
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders()


Info = StrawberryInfo[GraphContext, Any]
