"""`foundry-operator check --catalog FILE`: the CI job without credentials, against the emulator's snapshot."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from tests.preflight.support import EXAMPLES, Cli, adr_accounts, deployment, write_manifests


def test_examples_pass_against_a_snapshot_of_the_emulator(offline: Cli, emulator_snapshot: Path) -> None:
    result = offline("check", "-f", str(EXAMPLES), "--catalog", str(emulator_snapshot))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "NAME", "NAMESPACE", "MODEL", "VERSION", "ACCOUNT", "REGION", "CAPACITY/HEADROOM", "RESULT",
    ]  # fmt: skip
    rows = {line.split()[0]: line.split() for line in lines[1:7]}
    assert rows["reasoning-pro"][2:] == [
        "gpt-5.4-pro",
        "2026-03-05",
        "aucert-ai-east",
        "eastus2",
        "20/200",
        "OK",
    ]
    assert rows["gpt-5.3-codex"][3:6] == ["2026-02-24", "aucert-ai", "westus"]
    assert rows["kimi-k2.6"][-1] == "OK"
    assert lines[-1].startswith("6 deployments: 6 OK, 0 WARN, 0 FAIL (against catalog snapshot")
    assert "\x1b[" not in result.output  # no colour when not on a terminal


def test_the_adr_incidents_fail_with_reason_and_fix_lines(
    offline: Cli, emulator_snapshot: Path, subscription: str, tmp_path: Path
) -> None:
    manifests = write_manifests(
        tmp_path / "incidents.yaml",
        [
            *adr_accounts(subscription),
            deployment("reasoning-pro", "gpt-5.4-pro", ["aucert-ai"]),
            deployment("coding", "gpt-5.3-codex", ["aucert-ai"], version="2025-12-20"),
        ],
    )
    result = offline("check", "-f", str(manifests), "--catalog", str(emulator_snapshot))
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    pro = lines.index(next(line for line in lines if line.startswith("reasoning-pro")))
    assert lines[pro].split()[-1] == "FAIL"
    assert lines[pro + 1].strip() == (
        "reason: gpt-5.4-pro (GlobalStandard) is not offered in westus (account aucert-ai); "
        "gpt-5.4-pro is offered in eastus2, southcentralus"
    )
    assert lines[pro + 2].strip() == (
        "fix: add aucert-ai-east (eastus2) to spec.accounts; or add a FoundryAccount in southcentralus to spec.accounts"
    )
    assert "fix: set spec.model.version to one of: 2026-02-24" in result.stdout


def test_stdin_and_json_output(offline: Cli, emulator_snapshot: Path, subscription: str) -> None:
    documents = [
        *adr_accounts(subscription),
        deployment("first", "gpt-5.4", ["aucert-ai"], sku={"capacity": 600}),
        deployment("second", "gpt-5.4", ["aucert-ai"], deploymentName="gpt-5.4-b", sku={"capacity": 600}),
    ]
    result = offline(
        "check",
        "-f",
        "-",
        "--catalog",
        str(emulator_snapshot),
        "-o",
        "json",
        input=yaml.safe_dump_all(documents),
    )
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert set(report) == {"result", "source", "checkedAt", "retirementWindowDays", "deployments", "accounts"}
    assert report["result"] == "FAIL" and report["retirementWindowDays"] == 30
    first, second = report["deployments"]
    assert {k: first[k] for k in ("name", "namespace", "file", "document", "result", "placed")} == {
        "name": "first",
        "namespace": "default",
        "file": "<stdin>",
        "document": 3,
        "result": "OK",
        "placed": True,
    }
    assert first["model"] == {
        "format": "OpenAI",
        "name": "gpt-5.4",
        "requestedVersion": None,
        "version": "2026-03-05",
    }
    assert (first["account"], first["region"], first["capacity"], first["headroom"]) == (
        "aucert-ai",
        "westus",
        600,
        1000,
    )
    assert first["usageName"] == "OpenAI.GlobalStandard.gpt-5.4" and first["keys"] == ["FIRST"]
    assert second["placed"] is False and second["headroom"] == 400
    (error,) = second["errors"]
    assert error["code"] == "InsufficientQuota" and "has 400 free" in error["message"]
    assert error["fixes"][0] == "lower spec.sku.capacity to 400 or less, or request more quota"
    assert [c["eligible"] for c in second["candidates"]] == [False]
    assert report["accounts"][0]["region"] == "westus" and report["accounts"][0]["problem"] is None


def test_yaml_output(offline: Cli, emulator_snapshot: Path) -> None:
    result = offline("check", "-f", str(EXAMPLES), "--catalog", str(emulator_snapshot), "-o", "yaml")
    assert result.exit_code == 0
    report = yaml.safe_load(result.stdout)
    assert report["result"] == "OK" and len(report["deployments"]) == 6


def _shifted(snapshot: Path, tmp_path: Path, model: str, days: int) -> Path:
    """The snapshot with one model's retirement moved relative to today (the CLI uses the real clock)."""
    data = yaml.safe_load(snapshot.read_text())
    when = (datetime.now(UTC) + timedelta(days=days)).isoformat()
    for region in data["regions"].values():
        for entry in region["models"]:
            if entry["name"] == model:
                entry["retirementDate"] = when
    path = tmp_path / "shifted.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_retirement_within_the_window_is_a_warning_and_exit_0(
    offline: Cli, emulator_snapshot: Path, tmp_path: Path
) -> None:
    snapshot = _shifted(emulator_snapshot, tmp_path, "gpt-5.4", 10)
    result = offline("check", "-f", str(EXAMPLES), "--catalog", str(snapshot))
    assert result.exit_code == 0, result.output
    assert "gpt-5.4 (2026-03-05) retires on" in result.stdout and "(in 9 days)" in result.stdout
    assert "6 deployments: 5 OK, 1 WARN, 0 FAIL" in result.stdout
    narrow = offline(
        "check", "-f", str(EXAMPLES), "--catalog", str(snapshot), "--retirement-window-days", "5"
    )
    assert narrow.exit_code == 0 and "6 OK" in narrow.stdout


