"""Consumer access (spec.consumers): the operator reads the role assignments at the chosen account and
says who cannot call the model before any call fails; with accessPolicy Grant it assigns the role.

The default scenario's inference-pods identity holds Cognitive Services User on aucert-ai only, so
gpt-5.4-pro (placed on aucert-ai-east) is out of its reach until someone assigns the role there.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import Counter

import httpx
import openai
import pytest
from azure.identity.aio import ClientSecretCredential
from foundry_llm_client import FoundryClients, LlmConfig

from foundry_emulator.sandbox import Sandbox
from foundry_operator.access import COGNITIVE_SERVICES_USER
from foundry_operator.azure.arm import role_assignment_name
from tests.integration.conftest import NAMESPACE, accounts, arm_requests, deployment, inject

CONSUMER_ID = "5b4a3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"  # inference-pods in the default scenario
CONSUMER_SECRET = "emulator-inference-secret-not-a-real-secret"
CONSUMERS = [{"principalId": CONSUMER_ID, "name": "inference-pods"}]
EAST = (
    "/subscriptions/3c2b1a09-8f7e-4d6c-9b5a-1e2d3c4b5a69/resourceGroups/aucert-foundation-rg"
    "/providers/Microsoft.CognitiveServices/accounts/aucert-ai-east"
)


async def call_as_inference_pods(box: Sandbox, key: str) -> str:
    """One call through foundry_llm_client, as the inference pods make it: their Entra ID token, the
    endpoint published in llm-config (reached through the emulator's proxy, TLS end to end)."""
    data = await box.config_map(NAMESPACE)
    assert data is not None
    ca = str(box.azure.ca_file)
    async with (
        ClientSecretCredential(
            box.azure.tenant_id,
            CONSUMER_ID,
            CONSUMER_SECRET,
            authority=box.azure.url,
            disable_instance_discovery=True,
            connection_verify=ca,
        ) as credential,
        httpx.AsyncClient(proxy=box.azure.proxy_url, verify=ssl.create_default_context(cafile=ca)) as http,
    ):
        target = FoundryClients(
            LlmConfig(data), async_credential=credential, async_http_client=http, max_retries=0
        ).get_async(key)
        answer = await target.client.responses.create(model=target.model, input="hi")
        return answer.output_text


async def test_a_consumer_without_the_role_is_reported_before_any_call_fails(box: Sandbox) -> None:
    await box.start_operator()
    await box.apply(
        [
            *accounts(),
            deployment("reasoning-pro", "gpt-5.4-pro", consumers=CONSUMERS),
            deployment("gpt", "gpt-5.4", consumers=CONSUMERS, keys=["DECISION"]),
            deployment("nano", "gpt-5-nano", consumers=CONSUMERS, keys=["NANO"]),
        ],
        NAMESPACE,
    )
    # Ready: the deployment serves whoever has access; ConsumerAccess says who has not.
    await box.wait_condition("FoundryDeployment", NAMESPACE, "reasoning-pro")
    access = await box.wait_condition(
        "FoundryDeployment", NAMESPACE, "reasoning-pro", "ConsumerAccess", "False", "RoleMissing"
    )
    message = access["message"]
    assert "inference-pods (5b4a3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d)" in message
    assert "on account aucert-ai-east" in message and "403 PermissionDenied" in message
    assert (
        f"az role assignment create --assignee-object-id {CONSUMER_ID} --assignee-principal-type "
        f'ServicePrincipal --role "Cognitive Services User" --scope {EAST}'
    ) in message
    for name in ("gpt", "nano"):  # on aucert-ai, where the scenario grants the role
        ok = await box.wait_condition("FoundryDeployment", NAMESPACE, name, "ConsumerAccess", "True")
        assert ok["reason"] == "RolesPresent" and "aucert-ai" in ok["message"]

    # The report is true: the call that it predicts fails does fail, and the other one answers.
    with pytest.raises(openai.PermissionDeniedError):
        await call_as_inference_pods(box, "REASONING_PRO")
    assert (await call_as_inference_pods(box, "DECISION")).endswith("account aucert-ai] prompt: hi")

    async def warned() -> list[str] | None:
        events = await asyncio.to_thread(box.core.list_namespaced_event, NAMESPACE)
        found = [
            e.message
            for e in events.items
            if e.reason == "RoleMissing" and e.type == "Warning" and e.involved_object.name == "reasoning-pro"
        ]
        return found or None

    assert "aucert-ai-east" in (await box.wait_for(warned, 10, what="a RoleMissing Warning Event"))[0]
    # One listing per account for the three objects (a TTL cache), never a write without Grant.
    listings = Counter(e["path"] for e in arm_requests(box, "GET", "roleAssignments.list"))
    assert sorted(listings.values()) == [1, 1] and any(p.startswith(EAST) for p in listings)
    assert arm_requests(box, "PUT", "roleAssignment") == []


async def test_grant_assigns_the_role_and_the_consumer_can_call(box: Sandbox) -> None:
    await box.start_operator()
    await box.apply(
        [*accounts(), deployment("reasoning-pro", "gpt-5.4-pro", consumers=CONSUMERS, accessPolicy="Grant")],
        NAMESPACE,
    )
    access = await box.wait_condition(
        "FoundryDeployment", NAMESPACE, "reasoning-pro", "ConsumerAccess", "True", "RoleAssigned"
    )
    assert "Cognitive Services User" in access["message"] and "aucert-ai-east" in access["message"]
    assigned = [
        a
        for a in box.azure.state.role_assignments.applying_at(EAST)
        if a.principal_id == CONSUMER_ID and a.scope == EAST
    ]
    assert [(a.role.guid, a.name) for a in assigned] == [
        (COGNITIVE_SERVICES_USER, role_assignment_name(EAST, CONSUMER_ID, COGNITIVE_SERVICES_USER))
    ]
    answer = await call_as_inference_pods(box, "REASONING_PRO")
    assert answer.endswith("account aucert-ai-east] prompt: hi")
    assert [e["status"] for e in arm_requests(box, "PUT", "roleAssignment")] == [201]


async def test_an_unreadable_role_listing_is_a_condition_not_a_loop(box: Sandbox) -> None:
    inject(
        box,
        method="GET",
        path="/roleAssignments$",
        status=403,
        code="AuthorizationFailed",
        message="The client does not have authorization to perform action "
        "'Microsoft.Authorization/roleAssignments/read' over scope '...'.",
    )
    await box.start_operator()
    await box.apply([*accounts(), deployment("reasoning-pro", "gpt-5.4-pro", consumers=CONSUMERS)], NAMESPACE)
    access = await box.wait_condition(
        "FoundryDeployment",
        NAMESPACE,
        "reasoning-pro",
        "ConsumerAccess",
        "Unknown",
        "RoleAssignmentsUnreadable",
    )
    assert "Microsoft.Authorization/roleAssignments/read" in access["message"] and EAST in access["message"]
    assert (await box.condition("FoundryDeployment", NAMESPACE, "reasoning-pro"))["status"] == "True"  # type: ignore[index]
    await asyncio.sleep(2.0)
    assert len(arm_requests(box, "GET", "roleAssignments.list", status=403)) == 1  # kept for the TTL


async def test_removing_the_consumers_removes_the_condition(box: Sandbox) -> None:
    await box.start_operator()
    await box.apply([*accounts(), deployment("reasoning-pro", "gpt-5.4-pro", consumers=CONSUMERS)], NAMESPACE)
    await box.wait_condition("FoundryDeployment", NAMESPACE, "reasoning-pro", "ConsumerAccess", "False")
    await box.patch_spec("FoundryDeployment", NAMESPACE, "reasoning-pro", {"consumers": None})

    async def gone() -> bool:
        return await box.condition("FoundryDeployment", NAMESPACE, "reasoning-pro", "ConsumerAccess") is None

    await box.wait_for(gone, 30, what="ConsumerAccess removed")
