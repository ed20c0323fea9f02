"""Client-side pacing of ARM requests, so that ARM's throttling never reaches a user.

ARM throttles each (subscription, principal) with token buckets: reads 250 with a refill of
25/s, writes and deletes 200 with 10/s (the limits published in 2024). azure-core's retry policy
answers a 429 by waiting Retry-After and trying again, but a burst (a thousand FoundryDeployments
reconciled at start-up, each reading its deployment) makes every waiting request retry at once:
25 get through per second, the rest are refused again, and after a few rounds they run out of
retries and the 429 lands in a condition. Pacing keeps the requests in the operator instead:
each one takes a token from a local bucket with ARM's limits (waiting in FIFO order when none is
left; the requests of a write that holds its account go first, then the shared reads that
many objects wait on, then each object's own reads), the
`x-ms-ratelimit-remaining-subscription-*` header that ARM returns lowers the local count when
someone else shares the budget, and a 429 that still happens empties the bucket until its
Retry-After.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import AsyncHTTPPolicy

Kind = Literal["read", "write", "delete"]

REMAINING_HEADERS: dict[Kind, str] = {
    "read": "x-ms-ratelimit-remaining-subscription-reads",
    "write": "x-ms-ratelimit-remaining-subscription-writes",
    "delete": "x-ms-ratelimit-remaining-subscription-deletes",
}


@dataclass(frozen=True)
class Limit:
    capacity: int
    refill_per_second: float


# ARM's published limits per subscription and principal (https://aka.ms/arm-throttling).
ARM_LIMITS: dict[Kind, Limit] = {
    "read": Limit(250, 25.0),
    "write": Limit(200, 10.0),
    "delete": Limit(200, 10.0),
}


# Who waits on a request decides its place in the queue for ARM tokens:
URGENT = 0  # a write holding its account's slot (the PUT, its operation's polls, the final GET)
SHARED = 1  # a cache load (catalog, usages, listing) that many reconciliations wait on
NORMAL = 2  # one object's own read
_PRIORITY: contextvars.ContextVar[int] = contextvars.ContextVar("arm_priority", default=NORMAL)


@contextmanager
def priority(level: int) -> Iterator[None]:
    """Requests made inside the block queue at `level`, or higher if the caller already was."""
    token = _PRIORITY.set(min(level, _PRIORITY.get()))
    try:
        yield
    finally:
        _PRIORITY.reset(token)


def urgent() -> contextlib.AbstractContextManager[None]:
    return priority(URGENT)


def shared() -> contextlib.AbstractContextManager[None]:
    return priority(SHARED)


def request_kind(method: str) -> Kind:
    """ARM counts GET/HEAD as reads, DELETE as deletes, everything else (PUT, PATCH, POST) as writes."""
    method = method.upper()
    if method in ("GET", "HEAD"):
        return "read"
    return "delete" if method == "DELETE" else "write"


class TokenBucket:
    """ARM's token bucket, mirrored: requests wait here (urgent ones first) rather than at ARM."""

    def __init__(self, limit: Limit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self.tokens = float(limit.capacity)
        self._updated = clock()
        self._blocked_until = 0.0
        # Waiters in FIFO order within each priority: a burst of per-object reads (a thousand
        # objects at start-up) must stretch neither the writes that hold an account nor the
        # shared reads that every reconciliation of a region waits for.
        self._queues: tuple[deque[asyncio.Future[None]], ...] = (deque(), deque(), deque())
        self._server: asyncio.Task[None] | None = None
        self.waited_seconds = 0.0  # total time requests spent waiting here (for metrics and tests)

    def _refill(self, now: float) -> None:
        self.tokens = min(
            float(self.limit.capacity), self.tokens + (now - self._updated) * self.limit.refill_per_second
        )
        self._updated = now

    async def take(self, level: int = NORMAL) -> None:
        now = self._clock()
        self._refill(now)
        if not any(self._queues) and self._blocked_until <= now and self.tokens >= 1:
            self.tokens -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queues[level].append(waiter)
        if self._server is None or self._server.done():
            self._server = asyncio.create_task(self._serve())
        try:
            await waiter
        finally:
            self.waited_seconds += self._clock() - now

    def _next_waiter(self) -> asyncio.Future[None] | None:
        for queue in self._queues:
            while queue:
                waiter = queue.popleft()
                if not waiter.done():  # a cancelled request gave up its place
                    return waiter
        return None

    async def _serve(self) -> None:
        """Hand out tokens to the waiters as the bucket refills."""
        while any(self._queues):
            now = self._clock()
            self._refill(now)
            wait = self._blocked_until - now
            if wait <= 0:
                if self.tokens >= 1:
                    waiter = self._next_waiter()
                    if waiter is not None:
                        self.tokens -= 1
                        waiter.set_result(None)
                    continue
                wait = (1 - self.tokens) / self.limit.refill_per_second
            await asyncio.sleep(wait)

    def observe(self, remaining: int | None, retry_after: float | None) -> None:
        """What ARM said: the tokens it has left for us, and, on a 429, how long to hold off."""
        now = self._clock()
        self._refill(now)
        if remaining is not None and remaining < self.tokens:
            self.tokens = float(remaining)
        if retry_after is not None:
            self.tokens = 0.0
            self._blocked_until = max(self._blocked_until, now + retry_after)


class ArmPacing:
    """The buckets of one (subscription, principal): one management client."""

    def __init__(
        self, limits: dict[Kind, Limit] | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.buckets = {kind: TokenBucket(limit, clock) for kind, limit in (limits or ARM_LIMITS).items()}


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP-date Retry-After: ARM sends seconds; fall back to the refill rate


class ArmPacingPolicy(AsyncHTTPPolicy[Any, Any]):
    """Per-retry policy: every attempt, retries included, takes a token first."""

    def __init__(self, pacing: ArmPacing) -> None:
        super().__init__()
        self._pacing = pacing

    async def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        bucket = self._pacing.buckets[request_kind(request.http_request.method)]
        await bucket.take(_PRIORITY.get())
        response = await self.next.send(request)
        http = response.http_response
        kind = request_kind(request.http_request.method)
        remaining = _number(http.headers.get(REMAINING_HEADERS[kind]))
        retry_after = _number(http.headers.get("Retry-After")) if http.status_code == 429 else None
        if http.status_code == 429 and retry_after is None:
            retry_after = 1.0
        bucket.observe(int(remaining) if remaining is not None else None, retry_after)
        return response
