"""Role assignments (Microsoft.Authorization) through the real azure-mgmt-authorization client, and
their effect on the data plane."""

from __future__ import annotations

import ssl
import uuid
from typing import TYPE_CHECKING

import httpx
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity import ClientSecretCredential
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.models import RoleAssignmentCreateParameters

from foundry_emulator.azure import AzureEmulator, ScenarioError, parse_scenario
from foundry_emulator.azure.scenario import default_scenario_path

if TYPE_CHECKING:
    from conftest import Sdk

RG = "aucert-foundation-rg"
CONSUMER_ID = "5b4a3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"
OPENAI_USER = "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"
SERVICES_USER = "a97b65f3-24c7-4388-baec-2e87a11ce68d"


def account_scope(emu: AzureEmulator, account: str) -> str:
    return (
        f"/subscriptions/{emu.subscription_id}/resourceGroups/{RG}"
        f"/providers/Microsoft.CognitiveServices/accounts/{account}"
    )


def role_id(emu: AzureEmulator, guid: str) -> str:
    return f"/subscriptions/{emu.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


def authz(emu: AzureEmulator, sdk: Sdk, **credentials: str) -> AuthorizationManagementClient:
    return AuthorizationManagementClient(
        sdk.credential(**credentials),
        emu.subscription_id,
        base_url=emu.url,
        credential_scopes=["https://management.azure.com/.default"],
        connection_verify=str(emu.ca_file),
        retry_total=0,
    )


def grant(emu: AzureEmulator, role: str, principal: str = CONSUMER_ID) -> RoleAssignmentCreateParameters:
    return RoleAssignmentCreateParameters(
        role_definition_id=role_id(emu, role), principal_id=principal, principal_type="ServicePrincipal"
    )


def data_plane_status(emu: AzureEmulator, sdk: Sdk, account: str) -> int:
    assert sdk.admin("PUT", f"/deployments/{RG}/{account}/nano", {
        "model": {"name": "gpt-5-nano", "version": "2025-08-07"}, "sku": {"capacity": 10},
    }).status in (200, 201)  # fmt: skip
    credential = ClientSecretCredential(
        emu.tenant_id,
        CONSUMER_ID,
        "emulator-inference-secret-not-a-real-secret",
        authority=emu.url,
        disable_instance_discovery=True,
        connection_verify=str(emu.ca_file),
    )
    token = credential.get_token("https://cognitiveservices.azure.com/.default").token
    with httpx.Client(
        proxy=emu.proxy_url, verify=ssl.create_default_context(cafile=str(emu.ca_file))
    ) as http:
        return http.post(
            f"https://{account}.openai.azure.com/openai/deployments/nano/chat/completions?api-version=2024-10-21",
            json={"messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {token}"},
        ).status_code


def test_scenario_assignment_is_listed_in_arm_shape(emu: AzureEmulator, sdk: Sdk) -> None:
    client = authz(emu, sdk)
    scope = account_scope(emu, "aucert-ai")
    listed = list(client.role_assignments.list_for_scope(scope, filter="atScope()"))
    assert [(a.principal_id, a.role_definition_id, a.scope) for a in listed] == [
        (CONSUMER_ID, role_id(emu, SERVICES_USER), scope)
    ]
    assert listed[0].id == f"{scope}/providers/Microsoft.Authorization/roleAssignments/{listed[0].name}"
    assert listed[0].type == "Microsoft.Authorization/roleAssignments"
    assert listed[0].principal_type == "ServicePrincipal"
    assert list(client.role_assignments.list_for_scope(account_scope(emu, "aucert-ai-east"))) == []
    definition = client.role_definitions.get(scope, OPENAI_USER)
    assert definition.role_name == "Cognitive Services OpenAI User"
    assert definition.permissions is not None
    assert "Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action" in (
        definition.permissions[0].data_actions or []
    )


