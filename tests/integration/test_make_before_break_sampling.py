"""A PreferFirst move, sampled: while gpt-5.4-pro moves from aucert-ai-east back to aucert-ai
(the model rolled out to westus), llm-config is read every ~20 ms and every sample must resolve
(FOUNDRY_ENDPOINT_<KEY> or FOUNDRY_ENDPOINT, then FOUNDRY_DEPLOYMENT_<KEY>) to a deployment that
is Succeeded in Azure at that moment. The deployment name is the same on both accounts, so only the
endpoint override tells them apart: dropping it before the westus copy is Succeeded would send
clients to a deployment still being created."""

from __future__ import annotations

from foundry_emulator.sandbox import Sandbox, fast_settings
from tests.integration.conftest import NAMESPACE, accounts, arm_requests, azure_deployments, deployment
from tests.integration.sampling_support import KeySampler, deployment_state, sampling


def _deployment_writes(box: Sandbox, method: str, account: str) -> list[dict[str, object]]:
    return [
        entry
        for entry in arm_requests(box, method, "deployment")
        if f"/accounts/{account}/deployments/gpt-5.4-pro" in str(entry["path"])
    ]


async def test_prefer_first_move_never_publishes_a_deployment_that_is_not_succeeded(box: Sandbox) -> None:
    await box.start_operator(fast_settings(resync_interval_seconds=1.0, catalog_ttl_seconds=0.5))
    body = deployment("reasoning-pro", "gpt-5.4-pro", placementPolicy="PreferFirst", drainSeconds=2)
    await box.apply([*accounts(), body], NAMESPACE)
    await box.wait_condition("FoundryDeployment", NAMESPACE, "reasoning-pro")
    status = (await box.get("FoundryDeployment", NAMESPACE, "reasoning-pro"))["status"]
    assert status["account"] == "aucert-ai-east" and status["region"] == "eastus2"

    sampler = KeySampler(box, NAMESPACE, "REASONING_PRO")
    async with sampling(sampler):
        # A create that takes a while: a key switched before it is Succeeded shows in many samples.
        box.azure.state.scenario.timing.lroSeconds = 1.5
        box.azure.state.rollout("westus", "gpt-5.4-pro", None, None, None)

        async def moved() -> bool:
            status = (await box.get("FoundryDeployment", NAMESPACE, "reasoning-pro"))["status"]
            return status.get("account") == "aucert-ai" and sampler.seen[-1:] == [
                ("aucert-ai", "gpt-5.4-pro")
            ]

        await box.wait_for(moved, 60, what="the move back to aucert-ai, published")
        await box.wait_for(
            lambda: deployment_state(box, "aucert-ai-east", "gpt-5.4-pro") == "gone",
            60,
            what="the east copy retired after its drain",
        )
        floor = sampler.samples + 10  # the sampler keeps reading after the retirement, too
        await box.wait_for(lambda: sampler.samples >= floor, 30, what="samples after the retirement")

    assert sampler.violations == [], sampler.violations[:20]
    assert sampler.seen == [("aucert-ai-east", "gpt-5.4-pro"), ("aucert-ai", "gpt-5.4-pro")]
    assert sampler.samples >= 50, sampler.samples  # ~20 ms apart across a 1.5 s create and a 2 s drain
    # One create on aucert-ai, one delete on aucert-ai-east (after its drain), nothing else written.
    assert [e["status"] for e in _deployment_writes(box, "PUT", "aucert-ai")] == [201]
    assert len(_deployment_writes(box, "PUT", "aucert-ai-east")) == 1  # its creation, before the move
    assert len(_deployment_writes(box, "DELETE", "aucert-ai-east")) == 1
    assert _deployment_writes(box, "DELETE", "aucert-ai") == []
    assert "gpt-5.4-pro" in azure_deployments(box, "aucert-ai")
    data = await box.config_map(NAMESPACE) or {}
    assert "FOUNDRY_ENDPOINT_REASONING_PRO" not in data

    async def drained() -> bool:
        status = (await box.get("FoundryDeployment", NAMESPACE, "reasoning-pro"))["status"]
        return not status.get("retiring")

    await box.wait_for(drained, 30, what="status.retiring emptied")
