"""`check` and spec.consumers: live, the role assignments at the account a model would go to are read
(missing access fails, as other problems do); offline, a catalog snapshot cannot know them and says so."""

from __future__ import annotations

import json
from pathlib import Path

from foundry_emulator.azure import AzureEmulator
from tests.preflight.support import Cli, adr_accounts, deployment, write_manifests

PODS = "5b4a3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"  # inference-pods: Cognitive Services User on aucert-ai only
CONSUMERS = [{"principalId": PODS, "name": "inference-pods"}]
BOTH = ["aucert-ai", "aucert-ai-east"]


def manifests(emu_subscription: str, tmp_path: Path, **spec: object) -> Path:
    return write_manifests(
        tmp_path / "m.yaml",
        [
            *adr_accounts(emu_subscription),
            deployment("gpt", "gpt-5.4", BOTH, keys=["DECISION"], consumers=CONSUMERS),
            deployment("reasoning-pro", "gpt-5.4-pro", BOTH, consumers=CONSUMERS, **spec),
        ],
    )


def test_live_check_fails_a_consumer_without_the_role_where_the_model_goes(
    live: Cli, emu: AzureEmulator, tmp_path: Path
) -> None:
    result = live("check", "-f", str(manifests(emu.subscription_id, tmp_path)), "-o", "json")
    assert result.exit_code == 1, result.output
    rows = {d["name"]: d for d in json.loads(result.stdout)["deployments"]}
    assert rows["gpt"]["result"] == "OK"  # on aucert-ai, where the role is held
    pro = rows["reasoning-pro"]
    assert pro["result"] == "FAIL" and pro["account"] == "aucert-ai-east"
    [error] = pro["errors"]
    assert error["code"] == "RoleMissing"
    assert f"consumer inference-pods ({PODS}) lacks a data-plane role" in error["message"]
    assert "on account aucert-ai-east" in error["message"]
    scope = (
        f"/subscriptions/{emu.subscription_id}/resourceGroups/aucert-foundation-rg"
        "/providers/Microsoft.CognitiveServices/accounts/aucert-ai-east"
    )
    assert error["fixes"][0] == (
        f"az role assignment create --assignee-object-id {PODS} --assignee-principal-type ServicePrincipal "
        f'--role "Cognitive Services User" --scope {scope}'
    )
    table = live("check", "-f", str(manifests(emu.subscription_id, tmp_path)))
    assert "lacks a data-plane role" in table.stdout and "fix: az role assignment create" in table.stdout


def test_live_check_with_grant_warns_that_the_operator_will_assign(
    live: Cli, emu: AzureEmulator, tmp_path: Path
) -> None:
    path = manifests(emu.subscription_id, tmp_path, accessPolicy="Grant")
    result = live("check", "-f", str(path), "-o", "json")
    assert result.exit_code == 0, result.output
    pro = {d["name"]: d for d in json.loads(result.stdout)["deployments"]}["reasoning-pro"]
    assert pro["result"] == "WARN"
    assert "the operator will assign Cognitive Services User" in pro["warnings"][0]["message"]


def test_a_snapshot_cannot_know_role_assignments_and_says_so(
    offline: Cli, emulator_snapshot: Path, tmp_path: Path
) -> None:
    path = manifests("3c2b1a09-8f7e-4d6c-9b5a-1e2d3c4b5a69", tmp_path)
    result = offline("check", "-f", str(path), "--catalog", str(emulator_snapshot), "-o", "json")
    assert result.exit_code == 0, result.output  # unknown is a warning, not a failure
    for row in json.loads(result.stdout)["deployments"]:
        assert row["result"] == "WARN"
        assert row["warnings"][0]["code"] == "ConsumerAccessUnknown"
        assert "consumer access not checked" in row["warnings"][0]["message"]
