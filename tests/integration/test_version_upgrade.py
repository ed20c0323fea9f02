"""Azure's own version upgrades under versionUpgradeOption OnceNewDefaultVersionAvailable: a new
default version is released and Azure moves the running deployment to it. The operator accepts
it: llm-config (FOUNDRY_MODEL_VERSION_<KEY> and models.json) shows the new version, nothing writes
the old one back, and the only Event about it is VersionUpgraded (an accepted upgrade is not
drift: no DriftDetected / DriftRepaired)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from foundry_emulator.azure.scenario import ModelVersion
from foundry_emulator.sandbox import Sandbox, fast_settings
from tests.integration.conftest import NAMESPACE, accounts, arm_requests, azure_deployments, deployment

OLD = "2026-03-05"  # gpt-5.4's default version in the default scenario
NEW = "2026-05-01"  # example: the next default version


def _release_and_upgrade(box: Sandbox) -> None:
    """A new default version of gpt-5.4 is released in westus, and Azure moves the deployment to it."""
    known = box.azure.state.catalog.models["gpt-5.4"]
    release = known.model_copy(
        update={"versions": [ModelVersion(version=NEW, isDefaultVersion=True, deprecation=None)]}
    )
    box.azure.state.rollout("westus", "gpt-5.4", None, None, release)
    box.azure.state.drift_update("aucert-foundation-rg", "aucert-ai", "gpt-5.4", None, NEW, None)


def _listings(box: Sandbox) -> int:
    """Deployment listings of aucert-ai: the steady-state resync reads one per round."""
    return len(
        [e for e in arm_requests(box, "GET") if str(e["path"]).endswith("/accounts/aucert-ai/deployments")]
    )


async def _more_resync_rounds(box: Sandbox, rounds: int) -> None:
    # The listing cache lives half a resync interval, so each round lists again.
    floor = _listings(box) + rounds
    await box.wait_for(lambda: _listings(box) >= floor, 30, what=f"{rounds} more resync rounds")


def _published_versions(data: dict[str, str]) -> tuple[str | None, str | None]:
    described = json.loads(data.get("models.json") or "{}").get("GPT") or {}
    return data.get("FOUNDRY_MODEL_VERSION_GPT"), described.get("version")


async def _deploy(box: Sandbox, model: dict[str, Any]) -> None:
    await box.start_operator(fast_settings(resync_interval_seconds=1.0))
    body = deployment(
        "gpt",
        "gpt-5.4",
        accounts=["aucert-ai"],
        model=model,
        versionUpgradeOption="OnceNewDefaultVersionAvailable",
    )
    await box.apply([*accounts(), body], NAMESPACE)
    await box.wait_condition("FoundryDeployment", NAMESPACE, "gpt")
    # Steady state before Azure acts: a resync tick that still held the body from before the
    # create's status patch would take the upgraded deployment for a fresh one (no Event at all).
    await _more_resync_rounds(box, 2)


async def _events(box: Sandbox, name: str) -> list[Any]:
    listed = await asyncio.to_thread(box.core.list_namespaced_event, NAMESPACE)
    return [e for e in listed.items if e.involved_object.name == name]


@pytest.mark.parametrize("pinned", [False, True], ids=["default-version", "pinned-version"])
async def test_llm_config_shows_an_accepted_azure_upgrade_and_no_put_writes_the_old_version_back(
    box: Sandbox, pinned: bool
) -> None:
    await _deploy(box, {"name": "gpt-5.4", **({"version": OLD} if pinned else {})})
    assert _published_versions(await box.config_map(NAMESPACE) or {}) == (OLD, OLD)
    puts = arm_requests(box, "PUT", "deployment")
    assert [e["status"] for e in puts] == [201]

    _release_and_upgrade(box)

    async def published() -> dict[str, str] | None:
        data = await box.config_map(NAMESPACE) or {}
        return data if _published_versions(data) == (NEW, NEW) else None

    data = await box.wait_for(published, 30, what="the upgraded version in llm-config")
    described = json.loads(data["models.json"])["GPT"]
    assert described["model"] == "gpt-5.4" and described["deployment"] == "gpt-5.4"

    async def recorded() -> bool:
        status = (await box.get("FoundryDeployment", NAMESPACE, "gpt"))["status"]
        return bool(status.get("modelVersion") == NEW)

    await box.wait_for(recorded, 10, what="status.modelVersion updated")  # patched after the ConfigMap

    await _more_resync_rounds(box, 3)
    # Nothing was written to Azure: the old version is not put back, not even once.
    assert arm_requests(box, "PUT", "deployment") == puts
    assert arm_requests(box, "PATCH", "deployment") == []
    record = azure_deployments(box, "aucert-ai")["gpt-5.4"]
    assert (record.model_version, record.modified_by) == (NEW, "portal")
    assert _published_versions(await box.config_map(NAMESPACE) or {}) == (NEW, NEW)
    status = (await box.get("FoundryDeployment", NAMESPACE, "gpt"))["status"]
    assert status["modelVersion"] == NEW
    if pinned:  # the pin stays as the user wrote it; the running version is Azure's
        spec = (await box.get("FoundryDeployment", NAMESPACE, "gpt"))["spec"]
        assert spec["model"]["version"] == OLD


async def test_an_accepted_azure_upgrade_is_announced_as_version_upgraded_not_as_drift(box: Sandbox) -> None:
    await _deploy(box, {"name": "gpt-5.4"})
    _release_and_upgrade(box)

    async def announced() -> bool:
        return any(e.reason == "VersionUpgraded" for e in await _events(box, "gpt"))

    try:
        await box.wait_for(announced, 30, what="a VersionUpgraded Event")
    except TimeoutError as exc:
        posted = [f"{e.reason}: {e.message}" for e in await _events(box, "gpt")]
        raise AssertionError(f"{exc}; Events: {posted}") from exc
    await _more_resync_rounds(box, 3)
    events = await _events(box, "gpt")
    drift = [f"{e.reason}: {e.message}" for e in events if e.reason in ("DriftDetected", "DriftRepaired")]
    assert drift == [], drift
    assert [e.reason for e in events].count("VersionUpgraded") == 1
