"""asyncio helpers with the cancellation semantics every layer needs.

They sit at the bottom of the layering (in ``store``) so that ``reconcile``, ``resolvers``
and ``graph`` share one definition.

Python 3.11's ``asyncio.wait_for`` can lose a cancellation (when the awaited thing finishes
in the same loop iteration as the cancel, it returns the result instead of raising), and a
loop that calls it repeatedly then never stops: Enclii uses ``asyncio.timeout`` instead, and
ruff bans ``asyncio.wait_for`` in the packages.
"""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Future[Any] | None, ignore_errors: bool = False) -> None:
    """Cancel ``tasks`` (None entries are skipped) and wait until each has finished.

    Their own CancelledError is absorbed; a cancellation of the *calling* task is not. The
    usual ``with suppress(CancelledError): await task`` absorbs both, and a caller told to
    stop while it waits runs on as if nothing had asked (at shutdown: a loop that never
    ends). With ``ignore_errors`` an exception a task ended with is dropped too (it has been
    reported where it happened); otherwise it propagates once every task has finished.
    """
    pending = [task for task in tasks if task is not None]
    for task in pending:
        task.cancel()
    error: BaseException | None = None
    for task in pending:
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        except Exception as exc:
            if not ignore_errors and error is None:
                error = exc
    if error is not None:
        raise error
