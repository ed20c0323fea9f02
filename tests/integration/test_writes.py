"""Writes: one at a time per account, foreign conflicts retried, Azure's refusals terminal."""

from __future__ import annotations

import asyncio
import itertools

from foundry_emulator.sandbox import Sandbox
from tests.integration.conftest import (
    NAMESPACE,
    accounts,
    arm_requests,
    azure_deployments,
    deployment,
    inject,
)


async def test_ten_concurrent_creations_on_one_account_never_collide(box: Sandbox) -> None:
    await box.start_operator()
    docs = [
        deployment(
            f"gpt-{i}", "gpt-5.4", accounts=["aucert-ai"], deploymentName=f"gpt-5.4-{i}", sku={"capacity": 10}
        )
        for i in range(10)
    ]
    await box.apply([*accounts(), *docs], NAMESPACE)
    for i in range(10):
        await box.wait_condition("FoundryDeployment", NAMESPACE, f"gpt-{i}", timeout=60)
    assert arm_requests(box, status=409) == []  # the emulator answers 409 to any overlapping write
    assert len(arm_requests(box, "PUT", "deployment")) == 10
    assert {f"gpt-5.4-{i}" for i in range(10)} <= set(azure_deployments(box, "aucert-ai"))
    data = await box.config_map(NAMESPACE)
    assert data is not None and all(data[f"FOUNDRY_DEPLOYMENT_GPT_{i}"] == f"gpt-5.4-{i}" for i in range(10))


async def test_request_conflict_from_another_writer_is_retried_with_backoff(box: Sandbox) -> None:
    inject(
        box,
        method="PUT",
        path="/deployments/",
        status=409,
        code="RequestConflict",
        message="Another operation is being performed on the parent resource. Please try again later.",
        count=3,
    )
    await box.start_operator()
    await box.apply([*accounts(), deployment("gpt", "gpt-5.4", accounts=["aucert-ai"])], NAMESPACE)
    await box.wait_condition("FoundryDeployment", NAMESPACE, "gpt", timeout=30)
    puts = arm_requests(box, "PUT", "deployment")
    assert [entry["status"] for entry in puts] == [409, 409, 409, 201]
    # Backoff, not a hot loop: the retries are spread out (0.2 s, then doubling).
    stamps = [entry["timestamp"] for entry in puts]
    assert stamps == sorted(stamps)
    from datetime import datetime

    gaps = [
        (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()
        for a, b in itertools.pairwise(stamps)
    ]
    assert gaps[0] >= 0.15 and gaps[1] >= 0.3 and gaps[2] >= 0.6


async def test_azure_validation_error_is_terminal_until_the_spec_changes(box: Sandbox) -> None:
    inject(
        box,
        method="PUT",
        path="/deployments/gpt-5.4$",
        status=400,
        code="InvalidResourceProperties",
        message="The specified capacity '100' of account deployment is bigger than available capacity '0' for UsageName "
        "'Tokens Per Minute (thousands) - gpt-5.4 - GlobalStandard'.",
        count=1,
    )
    await box.start_operator()
    await box.apply([*accounts(), deployment("gpt", "gpt-5.4", accounts=["aucert-ai"])], NAMESPACE)
    ready = await box.wait_condition(
        "FoundryDeployment", NAMESPACE, "gpt", status="False", reason="InvalidResourceProperties"
    )
    assert (
        "Azure refused gpt-5.4 on aucert-ai: InvalidResourceProperties: The specified capacity"
        in ready["message"]
    )
    await asyncio.sleep(2.0)
    assert len(arm_requests(box, "PUT", "deployment")) == 1  # no retry loop
    await box.patch_spec("FoundryDeployment", NAMESPACE, "gpt", {"sku": {"capacity": 50}})
    await box.wait_condition("FoundryDeployment", NAMESPACE, "gpt", timeout=30)
    assert azure_deployments(box, "aucert-ai")["gpt-5.4"].capacity == 50


async def test_capacity_change_updates_the_deployment_in_place(box: Sandbox) -> None:
    await box.start_operator()
    await box.apply(
        [*accounts(), deployment("gpt", "gpt-5.4", accounts=["aucert-ai"], sku={"capacity": 20})], NAMESPACE
    )
    await box.wait_condition("FoundryDeployment", NAMESPACE, "gpt")
    await box.patch_spec("FoundryDeployment", NAMESPACE, "gpt", {"sku": {"capacity": 40}})
    await box.wait_for(
        lambda: azure_deployments(box, "aucert-ai")["gpt-5.4"].capacity == 40, 30, what="scale-up"
    )
    await box.wait_for(lambda: _status_capacity(box), 30, what="status capacity 40")
    assert len(arm_requests(box, "PUT", "deployment")) == 2 and arm_requests(box, "DELETE") == []


async def _status_capacity(box: Sandbox) -> bool:
    obj = await box.get("FoundryDeployment", NAMESPACE, "gpt")
    ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    return bool(
        obj["status"].get("capacity") == 40
        and ready["status"] == "True"
        and obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    )
