"""Deletion policies, ownership, adoption, foreign keys, namespaces, restarts, drift, retirement."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

from kubernetes import client as k8s

from foundry_emulator.sandbox import Sandbox, fast_settings
from tests.integration.conftest import NAMESPACE, accounts, arm_requests, azure_deployments, deployment


async def _gone(box: Sandbox, name: str) -> bool:
    return name not in {o["metadata"]["name"] for o in await box.list("FoundryDeployment", NAMESPACE)}


async def test_delete_removes_the_azure_deployment_and_the_keys(box: Sandbox) -> None:
    await box.start_operator()
    await box.apply(
        [
            *accounts(),
            deployment("gpt", "gpt-5.4", accounts=["aucert-ai"]),
            deployment("codex", "gpt-5.1-codex", accounts=["aucert-ai"]),
        ],
        NAMESPACE,
    )
    await box.wait_condition("FoundryDeployment", NAMESPACE, "gpt")
    await box.wait_condition("FoundryDeployment", NAMESPACE, "codex")
    await box.delete("FoundryDeployment", NAMESPACE, "gpt")
    await box.wait_for(lambda: _gone(box, "gpt"), 30, what="gpt deleted")
    assert "gpt-5.4" not in azure_deployments(box, "aucert-ai")
    data = await box.config_map(NAMESPACE)
    assert (
        data is not None
        and "FOUNDRY_DEPLOYMENT_GPT" not in data
        and data["FOUNDRY_DEPLOYMENT_CODEX"] == "gpt-5.1-codex"
    )


async def test_orphan_policy_leaves_azure_alone_but_removes_the_keys(box: Sandbox) -> None:
    await box.start_operator()
    await box.apply(
        [*accounts(), deployment("gpt", "gpt-5.4", accounts=["aucert-ai"], deletionPolicy="Orphan")],
        NAMESPACE,
    )
    await box.wait_condition("FoundryDeployment", NAMESPACE, "gpt")
    await box.delete("FoundryDeployment", NAMESPACE, "gpt")
    await box.wait_for(lambda: _gone(box, "gpt"), 30, what="gpt deleted")
    assert "gpt-5.4" in azure_deployments(box, "aucert-ai")
    assert arm_requests(box, "DELETE") == []
    data = await box.config_map(NAMESPACE)
    assert data is not None and "FOUNDRY_DEPLOYMENT_GPT" not in data


async def test_second_object_claiming_the_same_deployment_gets_a_conflict(box: Sandbox) -> None:
    await box.start_operator()
    await box.apply(
        [*accounts(), deployment("first", "gpt-5.4", accounts=["aucert-ai"], sku={"capacity": 20})], NAMESPACE
    )
    await box.wait_condition("FoundryDeployment", NAMESPACE, "first")
    await box.apply(
        [deployment("second", "gpt-5.4", accounts=["aucert-ai"], sku={"capacity": 90})], NAMESPACE
    )
    conflict = await box.wait_condition("FoundryDeployment", NAMESPACE, "second", "Conflict")
    assert "is also claimed by FoundryDeployment aucert/first" in conflict["message"]
    assert azure_deployments(box, "aucert-ai")["gpt-5.4"].capacity == 20  # the second changed nothing
    assert len(arm_requests(box, "PUT", "deployment")) == 1
    # Deleting the loser must not delete the winner's Azure deployment.
    await box.delete("FoundryDeployment", NAMESPACE, "second")
    await box.wait_for(lambda: _gone(box, "second"), 30, what="second deleted")
    assert "gpt-5.4" in azure_deployments(box, "aucert-ai")


async def test_existing_deployment_with_the_same_model_is_adopted_without_a_write(box: Sandbox) -> None:
    box.azure.state.drift_create(
        "aucert-foundation-rg",
        "aucert-ai",
        "gpt-5.4",
        "OpenAI",
        "gpt-5.4",
        "2026-03-05",
        "GlobalStandard",
        100,
    )
    await box.start_operator()
    await box.apply([*accounts(), deployment("gpt", "gpt-5.4", accounts=["aucert-ai"])], NAMESPACE)
    await box.wait_condition("FoundryDeployment", NAMESPACE, "gpt")
    assert arm_requests(box, "PUT") == []


async def test_existing_deployment_with_another_model_is_a_conflict(box: Sandbox) -> None:
    box.azure.state.drift_create(
        "aucert-foundation-rg",
        "aucert-ai",
        "gpt-5.4",
        "OpenAI",
        "gpt-5.1-codex",
        "2025-11-13",
        "GlobalStandard",
        100,
    )
    await box.start_operator()
    await box.apply([*accounts(), deployment("gpt", "gpt-5.4", accounts=["aucert-ai"])], NAMESPACE)
    conflict = await box.wait_condition("FoundryDeployment", NAMESPACE, "gpt", "Conflict")
    assert "already exists on account aucert-ai with model OpenAI gpt-5.1-codex" in conflict["message"]
    assert "set spec.deploymentName to another name" in conflict["message"]
    assert arm_requests(box, "PUT") == []


async def test_foreign_configmap_keys_survive(box: Sandbox) -> None:
    await box.ensure_namespace(NAMESPACE)
    body = k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="llm-config"), data={"LOG_LEVEL": "debug"})
    await asyncio.to_thread(box.core.create_namespaced_config_map, NAMESPACE, body)
    await box.start_operator()
    await box.apply([*accounts(), deployment("gpt", "gpt-5.4", accounts=["aucert-ai"])], NAMESPACE)
    await box.wait_condition("FoundryDeployment", NAMESPACE, "gpt")
    data = await box.config_map(NAMESPACE)
    assert data is not None and data["LOG_LEVEL"] == "debug" and data["FOUNDRY_DEPLOYMENT_GPT"] == "gpt-5.4"
    await box.delete("FoundryDeployment", NAMESPACE, "gpt")
    await box.wait_for(lambda: _gone(box, "gpt"), 30, what="gpt deleted")
    data = await box.config_map(NAMESPACE)
    assert data is not None and data["LOG_LEVEL"] == "debug" and "FOUNDRY_DEPLOYMENT_GPT" not in data


async def test_accounts_serve_other_namespaces_only_when_allowed(box: Sandbox) -> None:
    shared = [dict(doc, spec={**doc["spec"], "allowedNamespaces": ["team-a"]}) for doc in accounts()]
    await box.start_operator()
    await box.apply(shared, "platform")
    await box.apply([deployment("gpt", "gpt-5.4", accounts=["platform/aucert-ai"])], "team-a")
    await box.apply(
        [deployment("gpt", "gpt-5.4", accounts=["platform/aucert-ai"], deploymentName="gpt-5.4-b")], "team-b"
    )
    await box.wait_condition("FoundryDeployment", "team-a", "gpt")
    refused = await box.wait_condition(
        "FoundryDeployment", "team-b", "gpt", status="False", reason="NoUsableAccount"
    )
    assert (
        "does not allow namespace team-b: add it to that account's spec.allowedNamespaces"
        in refused["message"]
    )
    assert "spec.accounts[0]" in refused["message"]
    assert set(azure_deployments(box, "aucert-ai")) == {"gpt-5.4"}
    team_a = await box.config_map("team-a")
    # No primary account in team-a itself, so the endpoint is published per key.
    assert team_a is not None and team_a["FOUNDRY_ENDPOINT_GPT"] == "https://aucert-ai.openai.azure.com/"


async def test_restart_in_the_middle_of_a_create_resumes_without_a_duplicate(box: Sandbox) -> None:
    box.azure.state.scenario.timing.lroSeconds = 2.0
    first = await box.start_operator_process()
    await box.apply([*accounts(), deployment("gpt", "gpt-5.4", accounts=["aucert-ai"])], NAMESPACE)
    await box.wait_for(lambda: arm_requests(box, "PUT", "deployment"), 60, what="the PUT")
    await first.kill()  # SIGKILL mid-LRO: Azure is still creating
    assert box.azure.state.get_account("aucert-foundation-rg", "aucert-ai").operation is not None
    await box.start_operator_process()
    await box.wait_condition("FoundryDeployment", NAMESPACE, "gpt", timeout=30)
    assert len(arm_requests(box, "PUT", "deployment")) == 1
    assert arm_requests(box, status=409) == []


async def test_drift_is_repaired_by_the_resync(box: Sandbox) -> None:
    await box.start_operator(fast_settings(resync_interval_seconds=1.0))
    await box.apply(
        [*accounts(), deployment("gpt", "gpt-5.4", accounts=["aucert-ai"], sku={"capacity": 30})], NAMESPACE
    )
    await box.wait_condition("FoundryDeployment", NAMESPACE, "gpt")
    # The portal change must come after Azure has finished the create: a change made while the
    # create's operation is still being completed would be overwritten by it, not by the operator.
    await box.wait_for(lambda: _settled_with_capacity(box, 30), 30, what="the create settled in Azure")

    async def reasons(repaired: int) -> list[str] | None:
        # Events are posted asynchronously by kopf: wait for them to arrive.
        events = await asyncio.to_thread(box.core.list_namespaced_event, NAMESPACE)
        found = [event.reason for event in events.items]
        return found if found.count("DriftRepaired") >= repaired else None

    box.azure.state.drift_update("aucert-foundation-rg", "aucert-ai", "gpt-5.4", 5, None, None)
    await box.wait_for(lambda: _settled_with_capacity(box, 30), 30, what="capacity repaired")
    found = await box.wait_for(lambda: reasons(1), 30, what="the first DriftRepaired event")
    assert found.count("DriftDetected") == 1 and "Updated" in found
    # Deleted in the portal: recreated. Which reconciliation notices it first depends on timing (the
    # resync's drift check, or a reconciliation still under way after the first repair): the
    # guarantee is the deployment back, Ready, created a second time.
    box.azure.state.drift_delete("aucert-foundation-rg", "aucert-ai", "gpt-5.4")
    await box.wait_for(
        lambda: "gpt-5.4" in azure_deployments(box, "aucert-ai"), 30, what="deployment recreated"
    )
    await box.wait_condition("FoundryDeployment", NAMESPACE, "gpt")

    async def recreated() -> list[str] | None:
        events = await asyncio.to_thread(box.core.list_namespaced_event, NAMESPACE)
        found = [event.reason for event in events.items]
        return found if found.count("Created") == 2 else None

    await box.wait_for(recreated, 30, what="a second Created event")
    assert [e["status"] for e in arm_requests(box, "PUT") if e["path"].endswith("/deployments/gpt-5.4")] == [
        201,
        200,
        201,
    ]


def _settled_with_capacity(box: Sandbox, capacity: int) -> bool:
    record = azure_deployments(box, "aucert-ai").get("gpt-5.4")
    return record is not None and record.capacity == capacity and record.operation is None


async def test_configmap_deleted_by_hand_is_recreated(box: Sandbox) -> None:
    await box.start_operator(fast_settings(resync_interval_seconds=1.0))
    await box.apply([*accounts(), deployment("gpt", "gpt-5.4", accounts=["aucert-ai"])], NAMESPACE)
    await box.wait_condition("FoundryDeployment", NAMESPACE, "gpt")
    await asyncio.to_thread(box.core.delete_namespaced_config_map, "llm-config", NAMESPACE)
    data = await box.wait_for(lambda: box.config_map(NAMESPACE), 30, what="llm-config recreated")
    assert data["FOUNDRY_DEPLOYMENT_GPT"] == "gpt-5.4"


async def test_retirement_within_the_window_warns_with_the_replacement(box: Sandbox) -> None:
    await box.start_operator(fast_settings(resync_interval_seconds=1.0, catalog_ttl_seconds=0.5))
    await box.apply([*accounts(), deployment("gpt", "gpt-5.4", accounts=["aucert-ai"])], NAMESPACE)
    await box.wait_condition("FoundryDeployment", NAMESPACE, "gpt")
    from foundry_emulator.azure.scenario import Replacement

    soon = date.today() + timedelta(days=10)
    box.azure.state.retire("gpt-5.4", None, soon, None, Replacement(name="gpt-5.5", version="2026-10-01"))
    warning = await box.wait_condition("FoundryDeployment", NAMESPACE, "gpt", "RetirementSoon", timeout=30)
    assert soon.isoformat() in warning["message"] and "gpt-5.5" in warning["message"]
    ready = await box.condition("FoundryDeployment", NAMESPACE, "gpt")
    assert ready is not None and ready["status"] == "True"  # a warning, still healthy
    events = await asyncio.to_thread(box.core.list_namespaced_event, NAMESPACE)
    assert [e for e in events.items if e.reason == "RetirementSoon" and e.type == "Warning"]
