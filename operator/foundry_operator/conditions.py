"""Status conditions as Argo CD, kstatus and `kubectl wait --for=condition=Ready` read them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

READY = "Ready"
RECONCILING = "Reconciling"  # kstatus: work in progress
STALLED = "Stalled"  # kstatus: cannot progress until the spec (or the world) changes
PLACED = "Placed"
DEPLOYED = "Deployed"
PUBLISHED = "Published"
CONFLICT = "Conflict"
RETIREMENT_SOON = "RetirementSoon"
IN_USE = "InUse"  # FoundryAccount: some FoundryDeployment is placed on it (False: it can be retired)
CONSUMER_ACCESS = "ConsumerAccess"  # spec.consumers can call the model (a data-plane role each)

# Abnormal-true conditions are dropped when they stop applying, as kstatus expects.
_REMOVE_WHEN_FALSE = {RECONCILING, STALLED, CONFLICT, RETIREMENT_SOON}


@dataclass(frozen=True)
class ConditionUpdate:
    type: str
    status: bool | None  # None: Unknown
    reason: str
    message: str = ""
    remove: bool = False  # drop the condition: it no longer applies (spec.consumers emptied, say)


def now_rfc3339(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_conditions(
    existing: Sequence[Mapping[str, Any]] | None,
    updates: Iterable[ConditionUpdate],
    generation: int | None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Apply updates; lastTransitionTime moves only when a condition's status changes."""
    by_type = {str(c.get("type")): dict(c) for c in (existing or [])}
    stamp = now_rfc3339(now)
    for update in updates:
        text = "Unknown" if update.status is None else ("True" if update.status else "False")
        if update.remove or (update.type in _REMOVE_WHEN_FALSE and update.status is False):
            by_type.pop(update.type, None)
            continue
        previous = by_type.get(update.type)
        changed = previous is None or previous.get("status") != text
        by_type[update.type] = {
            "type": update.type,
            "status": text,
            "reason": update.reason,
            "message": update.message,
            "lastTransitionTime": stamp if changed else previous.get("lastTransitionTime", stamp),  # type: ignore[union-attr]
            "observedGeneration": generation,
        }
    order = [
        READY,
        RECONCILING,
        STALLED,
        PLACED,
        DEPLOYED,
        PUBLISHED,
        CONFLICT,
        RETIREMENT_SOON,
        CONSUMER_ACCESS,
    ]
    return sorted(
        by_type.values(), key=lambda c: order.index(c["type"]) if c["type"] in order else len(order)
    )


def condition(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any] | None:
    return next((c for c in (conditions or []) if c.get("type") == type_), None)


def is_true(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> bool:
    found = condition(conditions, type_)
    return found is not None and found.get("status") == "True"
