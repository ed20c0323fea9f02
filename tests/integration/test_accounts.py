"""FoundryAccount: adopt, create (Managed), per-account credentials from a Secret."""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes import client as k8s

from foundry_emulator.sandbox import Sandbox
from tests.integration.conftest import NAMESPACE, accounts, arm_requests, deployment


def account(name: str, **spec: Any) -> dict[str, Any]:
    body = {
        "subscriptionId": "3c2b1a09-8f7e-4d6c-9b5a-1e2d3c4b5a69",
        "resourceGroup": "aucert-foundation-rg",
        "accountName": name,
        **spec,
    }
    return {
        "apiVersion": "foundry.llmops.io/v1alpha1",
        "kind": "FoundryAccount",
        "metadata": {"name": name},
        "spec": body,
    }


async def _secret(box: Sandbox, name: str, data: dict[str, str]) -> None:
    await box.ensure_namespace(NAMESPACE)
    body = k8s.V1Secret(metadata=k8s.V1ObjectMeta(name=name), string_data=data)
    await asyncio.to_thread(box.core.create_namespaced_secret, NAMESPACE, body)


async def test_adopted_account_reports_region_kind_and_endpoints(box: Sandbox) -> None:
    await box.start_operator()
    await box.apply(accounts(), NAMESPACE)
    await box.wait_condition("FoundryAccount", NAMESPACE, "aucert-ai-east")
    status = (await box.get("FoundryAccount", NAMESPACE, "aucert-ai-east"))["status"]
    assert status["location"] == "eastus2" and status["kind"] == "AIServices"
    assert (
        status["endpoints"]["OpenAI Language Model Instance API"]
        == "https://aucert-ai-east.openai.azure.com/"
    )
    assert arm_requests(box, "PUT") == []  # adopting never writes


async def test_adopted_account_missing_in_azure_says_what_to_check(box: Sandbox) -> None:
    await box.start_operator()
    await box.apply([account("aucert-ai-typo")], NAMESPACE)
    ready = await box.wait_condition(
        "FoundryAccount", NAMESPACE, "aucert-ai-typo", status="False", reason="AccountNotFound"
    )
    assert "check spec.accountName, spec.resourceGroup and spec.subscriptionId" in ready["message"]
    assert "spec.management: Managed" in ready["message"]


async def test_managed_account_is_created_and_deleted_with_policy_delete(box: Sandbox) -> None:
    await box.start_operator()
    managed = account(
        "aucert-ai-sweden", management="Managed", location="swedencentral", deletionPolicy="Delete"
    )
    await box.apply([managed], NAMESPACE)
    await box.wait_condition("FoundryAccount", NAMESPACE, "aucert-ai-sweden", timeout=30)
    created = box.azure.state.get_account("aucert-foundation-rg", "aucert-ai-sweden")
    assert created.location == "swedencentral" and created.kind == "AIServices"
    status = (await box.get("FoundryAccount", NAMESPACE, "aucert-ai-sweden"))["status"]
    assert (
        status["endpoints"]["OpenAI Language Model Instance API"]
        == "https://aucert-ai-sweden.openai.azure.com/"
    )
    await box.delete("FoundryAccount", NAMESPACE, "aucert-ai-sweden")

    def deleted_in_azure() -> bool:
        return all(
            a.name != "aucert-ai-sweden" for a in box.azure.state.list_accounts("aucert-foundation-rg")
        )

    await box.wait_for(deleted_in_azure, 30, what="account deleted in Azure")


async def test_per_account_credentials_come_from_a_secret(box: Sandbox) -> None:
    await _secret(
        box,
        "aucert-sp",
        {
            "AZURE_TENANT_ID": box.azure.tenant_id,
            "AZURE_CLIENT_ID": box.azure.client_id,
            "AZURE_CLIENT_SECRET": box.azure.client_secret,
        },
    )
    await _secret(box, "broken-sp", {"AZURE_TENANT_ID": box.azure.tenant_id})
    await box.start_operator()
    with_secret = account("aucert-ai", credentials={"source": "Secret", "secretRef": {"name": "aucert-sp"}})
    broken = account("aucert-ai-east", credentials={"source": "Secret", "secretRef": {"name": "broken-sp"}})
    await box.apply([with_secret, broken, deployment("gpt", "gpt-5.4", accounts=["aucert-ai"])], NAMESPACE)
    await box.wait_condition("FoundryDeployment", NAMESPACE, "gpt")
    refused = await box.wait_condition(
        "FoundryAccount", NAMESPACE, "aucert-ai-east", status="False", reason="CredentialsUnavailable"
    )
    assert "Secret aucert/broken-sp lacks AZURE_CLIENT_ID, AZURE_CLIENT_SECRET" in refused["message"]
    assert box.azure.client_secret not in refused["message"]
