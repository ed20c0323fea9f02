"""What to do for one FoundryDeployment: a pure decision from facts the reconciler gathered.

observe (I/O: indexes, cached listings, catalogs, usages) -> `plan` (here, no I/O) -> execute
(thin: one step after the other through the gateway's per-account write gate).

A change that replaces the Azure deployment (a new name, a move to another account) is made
before break: the new deployment is created and must succeed, the keys switch to it, and the old
one is recorded in `status.retiring` until its drain ends; only then is it deleted, and only if
this object created it. A model change under a fixed `spec.deploymentName` on the same account
cannot keep the name serving (Azure cannot change a deployment's model in place, and one name
holds one deployment), so it is refused with the fix and the old deployment keeps serving.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from foundry_operator.api.models import (
    FoundryDeploymentSpec,
    FoundryDeploymentStatus,
    PlacementPolicy,
    RetiringDeployment,
    VersionUpgradeOption,
)
from foundry_operator.azure.arm import OWNER_TAG, DeploymentSnapshot, DesiredDeployment
from foundry_operator.catalog import ModelOffer, QuotaUsage, RegionCatalog
from foundry_operator.conditions import (
    CONFLICT,
    PLACED,
    PUBLISHED,
    READY,
    RECONCILING,
    STALLED,
    ConditionUpdate,
    now_rfc3339,
)
from foundry_operator.outcome import Outcome
from foundry_operator.placement import (
    Candidate,
    DeploymentRequest,
    Placement,
    Refusal,
    place,
    refusal_message,
)
from foundry_operator.publishing import PublishedEntry, endpoint_for_format
from foundry_operator.views import Claim, KeyClaim

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
class Elsewhere:
    """Where else the model could go, read only when placement failed (it costs extra reads)."""

    offered_regions: tuple[str, ...] = ()
    fitting_accounts: tuple[str, ...] = ()  # "name (region)" of other accounts that offer it


@dataclass(frozen=True)
class DeploymentFacts:
    owner: str  # namespace/name
    namespace: str
    name: str
    created: str
    keys: tuple[str, ...]
    spec: FoundryDeploymentSpec
    status: FoundryDeploymentStatus
    candidates: tuple[Candidate, ...]
    accounts: Mapping[str, AccountFacts]  # usable candidates by ref
    catalogs: Mapping[str, RegionCatalog]
    usages: Mapping[str, Mapping[str, QuotaUsage]]
    # What Azure holds: deployments by account ARM id (lower case), then name (lower case).
    deployments: Mapping[str, Mapping[str, DeploymentSnapshot]]
    # Other objects' claims on Azure deployment names: (account id lower, name lower) -> claims.
    name_claims: Mapping[tuple[str, str], Sequence[Claim]]
    published: Sequence[PublishedEntry]  # entries of the ConfigMap, every object's
    now: datetime
    retiring_accounts: Mapping[str, str] = field(default_factory=dict)  # qualified ref -> ARM id
    key_claims: Sequence[KeyClaim] = ()  # every object's spec.keys in this ConfigMap
    retry_seconds: float = ACCOUNT_WAIT_SECONDS  # the operator's transient retry delay
    elsewhere: Elsewhere | None = None


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
    outcome: Outcome  # status fields, conditions and Events decided before any step runs
    placement: Placement | None = None
    requeue_after: float | None = None  # the next drain ends then: come back, nothing failed

    @property
    def writes(self) -> list[Step]:
        return [s for s in self.steps if isinstance(s, (Deploy, DeleteRetired))]


# -- condition helpers (shared with the executor) -------------------------------------------------


def transient(outcome: Outcome, reason: str, message: str, retry_seconds: float) -> Outcome:
    outcome.conditions += [
        ConditionUpdate(READY, False, reason, message),
        ConditionUpdate(RECONCILING, True, reason, message),
        ConditionUpdate(STALLED, False, reason),
    ]
    outcome.retry_after = retry_seconds
    outcome.retry_message = message
    return outcome


def stalled(outcome: Outcome, reason: str, message: str, *extra: ConditionUpdate) -> Outcome:
    outcome.conditions += [
        ConditionUpdate(READY, False, reason, message),
        ConditionUpdate(STALLED, True, reason, message),
        ConditionUpdate(RECONCILING, False, reason),
        *extra,
    ]
    outcome.warn(reason, message)
    return outcome


def without_nulls(entry: dict[str, Any]) -> dict[str, Any]:
    """A status list entry without null fields: the schema types them as strings, not nullable."""
    return {key: value for key, value in entry.items() if value is not None}


def candidate_status(placement: Placement) -> list[dict[str, Any]]:
    chosen_ref = placement.chosen.candidate.ref if placement.chosen else None
    return [
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
        for verdict in placement.verdicts
    ]


def same_model(existing: DeploymentSnapshot, name: str, model_format: str) -> bool:
    return (
        existing.model_name.lower() == name.lower() and existing.model_format.lower() == model_format.lower()
    )


def desired_version(spec: FoundryDeploymentSpec, existing: DeploymentSnapshot | None, offered: str) -> str:
    """The version to deploy. Under an auto-upgrade option the version Azure moved the deployment
    to is accepted (never written back); a pinned version is enforced only under NoAutoUpgrade,
    or when the pin is newer than what runs (the user raised it)."""
    running = existing.model_version if existing is not None else None
    pinned = spec.model.version
    if running is None:
        return pinned or offered
    if spec.version_upgrade_option == VersionUpgradeOption.NO_AUTO_UPGRADE:
        return pinned or running
    if pinned is not None and pinned > running:
        return pinned
    return running


# -- the planner ---------------------------------------------------------------------------------


def plan(facts: DeploymentFacts) -> Plan:
    outcome = Outcome()
    outcome.status["configMapName"] = facts.spec.config_map_name
    result = Plan([], outcome)
    retiring = _plan_retiring(facts, result)
    outcome.status["retiring"] = [r.wire() for r in retiring]
    if not facts.accounts:
        return _no_usable_account(facts, result)

    spec = facts.spec
    status = facts.status
    current_ref = status.account_ref if status.account_ref in facts.accounts else None
    # PreferFirst: the current account is only one candidate among others, the first eligible wins.
    sticky_ref = current_ref if spec.placement_policy == PlacementPolicy.STICKY else None
    request = DeploymentRequest(
        spec.model.name, spec.model.format, spec.model.version, spec.sku.name.value, spec.sku.capacity
    )
    # What already runs under the target name with this model, per candidate: its capacity is in the
    # usages already, and Azure lets a Deprecating version serve it (new deployments are refused).
    target = spec.effective_deployment_name().lower()
    running = {
        ref: found
        for ref, account in facts.accounts.items()
        if (found := facts.deployments.get(account.arm_id.lower(), {}).get(target)) is not None
        and same_model(found, spec.model.name, spec.model.format)
    }
    placement = place(
        request,
        facts.candidates,
        facts.catalogs,
        facts.usages,
        facts.now,
        current_account=sticky_ref,
        deployed_capacity={ref: found.capacity or 0 for ref, found in running.items()},
        running_versions={ref: found.model_version for ref, found in running.items() if found.model_version},
    )
    result.placement = placement
    outcome.status["candidates"] = candidate_status(placement)
    if placement.chosen is None:
        if facts.elsewhere is None:
            result.steps = [LookElsewhere()]
            return result
        return _refused(facts, request, placement, facts.elsewhere, result)

    chosen = placement.chosen
    assert chosen.offer is not None and chosen.sku is not None and chosen.capacity is not None
    preferred = _preferred_still_pending(facts, chosen.candidate.ref)
    if preferred is not None and not status.account_ref:
        # Accounts applied together with their deployments: a more preferred account that the
        # operator has not looked at yet may well take it; placing now on a later one would stick.
        message = (
            f"waiting for FoundryAccount {preferred.ref}, listed before {chosen.candidate.ref} in "
            "spec.accounts, to be reconciled before placing"
        )
        return _stop(
            result,
            transient(outcome, "AccountNotReady", message, min(facts.retry_seconds, ACCOUNT_WAIT_SECONDS)),
        )
    account = facts.accounts[chosen.candidate.ref]
    name = spec.effective_deployment_name()
    target_id = f"{account.arm_id}/deployments/{name}".lower()

    rival = _rival(facts, account.arm_id, name)
    if rival is not None:
        message = (
            f"Azure deployment {name} on account {account.account_name} belongs to FoundryDeployment "
            f"{rival}; set spec.deploymentName to another name or delete one of them"
        )
        return _stop(
            result,
            stalled(
                outcome,
                "Conflict",
                message,
                ConditionUpdate(CONFLICT, True, "DeploymentOwned", message),
                ConditionUpdate(PLACED, False, "Conflict", message),
            ),
        )

    # Keys an older object already publishes: refused before paying for a deployment no key
    # would point at (a deployed object that later loses a key is handled when publishing).
    held = keys_held(facts)
    if held and not status.resource_id:
        winners = ", ".join(f"{key} (held by {owner})" for key, owner in sorted(held.items()))
        message = f"keys already published by another FoundryDeployment: {winners}; choose other spec.keys"
        return _stop(
            result,
            stalled(
                outcome, "KeyConflict", message, ConditionUpdate(PUBLISHED, False, "KeyConflict", message)
            ),
        )

    existing = facts.deployments.get(account.arm_id.lower(), {}).get(name.lower())
    ours = existing is not None and existing.tags.get(OWNER_TAG) == owner_tag(facts.owner)
    if existing is not None and not same_model(existing, spec.model.name, spec.model.format):
        if not ours:
            message = (
                f"Azure deployment {name} on account {account.account_name} already exists with model "
                f"{existing.model_format}/{existing.model_name}, not {spec.model.format}/{spec.model.name}; it is not "
                f"managed by this object: set spec.deploymentName to another name"
            )
            reason = "ForeignDeployment"
        else:
            # One name holds one deployment and Azure cannot change its model in place: replacing
            # it under the same name would leave the name serving nothing for a whole create.
            message = (
                f"Azure deployment {name} on account {account.account_name} runs {existing.model_format}/"
                f"{existing.model_name}; a model change needs a new deployment name so the old one keeps "
                f"serving until the new one is ready: set spec.deploymentName to a new name (or remove it: "
                f"it defaults to the model name, {spec.model.name})"
            )
            reason = "ModelChangeNeedsNewName"
        return _stop(
            result,
            stalled(
                outcome,
                "Conflict",
                message,
                ConditionUpdate(CONFLICT, True, reason, message),
                ConditionUpdate(PLACED, False, "Conflict", message),
            ),
        )

    outcome.conditions += [
        ConditionUpdate(CONFLICT, False, "NoConflict"),
        ConditionUpdate(PLACED, True, "Placed", placement.message),
    ]
    desired = DesiredDeployment(
        name=name,
        model_format=chosen.offer.format,
        model_name=chosen.offer.name,
        model_version=desired_version(spec, existing, chosen.offer.version),
        sku_name=chosen.sku.name,
        capacity=chosen.capacity,
        version_upgrade_option=spec.version_upgrade_option.value,
        rai_policy_name=spec.rai_policy_name,
        owner=facts.owner,
    )
    if existing is not None and _upgraded_by_azure(spec, existing, facts.status, target_id):
        outcome.note(
            "VersionUpgraded",
            f"Azure upgraded {name} on {account.account_name} to {existing.model_version} "
            f"(versionUpgradeOption {spec.version_upgrade_option.value}); accepted and published",
        )
    if existing is None or _needs_write(existing, desired):
        result.steps.append(Deploy(account, desired, existing, chosen.offer.replacement))
    else:
        adopted = not ours and not status.resource_id
        result.steps.append(Serve(account, existing, adopted))

    endpoint, flavour = endpoint_for_format(account.endpoints, account.endpoint, desired.model_format)
    result.steps.append(Publish(account, facts.keys, endpoint, flavour, chosen.offer))

    serving = (status.resource_id or "").lower()
    if serving and serving != target_id and serving not in {r.resource_id.lower() for r in retiring}:
        previous = RetiringDeployment(
            account_ref=f"{status.account_namespace or facts.namespace}/{status.account or ''}",
            deployment_name=status.deployment_name or serving.rsplit("/", 1)[-1],
            resource_id=status.resource_id or "",
            region=status.region,
            not_before=now_rfc3339(facts.now + timedelta(seconds=spec.drain_seconds)),
        )
        result.steps.append(Retire(previous))
        result.requeue_after = _sooner(result.requeue_after, float(spec.drain_seconds))
    # Moving back onto a deployment that is draining: it serves again, so it is no longer retired.
    outcome.status["retiring"] = [r.wire() for r in retiring if r.resource_id.lower() != target_id]
    return result


def keys_held(facts: DeploymentFacts) -> dict[str, str]:
    """Which of this object's keys an older object publishes, or asks for in its spec (key -> owner).

    Older: (creationTimestamp, namespace/name), the order the publisher resolves conflicts in.
    Spec claims count before anything is published, so of two objects applied together the
    younger writes nothing to Azure whichever of them the operator sees first."""
    held: dict[str, str] = {}
    claims = [(e.owner, e.created, e.keys) for e in facts.published] + [
        (c.owner, c.created, c.keys) for c in facts.key_claims
    ]
    for owner, created, keys in sorted(claims, key=lambda claim: (claim[1], claim[0]), reverse=True):
        if owner != facts.owner and (created, owner) < (facts.created, facts.owner):
            held.update({key: owner for key in keys if key in facts.keys})
    return held


def _rival(facts: DeploymentFacts, account_id: str, name: str) -> str | None:
    holders = [
        c for c in facts.name_claims.get((account_id.lower(), name.lower()), ()) if c.owner != facts.owner
    ]
    older = [c for c in holders if (c.created, c.owner) < (facts.created, facts.owner)]
    return min(older, key=lambda c: (c.created, c.owner)).owner if older else None


def _needs_write(existing: DeploymentSnapshot, desired: DesiredDeployment) -> bool:
    return (
        existing.in_progress
        or bool(desired.differs_from(existing))
        or (existing.provisioning_state or "").lower() == "failed"
    )


def _upgraded_by_azure(
    spec: FoundryDeploymentSpec, existing: DeploymentSnapshot, status: FoundryDeploymentStatus, target_id: str
) -> bool:
    return (
        spec.version_upgrade_option != VersionUpgradeOption.NO_AUTO_UPGRADE
        and (status.resource_id or "").lower() == target_id
        and status.model_version is not None
        and existing.model_version is not None
        and existing.model_version != status.model_version
    )


def _sooner(current: float | None, seconds: float) -> float:
    return seconds if current is None else min(current, seconds)


def _plan_retiring(facts: DeploymentFacts, result: Plan) -> list[RetiringDeployment]:
    """Deployments whose drain has ended are deleted (if ours) or left; the others wait."""
    kept: list[RetiringDeployment] = []
    for old in facts.status.retiring:
        due = _parse_time(old.not_before)
        if due is not None and due > facts.now:
            kept.append(old)
            result.requeue_after = _sooner(result.requeue_after, (due - facts.now).total_seconds())
            continue
        arm_id = facts.retiring_accounts.get(old.account_ref)
        if arm_id is None:
            kept.append(old)  # its account cannot be reached now: kept, tried again later
            continue
        actual = facts.deployments.get(arm_id.lower(), {}).get(old.deployment_name.lower())
        if actual is None:
            continue  # already gone
        if facts.spec.deletion_policy.value != "Delete":
            result.steps.append(LeaveRetired(old, "deletionPolicy Orphan"))
        elif actual.tags.get(OWNER_TAG) != owner_tag(facts.owner):
            result.steps.append(LeaveRetired(old, "it was not created by this object (adopted)"))
        else:
            result.steps.append(DeleteRetired(old, arm_id))
    return kept


def _parse_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _stop(result: Plan, outcome: Outcome) -> Plan:
    """Refused: nothing is written for the change (due retirements still proceed)."""
    result.outcome = outcome
    result.steps = [s for s in result.steps if isinstance(s, (DeleteRetired, LeaveRetired))]
    return result


def _preferred_still_pending(facts: DeploymentFacts, chosen_ref: str) -> Candidate | None:
    """A candidate listed before the chosen one that has not been reconciled yet, if any."""
    for candidate in facts.candidates:
        if candidate.ref == chosen_ref:
            return None
        if candidate.pending:
            return candidate
    return None


def _no_usable_account(facts: DeploymentFacts, result: Plan) -> Plan:
    outcome = result.outcome
    candidates = facts.candidates
    waiting = [c for c in candidates if c.problem and "is not Ready" in c.problem]
    reasons = "; ".join(f"{c.ref}: {c.problem}" for c in candidates)
    outcome.status["candidates"] = [
        without_nulls({"account": c.ref, "region": c.region, "eligible": False, "reason": c.problem or ""})
        for c in candidates
    ]
    if waiting:
        message = f"no candidate account is usable yet: {reasons}"
        transient(outcome, "AccountNotReady", message, min(facts.retry_seconds, ACCOUNT_WAIT_SECONDS))
        return result
    stalled(
        outcome,
        "NoUsableAccount",
        f"no candidate account can be used: {reasons}",
        ConditionUpdate(PLACED, False, "NoUsableAccount", reasons),
    )
    return result


def _refused(
    facts: DeploymentFacts,
    request: DeploymentRequest,
    placement: Placement,
    elsewhere: Elsewhere,
    result: Plan,
) -> Plan:
    spec = facts.spec
    reason = (placement.refusal or Refusal.ACCOUNT_UNAVAILABLE).value
    alternatives = (
        f"FoundryAccount {', '.join(elsewhere.fitting_accounts)} offers it: add it to spec.accounts"
        if elsewhere.fitting_accounts
        else ""
    )
    message = refusal_message(request, placement.verdicts, elsewhere.offered_regions) + (
        f". {alternatives}" if alternatives else ""
    )
    if reason == Refusal.MODEL_NOT_OFFERED.value and not elsewhere.offered_regions and not alternatives:
        if all(v.suggestion is None for v in placement.verdicts):  # in no region at all: likely a typo
            message += (
                f". No region offers {spec.model.format} model {spec.model.name}: check spec.model.name "
                "and spec.model.format against the catalog (foundry-operator catalog)"
            )
    stalled(result.outcome, reason, message, ConditionUpdate(PLACED, False, reason, message))
    return result
