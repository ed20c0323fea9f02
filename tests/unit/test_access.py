"""The consumer-access decision, pure: role assignments in, the ConsumerAccess condition out."""

from __future__ import annotations

import pytest

from foundry_operator.access import (
    COGNITIVE_SERVICES_OPENAI_USER,
    COGNITIVE_SERVICES_USER,
    ROLE_ASSIGNMENTS_UNREADABLE,
    ROLE_MISSING,
    ROLES_PRESENT,
    decide,
    has_access,
)
from foundry_operator.api.models import AccessPolicy, Consumer
from foundry_operator.azure.arm import RoleGrant, RoleListing, role_assignment_name

SUB = "/subscriptions/3c2b1a09-8f7e-4d6c-9b5a-1e2d3c4b5a69"
RG = f"{SUB}/resourceGroups/aucert-foundation-rg"
EAST = f"{RG}/providers/Microsoft.CognitiveServices/accounts/aucert-ai-east"
WEST = f"{RG}/providers/Microsoft.CognitiveServices/accounts/aucert-ai"
PODS = "5b4a3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"
OTHER = "11111111-2222-3333-4444-555555555555"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"


@pytest.mark.parametrize(
    ("grant", "expected"),
    [
        (RoleGrant(PODS, COGNITIVE_SERVICES_USER, EAST), True),  # at the account
        (RoleGrant(PODS, COGNITIVE_SERVICES_OPENAI_USER, EAST), True),  # the narrower role
        (RoleGrant(PODS, COGNITIVE_SERVICES_USER, RG), True),  # inherited from the resource group
        (RoleGrant(PODS, COGNITIVE_SERVICES_USER, SUB), True),  # and from the subscription
        (RoleGrant(PODS, COGNITIVE_SERVICES_USER, WEST), False),  # another account
        (RoleGrant(PODS, COGNITIVE_SERVICES_USER, EAST + "-2"), False),  # a prefix is not a parent
        (RoleGrant(PODS, READER, EAST), False),  # a control-plane role opens no data plane
        (RoleGrant(OTHER, COGNITIVE_SERVICES_USER, EAST), False),  # someone else
        (RoleGrant(PODS.upper(), COGNITIVE_SERVICES_USER.upper(), EAST.lower()), True),  # ids ignore case
    ],
)
def test_has_access(grant: RoleGrant, expected: bool) -> None:
    assert has_access(PODS, [grant], EAST) is expected


def consumers(*ids: str) -> list[Consumer]:
    return [Consumer(principal_id=i, name="inference-pods" if i == PODS else None) for i in ids]


def test_no_consumers_no_condition() -> None:
    assert decide([], RoleListing(), "aucert-ai-east", EAST, AccessPolicy.CHECK) is None


@pytest.mark.parametrize(
    ("who", "grants", "policy", "status", "reason", "to_grant"),
    [
        ([PODS], [RoleGrant(PODS, COGNITIVE_SERVICES_USER, RG)], AccessPolicy.CHECK, True, ROLES_PRESENT, []),
        ([PODS], [RoleGrant(PODS, COGNITIVE_SERVICES_USER, WEST)], AccessPolicy.CHECK, False, ROLE_MISSING, []),
        ([PODS, OTHER], [RoleGrant(PODS, COGNITIVE_SERVICES_USER, EAST)], AccessPolicy.GRANT, None, ROLE_MISSING, [OTHER]),
        ([PODS], [RoleGrant(PODS, COGNITIVE_SERVICES_USER, EAST)], AccessPolicy.GRANT, True, ROLES_PRESENT, []),
    ],
)  # fmt: skip
def test_decide(
    who: list[str],
    grants: list[RoleGrant],
    policy: AccessPolicy,
    status: bool | None,
    reason: str,
    to_grant: list[str],
) -> None:
    verdict = decide(consumers(*who), RoleListing(tuple(grants)), "aucert-ai-east", EAST, policy)
    assert verdict is not None
    assert (verdict.status, verdict.reason) == (status, reason)
    assert [c.principal_id for c in verdict.to_grant] == to_grant


def test_missing_names_identity_role_account_and_the_exact_command() -> None:
    verdict = decide(consumers(PODS, OTHER), RoleListing(), "aucert-ai-east", EAST, AccessPolicy.CHECK)
    assert verdict is not None and verdict.status is False
    assert "2 of spec.consumers" in verdict.message and "on account aucert-ai-east" in verdict.message
    assert "Cognitive Services User or Cognitive Services OpenAI User" in verdict.message
    for oid in (PODS, OTHER):
        assert (
            f"az role assignment create --assignee-object-id {oid} --assignee-principal-type ServicePrincipal "
            f'--role "Cognitive Services User" --scope {EAST}'
        ) in verdict.message
    assert f"inference-pods ({PODS})" in verdict.message
    assert "spec.accessPolicy: Grant" in verdict.message


def test_a_refused_listing_is_unknown_and_names_the_permission() -> None:
    verdict = decide(
        consumers(PODS),
        RoleListing(refused="AuthorizationFailed"),
        "aucert-ai-east",
        EAST,
        AccessPolicy.GRANT,
    )
    assert verdict is not None and verdict.status is None and verdict.reason == ROLE_ASSIGNMENTS_UNREADABLE
    assert "Microsoft.Authorization/roleAssignments/read" in verdict.message and not verdict.to_grant


def test_assignment_names_are_deterministic_guids() -> None:
    first = role_assignment_name(EAST, PODS, COGNITIVE_SERVICES_USER)
    assert first == role_assignment_name(EAST.lower(), PODS.upper(), COGNITIVE_SERVICES_USER)
    assert first != role_assignment_name(WEST, PODS, COGNITIVE_SERVICES_USER)
    assert len(first) == 36 and first.count("-") == 4
