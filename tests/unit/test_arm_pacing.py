"""Client-side pacing of ARM requests (foundry_operator.azure.pacing): the operator waits for a
token instead of being throttled, and a write holding its account goes before other reads."""

from __future__ import annotations

import asyncio
import time

from foundry_operator.azure.pacing import (
    _PRIORITY,
    NORMAL,
    SHARED,
    URGENT,
    Limit,
    TokenBucket,
    request_kind,
    shared,
    urgent,
)


async def test_a_full_bucket_serves_its_capacity_at_once_then_the_refill_rate() -> None:
    bucket = TokenBucket(Limit(capacity=3, refill_per_second=50.0))
    started = time.monotonic()
    for _ in range(3):
        await bucket.take()
    assert time.monotonic() - started < 0.01
    for _ in range(5):
        await bucket.take()
    # Five more tokens at 50/s: about 0.1 s, never faster than the refill allows.
    assert 0.08 <= time.monotonic() - started < 0.5


async def test_urgent_then_shared_then_normal_and_each_class_keeps_its_order() -> None:
    bucket = TokenBucket(Limit(capacity=1, refill_per_second=100.0))
    await bucket.take()  # empty now: everyone below waits
    served: list[str] = []

    async def take(name: str, level: int) -> None:
        await bucket.take(level)
        served.append(name)

    tasks = [asyncio.create_task(take(f"read-{i}", NORMAL)) for i in range(2)]
    await asyncio.sleep(0)  # the object reads queue first
    tasks += [asyncio.create_task(take("catalog", SHARED))]
    tasks += [asyncio.create_task(take(f"poll-{i}", URGENT)) for i in range(2)]
    await asyncio.gather(*tasks)
    assert served == ["poll-0", "poll-1", "catalog", "read-0", "read-1"]


async def test_a_cancelled_waiter_gives_up_its_place() -> None:
    bucket = TokenBucket(Limit(capacity=1, refill_per_second=20.0))
    await bucket.take()
    gone = asyncio.create_task(bucket.take())
    await asyncio.sleep(0)
    gone.cancel()
    started = time.monotonic()
    await asyncio.wait_for(bucket.take(), 1.0)  # served by the first refill, not the second
    assert time.monotonic() - started < 0.09


async def test_what_arm_reports_lowers_the_local_count_and_a_429_holds_everyone_off() -> None:
    bucket = TokenBucket(Limit(capacity=250, refill_per_second=25.0))
    bucket.observe(remaining=0, retry_after=None)  # someone else drained the shared budget
    assert bucket.tokens < 1
    bucket.observe(remaining=None, retry_after=0.2)
    started = time.monotonic()
    await bucket.take()
    assert time.monotonic() - started >= 0.19


def test_arm_counts_methods_as_reads_writes_and_deletes() -> None:
    assert [request_kind(m) for m in ("GET", "head", "PUT", "PATCH", "POST", "DELETE")] == [
        "read",
        "read",
        "write",
        "write",
        "write",
        "delete",
    ]


def test_priority_is_scoped_to_the_block_and_never_lowered() -> None:
    assert _PRIORITY.get() == NORMAL
    with urgent():
        assert _PRIORITY.get() == URGENT
        with shared():  # a cache load inside a write stays urgent
            assert _PRIORITY.get() == URGENT
    with shared():
        assert _PRIORITY.get() == SHARED
    assert _PRIORITY.get() == NORMAL
