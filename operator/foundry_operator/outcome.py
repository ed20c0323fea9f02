"""What a reconciliation decided: status fields, conditions, Events, and whether to retry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from foundry_operator.conditions import ConditionUpdate


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
