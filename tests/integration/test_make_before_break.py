"""Changes that replace an Azure deployment: the keys never point at one that is not Succeeded."""

from __future__ import annotations

import asyncio
import contextlib

from foundry_emulator.sandbox import Sandbox
from tests.integration.conftest import NAMESPACE, accounts, arm_requests, azure_deployments, deployment


async def _sample(box: Sandbox, key: str, seen: list[str], violations: list[str]) -> None:
    """Read the ConfigMap and Azure continuously: the published name must always be Succeeded."""
    while True:
        data = await box.config_map(NAMESPACE) or {}
        name = data.get(f"FOUNDRY_DEPLOYMENT_{key}")
        record = azure_deployments(box, "aucert-ai").get(name) if name else None
        if name is None:
            violations.append("key missing")
        elif record is None or record.operation is not None or record.settled_state != "Succeeded":
            state = "gone" if record is None else (record.operation or record.settled_state)
            violations.append(f"{name} published while {state}")
        if name and (not seen or seen[-1] != name):
            seen.append(name)
        await asyncio.sleep(0.02)


async def test_model_swap_keeps_the_key_on_a_succeeded_deployment_and_drains_the_old_one(
    box: Sandbox,
) -> None:
    await box.start_operator()
    body = deployment("coder", "gpt-5.1-codex", accounts=["aucert-ai"], keys=["CODER"], drainSeconds=2)
    await box.apply([*accounts(), body], NAMESPACE)
    await box.wait_condition("FoundryDeployment", NAMESPACE, "coder")

    seen: list[str] = []
    violations: list[str] = []
    sampler = asyncio.create_task(_sample(box, "CODER", seen, violations))
    try:
        await box.patch_spec("FoundryDeployment", NAMESPACE, "coder", {"model": {"name": "gpt-5.3-codex"}})
        await box.wait_for(
            lambda: "gpt-5.1-codex" not in azure_deployments(box, "aucert-ai"),
            60,
            what="old deployment retired",
        )
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    assert violations == []
    assert seen == ["gpt-5.1-codex", "gpt-5.3-codex"]

    async def drained() -> dict[str, object] | None:
        status: dict[str, object] = (await box.get("FoundryDeployment", NAMESPACE, "coder"))["status"]
        return status if not status.get("retiring") else None

    status = await box.wait_for(drained, 10, what="status.retiring emptied")
    assert status["deploymentName"] == "gpt-5.3-codex"
    assert len(arm_requests(box, "DELETE", status=200)) + len(arm_requests(box, "DELETE", status=202)) >= 1


async def test_model_change_under_a_fixed_name_is_refused_and_the_old_one_keeps_serving(box: Sandbox) -> None:
    await box.start_operator()
    body = deployment(
        "coder", "gpt-5.1-codex", accounts=["aucert-ai"], keys=["CODER"], deploymentName="coder"
    )
    await box.apply([*accounts(), body], NAMESPACE)
    await box.wait_condition("FoundryDeployment", NAMESPACE, "coder")
    puts = len(arm_requests(box, "PUT"))

    await box.patch_spec("FoundryDeployment", NAMESPACE, "coder", {"model": {"name": "gpt-5.3-codex"}})
    conflict = await box.wait_condition("FoundryDeployment", NAMESPACE, "coder", "Conflict")
    assert conflict["reason"] == "ModelChangeNeedsNewName"
    assert "set spec.deploymentName to a new name" in conflict["message"]
    assert arm_requests(box, "DELETE") == [] and len(arm_requests(box, "PUT")) == puts
    data = await box.config_map(NAMESPACE) or {}
    assert data["FOUNDRY_DEPLOYMENT_CODER"] == "coder"
    assert azure_deployments(box, "aucert-ai")["coder"].model_name == "gpt-5.1-codex"


async def test_two_objects_applied_together_with_one_key_make_one_azure_write(box: Sandbox) -> None:
    await box.start_operator()
    await box.apply(
        [
            *accounts(),
            deployment("alpha", "gpt-5.4", accounts=["aucert-ai"], keys=["SHARED"]),
            deployment("beta", "gpt-5.3-codex", accounts=["aucert-ai"], keys=["SHARED"]),
        ],
        NAMESPACE,
    )
    # Applied in one go they often share a creationTimestamp second: the uid breaks the tie, so
    # the winner is the older of (creationTimestamp, uid), the same in every process.
    objects = [await box.get("FoundryDeployment", NAMESPACE, name) for name in ("alpha", "beta")]
    winner, loser = sorted(objects, key=lambda o: (o["metadata"]["creationTimestamp"], o["metadata"]["uid"]))
    await box.wait_condition("FoundryDeployment", NAMESPACE, winner["metadata"]["name"])
    refused = await box.wait_condition(
        "FoundryDeployment", NAMESPACE, loser["metadata"]["name"], status="False", reason="KeyConflict"
    )
    holder = f"aucert/{winner['metadata']['name']}"
    assert (
        f"key SHARED in ConfigMap aucert/llm-config is already published by FoundryDeployment {holder}"
        in (refused["message"])
    )
    models = {"alpha": "gpt-5.4", "beta": "gpt-5.3-codex"}
    written = models[winner["metadata"]["name"]]
    assert [entry["path"].rsplit("/", 1)[-1] for entry in arm_requests(box, "PUT")] == [written]
    assert models[loser["metadata"]["name"]] not in azure_deployments(box, "aucert-ai")


