"""Refusals before any write: wrong version, nowhere to place, quota, retirement; and later rollouts."""

from __future__ import annotations

from foundry_emulator.sandbox import Sandbox, fast_settings
from tests.integration.conftest import NAMESPACE, accounts, arm_requests, deployment


async def test_wrong_version_lists_the_versions_offered_and_writes_nothing(box: Sandbox) -> None:
    await box.start_operator()
    await box.apply(
        [
            *accounts(),
            deployment(
                "codex",
                "gpt-5.3-codex",
                accounts=["aucert-ai"],
                model={"name": "gpt-5.3-codex", "version": "2025-12-20"},
            ),
        ],
        NAMESPACE,
    )
    ready = await box.wait_condition(
        "FoundryDeployment", NAMESPACE, "codex", status="False", reason="VersionNotOffered"
    )
    assert (
        "gpt-5.3-codex version 2025-12-20 is not offered in westus (account aucert-ai); offered in westus: 2026-02-24"
        in ready["message"]
    )
    stalled = await box.condition("FoundryDeployment", NAMESPACE, "codex", "Stalled")
    assert stalled is not None and stalled["status"] == "True"
    assert arm_requests(box, "PUT") == []


async def test_no_eligible_account_names_each_reason_and_where_it_is_offered(box: Sandbox) -> None:
    await box.start_operator()
    await box.apply([*accounts(), deployment("pro", "gpt-5.4-pro", accounts=["aucert-ai"])], NAMESPACE)
    ready = await box.wait_condition(
        "FoundryDeployment", NAMESPACE, "pro", status="False", reason="ModelNotOffered"
    )
    assert "gpt-5.4-pro (GlobalStandard) is not offered in westus (account aucert-ai)" in ready["message"]
    assert "gpt-5.4-pro is offered in eastus2, southcentralus" in ready["message"]
    assert arm_requests(box, "PUT") == []


async def test_quota_exhausted_is_refused_before_writing(box: Sandbox) -> None:
    box.azure.state.set_quota("westus", "OpenAI.GlobalStandard.gpt-5.4", 50)
    await box.start_operator()
    await box.apply(
        [*accounts(), deployment("big", "gpt-5.4", accounts=["aucert-ai"], sku={"capacity": 80})], NAMESPACE
    )
    ready = await box.wait_condition(
        "FoundryDeployment", NAMESPACE, "big", status="False", reason="InsufficientQuota"
    )
    assert (
        "quota OpenAI.GlobalStandard.gpt-5.4 in westus has 50 free (0 of 50 used); 80 more requested"
        in ready["message"]
    )
    candidates = (await box.get("FoundryDeployment", NAMESPACE, "big"))["status"]["candidates"]
    assert "lower spec.sku.capacity to 50 or less" in candidates[0]["reason"]
    assert arm_requests(box, "PUT") == []


async def test_quota_exhausted_on_preferred_account_falls_back_to_the_next(box: Sandbox) -> None:
    box.azure.state.set_quota("westus", "OpenAI.GlobalStandard.gpt-5.4", 50)
    await box.start_operator()
    await box.apply([*accounts(), deployment("big", "gpt-5.4", sku={"capacity": 80})], NAMESPACE)
    await box.wait_condition("FoundryDeployment", NAMESPACE, "big")
    status = (await box.get("FoundryDeployment", NAMESPACE, "big"))["status"]
    assert status["account"] == "aucert-ai-east" and status["capacity"] == 80


async def test_retired_model_is_refused_with_its_replacement(box: Sandbox) -> None:
    await box.start_operator()
    await box.apply([*accounts(), deployment("mini", "gpt-4o-mini", accounts=["aucert-ai"])], NAMESPACE)
    ready = await box.wait_condition(
        "FoundryDeployment", NAMESPACE, "mini", status="False", reason="ModelRetired"
    )
    assert "retired on 2026-09-30" in ready["message"] and "gpt-5.4-mini" in ready["message"]


async def test_model_rolled_out_later_leaves_running_deployment_in_place_and_unblocks_stalled_ones(
    box: Sandbox,
) -> None:
    await box.start_operator(fast_settings(resync_interval_seconds=1.0, catalog_ttl_seconds=0.5))
    await box.apply(
        [
            *accounts(),
            deployment("reasoning-pro", "gpt-5.4-pro"),
            deployment("west-only", "gpt-5.4-pro", accounts=["aucert-ai"], deploymentName="gpt-5.4-pro-west"),
        ],
        NAMESPACE,
    )
    await box.wait_condition("FoundryDeployment", NAMESPACE, "reasoning-pro")
    await box.wait_condition(
        "FoundryDeployment", NAMESPACE, "west-only", status="False", reason="ModelNotOffered"
    )

    box.azure.state.rollout("westus", "gpt-5.4-pro", None, None, None)
    await box.wait_condition("FoundryDeployment", NAMESPACE, "west-only", timeout=30)
    assert (await box.get("FoundryDeployment", NAMESPACE, "west-only"))["status"]["region"] == "westus"
    # Sticky: the running deployment stays in eastus2 although the preferred region now offers it.
    status = (await box.get("FoundryDeployment", NAMESPACE, "reasoning-pro"))["status"]
    assert status["account"] == "aucert-ai-east"
    assert [e for e in arm_requests(box, "DELETE")] == []
