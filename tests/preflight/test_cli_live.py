"""`check` and `catalog` against live Azure: the emulator over HTTPS, the real azure-identity and SDK."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import yaml

from foundry_emulator.azure import AzureEmulator, Scenario, default_scenario_path, load_scenario
from foundry_emulator.azure.scenario import Deployment, DeploymentModelRef, DeploymentSku
from tests.preflight.support import EXAMPLES, RG, Cli, adr_accounts, azure_env, deployment, write_manifests


def test_examples_pass_live_with_the_same_rows_as_offline(live: Cli, tmp_path: Path) -> None:
    result = live("check", "-f", str(EXAMPLES), "-o", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["source"].startswith("live Azure (https://127.0.0.1:")
    placed = {d["name"]: (d["account"], d["region"], d["model"]["version"]) for d in report["deployments"]}
    assert placed["reasoning-pro"] == ("aucert-ai-east", "eastus2", "2026-03-05")
    assert placed["gpt-5.3-codex"] == ("aucert-ai", "westus", "2026-02-24")
    snapshot = tmp_path / "catalog.json"
    assert live("catalog", "--snapshot", str(snapshot), "-o", "json").exit_code == 0
    offline = live("check", "-f", str(EXAMPLES), "--catalog", str(snapshot), "-o", "json")
    assert json.loads(offline.stdout)["deployments"] == report["deployments"]


def test_gpt_5_4_pro_on_westus_only_fails_live_naming_the_east_account(
    live: Cli, emu: AzureEmulator, tmp_path: Path
) -> None:
    manifests = write_manifests(
        tmp_path / "m.yaml",
        [*adr_accounts(emu.subscription_id), deployment("reasoning-pro", "gpt-5.4-pro", ["aucert-ai"])],
    )
    result = live("check", "-f", str(manifests))
    assert result.exit_code == 1, result.output
    # The default version comes from the eastus2 catalog, so the model capacities API can be asked.
    assert "gpt-5.4-pro is offered in eastus2, southcentralus" in result.stdout
    assert (
        "fix: add aucert-ai-east (eastus2) to spec.accounts; or add a FoundryAccount in southcentralus"
        in result.stdout
    )


def test_existing_deployments_count_once_in_the_quota(
    start_emulator: Callable[[Scenario], AzureEmulator], tmp_path: Path
) -> None:
    scenario = load_scenario(default_scenario_path())
    scenario.deployments.append(
        Deployment(
            account="aucert-ai",
            name="gpt-5.4",
            model=DeploymentModelRef(name="gpt-5.4", version="2026-03-05"),
            sku=DeploymentSku(capacity=900),
        )
    )
    emu = start_emulator(scenario)
    manifests = write_manifests(
        tmp_path / "m.yaml",
        [
            *adr_accounts(emu.subscription_id),
            # Already deployed with 900 of the 1000: asking 950 needs only 50 more.
            deployment("gpt-5.4", "gpt-5.4", ["aucert-ai"], sku={"capacity": 950}),
            deployment(
                "extra", "gpt-5.4", ["aucert-ai"], deploymentName="gpt-5.4-extra", sku={"capacity": 100}
            ),
        ],
    )
    result = Cli(azure_env(emu))("check", "-f", str(manifests), "-o", "json")
    assert result.exit_code == 1, result.output
    first, extra = json.loads(result.stdout)["deployments"]
    assert first["result"] == "OK" and first["headroom"] == 1000
    assert (
        extra["result"] == "FAIL"
        and "has 50 free (950 of 1000 used); 100 more requested" in (extra["errors"][0]["message"])
    )


def test_wrong_credentials_exit_2_with_the_offline_hint(emu: AzureEmulator) -> None:
    env = {**azure_env(emu), "AZURE_CLIENT_SECRET": "not-the-secret"}
    result = Cli(env)("check", "-f", str(EXAMPLES))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: cannot authenticate to Azure while reading account aucert-ai")
    assert "hint: set the AZURE_* variables, or check offline with --catalog FILE" in result.stderr


def test_catalog_lists_what_is_offered_where(live: Cli) -> None:
    result = live("catalog")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["REGION", "MODEL", "FORMAT", "VERSION"]
    # Default regions: those of the subscription's accounts.
    assert {line.split()[0] for line in lines[1:]} == {"westus", "eastus2"}
    pro = [line for line in lines if " gpt-5.4-pro " in line]
    assert len(pro) == 1 and pro[0].startswith("eastus2")
    assert "1-2000 (default 20)" in pro[0] and "200/200" in pro[0]
    mini = next(line for line in lines if line.startswith("westus") and "gpt-4o-mini" in line)
    assert "2026-09-30" in mini and "-> gpt-5.4-mini 2026-03-17" in mini


def test_catalog_for_one_region_and_model_as_json(live: Cli) -> None:
    result = live("catalog", "--region", "South Central US", "--model", "GPT-5.4-PRO", "-o", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert list(data["regions"]) == ["southcentralus"]
    models = data["regions"]["southcentralus"]["models"]
    assert {m["name"] for m in models} == {"gpt-5.4-pro"} and {m["kind"] for m in models} == {
        "AIServices",
        "OpenAI",
    }
    assert data["offered"] == []  # only asked when a snapshot is written
    assert {(a["name"], a["location"]) for a in data["accounts"]} == {
        ("aucert-ai", "westus"),
        ("aucert-ai-east", "eastus2"),
    }


def test_catalog_snapshot_holds_accounts_and_where_models_are_offered(live: Cli, tmp_path: Path) -> None:
    path = tmp_path / "snap" / "catalog.yaml"
    result = live("catalog", "--snapshot", str(path), "-o", "yaml")
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(f"wrote {path}: 2 regions (eastus2, westus)")
    data = yaml.safe_load(path.read_text())
    assert data["kind"] == "CatalogSnapshot" and sorted(data["regions"]) == ["eastus2", "westus"]
    offered = {(o["name"], o["sku"]): o["regions"] for o in data["offered"]}
    assert offered[("gpt-5.4-pro", "GlobalStandard")] == ["eastus2", "southcentralus"]
    east = next(a for a in data["accounts"] if a["name"] == "aucert-ai-east")
    assert (east["resourceGroup"], east["location"], east["kind"]) == (RG, "eastus2", "AIServices")


def test_catalog_needs_a_subscription(emu: AzureEmulator) -> None:
    result = Cli({**azure_env(emu), "AZURE_SUBSCRIPTION_ID": None})("catalog")
    assert result.exit_code == 2 and "pass --subscription or set AZURE_SUBSCRIPTION_ID" in result.stderr