async def test_an_azure_version_upgrade_is_accepted_published_and_announced(box: Sandbox) -> None:
    from foundry_emulator.sandbox import fast_settings

    await box.start_operator(fast_settings(resync_interval_seconds=1.0))
    body = deployment(
        "gpt", "gpt-5.4", accounts=["aucert-ai"], model={"name": "gpt-5.4", "version": "2026-03-05"}
    )
    await box.apply([*accounts(), body], NAMESPACE)
    await box.wait_condition("FoundryDeployment", NAMESPACE, "gpt")
    puts = len(arm_requests(box, "PUT"))

    box.azure.state.drift_update("aucert-foundation-rg", "aucert-ai", "gpt-5.4", None, "2026-05-01", None)

    async def published() -> bool:
        data = await box.config_map(NAMESPACE) or {}
        return data.get("FOUNDRY_MODEL_VERSION_GPT") == "2026-05-01"

    await box.wait_for(published, 30, what="the upgraded version published")

    async def recorded() -> bool:
        status = (await box.get("FoundryDeployment", NAMESPACE, "gpt"))["status"]
        return bool(status["modelVersion"] == "2026-05-01")

    await box.wait_for(recorded, 10, what="status.modelVersion updated")
    await asyncio.sleep(2.5)  # two more resyncs: the pinned version is not written back
    assert len(arm_requests(box, "PUT")) == puts
    assert azure_deployments(box, "aucert-ai")["gpt-5.4"].model_version == "2026-05-01"

    async def announced() -> bool:
        events = await asyncio.to_thread(box.core.list_namespaced_event, NAMESPACE)
        return any(event.reason == "VersionUpgraded" for event in events.items)

    await box.wait_for(announced, 10, what="a VersionUpgraded Event")


async def test_prefer_first_moves_back_to_the_first_account_when_the_model_rolls_out_there(
    box: Sandbox,
) -> None:
    from foundry_emulator.sandbox import fast_settings

    await box.start_operator(fast_settings(resync_interval_seconds=1.0, catalog_ttl_seconds=0.5))
    body = deployment("reasoning-pro", "gpt-5.4-pro", placementPolicy="PreferFirst", drainSeconds=1)
    await box.apply([*accounts(), body], NAMESPACE)
    await box.wait_condition("FoundryDeployment", NAMESPACE, "reasoning-pro")
    assert (await box.get("FoundryDeployment", NAMESPACE, "reasoning-pro"))["status"]["region"] == "eastus2"

    box.azure.state.rollout("westus", "gpt-5.4-pro", None, None, None)

    async def moved() -> bool:
        status = (await box.get("FoundryDeployment", NAMESPACE, "reasoning-pro"))["status"]
        data = await box.config_map(NAMESPACE) or {}
        return status.get("region") == "westus" and "FOUNDRY_ENDPOINT_REASONING_PRO" not in data

    await box.wait_for(moved, 30, what="the move back to westus")
    assert "gpt-5.4-pro" in azure_deployments(box, "aucert-ai")
    await box.wait_for(
        lambda: "gpt-5.4-pro" not in azure_deployments(box, "aucert-ai-east"),
        30,
        what="the east copy retired",
    )

    async def east_idle() -> dict[str, object] | None:
        status: dict[str, object] = (await box.get("FoundryAccount", NAMESPACE, "aucert-ai-east"))["status"]
        in_use = [c for c in status.get("conditions", []) if c["type"] == "InUse"]  # type: ignore[union-attr]
        return status if in_use and in_use[0]["status"] == "False" else None

    east = await box.wait_for(east_idle, 30, what="aucert-ai-east hosting none")
    assert east["deploymentCount"] == 0
    west = (await box.get("FoundryAccount", NAMESPACE, "aucert-ai"))["status"]
    assert west["deploymentCount"] == 1