def test_assigning_a_role_opens_the_data_plane_and_deleting_it_closes_it(
    emu: AzureEmulator, sdk: Sdk
) -> None:
    client = authz(emu, sdk)
    scope = account_scope(emu, "aucert-ai-east")
    assert data_plane_status(emu, sdk, "aucert-ai-east") == 403
    name = str(uuid.uuid4())
    created = client.role_assignments.create(scope, name, grant(emu, OPENAI_USER))
    assert (created.name, created.scope, created.principal_id) == (name, scope, CONSUMER_ID)
    assert client.role_assignments.get(scope, name).role_definition_id == role_id(emu, OPENAI_USER)
    listed = client.role_assignments.list_for_scope(scope, filter=f"assignedTo('{CONSUMER_ID}')")
    assert [a.name for a in listed] == [name]
    assert data_plane_status(emu, sdk, "aucert-ai-east") == 200
    client.role_assignments.delete(scope, name)
    assert data_plane_status(emu, sdk, "aucert-ai-east") == 403
    with pytest.raises(ResourceNotFoundError) as missing:
        client.role_assignments.get(scope, name)
    assert missing.value.error is not None and missing.value.error.code == "RoleAssignmentNotFound"


def test_resource_group_assignment_covers_the_accounts_below(emu: AzureEmulator, sdk: Sdk) -> None:
    client = authz(emu, sdk)
    group = f"/subscriptions/{emu.subscription_id}/resourceGroups/{RG}"
    client.role_assignments.create(group, str(uuid.uuid4()), grant(emu, SERVICES_USER))
    assert data_plane_status(emu, sdk, "aucert-ai-east") == 200
    inherited = client.role_assignments.list_for_scope(
        account_scope(emu, "aucert-ai-east"), filter="atScope()"
    )
    assert [a.scope for a in inherited] == [group]


@pytest.mark.parametrize(
    ("name", "role", "principal", "status", "code"),
    [
        ("not-a-guid", OPENAI_USER, CONSUMER_ID, 400, "InvalidRoleAssignmentId"),
        (None, "00000000-0000-0000-0000-000000000000", CONSUMER_ID, 400, "RoleDefinitionDoesNotExist"),
        (None, OPENAI_USER, "11111111-2222-3333-4444-555555555555", 400, "PrincipalNotFound"),
        (None, SERVICES_USER, CONSUMER_ID, 409, "RoleAssignmentExists"),  # the scenario's, under another name
    ],
)
def test_refusals(
    emu: AzureEmulator, sdk: Sdk, name: str | None, role: str, principal: str, status: int, code: str
) -> None:
    with pytest.raises(HttpResponseError) as refused:
        authz(emu, sdk).role_assignments.create(
            account_scope(emu, "aucert-ai"), name or str(uuid.uuid4()), grant(emu, role, principal)
        )
    assert refused.value.status_code == status
    assert refused.value.error is not None and refused.value.error.code == code


def test_a_principal_without_rights_there_cannot_assign(emu: AzureEmulator, sdk: Sdk) -> None:
    sandbox = authz(
        emu,
        sdk,
        client_id="7a6b5c4d-3e2f-4a1b-9c8d-0e1f2a3b4c5d",
        client_secret="emulator-sandbox-secret-not-a-real-secret",
    )
    with pytest.raises(HttpResponseError) as refused:
        sandbox.role_assignments.create(
            account_scope(emu, "aucert-ai"), str(uuid.uuid4()), grant(emu, OPENAI_USER)
        )
    assert refused.value.status_code == 403
    assert refused.value.error is not None and refused.value.error.code == "AuthorizationFailed"


def test_deleting_a_missing_assignment_is_204(emu: AzureEmulator, sdk: Sdk) -> None:
    raw = sdk.http(
        "DELETE",
        f"{account_scope(emu, 'aucert-ai')}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}"
        "?api-version=2022-04-01",
    )
    assert raw.status == 204


def test_scenario_refuses_an_unknown_role() -> None:
    text = (
        default_scenario_path()
        .read_text()
        .replace("role: Cognitive Services User", "role: Cognitive Services Usr")
    )
    with pytest.raises(ScenarioError) as refused:
        parse_scenario(text)
    message = str(refused.value)
    assert "principals[2].roles[0].role: unknown role 'Cognitive Services Usr'" in message
    assert "Cognitive Services OpenAI User" in message
