"""Consumer access: can the identities named in spec.consumers call the model where it was placed?

A model placed on a second account answers its callers 403 PermissionDenied until each holds a
data-plane role there. The operator reads the role assignments that apply at the chosen account
(one listing per account per TTL, in `AzureGateway`) and says, before any call fails, who lacks
which role where, with the `az` command that fixes it; with `accessPolicy: Grant` it creates the
assignment itself. `decide` is pure (the preflight `check` uses it too); `review_access` is the
thin I/O around it.

Ready is left as it is: the deployment exists and serves whoever has access. The ConsumerAccess
condition and a Warning Event name who cannot call it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import HttpResponseError

from foundry_operator.api.models import AccessPolicy, Consumer, FoundryDeploymentSpec
from foundry_operator.azure.arm import AccountCoordinates, AzureGateway, RoleGrant, RoleListing
from foundry_operator.azure.writes import error_code, error_message
from foundry_operator.conditions import CONSUMER_ACCESS, ConditionUpdate, condition
from foundry_operator.errors import CLASSIFIED, classify
from foundry_operator.outcome import DeploymentOutcome

# Azure's built-in roles that open an account's data plane (their GUIDs are the same in every tenant).
COGNITIVE_SERVICES_USER = "a97b65f3-24c7-4388-baec-2e87a11ce68d"
COGNITIVE_SERVICES_OPENAI_USER = "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"
DATA_PLANE_ROLES = {
    COGNITIVE_SERVICES_USER: "Cognitive Services User",
    COGNITIVE_SERVICES_OPENAI_USER: "Cognitive Services OpenAI User",
}
# What Grant assigns: Cognitive Services User also covers the model-inference API of partner models,
# which Cognitive Services OpenAI User does not.
GRANTED_ROLE = COGNITIVE_SERVICES_USER

# Reasons of the ConsumerAccess condition.
ROLES_PRESENT = "RolesPresent"
ROLE_ASSIGNED = "RoleAssigned"
ROLE_MISSING = "RoleMissing"
GRANT_REFUSED = "GrantRefused"
ROLE_ASSIGNMENTS_UNREADABLE = "RoleAssignmentsUnreadable"
ACCESS_CHECK_FAILED = "AccessCheckFailed"


def covers(assignment_scope: str, scope: str) -> bool:
    """An assignment at `assignment_scope` applies at `scope`: the same scope or one above it."""
    outer, inner = assignment_scope.rstrip("/").lower(), scope.rstrip("/").lower()
    return inner == outer or inner.startswith(outer + "/")


def has_access(principal_id: str, grants: Sequence[RoleGrant], scope: str) -> bool:
    return any(
        grant.principal_id.lower() == principal_id.lower()
        and grant.role_id.lower() in DATA_PLANE_ROLES
        and covers(grant.scope, scope)
        for grant in grants
    )


def missing_consumers(
    consumers: Sequence[Consumer], grants: Sequence[RoleGrant], scope: str
) -> list[Consumer]:
    return [c for c in consumers if not has_access(c.principal_id, grants, scope)]


def az_command(consumer: Consumer, scope: str) -> str:
    return (
        f"az role assignment create --assignee-object-id {consumer.principal_id} "
        f"--assignee-principal-type {consumer.principal_type.value} "
        f'--role "{DATA_PLANE_ROLES[GRANTED_ROLE]}" --scope {scope}'
    )


def _roles() -> str:
    return " or ".join(DATA_PLANE_ROLES.values())


@dataclass(frozen=True)
class AccessVerdict:
    """What the ConsumerAccess condition says; `to_grant` is who Grant should assign the role to."""

    status: bool | None
    reason: str
    message: str
    to_grant: tuple[Consumer, ...] = ()

    def update(self) -> ConditionUpdate:
        return ConditionUpdate(CONSUMER_ACCESS, self.status, self.reason, self.message)


def missing_message(missing: Sequence[Consumer], account_name: str, scope: str) -> str:
    who = "; ".join(f"{c.label()}: run `{az_command(c, scope)}`" for c in missing)
    return (
        f"{len(missing)} of spec.consumers lack(s) a data-plane role ({_roles()}) on account {account_name}, "
        f"so their calls will fail with 403 PermissionDenied. {who}. Or set spec.accessPolicy: Grant"
    )


def decide(
    consumers: Sequence[Consumer], listing: RoleListing, account_name: str, scope: str, policy: AccessPolicy
) -> AccessVerdict | None:
    """The condition for the consumers of a model placed at `scope`; None: no consumers, no condition."""
    if not consumers:
        return None
    if listing.refused is not None:
        return AccessVerdict(
            None,
            ROLE_ASSIGNMENTS_UNREADABLE,
            f"cannot check spec.consumers: Azure refused to list the role assignments of account {account_name}: "
            f"{listing.refused} (fix: give the account's identity Microsoft.Authorization/roleAssignments/read "
            f"on {scope}, e.g. Reader; see docs/install.md)",
        )
    missing = missing_consumers(consumers, listing.grants, scope)
    if not missing:
        names = ", ".join(c.name or c.principal_id for c in consumers)
        return AccessVerdict(True, ROLES_PRESENT, f"{names} can call it on account {account_name}")
    if policy == AccessPolicy.GRANT:
        message = f"assigning {DATA_PLANE_ROLES[GRANTED_ROLE]} on account {account_name}"
        return AccessVerdict(None, ROLE_MISSING, message, tuple(missing))
    return AccessVerdict(False, ROLE_MISSING, missing_message(missing, account_name, scope))


# -- I/O ------------------------------------------------------------------------------------------


async def _grant(
    azure: AzureGateway,
    coords: AccountCoordinates,
    missing: Sequence[Consumer],
    owner: str,
    outcome: DeploymentOutcome,
) -> AccessVerdict:
    refused: list[str] = []
    for consumer in missing:
        try:
            await azure.assign_role(
                coords,
                consumer.principal_id,
                consumer.principal_type.value,
                GRANTED_ROLE,
                f"foundry-operator: {consumer.name or 'consumer'} of FoundryDeployment {owner}",
            )
        except HttpResponseError as exc:
            code = error_code(exc) or f"HTTP{exc.status_code}"
            refused.append(f"{consumer.label()}: {code}: {error_message(exc)}")
            continue
        outcome.note(
            ROLE_ASSIGNED,
            f"assigned {DATA_PLANE_ROLES[GRANTED_ROLE]} to {consumer.label()} on account {coords.account_name}",
        )
    if not refused:
        names = ", ".join(c.name or c.principal_id for c in missing)
        return AccessVerdict(
            True,
            ROLE_ASSIGNED,
            f"assigned {DATA_PLANE_ROLES[GRANTED_ROLE]} to {names} on {coords.account_name}",
        )
    message = (
        f"spec.accessPolicy Grant: Azure refused to assign {DATA_PLANE_ROLES[GRANTED_ROLE]} on account "
        f"{coords.account_name}: {'; '.join(refused)} (fix: give the account's identity "
        f"Microsoft.Authorization/roleAssignments/write on {coords.arm_id}, see docs/install.md; or run "
        + "; ".join(f"`{az_command(c, coords.arm_id)}`" for c in missing)
        + ")"
    )
    return AccessVerdict(False, GRANT_REFUSED, message)


async def review_access(
    azure: AzureGateway,
    coords: AccountCoordinates,
    spec: FoundryDeploymentSpec,
    owner: str,
    status: Mapping[str, Any],
    outcome: DeploymentOutcome,
) -> ConditionUpdate:
    """The ConsumerAccess condition for a model on `coords`; a Warning Event when it newly says no.

    Never raises and never asks for a retry: access is re-read at the next resync (the listing's TTL),
    so a refused read or write costs one request per account per round, not a loop.
    """
    if not spec.consumers:
        return ConditionUpdate(CONSUMER_ACCESS, None, "NoConsumers", remove=True)
    try:
        listing = await azure.role_assignments(coords)
        verdict = decide(spec.consumers, listing, coords.account_name, coords.arm_id, spec.access_policy)
        assert verdict is not None
        if verdict.to_grant:
            verdict = await _grant(azure, coords, verdict.to_grant, owner, outcome)
    except CLASSIFIED as exc:
        text = classify(exc, default_fix=None).text
        verdict = AccessVerdict(
            None,
            ACCESS_CHECK_FAILED,
            f"could not read the role assignments of account {coords.account_name}: {text} (checked again at the next resync)",
        )
    previous = condition(status.get("conditions"), CONSUMER_ACCESS)
    if verdict.status is not True and (previous is None or previous.get("message") != verdict.message):
        outcome.warn(verdict.reason, verdict.message)  # once per change, not every resync
    return verdict.update()
