"""Integration fixtures: the real operator (kopf) against a real kube-apiserver and the Azure emulator."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from foundry_emulator.azure import Scenario, default_scenario_path, load_scenario
from foundry_emulator.controlplane import ControlPlane
from foundry_emulator.sandbox import Sandbox, load_documents, sandbox

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "aucert"


def quick_scenario() -> Scenario:
    """The ADR world with short long-running operations (the same behaviour on a shorter clock)."""
    scenario = load_scenario(default_scenario_path())
    scenario.timing.lroSeconds = 0.3
    scenario.timing.pollSeconds = 0.05
    return scenario


@pytest.fixture
async def box(tmp_path: Path, control_plane: ControlPlane) -> AsyncIterator[Sandbox]:
    async with sandbox(tmp_path, quick_scenario(), control_plane) as world:
        yield world


def examples() -> list[dict[str, Any]]:
    return load_documents([ROOT / "examples"])


def accounts() -> list[dict[str, Any]]:
    return [doc for doc in examples() if doc["kind"] == "FoundryAccount"]


def deployment(
    name: str, model_name: str, *, accounts: list[str] | None = None, **spec: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": {"name": model_name},
        "accounts": accounts or ["aucert-ai", "aucert-ai-east"],
    }
    for key, value in spec.items():
        body[key] = copy.deepcopy(value)
    return {
        "apiVersion": "foundry.llmops.io/v1alpha1",
        "kind": "FoundryDeployment",
        "metadata": {"name": name},
        "spec": body,
    }


def arm_requests(
    box: Sandbox, method: str | None = None, operation: str | None = None, status: int | None = None
) -> list[dict[str, Any]]:
    from foundry_operator.azure.arm import classify_operation

    return [
        entry
        for entry in box.azure.log.since(0)
        if entry["service"] == "arm"
        and (method is None or entry["method"] == method)
        and (operation is None or classify_operation(entry["path"]) == operation)
        and (status is None or entry["status"] == status)
    ]


def azure_deployments(
    box: Sandbox, account: str, resource_group: str = "aucert-foundation-rg"
) -> dict[str, Any]:
    """Deployments as the emulated Azure holds them, by name."""
    return {
        record.name: record
        for record in box.azure.state.get_account(resource_group, account).deployments.values()
    }


def inject(box: Sandbox, **fault: Any) -> Any:
    """Inject a fault into the Azure emulator (same fields as POST /_emulator/faults)."""
    from foundry_emulator.azure.faults import FaultSpec

    return box.azure.faults.add(FaultSpec(**fault))
