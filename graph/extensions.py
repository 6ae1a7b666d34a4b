"""Schema extensions: error codes on top-level errors, and masking of unexpected ones."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

from graphql import GraphQLError
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.extensions import SchemaExtension
from strawberry.types import StreamExecutionResult
from strawberry.types.graphql import OperationType

from graph.context import GraphContext
from resolvers.errors import Failure, Unauthenticated

log = logging.getLogger("enclii.graphql")


class ErrorCodes(SchemaExtension):
    """Every top-level error carries ``extensions.code``. Expected failures keep their
    message; anything unexpected is logged with its traceback and shown as
    INTERNAL_SERVER_ERROR with the request ID, never with internals."""

    def on_operation(self) -> Iterator[None]:
        yield
        self._recode(self.execution_context.result)

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        # Subscriptions: each streamed result, including an error raised by the stream.
        self._recode(result)
        yield

    def _recode(self, result: object) -> None:
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = [self._coded(error) for error in errors]  # type: ignore[attr-defined]

    def _coded(self, error: GraphQLError) -> GraphQLError:
        if error.extensions and "code" in error.extensions:
            return error
        original = error.original_error
        if original is None:
            # Parse and validation errors (unknown field, depth limit, …).
            code = "GRAPHQL_VALIDATION_FAILED"
            return GraphQLError(
                error.message,
                nodes=error.nodes,
                source=error.source,
                positions=error.positions,
                path=error.path,
                extensions={**(error.extensions or {}), "code": code},
            )
        if isinstance(original, StrawberryInputCoercionError):
            # A variable whose value its scalar refuses: the message says what to send.
            return GraphQLError(
                error.message,
                nodes=error.nodes,
                source=error.source,
                positions=error.positions,
                path=error.path,
                extensions={"code": "BAD_USER_INPUT"},
            )
        if isinstance(original, Unauthenticated):
            return GraphQLError(
                original.message,
                nodes=error.nodes,
                path=error.path,
                original_error=original,
                extensions={"code": original.code, "reason": original.reason},
            )
        if isinstance(original, Failure):
            return GraphQLError(
                original.message,
                nodes=error.nodes,
                path=error.path,
                original_error=original,
                extensions={"code": original.code, "argument": ".".join(original.path) or None},
            )
        request_id = None
        context = self.execution_context.context
        if context is not None and hasattr(context, "ctx"):
            request_id = context.ctx.request_id
        log.error(
            "unexpected error in %s (request %s)",
            ".".join(str(p) for p in error.path or []),
            request_id,
            exc_info=original,
        )
        return GraphQLError(
            f"Internal error (request {request_id}); the server log has the details.",
            nodes=error.nodes,
            path=error.path,
            original_error=original,
            extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
        )


class SharedReads(SchemaExtension):
    """A query's reads share one store session (see store.db.Store.shared_reads): the
    dashboard's seven statements check out one connection instead of seven. Mutations and
    subscriptions keep a session per read, because they must see what was just written."""

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = execution.context
        if execution.operation_type is OperationType.QUERY and isinstance(context, GraphContext):
            async with context.ctx.store.shared_reads():
                yield
        else:
            yield
