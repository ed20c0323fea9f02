"""A TTL cache whose concurrent misses share one load (single flight).

Every FoundryDeployment that needs the catalog of westus at the same moment waits for the one
request that is already under way instead of sending its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from foundry_operator.azure.pacing import shared
from foundry_operator.metrics import Metrics

V = TypeVar("V")


@dataclass
class _Slot(Generic[V]):
    value: V
    expires: float


class TtlCache(Generic[V]):
    def __init__(
        self, name: str, ttl_seconds: float, metrics: Metrics, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.name = name
        self.ttl_seconds = ttl_seconds
        self._metrics = metrics
        self._clock = clock
        self._slots: dict[Hashable, _Slot[V]] = {}
        self._loading: dict[Hashable, asyncio.Future[V]] = {}

    async def get(self, key: Hashable, load: Callable[[], Awaitable[V]]) -> V:
        slot = self._slots.get(key)
        if slot is not None and slot.expires > self._clock():
            self._metrics.catalog_lookups.labels(self.name, "hit").inc()
            return slot.value
        pending = self._loading.get(key)
        if pending is not None:
            self._metrics.catalog_lookups.labels(self.name, "shared").inc()
            return await asyncio.shield(pending)
        self._metrics.catalog_lookups.labels(self.name, "miss").inc()
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            with shared():  # many reconciliations wait on this load: it goes before their own reads
                value = await load()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        else:
            self._slots[key] = _Slot(value, self._clock() + self.ttl_seconds)
            future.set_result(value)
            return value
        finally:
            self._loading.pop(key, None)

    def peek(self, key: Hashable) -> V | None:
        slot = self._slots.get(key)
        return slot.value if slot is not None and slot.expires > self._clock() else None

    def invalidate(self, key: Hashable) -> None:
        self._slots.pop(key, None)

    def put(self, key: Hashable, value: V) -> None:
        self._slots[key] = _Slot(value, self._clock() + self.ttl_seconds)
