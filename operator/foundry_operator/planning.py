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

from datetime import datetime, timedelta

from foundry_operator.api.models import (
    CandidateStatus,
    FoundryDeploymentSpec,
    FoundryDeploymentStatus,
    PlacementPolicy,
    RetiringDeployment,
    VersionUpgradeOption,
)
from foundry_operator.azure.arm import OWNER_TAG, DeploymentSnapshot, DesiredDeployment
from foundry_operator.conditions import (
    CONFLICT,
    PLACED,
    PUBLISHED,
    ConditionUpdate,
    now_rfc3339,
)
from foundry_operator.outcome import deployment_outcome, stalled, transient
from foundry_operator.placement import Candidate, DeploymentRequest, Placement, place
from foundry_operator.plans import (
    ACCOUNT_WAIT_SECONDS,
    AccountFacts,
    DeleteRetired,
    Deploy,
    DeploymentFacts,
    LeaveRetired,
    LookElsewhere,
    Plan,
    Publish,
    Retire,
    Serve,
    Step,
    candidate_status,
    owner_tag,
    without_nulls,
)
from foundry_operator.publishing import endpoint_for_format
from foundry_operator.refusals import (
    Blocker,
    Elsewhere,
    foreign_deployment,
    keys_taken,
    model_change_needs_new_name,
    name_claimed,
    not_placed,
)
from foundry_operator.views import NameClaim

