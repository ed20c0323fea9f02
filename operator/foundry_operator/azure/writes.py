"""One write at a time per Azure account, from a FIFO queue; foreign RequestConflicts retried.

Azure refuses a second write on an account while one is in flight (409 RequestConflict). Every
tool that writes in parallel hits it; users serialize by hand. Here the operator holds a slot per
account for the whole long-running operation, so its own writes never collide, and a conflict
caused by someone else's write is retried with backoff, bounded.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import TypeVar

from azure.core.exceptions import HttpResponseError

from foundry_operator.azure.pacing import urgent
from foundry_operator.metrics import Metrics

T = TypeVar("T")


def error_code(exc: HttpResponseError) -> str | None:
    if exc.error is not None and exc.error.code:
        return str(exc.error.code)
    return None


def error_message(exc: HttpResponseError) -> str:
    if exc.error is not None and exc.error.message:
        return str(exc.error.message)
    return str(exc.message or exc)


class ConflictPersists(Exception):
    """Someone else kept the account busy through every attempt; retry later."""


class AccountWriteGate:
    def __init__(self, metrics: Metrics, conflict_retry_seconds: float, conflict_retry_attempts: int) -> None:
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._depth: defaultdict[str, int] = defaultdict(int)
        self._metrics = metrics
        self._retry_seconds = conflict_retry_seconds
        self._attempts = conflict_retry_attempts

    async def write(self, account_id: str, operation: Callable[[], Awaitable[T]]) -> T:
        """Run `operation` (a whole PUT/PATCH/DELETE including its LRO) in the account's slot."""
        key = account_id.lower()
        self._depth[key] += 1
        self._metrics.write_queue_depth.labels(key.rsplit("/", 1)[-1]).set(self._depth[key])
        try:
            async with self._locks[key]:  # asyncio.Lock wakes waiters in FIFO order
                with urgent():  # the account waits on this write: its requests skip ARM pacing's queue
                    return await self._with_conflict_retry(operation)
        finally:
            self._depth[key] -= 1
            self._metrics.write_queue_depth.labels(key.rsplit("/", 1)[-1]).set(self._depth[key])

    async def _with_conflict_retry(self, operation: Callable[[], Awaitable[T]]) -> T:
        delay = self._retry_seconds
        for attempt in range(1, self._attempts + 1):
            try:
                return await operation()
            except HttpResponseError as exc:
                if (
                    exc.status_code != 409
                    or error_code(exc) != "RequestConflict"
                    or attempt == self._attempts
                ):
                    if exc.status_code == 409 and error_code(exc) == "RequestConflict":
                        raise ConflictPersists(error_message(exc)) from exc
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)
        raise AssertionError("unreachable")  # pragma: no cover
