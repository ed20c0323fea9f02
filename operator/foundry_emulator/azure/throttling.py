"""ARM's request throttling: token buckets per subscription, principal and operation type.

Since 2024 ARM throttles per region with a token bucket (reads: 250, refill 25/s; writes and
deletes: 200, refill 10/s). The emulator is one region, so a bucket is keyed by
(subscription, principal, kind). Every ARM response reports what is left in the bucket it drew
from, in ``x-ms-ratelimit-remaining-subscription-{reads,writes,deletes}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .scenario import Bucket, Throttling

OperationKind = Literal["read", "write", "delete"]

HEADERS: dict[OperationKind, str] = {
    "read": "x-ms-ratelimit-remaining-subscription-reads",
    "write": "x-ms-ratelimit-remaining-subscription-writes",
    "delete": "x-ms-ratelimit-remaining-subscription-deletes",
}


def operation_kind(method: str) -> OperationKind:
    """ARM counts GET (and HEAD) as reads, DELETE as deletes and everything else (PUT, PATCH, POST
    actions such as listKeys) as writes."""
    if method in ("GET", "HEAD"):
        return "read"
    return "delete" if method == "DELETE" else "write"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int
    retry_after: int  # whole seconds until a token is available; 0 when allowed


class _TokenBucket:
    def __init__(self, spec: Bucket, now: float) -> None:
        self.capacity = spec.capacity
        self.refill = spec.refillPerSecond
        self.tokens = float(spec.capacity)
        self.updated = now

    def take(self, now: float) -> Decision:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.refill)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return Decision(True, int(self.tokens), 0)
        # Retry-After is whole seconds on the wire; round up so that the retry finds a token.
        return Decision(False, 0, max(1, math.ceil((1 - self.tokens) / self.refill)))


class Throttler:
    def __init__(self, config: Throttling, clock: Callable[[], float]) -> None:
        self._config = config
        self._clock = clock
        self._buckets: dict[tuple[str, str, OperationKind], _TokenBucket] = {}

    def configure(self, config: Throttling) -> None:
        """New limits; the buckets start full again."""
        self._config = config
        self._buckets.clear()

    def take(self, subscription: str, principal: str, kind: OperationKind) -> Decision:
        limits = {"read": self._config.reads, "write": self._config.writes, "delete": self._config.deletes}
        spec = limits[kind]
        if not self._config.enabled:
            return Decision(True, spec.capacity - 1, 0)
        key = (subscription.lower(), principal.lower(), kind)
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _TokenBucket(spec, now)
        return bucket.take(now)
