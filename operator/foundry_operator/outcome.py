"""What a reconciliation decided: status fields, conditions, Events, and whether to retry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from foundry_operator.api.models import FoundryAccountStatus, FoundryDeploymentStatus
from foundry_operator.conditions import READY, RECONCILING, STALLED, ConditionUpdate
from foundry_operator.errors import Classified


@dataclass(frozen=True)
class EventNote:
    type: str  # Normal or Warning
    reason: str
    message: str


S = TypeVar("S", bound=BaseModel)


@dataclass
class Outcome(Generic[S]):
    # The status fields decided, as the pydantic status model: only the fields set are patched
    # (conditions and observedGeneration are merged apart, from the raw list).
    status: S
    conditions: list[ConditionUpdate] = field(default_factory=list)
    events: list[EventNote] = field(default_factory=list)
    retry_after: float | None = None  # set: kopf retries the handler after this many seconds
    retry_message: str = ""
    requeue_after: float | None = None  # set: nothing failed, but come back then (a drain ends)

    def note(self, reason: str, message: str) -> None:
        self.events.append(EventNote("Normal", reason, message))

    def warn(self, reason: str, message: str) -> None:
        self.events.append(EventNote("Warning", reason, message))

    def status_patch(self) -> dict[str, Any]:
        """The fields set, as the API wants them: camelCase; None deletes a field (a merge patch)."""
        patch: dict[str, Any] = self.status.model_dump(
            by_alias=True, exclude_unset=True, mode="json", exclude={"conditions", "observed_generation"}
        )
        # List entries (candidates, retiring) carry no nulls: the schema types their fields as strings.
        for key, value in patch.items():
            if isinstance(value, list):
                patch[key] = [
                    {k: v for k, v in item.items() if v is not None} if isinstance(item, dict) else item
                    for item in value
                ]
        return patch


DeploymentOutcome = Outcome[FoundryDeploymentStatus]
AccountOutcome = Outcome[FoundryAccountStatus]


def deployment_outcome() -> DeploymentOutcome:
    return Outcome(FoundryDeploymentStatus())


def transient(outcome: Outcome[S], reason: str, message: str, retry_seconds: float) -> Outcome[S]:
    """Not converged for a passing reason: Reconciling, retried after `retry_seconds`."""
    outcome.conditions += [
        ConditionUpdate(READY, False, reason, message),
        ConditionUpdate(RECONCILING, True, reason, message),
        ConditionUpdate(STALLED, False, reason),
    ]
    outcome.retry_after = retry_seconds
    outcome.retry_message = message
    return outcome


def stalled(outcome: Outcome[S], reason: str, message: str, *extra: ConditionUpdate) -> Outcome[S]:
    """Not converged until something changes (the spec, a Secret, Azure): Stalled, with a Warning."""
    outcome.conditions += [
        ConditionUpdate(READY, False, reason, message),
        ConditionUpdate(STALLED, True, reason, message),
        ConditionUpdate(RECONCILING, False, reason),
        *extra,
    ]
    outcome.warn(reason, message)
    return outcome


def failed(
    outcome: Outcome[S], error: Classified, retry_seconds: float, *extra: ConditionUpdate
) -> Outcome[S]:
    """An error as `errors.classify` judged it: the retry and the conditions follow from it."""
    if error.transient:
        return transient(outcome, error.reason, error.text, retry_seconds * (error.retry_factor or 1.0))
    stalled(outcome, error.reason, error.text, *extra)
    if error.retry_factor is not None:
        outcome.retry_after = retry_seconds * error.retry_factor
        outcome.retry_message = error.text
    return outcome