__all__ = [
    "AccountFacts",
    "DeleteRetired",
    "Deploy",
    "DeploymentFacts",
    "Elsewhere",
    "LeaveRetired",
    "LookElsewhere",
    "Plan",
    "Publish",
    "Retire",
    "Serve",
    "Step",
    "owner_tag",
    "plan",
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
    outcome = deployment_outcome()
    outcome.status.config_map_name = facts.spec.config_map_name
    result = Plan([], outcome)
    retiring = _plan_retiring(facts, result)
    outcome.status.retiring = retiring
    if not facts.accounts:
        return _no_usable_account(facts, result)

    spec, status = facts.spec, facts.status
    placement = _place(facts)
    result.placement = placement
    outcome.status.candidates = candidate_status(placement)
    if placement.chosen is None:
        if facts.elsewhere is None:
            result.steps = [LookElsewhere()]
            return result
        refused = not_placed(_request(spec), placement, facts.elsewhere)
        return _block(result, refused, ConditionUpdate(PLACED, False, refused.code, refused.text))

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
        return _wait(result, "AccountNotReady", message, facts.retry_seconds)
    account = facts.accounts[chosen.candidate.ref]
    name = spec.effective_deployment_name()
    target_id = f"{account.arm_id}/deployments/{name}".lower()

    claimed = claims_blocker(facts, account)
    if isinstance(claimed, NameClaim):
        message = (
            f"waiting for FoundryDeployment {claimed.owner}, older and also asking for Azure deployment "
            f"{name} on {account.account_name}, to be placed first"
        )
        return _wait(result, "ClaimPending", message, facts.retry_seconds)
    blocker: Blocker | None = claimed
    existing = facts.deployments.get(account.arm_id.lower(), {}).get(name.lower())
    ours = existing is not None and existing.tags.get(OWNER_TAG) == owner_tag(facts.owner)
    if (
        blocker is None
        and existing is not None
        and not same_model(existing, spec.model.name, spec.model.format)
    ):
        args = (name, account.account_name, existing.model_format, existing.model_name)
        blocker = model_change_needs_new_name(*args, spec.model.name) if ours else foreign_deployment(*args)
    if blocker is not None:
        extra = [ConditionUpdate(PUBLISHED, False, blocker.code, blocker.text)]
        if blocker.code == CONFLICT:
            extra = [
                ConditionUpdate(CONFLICT, True, blocker.detail or CONFLICT, blocker.text),
                ConditionUpdate(PLACED, False, CONFLICT, blocker.text),
            ]
        return _block(result, blocker, *extra)

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
        result.steps.append(Serve(account, existing, adopted=not ours and not status.resource_id))

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
    outcome.status.retiring = [r for r in retiring if r.resource_id.lower() != target_id]
    return result


def _request(spec: FoundryDeploymentSpec) -> DeploymentRequest:
    return DeploymentRequest(
        spec.model.name, spec.model.format, spec.model.version, spec.sku.name.value, spec.sku.capacity
    )


def running_here(facts: DeploymentFacts) -> dict[str, DeploymentSnapshot]:
    """What already runs under the target name with this model, per candidate: its capacity is in
    the usages already, and Azure lets a Deprecating version serve it (new deployments are refused)."""
    target = facts.spec.effective_deployment_name().lower()
    model = facts.spec.model
    return {
        ref: found
        for ref, account in facts.accounts.items()
        if (found := facts.deployments.get(account.arm_id.lower(), {}).get(target)) is not None
        and same_model(found, model.name, model.format)
    }


def _place(facts: DeploymentFacts) -> Placement:
    spec = facts.spec
    # PreferFirst: the current account is only one candidate among others, the first eligible wins.
    current = facts.status.account_ref if facts.status.account_ref in facts.accounts else None
    running = running_here(facts)
    return place(
        _request(spec),
        facts.candidates,
        facts.catalogs,
        facts.usages,
        facts.now,
        current_account=current if spec.placement_policy == PlacementPolicy.STICKY else None,
        deployed_capacity={ref: found.capacity or 0 for ref, found in running.items()},
        reserved=facts.reserved,
        offered_regions=facts.elsewhere.offered_regions if facts.elsewhere else (),
        running_versions={ref: found.model_version for ref, found in running.items() if found.model_version},
    )


def _older(claim_created: str, claim_owner: str, facts: DeploymentFacts) -> bool:
    return (claim_created, claim_owner) < (facts.created, facts.owner)


def claims_blocker(facts: DeploymentFacts, account: AccountFacts) -> Blocker | NameClaim | None:
    """Who else holds or asks for this name on this account, or these keys: decided before any write.

    A Blocker: refused (the name is held there, or an older object has the keys). A NameClaim: an
    older object that may still take the name there; wait for it. None: go ahead."""
    spec = facts.spec
    name = spec.effective_deployment_name()
    account_id = account.arm_id.lower()
    holds = (facts.status.resource_id or "").lower() == f"{account_id}/deployments/{name.lower()}"
    for claim in sorted(facts.name_claims, key=lambda c: (c.created, c.owner)):
        if claim.owner == facts.owner:
            continue
        older = _older(claim.created, claim.owner, facts)
        if claim.held_on == account_id and (older or not holds):
            same = claim.model[:2] == (spec.model.format.lower(), spec.model.name.lower())
            return name_claimed(name, account.account_name, claim.owner, same, facts.owner, facts.keys)
        if older and claim.undecided and account.qualified in claim.candidates and not holds:
            return claim
    held = keys_held(facts)
    if held and not facts.status.resource_id:
        # Refused before paying for a deployment no key would point at (a deployed object that
        # later loses a key is handled when publishing).
        return keys_taken(held, facts.namespace, spec.config_map_name)
    return None


def keys_held(facts: DeploymentFacts) -> dict[str, str]:
    """Which of this object's keys an older object asks for in its spec (key -> owner).

    Spec claims count before anything is published, so of two objects applied together the
    younger writes nothing to Azure whichever of them the operator sees first."""
    held: dict[str, str] = {}
    for claim in sorted(facts.key_claims, key=lambda c: (c.created, c.owner), reverse=True):
        if claim.owner != facts.owner and _older(claim.created, claim.owner, facts):
            held.update({key: claim.owner for key in claim.keys if key in facts.keys})
    return held


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


def _without_change(result: Plan) -> Plan:
    """Nothing is written for the change (due retirements still proceed)."""
    result.steps = [s for s in result.steps if isinstance(s, (DeleteRetired, LeaveRetired))]
    return result


def _block(result: Plan, blocker: Blocker, *extra: ConditionUpdate) -> Plan:
    result.blocker = blocker
    stalled(result.outcome, blocker.code, blocker.text, *extra)
    return _without_change(result)


def _wait(result: Plan, reason: str, message: str, retry_seconds: float) -> Plan:
    transient(result.outcome, reason, message, min(retry_seconds, ACCOUNT_WAIT_SECONDS))
    return _without_change(result)


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
    reasons = "; ".join(f"{c.ref}: {c.problem}" for c in candidates)
    outcome.status.candidates = [
        CandidateStatus.model_validate(
            without_nulls(
                {"account": c.ref, "region": c.region, "eligible": False, "reason": c.problem or ""}
            )
        )
        for c in candidates
    ]
    if any(c.waiting for c in candidates):
        return _wait(
            result, "AccountNotReady", f"no candidate account is usable yet: {reasons}", facts.retry_seconds
        )
    message = f"no candidate account can be used: {reasons}"
    blocker = Blocker("NoUsableAccount", message)
    return _block(result, blocker, ConditionUpdate(PLACED, False, "NoUsableAccount", reasons))
