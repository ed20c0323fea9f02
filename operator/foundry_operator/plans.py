"""What the planner reads (facts) and returns (a plan of steps): plain values, no I/O.

The reconciler's observe step and `check` fill `DeploymentFacts`; `planning.plan` returns a `Plan`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from foundry_operator.api.models import (
    CandidateStatus,
    FoundryDeploymentSpec,
    FoundryDeploymentStatus,
    RetiringDeployment,
)
from foundry_operator.azure.arm import DeploymentSnapshot, DesiredDeployment
from foundry_operator.catalog import ModelOffer, QuotaUsage, RegionCatalog
from foundry_operator.outcome import DeploymentOutcome
from foundry_operator.placement import Candidate, Placement
from foundry_operator.refusals import Blocker, Elsewhere
from foundry_operator.views import KeyClaim, NameClaim

# How soon to look again while a FoundryAccount is not Ready yet (accounts applied with deployments).
ACCOUNT_WAIT_SECONDS = 3.0


def owner_tag(owner: str) -> str:
    return owner.replace("/", ".")


@dataclass(frozen=True)
class AccountFacts:
    """A usable candidate account (Ready, allowed, credentials resolved)."""

    ref: str  # as written in spec.accounts
    namespace: str
    name: str
    account_name: str
    location: str | None
    kind: str | None
    arm_id: str
    endpoint: str | None
    endpoints: Mapping[str, str] = field(default_factory=dict)

    @property
    def qualified(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class DeploymentFacts:
    owner: str  # namespace/name
    namespace: str
    name: str
    created: str  # views.seniority: creationTimestamp, then uid
    keys: tuple[str, ...]
    spec: FoundryDeploymentSpec
    status: FoundryDeploymentStatus
    candidates: tuple[Candidate, ...]
    accounts: Mapping[str, AccountFacts]  # usable candidates by ref
    catalogs: Mapping[str, RegionCatalog]
    usages: Mapping[str, Mapping[str, QuotaUsage]]
    # What Azure holds: deployments by account ARM id (lower case), then name (lower case).
    deployments: Mapping[str, Mapping[str, DeploymentSnapshot]]
    now: datetime
    # Every object's wish for or hold on this Azure deployment name (this object's included).
    name_claims: Sequence[NameClaim] = ()
    key_claims: Sequence[
        KeyClaim
    ] = ()  # the claims of objects asking for one of these keys in this ConfigMap
    retiring_accounts: Mapping[str, str] = field(default_factory=dict)  # qualified ref -> ARM id
    retry_seconds: float = ACCOUNT_WAIT_SECONDS  # the operator's transient retry delay
    elsewhere: Elsewhere | None = None
    # Quota taken by deployments decided before this one (check reserves in manifest order).
    reserved: Mapping[str, Mapping[str, int]] = field(default_factory=dict)


# -- steps ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LookElsewhere:
    """Placement failed: read where else the model is offered, then plan again."""


@dataclass(frozen=True)
class Deploy:
    account: AccountFacts
    desired: DesiredDeployment
    existing: DeploymentSnapshot | None
    replacement: str | None  # the catalog's replacement model, named if Azure refuses the model


@dataclass(frozen=True)
class Serve:
    """The Azure deployment as it is (no write needed): adopted or unchanged."""

    account: AccountFacts
    existing: DeploymentSnapshot
    adopted: bool


@dataclass(frozen=True)
class Publish:
    account: AccountFacts
    keys: tuple[str, ...]
    endpoint: str | None
    api_flavor: str
    offer: ModelOffer  # the catalog entry: capabilities, retirement date and replacement


@dataclass(frozen=True)
class Retire:
    """Record the replaced deployment with the end of its drain (in the same status patch as the switch)."""

    deployment: RetiringDeployment


@dataclass(frozen=True)
class DeleteRetired:
    deployment: RetiringDeployment
    arm_id: str


@dataclass(frozen=True)
class LeaveRetired:
    """A replaced deployment this object did not create (adopted), or Orphan policy: left, reported."""

    deployment: RetiringDeployment
    why: str


Step = LookElsewhere | Deploy | Serve | Publish | Retire | DeleteRetired | LeaveRetired


@dataclass
class Plan:
    steps: list[Step]
    outcome: DeploymentOutcome  # status fields, conditions and Events decided before any step runs
    placement: Placement | None = None
    requeue_after: float | None = None  # the next drain ends then: come back, nothing failed
    blocker: Blocker | None = None  # why the change cannot go ahead (the same text `check` prints)

    @property
    def writes(self) -> list[Step]:
        return [s for s in self.steps if isinstance(s, (Deploy, DeleteRetired))]


# -- status helpers ------------------------------------------------------------------------------


def without_nulls(entry: dict[str, Any]) -> dict[str, Any]:
    """A status list entry without null fields: the schema types them as strings, not nullable."""
    return {key: value for key, value in entry.items() if value is not None}


def candidate_status(placement: Placement) -> list[CandidateStatus]:
    chosen_ref = placement.chosen.candidate.ref if placement.chosen else None
    return [
        CandidateStatus.model_validate(
            without_nulls(
                {
                    "account": verdict.candidate.ref,
                    "region": verdict.candidate.region,
                    "eligible": verdict.eligible,
                    "reason": ("chosen: " if verdict.candidate.ref == chosen_ref else "")
                    + verdict.reason
                    + (f" (fix: {verdict.suggestion})" if verdict.suggestion else ""),
                }
            )
        )
        for verdict in placement.verdicts
    ]