def test_a_retired_model_fails(
    offline: Cli, emulator_snapshot: Path, subscription: str, tmp_path: Path
) -> None:
    snapshot = _shifted(emulator_snapshot, tmp_path, "gpt-4o-mini", -10)
    manifests = write_manifests(
        tmp_path / "m.yaml",
        [*adr_accounts(subscription), deployment("reporting", "gpt-4o-mini", ["aucert-ai"])],
    )
    result = offline("check", "-f", str(manifests), "--catalog", str(snapshot))
    assert result.exit_code == 1
    assert "gpt-4o-mini (2024-07-18) was retired on" in result.stdout
    assert "fix: move to gpt-5.4-mini 2026-03-17" in result.stdout


def test_a_malformed_manifest_exits_2_naming_file_document_and_field(
    offline: Cli, emulator_snapshot: Path, subscription: str, tmp_path: Path
) -> None:
    manifests = write_manifests(
        tmp_path / "bad.yaml",
        [
            *adr_accounts(subscription),
            deployment("reasoning-pro", "gpt-5.4-pro", ["aucert-ai"], keys=["lower"]),
        ],
    )
    result = offline("check", "-f", str(manifests), "--catalog", str(emulator_snapshot))
    assert result.exit_code == 2
    assert result.stdout == ""
    separators = [i for i, line in enumerate(manifests.read_text().splitlines()) if line == "---"]
    start = separators[1] + 2  # the third document's first line, 1-based
    assert result.stderr.startswith(
        f"error: {manifests}: document 3 (line {start}): FoundryDeployment default/reasoning-pro: spec.keys[0]: "
        'Invalid value: "lower"'
    )
    as_json = offline("check", "-f", str(manifests), "--catalog", str(emulator_snapshot), "-o", "json")
    assert as_json.exit_code == 2
    (error,) = json.loads(as_json.stdout)["errors"]
    assert (error["file"], error["document"], error["field"]) == (str(manifests), 3, "spec.keys[0]")


def test_usage_errors_exit_2(offline: Cli, emulator_snapshot: Path, tmp_path: Path) -> None:
    missing = offline("check", "-f", str(tmp_path / "nope.yaml"), "--catalog", str(emulator_snapshot))
    assert missing.exit_code == 2 and "nope.yaml: no such file or directory" in missing.stderr
    no_file = offline("check", "--catalog", str(emulator_snapshot))
    assert no_file.exit_code == 2 and "Missing option '-f'" in no_file.stderr
    not_a_snapshot = tmp_path / "snap.yaml"
    not_a_snapshot.write_text("apiVersion: v1\nkind: ConfigMap\n")
    wrong = offline("check", "-f", str(EXAMPLES), "--catalog", str(not_a_snapshot))
    assert wrong.exit_code == 2 and "not a foundry.llmops.io/v1alpha1 CatalogSnapshot" in wrong.stderr
    negative = offline(
        "check", "-f", str(EXAMPLES), "--catalog", str(emulator_snapshot), "--retirement-window-days", "-1"
    )
    assert negative.exit_code == 2


def test_a_group_typo_exits_2_instead_of_skipping_the_object(
    offline: Cli, emulator_snapshot: Path, subscription: str, tmp_path: Path
) -> None:
    typo = deployment("reasoning-pro", "gpt-5.4", ["aucert-ai"])
    typo["apiVersion"] = "foundry.llmops.com/v1alpha1"
    manifests = write_manifests(tmp_path / "typo.yaml", [*adr_accounts(subscription), typo])
    result = offline("check", "-f", str(manifests), "--catalog", str(emulator_snapshot))
    assert result.exit_code == 2, result.output
    assert (
        "apiVersion: apiVersion 'foundry.llmops.com/v1alpha1' is not foundry.llmops.io/v1alpha1"
        in result.stderr
    )
    assert "set apiVersion: foundry.llmops.io/v1alpha1" in result.stderr


def test_a_deprecating_model_fails_as_a_new_deployment_naming_the_replacement(
    offline: Cli, emulator_snapshot: Path, subscription: str, tmp_path: Path
) -> None:
    manifests = write_manifests(
        tmp_path / "deprecating.yaml",
        [*adr_accounts(subscription), deployment("kimi", "Kimi-K2.5", ["aucert-ai"], format="MoonshotAI")],
    )
    result = offline("check", "-f", str(manifests), "--catalog", str(emulator_snapshot))
    assert result.exit_code == 1, result.output
    assert "is Deprecating in westus: it cannot be used for new deployments" in result.stdout
    assert "fix: change spec.model to the catalog's replacement, Kimi-K2.6" in result.stdout
