"""What a reconciliation decided: status fields, conditions, Events, and whether to retry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from foundry_operator.conditions import READY, RECONCILING, STALLED, ConditionUpdate
from foundry_operator.errors import Classified


@dataclass(frozen=True)
class EventNote:
    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass
class Outcome:
    status: dict[str, Any] = field(default_factory=dict)
    conditions: list[ConditionUpdate] = field(default_factory=list)
    events: list[EventNote] = field(default_factory=list)
    retry_after: float | None = None  # set: kopf retries the handler after this many seconds
    retry_message: str = ""
    requeue_after: float | None = None  # set: nothing failed, but come back then (a drain ends)

    def note(self, reason: str, message: str) -> None:
        self.events.append(EventNote("Normal", reason, message))

    def warn(self, reason: str, message: str) -> None:
        self.events.append(EventNote("Warning", reason, message))


def transient(outcome: Outcome, reason: str, message: str, retry_seconds: float) -> Outcome:
    """Not converged for a passing reason: Reconciling, retried after `retry_seconds`."""
    outcome.conditions += [
        ConditionUpdate(READY, False, reason, message),
        ConditionUpdate(RECONCILING, True, reason, message),
        ConditionUpdate(STALLED, False, reason),
    ]
    outcome.retry_after = retry_seconds
    outcome.retry_message = message
    return outcome


def stalled(outcome: Outcome, reason: str, message: str, *extra: ConditionUpdate) -> Outcome:
    """Not converged until something changes (the spec, a Secret, Azure): Stalled, with a Warning."""
    outcome.conditions += [
        ConditionUpdate(READY, False, reason, message),
        ConditionUpdate(STALLED, True, reason, message),
        ConditionUpdate(RECONCILING, False, reason),
        *extra,
    ]
    outcome.warn(reason, message)
    return outcome


def failed(outcome: Outcome, error: Classified, retry_seconds: float, *extra: ConditionUpdate) -> Outcome:
    """An error as `errors.classify` judged it: the retry and the conditions follow from it."""
    if error.transient:
        return transient(outcome, error.reason, error.text, retry_seconds * (error.retry_factor or 1.0))
    stalled(outcome, error.reason, error.text, *extra)
    if error.retry_factor is not None:
        outcome.retry_after = retry_seconds * error.retry_factor
        outcome.retry_message = error.text
    return outcome
